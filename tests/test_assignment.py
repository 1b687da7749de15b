"""The assignment route is exact, with or without lapjv, and checks lapjv."""

from itertools import permutations

import numpy as np
import ot
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skemd import emd_batch
from skemd._solvers import _assignment


def optimal_cost(C):
    """The oracle, independent of both solvers: every permutation up to n=7,
    else POT's network simplex (on costs shifted to be non-negative).
    """
    n = len(C)
    if n <= 7:
        return min(C[np.arange(n), list(p)].sum() for p in permutations(range(n)))
    low = C.min()
    shifted = C - low
    # A power of two brings tiny or huge costs to POT's working range exactly.
    scale = 2.0 ** np.floor(np.log2(shifted.max())) if shifted.max() > 0 else 1.0
    w = np.ones(n)
    return ot.emd2(w, w, shifted / scale, numItermax=10**7) * scale + n * low


def assignment_cost(C, cols):
    return C[np.arange(len(C)), cols].sum()


@pytest.fixture(params=["scipy", "lapjv"])
def solver(request, monkeypatch):
    """Route every assignment through one solver."""
    if request.param == "lapjv":
        pytest.importorskip("lapjv")
        monkeypatch.setattr(_assignment, "LAPJV_MIN_N", 1)
    else:
        monkeypatch.setattr(_assignment, "_lapjv", None)
    return request.param


def _costs(family, rng, n):
    if family == "integer":
        return rng.integers(0, 4, (n, n)).astype(float)
    if family == "near_tied":  # where lapjv's float32 path goes wrong
        return rng.integers(0, 3, (n, n)) + 1e-9 * rng.random((n, n))
    C = rng.random((n, n))
    return {"random": C, "negative": -100 * C, "huge": 1e300 * C, "tiny": 1e-300 * C}[
        family
    ]


@pytest.mark.parametrize(
    "family", ["random", "integer", "near_tied", "negative", "huge", "tiny"]
)
def test_assignment_is_optimal(rng, solver, family):
    for n in (1, 2, 7, 45, 120):
        C = _costs(family, rng, n)
        cols = _assignment.assign(C)
        assert sorted(cols.tolist()) == list(range(n))
        np.testing.assert_allclose(
            assignment_cost(C, cols), optimal_cost(C), rtol=1e-12, atol=0
        )


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda n: arrays(np.float64, (n, n), elements=st.floats(-1e3, 1e3))
    )
)
def test_property_lapjv_route_is_optimal(C):
    pytest.importorskip("lapjv")
    cols = _assignment_with_lapjv(C)
    expected = optimal_cost(C)
    scale = np.abs(C).max() * len(C) + 1e-300
    assert abs(assignment_cost(C, cols) - expected) <= 1e-12 * scale


def _assignment_with_lapjv(C):
    min_n = _assignment.LAPJV_MIN_N
    _assignment.LAPJV_MIN_N = 1
    try:
        return _assignment.assign(C)
    finally:
        _assignment.LAPJV_MIN_N = min_n


def test_a_failed_certificate_falls_back_to_scipy(rng, monkeypatch):
    pytest.importorskip("lapjv")
    monkeypatch.setattr(_assignment, "LAPJV_MIN_N", 1)
    real = _assignment._lapjv

    def wrong(C, **kwargs):
        cols, rows, (cost, u, v) = real(C, **kwargs)
        return np.roll(cols, 1), rows, (cost, u, v)  # a suboptimal assignment

    monkeypatch.setattr(_assignment, "_lapjv", wrong)
    C = rng.random((30, 30))
    assert assignment_cost(C, wrong(C, force_doubles=True)[0]) > optimal_cost(C)
    np.testing.assert_allclose(
        assignment_cost(C, _assignment.assign(C)), optimal_cost(C), rtol=1e-12
    )


def test_certificate_rejects_what_it_cannot_prove():
    C = np.array([[4.0, 1.0], [2.0, 8.0]])
    good_u, good_v = np.array([1.0, 2.0]), np.zeros(2)
    assert _assignment.certified(C, np.array([1, 0]), good_u, good_v)
    assert not _assignment.certified(C, np.array([0, 1]), good_u, good_v)  # gap
    assert not _assignment.certified(C, np.array([1, 1]), good_u, good_v)  # no perm
    assert not _assignment.certified(  # infeasible duals
        C, np.array([1, 0]), np.array([3.0, 2.0]), np.array([-2.0, 0.0])
    )
    huge = np.array([1e308, -1e308])
    assert not _assignment.certified(C, np.array([1, 0]), huge, -huge)


def test_batches_are_optimal_with_either_solver(rng, solver):
    M = rng.random((10, 90, 90))  # past LAPJV_MIN_N
    expected = [optimal_cost(C) / 90 for C in M]
    res = emd_batch(M, return_plan=True)
    np.testing.assert_allclose(res.distance, expected, rtol=1e-12)
    np.testing.assert_allclose((res.plan * M).sum(axis=(1, 2)), expected, rtol=1e-12)
