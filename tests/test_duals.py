"""Dual potentials certify every distance, on every route of the exact method.

A certificate is checked as a user would check it: strong duality
(``a @ u + b @ v`` equals the distance to 1e-9 relative) and feasibility
(``u_i + v_j <= M_ij`` up to rounding), against the user's own ``a``, ``b``
and ``M``. Where the optimal potentials are unique up to the centring
constant (positive weights, random costs), they also equal ``ot.emd``'s.
"""

import numpy as np
import ot
import pytest
from conftest import force_public_emd, random_weights
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skemd import emd_batch, iter_emd_batch
from skemd._solvers import _assignment, _simplex


def assert_certified(M, a, b, res):
    """Each problem's potentials prove its distance optimal."""
    assert res.converged.all()
    for i, Mi in enumerate(M):
        n, m = np.shape(Mi)
        ai = np.full(n, 1 / n) if a is None else np.asarray(a[i] if a.ndim > 1 else a)
        bi = np.full(m, 1 / m) if b is None else np.asarray(b[i] if b.ndim > 1 else b)
        u, v = res.dual_a[i], res.dual_b[i]
        assert u.shape == (n,) and v.shape == (m,)
        scale = np.abs(Mi).max() + np.abs(res.distance[i])
        np.testing.assert_allclose(
            ai @ u + bi @ v, res.distance[i], rtol=1e-9, atol=1e-12 * scale
        )
        assert (u[:, None] + v[None, :] - Mi).max() <= 1e-12 * max(scale, 1.0)
        # Centred as ot.emd centres them.
        np.testing.assert_allclose(ai @ u, bi @ v, rtol=1e-9, atol=1e-12 * scale)


@pytest.fixture
def calls(monkeypatch):
    """How many problems went to the simplex and to lapjv."""
    counts = {"simplex": 0, "lapjv": 0}
    solve_one = _simplex.solve_one

    def counting_simplex(*args):
        counts["simplex"] += 1
        return solve_one(*args)

    monkeypatch.setattr(_simplex, "solve_one", counting_simplex)
    lapjv = _assignment._lapjv
    if lapjv is not None:

        def counting_lapjv(*args, **kwargs):
            counts["lapjv"] += 1
            return lapjv(*args, **kwargs)

        monkeypatch.setattr(_assignment, "_lapjv", counting_lapjv)
    return counts


