"""Lower bounds of the EMD: never above ``ot.emd2``, exact where they should be."""

import numpy as np
import ot
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from skemd._bounds import RTOL, EMDLowerBounds
from skemd._ground import HistogramSpace, Samples, ground_distance
from skemd._measures import wasserstein_1d

METRICS = ["euclidean", "cityblock", "sqeuclidean"]
QUICK = settings(max_examples=25, deadline=None)


def histograms(rng, n, n_bins, zeros):
    H = rng.random((n, n_bins)) * (rng.random((n, n_bins)) >= zeros)
    H[np.arange(n), rng.integers(0, n_bins, n)] += 0.5  # never empty
    return H / H.sum(axis=1, keepdims=True)


def cloud_weights(rng, size, zeros):
    w = rng.random(size) * (rng.random(size) >= zeros)
    w[rng.integers(size)] += 0.5
    return w / w.sum()


def exact(A, B, costs):
    """The oracle: ``ot.emd2`` of every (query, fit) pair."""
    return np.array(
        [[ot.emd2(a, b, costs(i, j)) for j, b in enumerate(B)] for i, a in enumerate(A)]
    )


def assert_all_below(bounds, D):
    """Each bound alone, the first level and the cascade are at most D."""
    q, f = np.indices(D.shape).reshape(2, -1)
    slack = D[q, f] + 1e-9 * np.abs(D[q, f]) + 1e-12
    for name in bounds.names:
        assert (bounds.bound(name, q, f) <= slack).all(), name
    first = bounds.first(np.arange(D.shape[0]))
    assert (first <= D + 1e-9 * np.abs(D) + 1e-12).all()
    cascade = bounds.refine(q, f, first.ravel(), np.full(q.size, np.inf))
    assert (cascade <= slack).all()
    assert (cascade >= first.ravel()).all()


@QUICK
@given(
    seed=st.integers(0, 2**32 - 1),
    n_bins=st.integers(2, 7),
    d=st.integers(1, 3),
    metric=st.sampled_from(METRICS),
    zeros=st.sampled_from([0.0, 0.5]),
)
def test_histogram_bounds_below_emd(seed, n_bins, d, metric, zeros):
    rng = np.random.default_rng(seed)
    support = rng.integers(0, 4, (n_bins, d)).astype(float)  # repeated positions
    space = HistogramSpace.from_support(support, metric)
    fit, X = histograms(rng, 3, n_bins, zeros), histograms(rng, 3, n_bins, zeros)
    lower = EMDLowerBounds(fit, space, support=support, metric=metric)
    assert_all_below(lower.queries(X), exact(X, fit, lambda i, j: space.cost))
    assert_all_below(lower.queries(), exact(fit, fit, lambda i, j: space.cost))


@QUICK
@given(seed=st.integers(0, 2**32 - 1), n_bins=st.integers(2, 7))
def test_relaxed_bound_any_cost(seed, n_bins):
    rng = np.random.default_rng(seed)
    space = HistogramSpace(rng.random((n_bins, n_bins)) * 3)  # not a metric
    fit, X = histograms(rng, 3, n_bins, 0.5), histograms(rng, 4, n_bins, 0.5)
    bounds = EMDLowerBounds(fit, space).queries(X)
    assert bounds.names == ("relaxed",)
    assert_all_below(bounds, exact(X, fit, lambda i, j: space.cost))


@QUICK
@given(
    seed=st.integers(0, 2**32 - 1),
    n_points=st.integers(1, 6),
    d=st.integers(1, 3),
    metric=st.sampled_from(METRICS),
)
def test_uniform_cloud_bounds_below_emd(seed, n_points, d, metric):
    rng = np.random.default_rng(seed)
    fit = rng.integers(0, 3, (3, n_points, d)).astype(float)  # duplicated points
    X = rng.normal(size=(2, n_points, d))
    X[:, -1] = X[:, 0]

    def cost(A, B):
        return lambda i, j: ground_distance(A[i], B[j], metric)

    lower = EMDLowerBounds(fit, metric)
    uniform = np.full(n_points, 1 / n_points)
    D = exact([uniform] * len(X), [uniform] * len(fit), cost(X, fit))
    assert_all_below(lower.queries(X), D)
    D = exact([uniform] * len(fit), [uniform] * len(fit), cost(fit, fit))
    assert_all_below(lower.queries(), D)


