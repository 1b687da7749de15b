"""Pruned exact k-NN search: identical to brute force, with fewer solves."""

import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skemd._bounds import EMDLowerBounds
from skemd._ground import HistogramSpace, Samples, ground_distance
from skemd._knn import knn_search

GRID = np.indices((3, 3)).reshape(2, -1).T.astype(float)


def brute_force(D, k):
    """Each row of the full matrix sorted by distance, ties by smaller index."""
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, 1), order


class Oracle:
    """``ot.emd2`` of pairs, counted: the solve callable and the full matrix."""

    def __init__(self, costs, a, b, memo=None):
        self.costs, self.a, self.b, self.calls = costs, a, b, []
        self.memo = {} if memo is None else memo  # the same value every time

    def emd(self, i, j):
        if (i, j) not in self.memo:
            self.memo[i, j] = ot.emd2(self.a[i], self.b[j], self.costs(i, j))
        return self.memo[i, j]

    def __call__(self, pairs):
        assert pairs.ndim == 2 and pairs.shape[1] == 2
        self.calls.append(len(pairs))
        return np.array([self.emd(i, j) for i, j in pairs])

    def matrix(self, symmetric=False):
        n_q, n_fit = len(self.a), len(self.b)
        D = np.array([[self.emd(i, j) for j in range(n_fit)] for i in range(n_q)])
        if symmetric:  # what the search sees: each pair solved as (min, max)
            D = np.triu(D, 1) + np.triu(D, 1).T
        return D


def histogram_data(rng, n, duplicates=0, n_bins=9):
    H = rng.random((n, n_bins)) * (rng.random((n, n_bins)) > 0.3) + 1e-3
    H[rng.integers(0, n, duplicates)] = H[rng.integers(0, n, duplicates)]
    return H / H.sum(axis=1, keepdims=True)


def check_self_search(H, metric, k, include_self, symmetric, memo=None):
    space = HistogramSpace.from_support(GRID, metric)
    oracle = Oracle(lambda i, j: space.cost, H, H, memo)
    bounds = EMDLowerBounds(H, space, support=GRID, metric=metric).queries()
    distances, indices, n_solved = knn_search(
        bounds,
        oracle,
        k,
        include_self=include_self,
        symmetric=symmetric,
        block_size=4,
    )
    D = oracle.matrix(symmetric)
    if not include_self:
        np.fill_diagonal(D, np.inf)
    expected_d, expected_i = brute_force(D, k)
    np.testing.assert_array_equal(indices, expected_i)
    np.testing.assert_array_equal(distances, expected_d)
    assert n_solved == sum(oracle.calls)
    return n_solved


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 12),
    duplicates=st.integers(0, 4),
    metric=st.sampled_from(["euclidean", "cityblock", "sqeuclidean"]),
    include_self=st.booleans(),
    symmetric=st.booleans(),
    data=st.data(),
)
def test_self_search_equals_brute_force(
    seed, n, duplicates, metric, include_self, symmetric, data
):
    H = histogram_data(np.random.default_rng(seed), n, duplicates)
    k = data.draw(st.integers(1, n - (not include_self)), label="k")
    n_solved = check_self_search(H, metric, k, include_self, symmetric)
    if symmetric:
        assert n_solved <= n * (n - 1) // 2


def test_exact_ties_broken_by_index(rng):
    """Copies of a few samples: many neighbours at equal distances."""
    base = histogram_data(rng, 4)
    H = base[rng.integers(0, 4, 14)]
    memo = {}
    for include_self in (True, False):
        for symmetric in (True, False):
            check_self_search(H, "euclidean", 6, include_self, symmetric, memo)


def test_queries_against_fit_samples(rng):
    fit, X = histogram_data(rng, 15, duplicates=3), histogram_data(rng, 6)
    X[0] = fit[4]  # a query equal to a fit sample
    space = HistogramSpace.from_support(GRID, "sqeuclidean")
    oracle = Oracle(lambda i, j: space.cost, X, fit)
    bounds = EMDLowerBounds(fit, space, support=GRID, metric="sqeuclidean").queries(X)
    # include_self and symmetric only apply to a self search.
    distances, indices, _ = knn_search(
        bounds, oracle, 4, include_self=False, symmetric=True
    )
    expected_d, expected_i = brute_force(oracle.matrix(), 4)
    np.testing.assert_array_equal(indices, expected_i)
    np.testing.assert_array_equal(distances, expected_d)
    assert indices[0, 0] == 4 and distances[0, 0] == 0.0


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
def test_clouds_uniform_and_ragged(rng, metric):
    centres = rng.normal(scale=5, size=(3, 2))
    clouds = centres[rng.integers(0, 3, 16), None] + rng.normal(size=(16, 4, 2))
    uniform = [np.full(4, 0.25)] * 16
    oracle = Oracle(
        lambda i, j: ground_distance(clouds[i], clouds[j], metric), uniform, uniform
    )
    bounds = EMDLowerBounds(clouds, metric).queries()
    distances, indices, _ = knn_search(bounds, oracle, 3, symmetric=True)
    expected_d, expected_i = brute_force(oracle.matrix(symmetric=True), 3)
    np.testing.assert_array_equal(indices, expected_i)
    np.testing.assert_array_equal(distances, expected_d)

    ragged = [c[: rng.integers(1, 5)] for c in clouds]
    weights = [rng.dirichlet(np.ones(len(c))) for c in ragged]
    weights[0][0], weights[0][-1] = 0.0, weights[0][-1] + weights[0][0]
    oracle = Oracle(
        lambda i, j: ground_distance(ragged[i], ragged[j], metric), weights, weights
    )
    bounds = EMDLowerBounds(Samples(ragged, weights), metric).queries()
    distances, indices, _ = knn_search(bounds, oracle, 3, include_self=False)
    D = oracle.matrix()
    np.fill_diagonal(D, np.inf)
    expected_d, expected_i = brute_force(D, 3)
    np.testing.assert_array_equal(indices, expected_i)
    np.testing.assert_array_equal(distances, expected_d)


