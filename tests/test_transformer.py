"""BatchEMDTransformer honours the scikit-learn estimator contract."""

import pickle
import warnings

import numpy as np
import pytest
import sklearn
from conftest import oracle, random_weights
from sklearn.base import clone
from sklearn.exceptions import SkipTestWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    cross_val_score,
    train_test_split,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks as checks
from sklearn.utils._param_validation import InvalidParameterError

from skemd import BatchEMDTransformer, emd_batch


@pytest.fixture
def data(rng):
    """A separable problem: class 1 samples have costs shifted up."""
    k, n, m = 80, 6, 5
    y = np.arange(k) % 2
    X = rng.random((k, n, m)) + 0.6 * y[:, None, None]
    return X, y


# The honest input tags (3-D only) make sklearn's generic check suite skip the
# estimator, since every generic check feeds 2-D data. These checks need no
# data and run as they are; the data-dependent ones are rewritten below for 3-D.
DATA_FREE_CHECKS = [
    checks.check_estimator_cloneable,
    checks.check_estimator_tags_renamed,
    checks.check_valid_tag_types,
    checks.check_estimator_repr,
    checks.check_no_attributes_set_in_init,
    checks.check_do_not_raise_errors_in_init_or_set_params,
    checks.check_mixin_order,
    checks.check_parameters_default_constructible,
    checks.check_get_params_invariance,
    checks.check_set_params,
]


@pytest.mark.parametrize("check", DATA_FREE_CHECKS, ids=lambda c: c.__name__)
def test_data_free_sklearn_checks(check):
    check("BatchEMDTransformer", BatchEMDTransformer())


def test_generic_check_suite_skips_honestly():
    with pytest.warns(SkipTestWarning, match="requires input"):
        checks.check_estimator(BatchEMDTransformer())
    tags = BatchEMDTransformer().__sklearn_tags__()
    assert tags.input_tags.three_d_array and not tags.input_tags.two_d_array
    assert not tags.requires_fit


@pytest.mark.parametrize("output", ["distance", "plan"])
def test_transform_matches_emd_batch(data, output):
    X, _ = data
    est = BatchEMDTransformer(output=output, n_jobs=2)
    Xt = est.fit_transform(X)
    res = emd_batch(X, return_plan=True)
    if output == "distance":
        np.testing.assert_allclose(Xt, res.distance[:, None], rtol=1e-9)
        np.testing.assert_allclose(Xt[:, 0], oracle(X)[0], rtol=1e-9)
    else:
        assert Xt.shape == (len(X), 30)
        np.testing.assert_array_equal(Xt, res.plan.reshape(len(X), -1))
    np.testing.assert_array_equal(est.transform(X), Xt)


def test_stateless_transform_without_fit(data):
    X, _ = data
    np.testing.assert_allclose(
        BatchEMDTransformer().transform(X)[:, 0], emd_batch(X).distance
    )


def test_fit_validates_but_does_not_solve(data, monkeypatch):
    import skemd._batch_transformer

    monkeypatch.setattr(skemd._batch_transformer, "solve_batch", None)  # would crash
    X, _ = data
    est = BatchEMDTransformer().fit(X)
    assert est.cost_shape_ == (6, 5)
    assert est.n_features_in_ == 6
    X[4, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"X\[4\] has a non-finite cost"):
        BatchEMDTransformer().fit(X)
    with pytest.raises(InvalidParameterError, match="output"):
        BatchEMDTransformer(output="kernel").fit(X)
    with pytest.raises(ValueError, match="3-D array"):
        BatchEMDTransformer().fit(X[0])


def test_transform_checks_shape_seen_in_fit(data):
    X, _ = data
    est = BatchEMDTransformer().fit(X)
    with pytest.raises(ValueError, match=r"fitted on shape \(6, 5\)"):
        est.transform(X[:, :, :4])


def test_marginal_errors(data):
    X, _ = data
    with pytest.raises(ValueError, match="constructor's a must be 1-D"):
        BatchEMDTransformer(a=np.full((80, 6), 1 / 6)).fit(X)
    with pytest.raises(ValueError, match="given both"):
        BatchEMDTransformer(b=np.full(5, 0.2)).fit(X, b=np.full((80, 5), 0.2))


