"""PairwiseEMDTransformer equals the double loop of ot.emd2, and caches pairs."""

import numpy as np
import ot
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import parametrize_with_checks

import skemd._pairwise
from skemd import DistanceKernel, EMDNeighborsTransformer, PairwiseEMDTransformer
from skemd._sample_estimator import SampleEstimator

GRID = np.indices((8, 8)).reshape(2, -1).T.astype(float)

# The estimators on samples (SampleEstimator): PairwiseEMDTransformer and
# EMDNeighborsTransformer.
EXPECTED_FAILED = {
    "check_estimators_dtypes": "its integer data has all-zero rows, which are empty "
    "histograms: the documented contract rejects them",
    "check_fit2d_1feature": "its data has all-zero rows (empty histograms), "
    "rejected by contract",
    "check_transformer_n_iter": "max_iter bounds each pair's solver; fit only "
    "stores the samples and runs no iterative procedure with an n_iter_",
}


@parametrize_with_checks(
    [
        PairwiseEMDTransformer(),
        EMDNeighborsTransformer(n_neighbors=2),
        DistanceKernel(),
        DistanceKernel(gamma=0.5),
    ],
    expected_failed_checks=lambda est: (
        EXPECTED_FAILED if isinstance(est, SampleEstimator) else {}
    ),
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def double_loop(A, B, cost):
    return np.array([[ot.emd2(a, b, cost(a, b)) for b in B] for a in A])


def digits(n):
    X = load_digits().data[:n]
    return X, X / X.sum(axis=1, keepdims=True), load_digits().target[:n]


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean", "cityblock"])
def test_point_clouds_match_double_loop(rng, metric):
    X = rng.random((10, 6, 2))
    Y = rng.random((4, 6, 2))
    uniform = np.full(6, 1 / 6)
    # ot.dist's euclidean is the root of an expanded square: about 1e-8 off
    # where points coincide, so the oracle is that far from the exact 0.
    atol = 1e-8 if metric == "euclidean" else 1e-12
    est = PairwiseEMDTransformer(metric=metric, n_jobs=2)
    D = est.fit_transform(X)
    expected = np.array(
        [
            [ot.emd2(uniform, uniform, ot.dist(x, y, metric=metric)) for y in X]
            for x in X
        ]
    )
    np.testing.assert_allclose(D, expected, rtol=1e-9, atol=atol)
    assert (np.diag(D) == 0).all()
    np.testing.assert_array_equal(D, D.T)
    expected_new = np.array(
        [
            [ot.emd2(uniform, uniform, ot.dist(y, x, metric=metric)) for x in X]
            for y in Y
        ]
    )
    np.testing.assert_allclose(est.transform(Y), expected_new, rtol=1e-9, atol=atol)


def test_digit_histograms_match_double_loop():
    X, H, _ = digits(25)
    C = ot.dist(GRID, GRID)
    D = PairwiseEMDTransformer(support=GRID, n_jobs=2).fit_transform(X)
    np.testing.assert_allclose(
        D, double_loop(H, H, lambda a, b: C), rtol=1e-9, atol=1e-12
    )
    D_cost = PairwiseEMDTransformer(ground_cost=C).fit(X[:20]).transform(X[20:])
    np.testing.assert_allclose(D_cost, D[20:, :20], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("memory", [False, True])
@pytest.mark.parametrize("symmetric", [False, True])
def test_ground_cost_with_asymmetry_or_diagonal_matches_double_loop(
    rng, tmp_path, memory, symmetric
):
    # Issue #13: the upper triangle was mirrored and the diagonal set to 0.
    C = rng.random((5, 5))
    C = (C + C.T) / 2 if symmetric else C  # either way, a positive diagonal
    X, Y = rng.random((7, 5)), rng.random((3, 5))
    X[X < 0.2] = 0
    H, G = (Z / Z.sum(axis=1, keepdims=True) for Z in (X, Y))
    memory = tmp_path if memory else None
    for _ in range(2):  # with memory, the second round is served by the cache
        est = PairwiseEMDTransformer(ground_cost=C, memory=memory)
        D = est.fit_transform(X)
        expected = double_loop(H, H, lambda a, b: C)
        np.testing.assert_allclose(D, expected, rtol=1e-9, atol=1e-12)
        assert (np.diag(D) > 0.05).all()
        assert symmetric or np.abs(D - D.T).max() > 0.05
        new = double_loop(G, H, lambda a, b: C)
        np.testing.assert_allclose(est.transform(Y), new, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(est.transform(X), D, rtol=1e-9, atol=1e-12)


def test_only_symmetric_spaces_solve_the_upper_triangle_only(solved):
    X, H, _ = digits(12)
    C = ot.dist(GRID, GRID)
    skewed = C.copy()
    skewed[3, 40] += 1.0
    D = PairwiseEMDTransformer(support=GRID).fit_transform(X)
    np.testing.assert_array_equal(
        PairwiseEMDTransformer(ground_cost=C).fit_transform(X), D
    )
    D_skewed = PairwiseEMDTransformer(ground_cost=skewed).fit_transform(X)
    assert solved == [12 * 11 // 2, 12 * 11 // 2, 12 * 12]
    np.testing.assert_allclose(
        D_skewed, double_loop(H, H, lambda a, b: skewed), rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize("metric", ["cityblock", "euclidean"])
def test_histograms_on_a_line_use_the_closed_form(rng, metric, monkeypatch):
    import skemd._driver

    monkeypatch.setattr(skemd._driver, "solve_chunk", None)  # no solver allowed
    X = rng.random((12, 9))
    X[:, [2, 5]] = 0
    positions = rng.random(9) * 4
    H = X / X.sum(axis=1, keepdims=True)
    C = np.abs(positions[:, None] - positions[None, :])
    D = PairwiseEMDTransformer(support=positions, metric=metric).fit_transform(X)
    np.testing.assert_allclose(
        D, double_loop(H, H, lambda a, b: C), rtol=1e-9, atol=1e-12
    )


def test_sinkhorn_method_matches_pot(rng):
    X = rng.random((6, 5, 2))
    w = np.full(5, 0.2)
    D = PairwiseEMDTransformer(method="sinkhorn", reg=0.1).fit_transform(X)
    expected = np.array(
        [[ot.sinkhorn2(w, w, ot.dist(x, y), 0.1) for y in X] for x in X]
    )
    np.testing.assert_allclose(D, expected, rtol=1e-6)
    assert (np.diag(D) > 0).all()  # the entropic plan of (a, a) is not diagonal


def test_kernel_output_and_auto_gamma(rng):
    X = rng.random((9, 5, 2))
    D = PairwiseEMDTransformer().fit_transform(X)
    est = PairwiseEMDTransformer(output="kernel")
    K = est.fit_transform(X)
    median = np.median(D[~np.eye(9, dtype=bool)])
    assert est.gamma_ == pytest.approx(1 / median)
    np.testing.assert_allclose(K, np.exp(-D / median))
    np.testing.assert_allclose(est.fit(X).transform(X), K, atol=1e-12)
    fixed = PairwiseEMDTransformer(output="kernel", gamma=2.0).fit(X)
    assert fixed.gamma_ == 2.0


@pytest.mark.slow
def test_precomputed_kernel_svc_in_grid_search():
    X, _, y = digits(60)
    pipe = make_pipeline(
        PairwiseEMDTransformer(support=GRID, output="kernel"), SVC(kernel="precomputed")
    )
    search = GridSearchCV(pipe, {"svc__C": [1.0, 10.0]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.8
    assert search.predict(X[:5]).shape == (5,)
    assert pipe.fit(X[:40], y[:40])[0].transform(X[40:]).shape == (20, 40)


@pytest.mark.slow
def test_two_routes_for_grid_searching_gamma(tmp_path):
    X, _, y = digits(60)
    gammas = {"distancekernel__gamma": [0.05, 0.2, 1.0]}
    # Route 1: distances inside the pipeline, cached by Pipeline(memory=...).
    pipe = Pipeline(
        [
            ("emd", PairwiseEMDTransformer(support=GRID)),
            ("distancekernel", DistanceKernel()),
            ("svc", SVC(kernel="precomputed")),
        ],
        memory=str(tmp_path),
    )
    route1 = GridSearchCV(pipe, gammas, cv=4).fit(X, y)
    # Route 2: distances once for all samples; the pairwise tag slices D.
    D = PairwiseEMDTransformer(support=GRID).fit_transform(X)
    route2 = GridSearchCV(
        make_pipeline(DistanceKernel(), SVC(kernel="precomputed")), gammas, cv=4
    ).fit(D, y)
    np.testing.assert_allclose(
        route1.cv_results_["mean_test_score"], route2.cv_results_["mean_test_score"]
    )
    assert route2.best_score_ > 0.8


@pytest.mark.slow
def test_cache_solves_each_distinct_pair_once(tmp_path, monkeypatch):
    X, _, y = digits(30)
    solved = []
    solve_pairs = skemd._pairwise.solve_pairs

    def counting(left, right, pairs, *args, **kwargs):
        for i, j in pairs:
            solved.append(frozenset([left.data[i].tobytes(), right.data[j].tobytes()]))
        return solve_pairs(left, right, pairs, *args, **kwargs)

    monkeypatch.setattr(skemd._pairwise, "solve_pairs", counting)
    pipe = make_pipeline(
        PairwiseEMDTransformer(support=GRID, output="kernel", memory=str(tmp_path)),
        SVC(kernel="precomputed"),
    )
    grid = {
        "pairwiseemdtransformer__gamma": [0.1, 0.3, 1.0, 3.0, 10.0, 30.0],
        "svc__C": [0.1, 1.0, 10.0],
    }
    search = GridSearchCV(pipe, grid, cv=KFold(5, shuffle=True, random_state=0))
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 18
    assert len(solved) == len(set(solved))  # no pair solved twice
    assert len(solved) <= 30 * 29 // 2
    # A fresh estimator on the same store solves nothing new.
    solved.clear()
    PairwiseEMDTransformer(support=GRID, memory=str(tmp_path)).fit_transform(X)
    assert solved == []


def test_cached_values_are_identical(tmp_path):
    X, _, _ = digits(15)
    plain = PairwiseEMDTransformer(support=GRID).fit_transform(X)
    first = PairwiseEMDTransformer(support=GRID, memory=str(tmp_path)).fit_transform(X)
    again = PairwiseEMDTransformer(support=GRID, memory=str(tmp_path)).fit_transform(X)
    np.testing.assert_array_equal(first, plain)
    np.testing.assert_array_equal(again, plain)
    other = PairwiseEMDTransformer(
        metric="cityblock", support=GRID, memory=str(tmp_path)
    ).fit_transform(X)
    assert not np.allclose(other, plain)  # another ground cost, another store


@pytest.mark.parametrize(
    ("X", "kwargs", "match"),
    [
        (
            np.array([[1.0, -0.5], [1.0, 1.0]]),
            {},
            r"X\[0\] has the bin -0.5 at position 1",
        ),
        (np.array([[1.0, 0.5], [0.0, 0.0]]), {}, r"X\[1\] is an empty histogram"),
        (np.ones((3, 4)), {"support": np.ones((5, 2))}, r"support must have shape \(4"),
        (np.ones((3, 4)), {"ground_cost": np.ones((4, 3))}, r"ground_cost must have"),
        (
            np.ones((3, 4)),
            {"ground_cost": np.ones((4, 4)), "support": np.ones(4)},
            "not both",
        ),
        (np.ones((3, 4)), {"method": "sinkhorn"}, "needs reg"),
    ],
)
def test_bad_input(X, kwargs, match):
    with pytest.raises(ValueError, match=match):
        PairwiseEMDTransformer(**kwargs).fit(X)


def test_transform_needs_the_same_bins(rng):
    est = PairwiseEMDTransformer().fit(rng.random((4, 5)))
    with pytest.raises(ValueError, match="5 features"):
        est.transform(rng.random((2, 6)))
    clouds = PairwiseEMDTransformer().fit(rng.random((4, 5, 2)))
    with pytest.raises(ValueError, match="fitted on samples of shape"):
        clouds.transform(rng.random((2, 5, 3)))


def test_cross_val_score_on_clouds(rng):
    y = np.arange(40) % 2
    X = rng.random((40, 8, 2)) + y[:, None, None] * 0.5
    pipe = make_pipeline(
        PairwiseEMDTransformer(output="kernel"), SVC(kernel="precomputed")
    )
    assert cross_val_score(pipe, X, y, cv=4).mean() > 0.9
