"""Warm starts: ``potentials_init`` changes how long a solve takes, never its result.

Warm distances equal a loop of ``ot.emd2`` (1e-9) from any finite starting
potentials, on both simplex routes, for shared and per-problem weights,
zeros, negative costs, ragged batches and threads; their plans and dual
potentials stay optimal. That the potentials are used at all is shown by
the iteration count: from a problem's own optimal potentials the simplex
is optimal after one iteration, where a cold start needs a hundred.
"""

import numpy as np
import ot
import pytest
from conftest import force_public_emd, oracle, random_weights
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.exceptions import ConvergenceWarning
from test_duals import assert_certified

from skemd import emd_batch, iter_emd_batch
from skemd._solvers import _simplex

needs_warm_starts = pytest.mark.skipif(
    not _simplex.WARM_STARTS, reason="POT < 0.9.7 cannot start from potentials"
)


def clouds(rng, k, n, m):
    """Squared Euclidean costs between random 2-D clouds: unique optima."""
    x, y = rng.random((k, n, 2)), rng.random((k, m, 2))
    return ((x[:, :, None] - y[:, None]) ** 2).sum(-1)


@pytest.fixture(params=["lean", "public"])
def route(request, monkeypatch):
    if request.param == "public":
        force_public_emd(monkeypatch)
    return request.param


@pytest.mark.parametrize("per_problem", [False, True])
@pytest.mark.parametrize("zeros", [0, 3])
def test_warm_distances_equal_pot_and_stay_certified(rng, route, per_problem, zeros):
    k, n, m = 12, 9, 7
    shape_a, shape_b = ((k, n), (k, m)) if per_problem else ((n,), (m,))
    a, b = random_weights(rng, shape_a, zeros), random_weights(rng, shape_b, zeros)
    M0 = clouds(rng, k, n, m)
    first = emd_batch(M0, a, b, return_duals=True)
    M1 = M0 * (1 + 1e-2 * rng.random(M0.shape))
    res = emd_batch(
        M1,
        a,
        b,
        potentials_init=(first.dual_a, first.dual_b),
        return_plan=True,
        return_duals=True,
    )
    values, _ = oracle(M1, a, b)
    np.testing.assert_allclose(res.distance, values, rtol=1e-9, atol=1e-15)
    A = np.broadcast_to(a, (k, n))
    np.testing.assert_allclose(res.plan.sum(axis=2), A, atol=1e-15)
    np.testing.assert_allclose((res.plan * M1).sum(axis=(1, 2)), values, rtol=1e-9)
    assert_certified(M1, a, b, res)


@needs_warm_starts
@pytest.mark.filterwarnings("ignore:numItermax reached")
def test_own_potentials_make_the_simplex_optimal_at_once(rng, route):
    k, n = 6, 30
    a, b = random_weights(rng, n), random_weights(rng, n)
    M = clouds(rng, k, n, n)
    solved = emd_batch(M, a, b, return_duals=True)
    with pytest.warns(ConvergenceWarning):
        assert not emd_batch(M, a, b, max_iter=1).converged.any()
    warm = emd_batch(
        M, a, b, max_iter=1, potentials_init=(solved.dual_a, solved.dual_b)
    )
    assert warm.converged.all()
    np.testing.assert_allclose(warm.distance, solved.distance, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    alpha=arrays(np.float64, 6, elements=st.floats(-1e3, 1e3)),
    beta=arrays(np.float64, 5, elements=st.floats(-1e3, 1e3)),
)
def test_any_finite_potentials_give_the_exact_distance(seed, alpha, beta):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(3, 6, 5))  # negative costs too
    a, b = random_weights(rng, (3, 6), zeros=1), random_weights(rng, 5)
    res = emd_batch(M, a, b, potentials_init=(alpha, beta))
    values, _ = oracle(M, a, b)
    assert res.converged.all()
    np.testing.assert_allclose(res.distance, values, rtol=1e-9, atol=1e-12)


def own_start(M, a, b):
    """Each problem's own optimal potentials: from them it is optimal at once."""
    solved = emd_batch(M, a, b, return_duals=True)
    return solved, (solved.dual_a, solved.dual_b)


quiet_max_iter = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning", "ignore:numItermax reached"
)


