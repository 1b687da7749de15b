"""Exact assignment solver for uniform, equal marginals on square problems.

When ``a`` and ``b`` are both uniform with the same weight ``w`` and n == m, an
optimal transport plan is a permutation matrix scaled by ``w`` (Birkhoff's
theorem), so an assignment solver solves it exactly.

Two solve assignments: ``scipy.optimize.linear_sum_assignment``, always
there, and the Jonker-Volgenant solver of the optional ``lapjv`` package
(``pip install "skemd[fast]"``), in double precision only (its float32 path
returns suboptimal assignments on near-tied costs), used from
:data:`LAPJV_MIN_N` on, where it is faster. lapjv's answer is not trusted:
each is checked against its own dual certificate, in float64, and an
assignment that fails the check is solved again by scipy.
"""

import numpy as np
from scipy.optimize import linear_sum_assignment

from ._duals import center_duals

try:
    from lapjv import lapjv as _lapjv
except ImportError:  # the optional skemd[fast]
    _lapjv = None

#: Smallest n solved by lapjv. Below it, lapjv's fixed cost per call and the
#: certificate's (about 30 and 50 µs here) exceed what its faster algorithm
#: saves over scipy: measured by ``benchmarks/bench_assignment.py``, scipy
#: over lapjv with its check is 0.8x at n=70, 1.04x at n=80, 1.2x at n=100.
LAPJV_MIN_N = 80

# Certificate tolerance, in units of the roundoff of one reduced cost.
_ROUNDING_ULPS = 4

#: Largest n for which the assignment route is always chosen. Measured on 2
#: cores by ``benchmarks/bench_crossover.py``: the Hungarian solver is 2-4x
#: faster than the simplex on i.i.d. costs at every n, but on far-apart point
#: clouds it breaks even at n=100 and is 2x slower at n=300. Above it, the
#: cost structure decides, so the exact method's ``prepare`` measures.
ASSIGNMENT_MAX_N = 100


def solve_assignment(M, A, idx, plans):
    """Solve the problems ``idx`` of a chunk as assignments.

    Parameters
    ----------
    M : ndarray of shape (c, n, n)
        The chunk's float64 costs.
    A : ndarray of shape (c, n)
        The chunk's source marginals; rows ``idx`` are uniform, and equal to
        the target marginals.
    idx : ndarray of int
        The problems to solve.
    plans : NoPlans
        The sink that receives the plans, and the dual potentials of the
        problems that lapjv solved (and certified) if it keeps them; the
        others' stay NaN.

    Returns
    -------
    cost : ndarray of shape (len(idx),)
        The optimal costs.
    converged : ndarray of shape (len(idx),), dtype=bool
        All True: the assignment solver always finishes.
    """
    n = M.shape[1]
    cols = np.empty((idx.size, n), dtype=np.intp)
    duals = plans.duals
    for j, i in enumerate(idx.tolist()):
        found = _certified_lapjv(M[i])
        if found is None:
            cols[j] = linear_sum_assignment(M[i])[1]
            continue
        cols[j], u, v = found
        if duals is not None:
            # With weights w, w * (sum(u) + sum(v)) is the cost: u, v are
            # the transport potentials too.
            duals.put(i, *center_duals(u, v, A[i], A[i]))
    weights = A[idx, 0]
    matched = M[idx[:, None], np.arange(n), cols]
    plans.put_permutations(idx, cols, weights)
    return weights * matched.sum(axis=1), np.ones(idx.size, dtype=bool)


def assign(C):
    """Return the column assigned to each row by an optimal assignment of ``C``.

    Parameters
    ----------
    C : ndarray of shape (n, n)
        Float64 costs, finite.

    Returns
    -------
    cols : ndarray of shape (n,)
        Row ``i`` goes to column ``cols[i]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._assignment import assign
    >>> assign(np.array([[4.0, 1.0], [2.0, 8.0]]))
    array([1, 0])
    """
    found = _certified_lapjv(C)
    return linear_sum_assignment(C)[1] if found is None else found[0]


def gives_duals(n):
    """Whether assignments of size n come with dual potentials (from lapjv).

    Examples
    --------
    >>> from skemd._solvers._assignment import gives_duals
    >>> gives_duals(2)
    False
    """
    return _lapjv is not None and n >= LAPJV_MIN_N


def _certified_lapjv(C):
    """lapjv's ``(cols, u, v)``, or None if not used at this size or uncertified."""
    if not gives_duals(len(C)):
        return None
    cols, _, (_, u, v) = _lapjv(C, force_doubles=True)
    return (cols, u, v) if certified(C, cols, u, v) else None


def certified(C, cols, u, v):
    """Whether the duals ``u``, ``v`` prove the assignment ``cols`` optimal.

    Every reduced cost ``C[i, j] - u[i] - v[j]`` must be non-negative, and
    the assignment's cost must equal ``sum(u) + sum(v)``; both up to the
    roundoff of float64 sums of these magnitudes. Then no assignment is
    cheaper by more than that roundoff (weak duality).

    Parameters
    ----------
    C : ndarray of shape (n, n)
        The costs.
    cols : ndarray of shape (n,)
        The assignment: row ``i`` to column ``cols[i]``.
    u, v : ndarray of shape (n,)
        Dual potentials of the rows and columns.

    Returns
    -------
    certified : bool
        Whether the certificate holds.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._assignment import certified
    >>> C = np.array([[4.0, 1.0], [2.0, 8.0]])
    >>> certified(C, np.array([1, 0]), np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    True
    >>> certified(C, np.array([0, 1]), np.array([4.0, 8.0]), np.array([0.0, 0.0]))
    False
    """
    n = len(C)
    assigned = np.zeros(n, dtype=bool)
    assigned[cols] = True
    if not assigned.all():
        return False
    size = max(C.max(), -C.min())
    dual = max(u.max(), -u.min(), v.max(), -v.min())
    # Duals far larger than the costs would hide the costs in roundoff (and
    # this bound keeps every sum below finite).
    if not dual <= 2 * n * size + np.finfo(np.float64).tiny:
        return False
    tolerance = _ROUNDING_ULPS * np.finfo(np.float64).eps * (size + 2 * dual)
    reduced = C - v
    reduced -= u[:, None]
    gap = C[np.arange(n), cols].sum() - (u.sum() + v.sum())
    return bool(reduced.min() >= -tolerance and abs(gap) <= 2 * n * tolerance)


def assignment_eligible(A, B, max_n=ASSIGNMENT_MAX_N):
    """Return which problems of a chunk the assignment route solves exactly.

    Parameters
    ----------
    A, B : ndarray of shape (c, n) and (c, m)
        The chunk's marginals.
    max_n : int, default=ASSIGNMENT_MAX_N
        The largest n solved as an assignment.

    Returns
    -------
    eligible : ndarray of shape (c,), dtype=bool
        True where n == m <= max_n and both marginals are uniform with the
        same weight.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._assignment import assignment_eligible
    >>> A = np.array([[0.5, 0.5], [0.9, 0.1]])
    >>> assignment_eligible(A, np.full((2, 2), 0.5))
    array([ True, False])
    >>> assignment_eligible(A, np.full((2, 3), 1 / 3))
    array([False, False])
    """
    (c, n), m = A.shape, B.shape[1]
    if n != m or n > max_n:
        return np.zeros(c, dtype=bool)
    first = A[:, :1]
    return (first == A).all(axis=1) & (first == B).all(axis=1)