@QUICK
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(1, 3),
    metric=st.sampled_from(METRICS),
)
def test_ragged_weighted_bounds_below_emd(seed, d, metric):
    rng = np.random.default_rng(seed)
    fit = [rng.integers(0, 3, (rng.integers(1, 6), d)).astype(float) for _ in range(3)]
    X = [rng.normal(size=(rng.integers(1, 6), d)) for _ in range(2)]
    w_fit = [cloud_weights(rng, len(x), 0.4) for x in fit]
    w_X = [cloud_weights(rng, len(x), 0.4) for x in X]
    lower = EMDLowerBounds(Samples(fit, w_fit), metric)
    D = exact(w_X, w_fit, lambda i, j: ground_distance(X[i], fit[j], metric))
    assert_all_below(lower.queries(X, w_X), D)


@QUICK
@given(seed=st.integers(0, 2**32 - 1), metric=st.sampled_from(METRICS))
def test_projections_exact_in_one_dimension(seed, metric):
    """On a line the projection is the identity: the 1-D bounds are the EMD."""
    rng = np.random.default_rng(seed)
    fit = [rng.normal(size=(rng.integers(1, 6), 1)) for _ in range(3)]
    weights = [cloud_weights(rng, len(x), 0.3) for x in fit]
    bounds = EMDLowerBounds(fit, metric, weights=weights).queries()
    q, f = np.indices((3, 3)).reshape(2, -1)
    D = exact(weights, weights, lambda i, j: ground_distance(fit[i], fit[j], metric))
    np.testing.assert_allclose(
        bounds.bound("projected-exact", q, f), D.ravel(), rtol=1e-9, atol=1e-12
    )
    clouds = rng.normal(size=(3, 4, 1))  # uniform clouds: the embedding is exact
    bounds = EMDLowerBounds(clouds, metric).queries()
    assert "projected-exact" not in bounds.names
    u = np.full(4, 0.25)
    D = exact(
        [u] * 3, [u] * 3, lambda i, j: ground_distance(clouds[i], clouds[j], metric)
    )
    np.testing.assert_allclose(bounds.bound("projected", q, f), D.ravel(), atol=1e-12)


@pytest.mark.parametrize("metric", ["euclidean", "cityblock"])
def test_histograms_on_a_line_exact(rng, metric):
    support = np.sort(rng.random((6, 1)), axis=0)
    space = HistogramSpace.from_support(support, metric)
    H = histograms(rng, 4, 6, 0.3)
    bounds = EMDLowerBounds(H, space, support=support, metric=metric).queries()
    q, f = np.indices((4, 4)).reshape(2, -1)
    D = exact(H, H, lambda i, j: space.cost)
    np.testing.assert_allclose(bounds.bound("projected", q, f), D.ravel(), atol=1e-12)


@QUICK
@given(seed=st.integers(0, 2**32 - 1), p=st.sampled_from([1, 2]))
def test_wasserstein_1d_equals_emd(seed, p):
    rng = np.random.default_rng(seed)
    m_a, m_b = rng.integers(1, 7, 2)
    xa = np.sort(rng.integers(0, 4, m_a)).astype(float)  # ties
    xb = np.sort(rng.normal(size=m_b))
    a, b = cloud_weights(rng, m_a, 0.3), cloud_weights(rng, m_b, 0.3)
    value = wasserstein_1d(
        xa[None], np.cumsum(a)[None], xb[None], np.cumsum(b)[None], p
    )
    expected = ot.emd2(a, b, np.abs(xa[:, None] - xb[None]) ** p)
    np.testing.assert_allclose(value, [expected], rtol=1e-9, atol=1e-12)
    if p == 1:
        scipy_value = scipy.stats.wasserstein_distance(xa, xb, a, b)
        np.testing.assert_allclose(value, [scipy_value], rtol=1e-9, atol=1e-12)