def test_simplex_potentials_equal_pots(rng, calls):
    M = rng.random((20, 6, 8))
    a, b = random_weights(rng, (20, 6)), random_weights(rng, (20, 8))
    res = emd_batch(M, a, b, return_duals=True)
    assert calls["simplex"] == 20
    assert_certified(M, a, b, res)
    for i in range(20):
        _, log = ot.emd(a[i], b[i], M[i], log=True)
        np.testing.assert_allclose(res.dual_a[i], log["u"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(res.dual_b[i], log["v"], rtol=1e-9, atol=1e-12)


def test_public_route_potentials(rng, monkeypatch):
    force_public_emd(monkeypatch)
    M = rng.normal(size=(10, 5, 7))
    a, b = random_weights(rng, (10, 5), zeros=1), random_weights(rng, 7, zeros=2)
    assert_certified(M, a, b, emd_batch(M, a, b, return_duals=True))


def test_zero_weights_and_negative_costs(rng):
    M = rng.normal(size=(30, 6, 5)) * 10
    M[:, 0, :] = -1e6  # a zero-weight row of hugely negative costs
    a, b = random_weights(rng, (30, 6), zeros=1), random_weights(rng, (30, 5), zeros=2)
    assert_certified(M, a, b, emd_batch(M, a, b, return_duals=True))


def test_lapjv_assignments_give_their_potentials(rng, calls):
    pytest.importorskip("lapjv")
    n = _assignment.LAPJV_MIN_N
    M = rng.random((4, n, n))
    res = emd_batch(M, return_duals=True, return_plan="sparse")
    assert calls == {"simplex": 0, "lapjv": 4}
    assert_certified(M, None, None, res)
    np.testing.assert_allclose(res.distance, emd_batch(M).distance, rtol=1e-12)


def test_assignments_without_potentials_go_to_the_simplex(rng, calls, monkeypatch):
    monkeypatch.setattr(_assignment, "_lapjv", None)
    M = rng.random((5, 90, 90))
    res = emd_batch(M, return_duals=True)
    assert calls["simplex"] == 5
    assert_certified(M, None, None, res)
    np.testing.assert_allclose(res.distance, emd_batch(M).distance, rtol=1e-12)


def test_uncertified_lapjv_assignments_go_to_the_simplex(rng, calls, monkeypatch):
    lapjv = pytest.importorskip("lapjv").lapjv

    def wrong(C, **kwargs):
        cols, rows, (cost, u, v) = lapjv(C, **kwargs)
        return np.roll(cols, 1), rows, (cost, u, v)  # fails its certificate

    monkeypatch.setattr(_assignment, "_lapjv", wrong)
    M = rng.random((3, 85, 85))
    res = emd_batch(M, return_duals=True, return_plan=True)
    assert calls["simplex"] == 3
    assert_certified(M, None, None, res)
    np.testing.assert_allclose((res.plan * M).sum(axis=(1, 2)), res.distance)


def test_ragged_batches_give_lists(rng):
    M = [rng.random((n, m)) for n, m in [(3, 4), (5, 2), (90, 90)]]
    res = emd_batch(M, return_duals=True, n_jobs=2, batch_size=1)
    assert isinstance(res.dual_a, list) and isinstance(res.dual_b, list)
    for i, Mi in enumerate(M):
        one = emd_batch(Mi[None], return_duals=True)
        np.testing.assert_allclose(res.dual_a[i], one.dual_a[0], atol=1e-12)
        n, m = Mi.shape
        u, v = res.dual_a[i], res.dual_b[i]
        np.testing.assert_allclose(u.sum() / n + v.sum() / m, res.distance[i])
        assert (u[:, None] + v[None, :] - Mi).max() <= 1e-12


def test_parallel_and_streamed_potentials_are_the_same(rng):
    M = rng.random((40, 7, 7))
    a = random_weights(rng, (40, 7))
    serial = emd_batch(M, a, return_duals=True)
    threads = emd_batch(M, a, return_duals=True, n_jobs=2, batch_size=7)
    np.testing.assert_array_equal(serial.dual_a, threads.dual_a)
    parts = list(iter_emd_batch(M, a, return_duals=True, batch_size=9))
    np.testing.assert_array_equal(
        np.concatenate([res.dual_b for _, res in parts]), serial.dual_b
    )


def test_without_return_duals_there_are_none(rng):
    res = emd_batch(rng.random((2, 3, 3)))
    assert res.dual_a is None and res.dual_b is None


@pytest.mark.parametrize(
    ("method", "params"), [("sinkhorn", {"reg": 0.1}), ("partial", {})]
)
def test_methods_without_potentials_refuse(method, params):
    with pytest.raises(ValueError, match="return_duals=True is not available"):
        emd_batch(np.ones((1, 2, 2)), method=method, return_duals=True, **params)


@settings(max_examples=40, deadline=None)
@given(
    M=arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
        elements=st.floats(-100, 100, allow_nan=False).map(lambda x: round(x, 1)),
    ),
    seed=st.integers(0, 2**32 - 1),
    zeros=st.booleans(),
)
def test_property_potentials_certify_the_distance(M, seed, zeros):
    rng = np.random.default_rng(seed)
    k, n, m = M.shape
    a = random_weights(rng, (k, n), zeros=int(zeros and n > 1))
    b = random_weights(rng, (k, m), zeros=int(zeros and m > 1))
    res = emd_batch(M, a, b, return_duals=True)
    assert_certified(M, a, b, res)
    np.testing.assert_allclose(
        res.distance,
        [ot.emd2(a[i], b[i], M[i] - M[i].min()) + M[i].min() for i in range(k)],
        rtol=1e-9,
        atol=1e-9,
    )
