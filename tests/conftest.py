import numpy as np
import ot
import pytest


def random_weights(rng, shape, zeros=0):
    """Random positive weights summing to 1 along the last axis, with zeros."""
    w = rng.random(shape) + 0.1
    if zeros:
        w[..., :zeros] = 0.0
    return w / w.sum(axis=-1, keepdims=True)


def oracle(M, a=None, b=None):
    """The loop the batch must equal: ``ot.emd2`` and ``ot.emd`` per problem.

    Costs with a negative entry are shifted to be non-negative first, since
    POT's own solver reports some of them infeasible (see test_negative_costs).
    """
    values, plans = [], []
    for i, Mi in enumerate(M):
        Mi = np.asarray(Mi, dtype=np.float64)
        n, m = Mi.shape
        ai = np.full(n, 1.0 / n) if a is None else _row(a, i)
        bi = np.full(m, 1.0 / m) if b is None else _row(b, i)
        low = min(Mi.min(), 0.0)
        values.append(ot.emd2(ai, bi, Mi - low) + low * ai.sum())
        plans.append(ot.emd(ai, bi, Mi - low))
    return np.array(values, dtype=np.float64), plans


def _row(w, i):
    if w is None:
        return None
    if isinstance(w, np.ndarray) and w.ndim == 1:
        return w.astype(np.float64)
    return np.asarray(w[i], dtype=np.float64)


def assert_optimal_plans(plans, M, a, b, distance):
    """Each plan is feasible for its marginals and achieves the distance."""
    for i, (G, Mi) in enumerate(zip(plans, M, strict=True)):
        n, m = np.shape(Mi)
        ai = _row(a, i) if a is not None else np.full(n, 1.0 / n)
        bi = _row(b, i) if b is not None else np.full(m, 1.0 / m)
        assert G.shape == (n, m)
        assert (G >= 0).all()
        np.testing.assert_allclose(G.sum(axis=1), ai, atol=1e-12)
        np.testing.assert_allclose(G.sum(axis=0), bi, atol=1e-12)
        np.testing.assert_allclose((G * Mi).sum(), distance[i], rtol=1e-9, atol=1e-15)


def force_public_emd(monkeypatch):
    """Route every network simplex solve in this process through ``ot.emd``."""
    from skemd._solvers import _simplex

    public = _simplex.on_nonnegative_costs(_simplex.solve_public)
    monkeypatch.setattr(_simplex, "solve_one", public)


@pytest.fixture
def rng():
    return np.random.default_rng(42)


@pytest.fixture
def solved(monkeypatch):
    """The number of pairs solved by each call, as the transformer solves them."""
    from skemd import _pairwise

    counts = []
    solve_pairs = _pairwise.solve_pairs

    def counting(left, right, pairs, *args):
        counts.append(len(pairs))
        return solve_pairs(left, right, pairs, *args)

    monkeypatch.setattr(_pairwise, "solve_pairs", counting)
    return counts
