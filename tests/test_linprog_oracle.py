"""emd_batch against an independent oracle: the transport LP solved by HiGHS.

The oracle of ``conftest.py`` loops over POT with the same shift of negative
costs that ``emd_batch`` applies, so it cannot catch a mistake in that shift.
Here every problem is instead written out as the linear program

    minimise <T, M>  subject to  T >= 0,  T 1 = a,  T^T 1 = b

and solved by ``scipy.optimize.linprog(method="highs")``, which shares no code
with POT's network simplex nor with ``linear_sum_assignment``.

Tolerances. HiGHS is run with primal and dual feasibility tolerances of 1e-10
(absolute, on its internally scaled problem), so its optimum is within about
1e-10 x (cost magnitude x mass) of the true one; the network simplex and the
assignment solver are exact up to rounding (~1e-16 relative). Values are
therefore compared with ``rtol=1e-9`` and ``atol=1e-9 * mass * scale``, where
``scale`` is the largest |cost| in a cell that can carry mass (row and column
weights both positive): a ten-fold margin over HiGHS' tolerance. Costs in
zero-weight rows or columns do not enter the LP's value, so they do not widen
the tolerance either (see ``test_negative_cost_in_zero_weight_row``).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import linprog

from skemd import emd_batch

_HIGHS_OPTIONS = {
    "primal_feasibility_tolerance": 1e-10,
    "dual_feasibility_tolerance": 1e-10,
}
RTOL = 1e-9
# The absolute tolerance, per unit of mass x support cost magnitude (see above).
ATOL_PER_SCALE = 1e-9
# Plans must meet their marginals to this, per unit of mass.
MARGINAL_ATOL = 1e-12


def linprog_emd(M, a=None, b=None):
    """Solve one exact optimal transport problem as an LP with HiGHS.

    Parameters
    ----------
    M : array-like of shape (n, m)
        The cost matrix; any sign.
    a : array-like of shape (n,), default=None
        Source weights; None is uniform with mass 1.
    b : array-like of shape (m,), default=None
        Target weights; None is uniform with mass 1. Rescaled to the mass of
        ``a``, as :func:`skemd.emd_batch` does.

    Returns
    -------
    value : float
        The optimal cost ``min <T, M>``.
    plan : ndarray of shape (n, m)
        An optimal transport plan.

    Examples
    --------
    >>> value, plan = linprog_emd([[0.0, 1.0], [1.0, 0.0]])
    >>> round(value, 12), plan.sum(axis=0).tolist()
    (0.0, [0.5, 0.5])
    """
    M = np.asarray(M, dtype=np.float64)
    a, b = marginals(M, a, b)
    n, m = M.shape
    # Row i of T sums to a[i]; column j of T sums to b[j] (T flattened row-major).
    rows = np.kron(np.eye(n), np.ones((1, m)))
    cols = np.kron(np.ones((1, n)), np.eye(m))
    res = linprog(
        M.ravel(),
        A_eq=np.vstack([rows, cols]),
        b_eq=np.concatenate([a, b]),
        bounds=(0, None),
        method="highs",
        options=_HIGHS_OPTIONS,
    )
    assert res.status == 0, res.message
    return res.fun, res.x.reshape(n, m)


def marginals(M, a=None, b=None):
    """Return the effective float64 marginals: uniform for None, b rescaled."""
    n, m = np.shape(M)
    a = np.full(n, 1.0 / n) if a is None else np.asarray(a, dtype=np.float64)
    b = np.full(m, 1.0 / m) if b is None else np.asarray(b, dtype=np.float64)
    return a, b * a.sum() / b.sum()


def value_atol(M, a, b):
    """The absolute tolerance on a value: mass x largest |cost| on the support."""
    M = np.asarray(M, dtype=np.float64)
    support = M[np.ix_(a > 0, b > 0)]
    return ATOL_PER_SCALE * a.sum() * np.abs(support).max()


def problems(M, a, b):
    """Yield ``(M_i, a_i, b_i)`` for a dense or ragged batch and its weights."""
    for i, Mi in enumerate(M):
        yield Mi, _row(a, i), _row(b, i)


def _row(w, i):
    if w is None:
        return None
    if isinstance(w, np.ndarray) and w.ndim == 1:
        return w
    return w[i]


def assert_matches_linprog(M, a=None, b=None, **kwargs):
    """Solve the batch with plans and check each problem against linprog.

    Returns the result and the oracle's values, for further checks.
    """
    res = emd_batch(M, a, b, return_plan=True, **kwargs)
    assert res.converged.all()
    assert len(res.distance) == len(res.plan) == len(M)
    expected = []
    for Mi, ai, bi, value, G in zip(
        *zip(*problems(M, a, b), strict=True), res.distance, res.plan, strict=True
    ):
        Mi = np.asarray(Mi, dtype=np.float64)
        ai, bi = marginals(Mi, ai, bi)
        optimum, _ = linprog_emd(Mi, ai, bi)
        atol = value_atol(Mi, ai, bi)
        np.testing.assert_allclose(value, optimum, rtol=RTOL, atol=atol)
        # The plan is feasible and achieves the LP's optimum.
        assert G.shape == Mi.shape
        assert (G >= 0).all()
        mass_atol = MARGINAL_ATOL * ai.sum()
        np.testing.assert_allclose(G.sum(axis=1), ai, rtol=0, atol=mass_atol)
        np.testing.assert_allclose(G.sum(axis=0), bi, rtol=0, atol=mass_atol)
        np.testing.assert_allclose((G * Mi).sum(), optimum, rtol=RTOL, atol=atol)
        expected.append(optimum)
    return res, np.array(expected)


def weights(rng, shape, zeros=0, mass=1.0):
    """Random positive weights of the given mass along the last axis."""
    w = rng.random(shape) + 0.1
    if zeros:
        w[..., :zeros] = 0.0
    return mass * w / w.sum(axis=-1, keepdims=True)


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


def test_oracle_on_a_known_problem():
    # Moving 1/2 from the first to the last of three points on a line, 1/2 stays.
    value, plan = linprog_emd(
        [[0.0, 1.0, 2.0], [1.0, 0.0, 1.0]], [0.5, 0.5], [0.0, 0.5, 0.5]
    )
    assert value == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(plan, [[0.0, 0.5, 0.0], [0.0, 0.0, 0.5]], atol=1e-12)


def test_all_costs_minus_two_where_pot_reports_infeasible():
    # POT 0.9.7's network simplex calls this 2x3 problem infeasible and answers
    # 0; every feasible plan costs -2.
    M = np.full((3, 2, 3), -2.0)
    M[1, 0, 0] = -3.0
    M[2] = -np.arange(6.0).reshape(2, 3)
    res, expected = assert_matches_linprog(M)
    np.testing.assert_allclose(expected[0], -2.0, rtol=1e-9)
    np.testing.assert_allclose(res.distance[0], -2.0, rtol=1e-12)


@pytest.mark.parametrize("shape", [(2, 3), (4, 4), (5, 1)])
@pytest.mark.parametrize("sign", ["negative", "mixed", "integer_mixed"])
@pytest.mark.parametrize("weighted", [False, True])
def test_negative_and_mixed_sign_costs(rng, shape, sign, weighted):
    n, m = shape
    k = 2
    if sign == "negative":
        M = -rng.random((k, n, m)) - 0.5
    elif sign == "mixed":
        M = rng.normal(size=(k, n, m))
    else:
        M = rng.integers(-4, 3, (k, n, m)).astype(np.float64)
    a = weights(rng, (k, n), zeros=n // 3) if weighted else None
    b = weights(rng, m, zeros=m // 3) if weighted else None
    assert_matches_linprog(M, a, b)


@pytest.mark.parametrize(("n", "m"), [(3, 3), (2, 5)])
def test_zero_costs(rng, n, m):
    M = np.zeros((2, n, m))
    a = np.stack([np.full(n, 1.0 / n), weights(rng, n, zeros=1)])
    res, expected = assert_matches_linprog(M, a)
    np.testing.assert_array_equal(expected, 0.0)
    np.testing.assert_array_equal(res.distance, 0.0)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda r, s: 1e8 + r.normal(size=s), id="offset_1e8"),
        pytest.param(lambda r, s: 1e12 * r.normal(size=s), id="mixed_1e12"),
        pytest.param(lambda r, s: -1e9 * (1 + r.random(s)), id="negative_1e9"),
        pytest.param(lambda r, s: r.integers(0, 2**40, s), id="int64_1e12"),
    ],
)
@pytest.mark.parametrize("weighted", [False, True])
def test_large_magnitude_costs(rng, make, weighted):
    # Uniform 4x4 problems take the assignment route, weighted 3x6 the simplex.
    n, m = (3, 6) if weighted else (4, 4)
    M = make(rng, (3, n, m))
    a = weights(rng, (3, n), zeros=1) if weighted else None
    res, _ = assert_matches_linprog(M, a)
    # The values carry information below the magnitude: they differ.
    assert np.unique(res.distance).size == 3


@pytest.mark.parametrize("n", [1, 3, 8])
@pytest.mark.parametrize("mass", [None, 0.5])
def test_uniform_square_assignment_route(rng, n, mass):
    k = 3
    M = rng.normal(size=(k, n, n)) * 5
    M[0] = rng.integers(-3, 3, (n, n))
    w = None if mass is None else np.full(n, mass / n)
    res, _ = assert_matches_linprog(M, w, w)
    # An optimal vertex of the assignment polytope is a scaled permutation.
    weight = 1.0 / n if mass is None else mass / n
    assert ((res.plan == 0) | (res.plan == weight)).all()
    assert ((res.plan > 0).sum(axis=2) == 1).all()


@pytest.mark.parametrize(("n", "m"), [(1, 5), (5, 1), (4, 4), (6, 3), (2, 6)])
@pytest.mark.parametrize("layout", ["shared", "per_problem", "mixed", "zeros"])
def test_weighted_and_rectangular_problems(rng, n, m, layout):
    k = 2
    M = rng.normal(size=(k, n, m)) + 0.5
    if layout == "shared":
        a, b = weights(rng, n), weights(rng, m)
    elif layout == "per_problem":
        a, b = weights(rng, (k, n), mass=2.5), weights(rng, (k, m), mass=2.5)
    elif layout == "mixed":
        a, b = weights(rng, n), weights(rng, (k, m))
    else:
        a = weights(rng, (k, n), zeros=n // 2)
        b = weights(rng, (k, m), zeros=m // 2)
    assert_matches_linprog(M, a, b)


def test_masses_within_tolerance_rescale_b(rng):
    # b's mass is off by 5e-7 relative: emd_batch rescales it to a's mass, and
    # so does the oracle; the value moves with a's mass of 3.
    M = rng.normal(size=(4, 5, 3))
    a = weights(rng, (4, 5), zeros=1, mass=3.0)
    b = weights(rng, 3, mass=3.0 * (1 + 5e-7))
    res, _ = assert_matches_linprog(M, a, b)
    np.testing.assert_allclose(res.plan.sum(axis=(1, 2)), 3.0, rtol=1e-12)
    unit, _ = assert_matches_linprog(M, a / 3.0, b / 3.0)
    np.testing.assert_allclose(res.distance, 3.0 * unit.distance, rtol=1e-9)


def test_ragged_batch(rng):
    shapes = [(2, 3), (4, 4), (1, 5), (6, 2), (3, 3)]
    M = [rng.normal(size=s) for s in shapes]
    M[0][:] = -2.0  # the problem POT gets wrong
    M[2] = rng.integers(-5, 5, shapes[2]).astype(np.float64)
    a = [weights(rng, n, zeros=n // 3) for n, _ in shapes]
    b = [weights(rng, m, zeros=m // 4) for _, m in shapes]
    a[4] = b[4] = np.full(3, 1.0 / 3)  # a uniform square problem among them
    res, _ = assert_matches_linprog(M, a, b, batch_size=2)
    assert isinstance(res.plan, list)
    np.testing.assert_allclose(res.distance[0], -2.0, rtol=1e-12)
    # Uniform marginals on a ragged batch, too.
    assert_matches_linprog(M)


# A huge negative cost in a row that cannot carry mass (weight 0). The LP's
# value depends only on the other cells, all O(1): the optimum is 0 (row 1 sends
# 2/3 to column 0 and row 2 sends 1/3 to column 1, both at cost 0).
ZERO_ROW_M = np.array([[-1e16, 2.0], [0.0, 0.0], [1.0, 0.0]])
ZERO_ROW_A = np.array([0.0, 2 / 3, 1 / 3])
ZERO_ROW_B = np.array([2 / 3, 1 / 3])


def test_oracle_ignores_costs_in_zero_weight_rows():
    optimum, plan = linprog_emd(ZERO_ROW_M, ZERO_ROW_A, ZERO_ROW_B)
    assert optimum == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(plan, [[0, 0], [2 / 3, 0], [0, 1 / 3]], atol=1e-12)


def test_negative_cost_in_zero_weight_row():
    # A shift by the -1e16 of a cell that carries no mass would round costs 0
    # and 1 to the same float64, and the network simplex could no longer tell
    # the plans apart: only cells between positive weights set the shift.
    assert_matches_linprog(ZERO_ROW_M[None], ZERO_ROW_A, ZERO_ROW_B)


def _weights(rows, size):
    # Weights of 0 or at least 1e-3 (smaller ones fall below what HiGHS'
    # absolute feasibility tolerance resolves), at least one positive per row.
    positive = arrays(np.float64, (rows, size), elements=st.floats(1e-3, 1.0))
    zeros = arrays(np.bool_, (rows, size))

    def combine(w, z):
        z[:, 0] &= ~z.all(axis=1)  # all zeros: keep the first weight
        w = np.where(z, 0.0, w)
        return w / w.sum(axis=1, keepdims=True)

    return st.builds(combine, positive, zeros)


def _costs(k, n, m):
    # Integer-ish (many ties: degenerate LPs), real, or both, of either sign.
    # Reals are rounded to 1e-6: ratios beyond ~1e10 between a negative cost in
    # a zero-weight row and the costs that matter are the known failure above.
    integer = st.integers(-20, 20).map(float)
    real = st.floats(-100.0, 100.0).map(lambda x: round(x, 6))
    entries = st.sampled_from([integer, real, st.one_of(integer, real)])
    return entries.flatmap(lambda e: arrays(np.float64, (k, n, m), elements=e))


@st.composite
def batches(draw):
    k, n, m = draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    M = draw(_costs(k, n, m))
    layout = draw(st.sampled_from(["uniform", "shared", "per_problem"]))
    if layout == "uniform":
        return M, None, None
    rows = 1 if layout == "shared" else k
    a, b = draw(_weights(rows, n)), draw(_weights(rows, m))
    return (M, a[0], b[0]) if layout == "shared" else (M, a, b)


@settings(max_examples=40, deadline=None)
@given(batches())
def test_property_matches_linprog(batch):
    M, a, b = batch
    assert_matches_linprog(M, a, b)