def test_cityblock_directions_have_unit_max_norm():
    """A diagonal shift costs 2 under cityblock, and the (1, 1) direction sees it."""
    clouds = np.array([[[0.0, 0.0]], [[1.0, 1.0]]])
    bounds = EMDLowerBounds(clouds, "cityblock").queries()
    assert bounds.bound("projected", [0], [1])[0] == pytest.approx(2.0)
    bounds = EMDLowerBounds(clouds, "euclidean").queries()
    assert bounds.bound("projected", [0], [1])[0] == pytest.approx(np.sqrt(2))


def test_first_level_equals_its_pair_bounds(rng):
    support = rng.random((9, 2))
    space = HistogramSpace.from_support(support, "euclidean")
    H = histograms(rng, 5, 9, 0.5)
    bounds = EMDLowerBounds(H, space, support=support, metric="euclidean").queries()
    q, f = np.indices((5, 5)).reshape(2, -1)
    pairwise = np.maximum(bounds.bound("centroid", q, f), bounds.bound("relaxed", q, f))
    np.testing.assert_allclose(bounds.first(np.arange(5)).ravel(), pairwise, rtol=1e-12)


def test_refine_stops_above_the_threshold(rng):
    clouds = rng.normal(size=(4, 5, 2))
    bounds = EMDLowerBounds(clouds, "sqeuclidean").queries()
    q, f = np.array([0, 1]), np.array([2, 3])
    lower = bounds.first([0, 1])[[0, 1], [2, 3]]
    refined = bounds.refine(q, f, lower, np.array([np.inf, -1.0]))
    assert refined[1] == lower[1]  # already above its threshold: left alone
    assert bounds.evaluated["projected"] == 1 * len(bounds._o.groups)


def test_threshold_margin():
    bounds = EMDLowerBounds(np.array([[[0.0, 3.0]], [[1.0, -4.0]]]), "euclidean")
    pairs = bounds.queries()
    assert pairs.atol == pytest.approx(RTOL * 8 * np.sqrt(2))
    assert pairs.threshold(np.array([-2.0]))[0] > -2.0  # negative costs too
    # Identical samples: the bound of a tie at distance 0 never prunes it.
    assert pairs.bound("relaxed", [0], [0])[0] <= pairs.threshold(0.0)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda H, s, g: EMDLowerBounds(H * 2, s), "mass 2, not 1"),
        (lambda H, s, g: EMDLowerBounds(-H, s), r"fit\[0\] has a negative"),
        (lambda H, s, g: EMDLowerBounds(H, s, support=g), "support and metric"),
        (
            lambda H, s, g: EMDLowerBounds(
                H, s, support=g + 1e-3 * g**2, metric="euclidean"
            ),
            "not the euclidean cost",
        ),
        (lambda H, s, g: EMDLowerBounds(H[:, :3], s), r"shape \(n, 4\)"),
        (
            lambda H, s, g: EMDLowerBounds(H, s).queries(H[:, ::-1] * 3),
            r"X\[0\] has mass",
        ),
        (
            lambda H, s, g: EMDLowerBounds(np.zeros((2, 3, 2)), "cityblock", support=g),
            "no support",
        ),
        (lambda H, s, g: EMDLowerBounds(np.zeros((2, 3, 2)), "l2"), "metric must be"),
        (
            lambda H, s, g: EMDLowerBounds(
                [np.zeros((2, 2))], "euclidean", weights=[[1.0]]
            ),
            r"fit\[0\] has 2 points",
        ),
        (
            lambda H, s, g: EMDLowerBounds(np.zeros((2, 3, 2)), "euclidean").queries(
                np.zeros((1, 3, 3))
            ),
            "differ in dimension",
        ),
        (
            lambda H, s, g: EMDLowerBounds([np.zeros((0, 2))], "euclidean"),
            "empty cloud",
        ),
    ],
)
def test_errors_name_the_problem(make, match):
    grid = np.indices((2, 2)).reshape(2, -1).T.astype(float)
    space = HistogramSpace.from_support(grid, "euclidean")
    H = np.full((2, 4), 0.25)
    with pytest.raises(ValueError, match=match):
        make(H, space, grid)
