"""pairwise_emd equals the double loop of POT, on every kind of sample.

Histograms, uniform clouds, and weighted clouds of different sizes, X against
itself and against Y; masses kept for methods that take unequal masses;
members named when bad; weights routed as metadata through cross-validation.
"""

import numpy as np
import ot
import pytest
import sklearn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC
from sklearn.utils.fixes import parse_version

import skemd._solvers._exact
from skemd import PairwiseEMDTransformer, pairwise_emd
from skemd._pair_cache import sample_keys
from skemd._solvers import METHODS

LINE = np.arange(6, dtype=float)[:, None]


def clouds(rng, n, sizes=(1, 6), d=2):
    return [rng.random((rng.integers(*sizes), d)) for _ in range(n)]


def positive_weights(rng, X, zeros=False):
    W = [rng.random(len(x)) + 0.05 for x in X]
    if zeros:
        for w in W[::2]:
            w[: len(w) // 2] = 0.0
    return W


def loop(X, Y, wX=None, wY=None, metric="sqeuclidean", balanced=True):
    """The oracle: ``ot.emd2`` (or partial transport of the smaller mass)."""

    def weights(w, x):
        w = np.full(len(x), 1.0 / len(x)) if w is None else np.asarray(w, float)
        return w / w.sum() if balanced else w

    wX = [None] * len(X) if wX is None else wX
    wY = [None] * len(Y) if wY is None else wY
    D = np.empty((len(X), len(Y)))
    for i, (x, a) in enumerate(zip(X, wX, strict=True)):
        for j, (y, b) in enumerate(zip(Y, wY, strict=True)):
            a_i, b_j, M = weights(a, x), weights(b, y), ot.dist(x, y, metric=metric)
            if balanced:
                D[i, j] = ot.emd2(a_i, b_j, M)
            else:
                m = min(a_i.sum(), b_j.sum())
                D[i, j] = ot.partial.partial_wasserstein2(a_i, b_j, M, m=m)
    return D


def histogram_loop(H, G, cost, balanced=True):
    """The oracle for histograms over bins with costs ``cost``."""
    D = np.empty((len(H), len(G)))
    for i, h in enumerate(H):
        for j, g in enumerate(G):
            if balanced:
                D[i, j] = ot.emd2(h / h.sum(), g / g.sum(), cost)
            else:
                m = min(h.sum(), g.sum())
                D[i, j] = ot.partial.partial_wasserstein2(h, g, cost, m=m)
    return D


def histograms(rng, n, bins=6, scale=1.0):
    H = rng.random((n, bins)) * scale
    H[rng.random(H.shape) < 0.3] = 0
    H[:, 0] += 0.01 * scale  # no empty histogram
    return H


@pytest.mark.parametrize("metric", ["sqeuclidean", "cityblock"])
def test_histograms_match_double_loop(rng, metric):
    H, G = histograms(rng, 7), histograms(rng, 3)
    C = ot.dist(LINE, LINE, metric=metric)
    expected = histogram_loop(H, H, C)
    np.testing.assert_allclose(
        pairwise_emd(H, support=LINE, metric=metric), expected, rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(
        pairwise_emd(G, H, ground_cost=C), histogram_loop(G, H, C), atol=1e-12
    )


def test_uniform_clouds_match_double_loop_on_the_assignment_route(rng, monkeypatch):
    def no_simplex(*args):
        raise AssertionError("uniform equal-size clouds must be assignments")

    monkeypatch.setattr(skemd._solvers._exact, "solve_simplex", no_simplex)
    X, Y = rng.random((8, 5, 2)), rng.random((3, 5, 2))
    D = pairwise_emd(X)
    np.testing.assert_allclose(D, loop(X, X), rtol=1e-9, atol=1e-12)
    assert (np.diag(D) == 0).all()
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_allclose(pairwise_emd(Y, X), loop(Y, X), rtol=1e-9)
    # A list of equal-size clouds, and uniform weights, take the same route.
    np.testing.assert_array_equal(pairwise_emd(list(X), weights=np.ones((8, 5))), D)


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean", "cityblock"])
def test_weighted_ragged_clouds_match_double_loop(rng, metric):
    X, Y = clouds(rng, 9), clouds(rng, 4, sizes=(2, 8))
    wX, wY = positive_weights(rng, X, zeros=True), positive_weights(rng, Y)
    atol = 1e-8 if metric == "euclidean" else 1e-12  # ot.dist's sqrt of ~0
    D = pairwise_emd(X, weights=wX, metric=metric, n_jobs=2, batch_size=7)
    np.testing.assert_allclose(D, loop(X, X, wX, wX, metric), rtol=1e-9, atol=atol)
    assert (np.diag(D) == 0).all()
    np.testing.assert_array_equal(D, D.T)
    D_new = pairwise_emd(Y, X, weights=wY, Y_weights=wX, metric=metric)
    np.testing.assert_allclose(D_new, loop(Y, X, wY, wX, metric), rtol=1e-9, atol=atol)
    # One side weighted, the other uniform; a dense side against a ragged one.
    dense = rng.random((3, 4, 2))
    np.testing.assert_allclose(
        pairwise_emd(dense, X, Y_weights=wX, metric=metric),
        loop(dense, X, None, wX, metric),
        rtol=1e-9,
        atol=atol,
    )


def test_symmetric_shortcut_equals_the_full_matrix(rng, solved):
    X = clouds(rng, 10)
    W = positive_weights(rng, X)
    H = histograms(rng, 10)
    for method in ("exact", "partial"):
        for samples, kwargs in ((X, {"weights": W}), (H, {"support": LINE})):
            short = pairwise_emd(samples, method=method, **kwargs)
            weights = {"Y_weights": W} if "weights" in kwargs else {}
            full = pairwise_emd(samples, samples, method=method, **kwargs, **weights)
            np.testing.assert_allclose(short, full, rtol=1e-12, atol=1e-15)
    # X against itself: the pairs above the diagonal only, for both methods.
    assert solved == [45, 100] * 4


def test_partial_keeps_the_masses(rng):
    H, G = histograms(rng, 6, scale=3.0), histograms(rng, 3, scale=0.5)
    C = ot.dist(LINE, LINE)
    D = pairwise_emd(H, support=LINE, method="partial")
    np.testing.assert_allclose(D, histogram_loop(H, H, C, balanced=False), atol=1e-12)
    np.testing.assert_allclose(
        pairwise_emd(G, H, ground_cost=C, method="partial"),
        histogram_loop(G, H, C, balanced=False),
        rtol=1e-9,
        atol=1e-12,
    )
    X = clouds(rng, 7)
    W = [
        w * s for w, s in zip(positive_weights(rng, X), rng.random(7) * 3, strict=True)
    ]
    expected = loop(X, X, W, W, balanced=False)
    np.testing.assert_allclose(
        pairwise_emd(X, weights=W, method="partial"), expected, rtol=1e-9, atol=1e-12
    )
    # Normalised, partial transport of the whole mass is the EMD.
    assert not np.allclose(expected, loop(X, X, W, W))


@pytest.mark.skipif("unbalanced" not in METHODS, reason="no unbalanced method")
def test_unbalanced_keeps_the_masses_and_solves_the_diagonal(rng):
    # POT's unbalanced Sinkhorn needs positive weights: no zero bin here.
    H = rng.random((5, 6)) * 3 + 0.1
    C = ot.dist(LINE, LINE) / 10
    params = {"method": "unbalanced", "reg": 0.1, "method_params": {"reg_m": 1.0}}
    D = pairwise_emd(H, ground_cost=C, **params)
    expected = [
        [ot.unbalanced.sinkhorn_unbalanced2(h, g, C, 0.1, 1.0) for g in H] for h in H
    ]
    np.testing.assert_allclose(D, expected, rtol=1e-6)
    assert (np.diag(D) > 0).all()  # not 0 from a sample to itself: solved
    X = clouds(rng, 4, sizes=(2, 6))
    W = [w * 3 for w in positive_weights(rng, X)]
    expected = [
        [
            ot.unbalanced.sinkhorn_unbalanced2(a, b, ot.dist(x, y), 0.1, 1.0)
            for y, b in zip(X, W, strict=True)
        ]
        for x, a in zip(X, W, strict=True)
    ]
    np.testing.assert_allclose(
        pairwise_emd(X, weights=W, **params), expected, rtol=1e-6
    )


def test_a_mass_no_pair_can_move_names_the_pair(rng):
    H = histograms(rng, 5)
    H[3] *= 0.01
    with pytest.raises(ValueError, match=r"Pair \(0, 3\) .*mass=0.05 exceeds"):
        pairwise_emd(H, method="partial", method_params={"mass": 0.05})


CLOUDS = np.ones((2, 3, 2))  # two clouds of 3 points in 2-D
RAGGED = [np.ones((3, 2)), np.ones((2, 2))]
HISTOGRAMS = np.ones((2, 3))


@pytest.mark.parametrize(
    ("X", "Y", "kwargs", "match"),
    [
        ([np.ones((3, 2)), np.ones(3)], None, {}, r"X\[1\] must be a point cloud"),
        ([np.ones((3, 2)), np.ones((2, 3))], None, {}, r"X\[1\] has shape \(2, 3\)"),
        ([np.ones((3, 2)), np.ones((0, 2))], None, {}, r"X\[1\] must be .*one point"),
        ([np.ones((3, 2)), [[1, np.nan]]], None, {}, r"X\[1\] has a non-finite"),
        ([np.ones((3, 2)), [[1], [2, 3]]], None, {}, r"X\[1\] is not an array"),
        (CLOUDS, None, {"weights": [[1, -1, 1], [1] * 3]}, r"weights\[0\] has a neg"),
        (
            CLOUDS,
            None,
            {"weights": [[1] * 3, [1, np.inf, 1]]},
            r"weights\[1\] has a neg",
        ),
        (CLOUDS, None, {"weights": [[1] * 3, [0] * 3]}, r"weights\[1\] sums to 0"),
        (CLOUDS, None, {"weights": [[1] * 3]}, "per cloud of X, 2; got 1"),
        (RAGGED, None, {"weights": [np.ones(3)] * 2}, r"but the cloud X\[1\] has 2"),
        (CLOUDS, None, {"weights": [[1e308] * 3] * 2}, r"weights\[0\] sums to inf"),
        (CLOUDS, np.ones((2, 3, 3)), {}, r"but X has samples of shape \(n_points, 2"),
        (CLOUDS, [np.ones((2, 2)), np.ones((2, 1))], {}, r"Y\[1\] has shape \(2, 1"),
        (CLOUDS, HISTOGRAMS, {}, "Y holds histograms, but X has point clouds"),
        (HISTOGRAMS, np.ones((2, 4)), {}, r"\(4,\), but X has samples of shape \(3,"),
        (HISTOGRAMS, HISTOGRAMS, {"Y_weights": [[1] * 3] * 2}, "weigh the points"),
        (CLOUDS, None, {"Y_weights": [[1] * 3] * 2}, "Y_weights was given without Y"),
        ([[1.0, np.nan]], None, {}, r"X\[0\] has a non-finite value nan \(NaN or inf"),
        ([[1.0, 0.0], [0.0, 0.0]], None, {}, r"X\[1\] is an empty histogram"),
        ([[1.0, -1.0]], None, {}, r"histogram X\[0\] has the bin -1.0"),
        (CLOUDS, None, {"support": np.ones(3)}, "clouds are compared under metric"),
        (np.ones((2, 3, 2, 1)), None, {}, r"got shape \(2, 3, 2, 1\)"),
    ],
)
def test_bad_members_are_named(X, Y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pairwise_emd(X, Y, **kwargs)


def test_parameters_are_validated_as_sklearn_does():
    with pytest.raises(ValueError, match="'metric' parameter of pairwise_emd"):
        pairwise_emd(np.ones((2, 3)), metric="hamming")
    with pytest.raises(ValueError, match="needs reg"):
        pairwise_emd(np.ones((2, 3)), method="sinkhorn")


def test_the_transformer_takes_ragged_weighted_clouds(rng, tmp_path):
    X, Y = clouds(rng, 8), clouds(rng, 3, sizes=(6, 9))
    wX, wY = positive_weights(rng, X), positive_weights(rng, Y)
    for memory in (None, tmp_path, tmp_path):  # the last from the cache
        est = PairwiseEMDTransformer(memory=memory)
        np.testing.assert_allclose(
            est.fit_transform(X, weights=wX), loop(X, X, wX, wX), atol=1e-12
        )
        np.testing.assert_allclose(
            est.transform(Y, weights=wY), loop(Y, X, wY, wX), atol=1e-12
        )
        assert est.n_features_in_ == 2
    # The cache keys cover the weights: other weights, other values.
    other = positive_weights(rng, X)
    np.testing.assert_allclose(
        PairwiseEMDTransformer(memory=tmp_path).fit_transform(X, weights=other),
        loop(X, X, other, other),
        atol=1e-12,
    )
    # Masses kept for partial transport, whatever the method at fit time.
    H, G = histograms(rng, 5, scale=2.0), histograms(rng, 2, scale=0.3)
    est = PairwiseEMDTransformer(support=LINE).fit(H).set_params(method="partial")
    C = ot.dist(LINE, LINE)
    np.testing.assert_allclose(
        est.transform(G), histogram_loop(G, H, C, balanced=False), atol=1e-12
    )
    fitted_dense = PairwiseEMDTransformer().fit(rng.random((4, 5, 2)))
    assert fitted_dense.transform(Y).shape == (3, 4)  # clouds of other sizes
    with pytest.raises(ValueError, match="was fitted on point clouds"):
        fitted_dense.transform(rng.random((2, 5)))


def test_sample_keys_cover_weights_and_ragged_shapes():
    x = np.arange(6.0).reshape(3, 2)
    keys = [
        sample_keys([x])[0],
        sample_keys([x], [np.ones(3)])[0],
        sample_keys([x], [np.array([1.0, 2.0, 3.0])])[0],
        sample_keys([x.reshape(2, 3)])[0],
        sample_keys([x[:2]])[0],
    ]
    assert len(set(keys)) == len(keys)
    assert sample_keys(np.stack([x, x]))[1] == keys[0]  # as before, dense or not


@pytest.fixture
def labelled_by_weights(rng):
    """Clouds on [0, 1] whose class is where their weights sit, not the points."""
    n = 24
    y = np.arange(n) % 2
    X = [np.sort(rng.random((rng.integers(4, 8), 1)), axis=0) for _ in range(n)]
    W = [
        np.where((x[:, 0] > 0.5) == label, 1.0, 0.05)
        for x, label in zip(X, y, strict=True)
    ]
    return X, W, y


def kernel_svm():
    return make_pipeline(
        PairwiseEMDTransformer(output="kernel", gamma=10.0), SVC(kernel="precomputed")
    )


def test_weights_are_routed_and_sliced_by_cross_validation(labelled_by_weights):
    X, W, y = labelled_by_weights
    cv = KFold(3, shuffle=True, random_state=0)
    grid = {"svc__C": [1.0, 10.0]}
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = kernel_svm()
        pipe[0].set_fit_request(weights=True).set_transform_request(weights=True)
        search = GridSearchCV(pipe, grid, cv=cv).fit(X, y, weights=W)
        folds = cross_validate(
            pipe, X, y, cv=cv, params={"weights": W}, return_estimator=True
        )
        predicted = pipe.fit(X[:16], y[:16], weights=W[:16]).predict(
            X[16:], weights=W[16:]
        )
    # Each fold's transformer was fitted on the weights of its own samples.
    for (train, _), fitted in zip(cv.split(X), folds["estimator"], strict=True):
        for w, expected in zip(fitted[0].weights_fit_, train, strict=True):
            np.testing.assert_array_equal(w, W[expected])
    for w, expected in zip(search.best_estimator_[0].weights_fit_, W, strict=True):
        np.testing.assert_array_equal(w, expected)  # refitted on all of them
    # The same folds by hand: fit and transform with each fold's weights.
    manual = {C: [] for C in grid["svc__C"]}
    for train, test in cv.split(X, y):
        for C in manual:
            est = kernel_svm().set_params(svc__C=C)
            train_W = [W[i] for i in train]
            est.fit(
                [X[i] for i in train], y[train], pairwiseemdtransformer__weights=train_W
            )
            K = est[0].transform([X[i] for i in test], weights=[W[i] for i in test])
            manual[C].append(est[-1].score(K, y[test]))
    by_hand = kernel_svm().fit(X[:16], y[:16], pairwiseemdtransformer__weights=W[:16])
    K = by_hand[0].transform(X[16:], weights=W[16:])
    np.testing.assert_array_equal(predicted, by_hand[-1].predict(K))
    assert np.mean(manual[1.0]) > 0.9  # the weights carry the labels
    assert cross_val_score(kernel_svm(), X, y, cv=cv).mean() < 0.8  # unweighted
    if parse_version(sklearn.__version__) >= parse_version("1.8"):
        # Before 1.8, a Pipeline's default scorer routes no metadata to its
        # steps (scikit-learn #30937): test folds were scored unweighted.
        np.testing.assert_allclose(
            search.cv_results_["mean_test_score"], [np.mean(manual[C]) for C in manual]
        )
        np.testing.assert_allclose(folds["test_score"], manual[1.0])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_ragged_clouds_property(data):
    seed = data.draw(st.integers(0, 2**32 - 1))
    n = data.draw(st.integers(1, 5))
    d = data.draw(st.integers(1, 3))
    rng = np.random.default_rng(seed)
    X = [rng.integers(-3, 4, (rng.integers(1, 5), d)).astype(float) for _ in range(n)]
    W = [rng.integers(0, 3, len(x)).astype(float) for x in X]
    for w in W:
        w[rng.integers(len(w))] += 1.0  # a positive mass
    D = pairwise_emd(X, weights=W)
    assert (np.diag(D) == 0).all()
    np.testing.assert_array_equal(D, D.T)
    assert (D >= 0).all()
    np.testing.assert_allclose(D, loop(X, X, W, W), rtol=1e-9, atol=1e-9)


def test_a_pair_that_failed_is_named_by_its_samples():
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(3)
    X = rng.dirichlet(np.ones(6), size=4)
    with pytest.warns(ConvergenceWarning) as caught:
        pairwise_emd(X, support=np.arange(6.0) ** 2, method="sinkhorn", reg=1e-3,
                     max_iter=1)  # fmt: skip
    (warning,) = caught
    message = str(warning.message)
    assert "12 of 16 pairs of samples did not converge" in message  # all ordered
    assert "(0, 1)" in message and "`converged`" not in message
