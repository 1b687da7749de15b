"""Exact assignment solver for uniform, equal marginals on square problems.

When ``a`` and ``b`` are both uniform with the same weight ``w`` and n == m, an
optimal transport plan is a permutation matrix scaled by ``w`` (Birkhoff's
theorem), so ``scipy.optimize.linear_sum_assignment`` solves it exactly.
"""

import numpy as np
from scipy.optimize import linear_sum_assignment

#: Largest n for which the assignment route is always chosen. Measured on 2
#: cores by ``benchmarks/bench_crossover.py``: the Hungarian solver is 2-4x
#: faster than the simplex on i.i.d. costs at every n, but on far-apart point
#: clouds it breaks even at n=100 and is 2x slower at n=300. Above it, the
#: cost structure decides, so ``choose_assignment_max_n`` measures.
ASSIGNMENT_MAX_N = 100


def solve_assignment(M, A, B, idx, max_iter, plans):
    """Solve the problems ``idx`` of a chunk as assignments.

    Parameters
    ----------
    M : ndarray of shape (c, n, n)
        The chunk's float64 costs.
    A, B : ndarray of shape (c, n)
        The chunk's marginals; rows ``idx`` are uniform and equal.
    idx : ndarray of int
        The problems to solve.
    max_iter : int
        Unused: the assignment solver always finishes.
    plans : NoPlans
        The sink that receives the plans.

    Returns
    -------
    cost : ndarray of shape (len(idx),)
        The optimal costs.
    converged : ndarray of shape (len(idx),), dtype=bool
        All True.
    """
    n = M.shape[1]
    cols = np.empty((idx.size, n), dtype=np.intp)
    for j, i in enumerate(idx.tolist()):
        cols[j] = linear_sum_assignment(M[i])[1]
    weights = A[idx, 0]
    matched = M[idx[:, None], np.arange(n), cols]
    plans.put_permutations(idx, cols, weights)
    return weights * matched.sum(axis=1), np.ones(idx.size, dtype=bool)


def assignment_one(a, b, M, max_iter):
    """Solve one uniform square problem; return ``(plan, cost, True)``."""
    rows, cols = linear_sum_assignment(M)
    plan = np.zeros_like(M)
    plan[rows, cols] = a[0]
    return plan, a[0] * M[rows, cols].sum(), True


def assignment_eligible(a, b, n, m, max_n=ASSIGNMENT_MAX_N):
    """Return which problems of a chunk the assignment route solves exactly.

    Parameters
    ----------
    a, b : None, ndarray of shape (n,) or ndarray of shape (k, n)
        The chunk's marginals, as held by a dense ``ProblemBatch``.
    n, m : int
        The problem shape.
    max_n : int, default=ASSIGNMENT_MAX_N
        The largest n solved as an assignment.

    Returns
    -------
    eligible : bool or ndarray of shape (k,)
        True where both marginals are uniform with the same weight.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._assignment import assignment_eligible
    >>> bool(assignment_eligible(None, None, 4, 4))
    True
    >>> assignment_eligible(np.array([[0.5, 0.5], [0.9, 0.1]]), None, 2, 2)
    array([ True, False])
    """
    if n != m or n > max_n:
        return False
    if a is None and b is None:
        return True
    a = np.atleast_2d(np.full(n, 1.0 / n) if a is None else a)
    b = np.atleast_2d(np.full(m, 1.0 / m) if b is None else b)
    first = a[:, :1]
    return ((a == first).all(axis=1) & (b == first).all(axis=1)).squeeze()