def test_shared_and_per_sample_marginals(data, rng):
    X, _ = data
    a = random_weights(rng, 6, zeros=1)
    B = random_weights(rng, (80, 5))
    Xt = BatchEMDTransformer(a=a).fit_transform(X, b=B)
    np.testing.assert_allclose(Xt[:, 0], oracle(X, a, B)[0], rtol=1e-9)


def test_clone_params_pickle(data):
    X, _ = data
    est = BatchEMDTransformer(output="plan", a=np.full(6, 1 / 6), n_jobs=2)
    cloned = clone(est)
    assert cloned.get_params()["n_jobs"] == 2
    assert cloned.set_params(max_iter=10).max_iter == 10
    fitted = est.fit(X)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(X), fitted.transform(X))
    assert restored.cost_shape_ == (6, 5)


def test_feature_names_and_pandas_output(data):
    pd = pytest.importorskip("pandas")
    X, _ = data
    est = BatchEMDTransformer().set_output(transform="pandas")
    out = est.fit_transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["distance"]
    np.testing.assert_allclose(out["distance"], emd_batch(X).distance)
    plan = BatchEMDTransformer(output="plan").fit(X)
    names = plan.get_feature_names_out()
    assert len(names) == 30 and names[7] == "plan_1_2"


def test_read_only_memmap_input(data, tmp_path):
    X, _ = data
    np.save(tmp_path / "X.npy", X)
    X_mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    np.testing.assert_array_equal(
        BatchEMDTransformer().fit_transform(X_mm),
        BatchEMDTransformer().fit_transform(X),
    )


def test_pipeline_cross_val_and_train_test_split(data):
    X, y = data
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    pipe = make_pipeline(BatchEMDTransformer(), StandardScaler(), LogisticRegression())
    assert pipe.fit(X_train, y_train).score(X_test, y_test) > 0.9
    scores = cross_val_score(pipe, X, y, cv=4)
    assert scores.shape == (4,) and scores.mean() > 0.9


@pytest.mark.slow  # GridSearchCV(n_jobs=2) starts loky's worker processes: seconds
def test_grid_search_with_parallel_jobs(data):
    X, y = data
    pipe = make_pipeline(BatchEMDTransformer(n_jobs=2), LogisticRegression())
    search = GridSearchCV(
        pipe,
        {
            "batchemdtransformer__output": ["distance", "plan"],
            "logisticregression__C": [0.1, 10.0],
        },
        cv=3,
        n_jobs=2,
    ).fit(X, y)
    assert search.best_score_ > 0.9
    assert len(search.cv_results_["params"]) == 4


def test_per_sample_marginals_are_routed_and_sliced_by_cv(data, rng):
    X, y = data
    A = random_weights(rng, (80, 6), zeros=2)
    cv = KFold(4, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        emd = (
            BatchEMDTransformer().set_fit_request(a=True).set_transform_request(a=True)
        )
        pipe = make_pipeline(emd, StandardScaler(), LogisticRegression())
        routed = cross_val_score(pipe, X, y, cv=cv, params={"a": A})
        np.testing.assert_allclose(
            pipe.fit(X, y, a=A)[0].transform(X, a=A)[:, 0], oracle(X, A)[0], rtol=1e-9
        )
    # The same folds by hand: each fold's weights are the rows of its samples.
    manual = []
    for train, test in cv.split(X):
        est = make_pipeline(
            BatchEMDTransformer(), StandardScaler(), LogisticRegression()
        )
        est.fit(X[train], y[train], batchemdtransformer__a=A[train])
        Xt = est[1].transform(est[0].transform(X[test], a=A[test]))
        manual.append(est[-1].score(Xt, y[test]))
    np.testing.assert_allclose(routed, manual)


def test_verbose_prints_progress(data, capsys):
    X, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BatchEMDTransformer(verbose=10, n_jobs=2, batch_size=10).fit_transform(X)
    assert "Done" in capsys.readouterr().err