@needs_warm_starts
@quiet_max_iter
def test_each_problem_gets_its_own_potentials_in_chunks_threads_and_streams(rng):
    k, n = 40, 30
    M = clouds(rng, k, n, n)
    a, b = random_weights(rng, n), random_weights(rng, n)
    solved, init = own_start(M, a, b)
    # The control: other problems' potentials do not make them optimal at once.
    swapped = tuple(p[::-1] for p in init)
    assert not emd_batch(M, a, b, max_iter=1, potentials_init=swapped).converged.all()
    for n_jobs, batch_size in [(1, 7), (2, 7), (2, "auto")]:
        warm = emd_batch(
            M, a, b, max_iter=1, potentials_init=init, n_jobs=n_jobs,
            batch_size=batch_size,
        )  # fmt: skip
        assert warm.converged.all()
        np.testing.assert_allclose(warm.distance, solved.distance, rtol=1e-12)
    streamed = iter_emd_batch(
        M, a, b, max_iter=1, potentials_init=init, n_jobs=2, ordered=False,
        chunks=[(0, 3), (3, 20), (20, 40)],
    )  # fmt: skip
    for rows, part in streamed:
        assert part.converged.all()
        np.testing.assert_allclose(part.distance, solved.distance[rows], rtol=1e-12)


@needs_warm_starts
@quiet_max_iter
def test_ragged_batches_take_lists(rng):
    shapes = [(20, 25), (30, 18), (25, 25), (12, 30)]
    M = [clouds(rng, 1, n, m)[0] for n, m in shapes]
    a = [random_weights(rng, n, zeros=2) for n, _ in shapes]
    b = [random_weights(rng, m, zeros=1) for _, m in shapes]
    _, init = own_start(M, a, b)
    assert not emd_batch(M, a, b, max_iter=1).converged.all()
    warm = emd_batch(M, a, b, max_iter=1, potentials_init=init, n_jobs=2, batch_size=1)
    assert warm.converged.all()
    expected = [ot.emd2(ai, bi, Mi) for ai, bi, Mi in zip(a, b, M, strict=True)]
    np.testing.assert_allclose(warm.distance, expected, rtol=1e-9)


def test_assignments_need_no_potentials(rng):
    M = clouds(rng, 10, 8, 8)
    uniform = emd_batch(M, potentials_init=(np.zeros(8), np.zeros(8)))
    np.testing.assert_allclose(uniform.distance, oracle(M)[0], rtol=1e-9)


@pytest.mark.parametrize(
    ("potentials", "message"),
    [
        ([np.zeros(4)] * 3, r"a pair \(alpha, beta\)"),
        (np.zeros(4), "must be an instance of 'tuple'"),
        ((np.zeros(3), np.zeros(5)), r"potentials_init\[0\] must have shape \(4,\)"),
        (
            (np.zeros((2, 4)), np.zeros(5)),
            r"potentials_init\[0\] must have shape \(4,\) .* or \(3, 4\)",
        ),
        (
            (np.zeros(4), np.array([[0.0] * 5, [0.0] * 5, [0, 0, np.nan, 0, 0]])),
            r"potentials_init\[1\]\[2\] \(problem 2\) has a non-finite potential nan",
        ),
        ((np.zeros(4), ["x"] * 5), "must hold real numbers"),
        ((None, np.zeros(5)), r"potentials_init\[0\] is None: pass \(result.dual_a"),
        (
            (np.zeros(4), 0.0),
            r"potentials_init\[1\] must have shape \(5,\) .* shape \(\)",
        ),
        ((np.zeros(4), [[0.0] * 5, [0.0]]), r"potentials_init\[1\] must be an array"),
    ],
)
def test_bad_potentials_are_named(potentials, message):
    with pytest.raises(ValueError, match=message):
        emd_batch(np.ones((3, 4, 5)), potentials_init=potentials)


def test_ragged_potentials_name_the_problem():
    M = [np.ones((2, 3)), np.ones((4, 1))]
    with pytest.raises(ValueError, match=r"potentials_init\[1\]\[1\] must have shape"):
        emd_batch(M, potentials_init=([np.zeros(2), np.zeros(4)], [np.zeros(3)] * 2))
    with pytest.raises(
        ValueError, match=r"\[0\] must be a sequence of 2 1-D potential"
    ):
        emd_batch(M, potentials_init=(np.zeros(2), [np.zeros(3), np.zeros(1)]))


@pytest.mark.parametrize(
    ("method", "params"), [("sinkhorn", {"reg": 0.1}), ("partial", {})]
)
def test_methods_without_warm_starts_refuse_potentials(method, params):
    # Refused for the method before the potentials' shapes are checked.
    for solve in (emd_batch, iter_emd_batch):
        with pytest.raises(ValueError, match="the methods that start from dual"):
            solve(
                np.ones((2, 3, 3)),
                method=method,
                potentials_init=(np.zeros(5), np.zeros(3)),
                **params,
            )
