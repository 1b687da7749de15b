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
        The sink that receives the plans.

    Returns
    -------
    cost : ndarray of shape (len(idx),)
        The optimal costs.
    converged : ndarray of shape (len(idx),), dtype=bool
        All True: the assignment solver always finishes.
    """
    n = M.shape[1]
    cols = np.empty((idx.size, n), dtype=np.intp)
    for j, i in enumerate(idx.tolist()):
        cols[j] = linear_sum_assignment(M[i])[1]
    weights = A[idx, 0]
    matched = M[idx[:, None], np.arange(n), cols]
    plans.put_permutations(idx, cols, weights)
    return weights * matched.sum(axis=1), np.ones(idx.size, dtype=bool)


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
