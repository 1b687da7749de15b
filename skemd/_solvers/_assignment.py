"""Exact assignment solver for uniform, equal marginals on square problems.

When ``a`` and ``b`` are both uniform with the same weight ``w`` and n == m, an
optimal transport plan is a permutation matrix scaled by ``w`` (Birkhoff's
theorem), so ``scipy.optimize.linear_sum_assignment`` solves it exactly.
"""

import numpy as np
from scipy.optimize import linear_sum_assignment

#: Largest n for which the assignment route is chosen. Measured on 2 cores by
#: ``benchmarks/bench_crossover.py``: the Hungarian solver is 2-4x faster on
#: i.i.d. costs at every n, but on far-apart point clouds it breaks even at 100
#: and is 2x slower at 300.
ASSIGNMENT_MAX_N = 100


def solve_assignment(a, b, M, max_iter, support=False):
    """Solve one uniform square problem; return (cost, converged, support)."""
    rows, cols = linear_sum_assignment(M)
    weight = a[0]
    cost = weight * M[rows, cols].sum()
    return cost, True, (rows, cols, np.full(rows.size, weight)) if support else None


def assignment_eligible(a, b, n, m):
    """Return which problems of a chunk the assignment route solves exactly.

    Parameters
    ----------
    a, b : None, ndarray of shape (n,) or ndarray of shape (k, n)
        The chunk's marginals, as held by a dense ``ProblemBatch``.
    n, m : int
        The problem shape.

    Returns
    -------
    eligible : bool or ndarray of shape (k,)
        True where both marginals are uniform with the same weight.
    """
    if n != m or n > ASSIGNMENT_MAX_N:
        return False
    if a is None and b is None:
        return True
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    first = a[:, :1]
    return ((a == first).all(axis=1) & (b == first).all(axis=1)).squeeze()
