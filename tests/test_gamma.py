"""``gamma="auto"`` with ``gamma_scale``: multiples of 1/median, in both kernels."""

import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC
from sklearn.utils._param_validation import InvalidParameterError

from skemd import DistanceKernel, PairwiseEMDTransformer, pairwise_emd

SCALES = [0.01, 1.0, 100.0]


def off_diagonal_median(D):
    return np.median(D[~np.eye(len(D), dtype=bool)])


def labelled_clouds(rng, n=30):
    """Clouds of 6 points in 2-D; class 1 is shifted, so a kernel can tell."""
    y = np.arange(n) % 2
    return rng.random((n, 6, 2)) + 0.3 * y[:, None, None], y


@pytest.mark.parametrize("gamma_scale", [0.25, 1.0, 3.0])
def test_auto_gamma_is_the_scale_over_the_median_distance(rng, gamma_scale):
    X = rng.random((9, 5, 2))
    D = pairwise_emd(X)
    w = np.full(5, 0.2)
    pot = [[ot.emd2(w, w, ot.dist(x, z)) for z in X] for x in X]
    np.testing.assert_allclose(D, pot, rtol=1e-9, atol=1e-15)  # the oracle's matrix
    expected = gamma_scale / off_diagonal_median(D)
    est = PairwiseEMDTransformer(output="kernel", gamma_scale=gamma_scale)
    K = est.fit_transform(X)
    assert est.gamma_ == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(K, np.exp(-expected * D), rtol=1e-12)
    assert est.fit(X).gamma_ == pytest.approx(expected, rel=1e-12)  # fit alone
    kernel = DistanceKernel(gamma_scale=gamma_scale).fit(D)
    assert kernel.gamma_ == pytest.approx(expected, rel=1e-12)


def test_distance_kernel_auto_equals_the_transformers_kernel(rng):
    X, X_new = rng.random((12, 4, 2)), rng.random((5, 4, 2))
    est = PairwiseEMDTransformer(output="kernel", gamma_scale=2.5)
    K_train, K_new = est.fit_transform(X), est.transform(X_new)
    kernel = DistanceKernel(gamma_scale=2.5)
    np.testing.assert_array_equal(kernel.fit_transform(pairwise_emd(X)), K_train)
    np.testing.assert_array_equal(kernel.transform(pairwise_emd(X_new, X)), K_new)
    assert kernel.gamma_ == est.gamma_


def test_scaling_the_ground_cost_leaves_the_auto_kernel_unchanged(rng):
    X = rng.random((10, 6))  # histograms over 6 bins
    C = rng.random((6, 6))
    C = C + C.T
    np.fill_diagonal(C, 0.0)
    K = PairwiseEMDTransformer(ground_cost=C, output="kernel", gamma_scale=0.7)
    K_cost = K.fit_transform(X)
    K_cost_1000 = K.set_params(ground_cost=1000 * C).fit_transform(X)
    np.testing.assert_allclose(K_cost_1000, K_cost, rtol=1e-9)
    fixed = PairwiseEMDTransformer(ground_cost=1000 * C, output="kernel", gamma=0.7)
    assert not np.allclose(fixed.fit_transform(X), K_cost)  # a number is not


@settings(max_examples=50, deadline=None)
@given(
    upper=arrays(
        np.float64,
        st.integers(2, 8).map(lambda n: (n, n)),
        elements=st.floats(1e-3, 1e3),
    ),
    factor=st.floats(1e-3, 1e3),
    gamma_scale=st.floats(1e-2, 1e2),
)
def test_distance_kernel_auto_is_scale_free(upper, factor, gamma_scale):
    D = np.triu(upper, 1) + np.triu(upper, 1).T
    kernel = DistanceKernel(gamma_scale=gamma_scale)
    K = kernel.fit_transform(D)
    gamma = kernel.gamma_
    assert gamma == pytest.approx(gamma_scale / off_diagonal_median(D), rel=1e-12)
    np.testing.assert_allclose(kernel.fit_transform(factor * D), K, rtol=1e-9)
    assert kernel.gamma_ * factor == pytest.approx(gamma, rel=1e-12)


@pytest.mark.parametrize("estimator", [PairwiseEMDTransformer, DistanceKernel])
def test_gamma_scale_is_ignored_when_gamma_is_a_number(rng, estimator):
    X = rng.random((6, 4, 2))
    if estimator is DistanceKernel:
        X = pairwise_emd(X)
    kwargs = {"output": "kernel"} if estimator is PairwiseEMDTransformer else {}
    plain = estimator(gamma=2.0, **kwargs).fit(X)
    scaled = estimator(gamma=2.0, gamma_scale=5.0, **kwargs).fit(X)
    assert plain.gamma_ == scaled.gamma_ == 2.0
    np.testing.assert_array_equal(scaled.transform(X), plain.transform(X))


def test_zero_median_gives_gamma_scale():
    assert DistanceKernel(gamma_scale=3.0).fit(np.zeros((4, 4))).gamma_ == 3.0
    assert DistanceKernel(gamma_scale=3.0).fit([[0.0]]).gamma_ == 3.0  # one sample
    one = PairwiseEMDTransformer(output="kernel", gamma_scale=3.0).fit([[1.0, 2.0]])
    assert one.gamma_ == 3.0


def test_grid_search_over_gamma_scale_picks_a_value(rng):
    X, y = labelled_clouds(rng)
    grid = {"pairwiseemdtransformer__gamma_scale": SCALES}
    pipe = make_pipeline(
        PairwiseEMDTransformer(output="kernel"), SVC(kernel="precomputed")
    )
    search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert len(set(scores)) > 1  # the scale changes the kernel, and the fit
    best = search.best_params_["pairwiseemdtransformer__gamma_scale"]
    assert best == SCALES[np.argmax(scores)]
    median = off_diagonal_median(pairwise_emd(X))
    assert search.best_estimator_[0].gamma_ == pytest.approx(best / median)
    # DistanceKernel on the precomputed matrix: the same folds, the same scores.
    D = pairwise_emd(X)
    search_D = GridSearchCV(
        make_pipeline(DistanceKernel(), SVC(kernel="precomputed")),
        {"distancekernel__gamma_scale": SCALES},
        cv=3,
    ).fit(D, y)
    np.testing.assert_allclose(search_D.cv_results_["mean_test_score"], scores)


@pytest.mark.parametrize("estimator", [PairwiseEMDTransformer, DistanceKernel])
@pytest.mark.parametrize(
    "params",
    [
        {"gamma_scale": 0.0},
        {"gamma_scale": -1.0},
        {"gamma_scale": np.inf},
        {"gamma_scale": np.nan},
        {"gamma_scale": "auto"},
        {"gamma_scale": None},
        {"gamma": 0.0},
        {"gamma": -2.0},
        {"gamma": "median"},
        {"gamma": None},
    ],
)
def test_bad_values_are_rejected(estimator, params):
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        estimator(**params).fit(np.ones((3, 3)))


def test_auto_needs_the_square_training_matrix():
    with pytest.raises(ValueError, match=r"got a matrix of shape \(3, 5\)"):
        DistanceKernel().fit(np.ones((3, 5)))
    assert DistanceKernel(gamma=1.0).fit(np.ones((3, 5))).gamma_ == 1.0


def test_distance_kernel_transform_needs_fit():
    with pytest.raises(NotFittedError):
        DistanceKernel(gamma=1.0).transform(np.ones((2, 2)))