def test_any_ground_cost_not_symmetric(rng):
    """Only the relaxed bound applies; every ordered pair is its own problem."""
    space = HistogramSpace(rng.random((9, 9)))
    H = histogram_data(rng, 12, duplicates=2)
    oracle = Oracle(lambda i, j: space.cost, H, H)
    bounds = EMDLowerBounds(H, space).queries()
    distances, indices, _ = knn_search(bounds, oracle, 3)
    expected_d, expected_i = brute_force(oracle.matrix(), 3)
    np.testing.assert_array_equal(indices, expected_i)
    np.testing.assert_array_equal(distances, expected_d)


def test_clustered_data_solves_few_pairs(rng):
    centres = rng.random((4, 2)) * 40
    clouds = centres[np.arange(40) % 4, None] + rng.normal(size=(40, 3, 2))
    uniform = [np.full(3, 1 / 3)] * 40
    oracle = Oracle(
        lambda i, j: ground_distance(clouds[i], clouds[j], "euclidean"),
        uniform,
        uniform,
    )
    bounds = EMDLowerBounds(clouds, "euclidean").queries()
    _, indices, n_solved = knn_search(bounds, oracle, 3, symmetric=True)
    assert n_solved < 40 * 39 // 2 / 4  # under a quarter of the upper triangle
    assert (indices % 4 == np.arange(40)[:, None] % 4).all()  # same cluster
    assert len(oracle.calls) < n_solved  # several pairs per call


def test_store_answers_later_blocks(rng):
    """Pairs solved for early queries answer later ones: fewer solves."""
    H = histogram_data(rng, 24)
    solved, memo = [], {}
    space = HistogramSpace.from_support(GRID, "euclidean")
    for memory in (1, 20):
        oracle = Oracle(lambda i, j: space.cost, H, H, memo)
        bounds = EMDLowerBounds(H, space, support=GRID, metric="euclidean").queries()
        result = knn_search(
            bounds, oracle, 5, symmetric=True, block_size=3, memory_per_sample=memory
        )
        np.testing.assert_array_equal(result[1], brute_force(oracle.matrix(True), 5)[1])
        solved.append(result[2])
    assert solved[1] < solved[0]


@pytest.mark.parametrize(
    ("k", "solve", "match"),
    [
        (0, None, "n_neighbors must be an integer from 1 to 4"),
        (5, None, "n_neighbors must be an integer from 1 to 4"),
        (2, lambda pairs: np.zeros(len(pairs) + 1), "one distance per pair"),
        (2, lambda pairs: np.full(len(pairs), np.nan), r"for the pair \(query"),
    ],
)
def test_errors(k, solve, match):
    bounds = EMDLowerBounds(np.arange(5.0)[:, None, None], "euclidean").queries()
    with pytest.raises(ValueError, match=match):
        knn_search(bounds, solve, k, include_self=False)
    with pytest.raises(ValueError, match="round_size must be a positive integer"):
        knn_search(bounds, solve, 2, round_size=-1)


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean"])
def test_digits_with_the_driver(metric):
    """150 digits through skemd's driver, against its full matrix."""
    from sklearn.datasets import load_digits

    from skemd._driver import solve_pairs
    from skemd._options import SolverOptions

    X = load_digits().data[:150]
    samples = Samples(X / X.sum(axis=1, keepdims=True))
    grid = np.indices((8, 8)).reshape(2, -1).T.astype(float)
    space = HistogramSpace.from_support(grid, metric)
    options = SolverOptions.build(n_jobs=2)

    def solve(pairs):
        return solve_pairs(samples, samples, pairs, space, options).distance

    bounds = EMDLowerBounds(samples, space, support=grid, metric=metric).queries()
    distances, indices, n_solved = knn_search(bounds, solve, 10, symmetric=True)
    upper = np.column_stack(np.triu_indices(150, 1))
    D = np.zeros((150, 150))
    D[upper[:, 0], upper[:, 1]] = solve(upper)
    expected_d, expected_i = brute_force(D + D.T, 10)
    np.testing.assert_array_equal(indices, expected_i)
    np.testing.assert_array_equal(distances, expected_d)
    assert n_solved < len(upper) / 3  # 24% and 17% solved here
    H = samples.data
    for i, j in [(0, 1), (7, 2), (149, 9)]:  # the driver equals POT
        q, f = i, indices[i, j]
        assert distances[i, j] == pytest.approx(
            ot.emd2(H[q], H[f], space.cost), rel=1e-9, abs=1e-12
        )
