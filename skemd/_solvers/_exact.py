"""The "exact" method: the linear program, by assignment or network simplex.

A problem with uniform, equal marginals on square costs is an assignment
problem (Birkhoff's theorem) and goes to ``_assignment``; every other problem
goes to POT's network simplex (``_simplex``). Both are exact: only the choice
among equally optimal plans can differ. :func:`prepare` decides once per
batch up to which n the assignment solver is used.
"""

import time

import numpy as np

from ._assignment import (
    ASSIGNMENT_MAX_N,
    assignment_eligible,
    gives_duals,
    solve_assignment,
)
from ._plans import NoPlans
from ._simplex import solve_simplex


def solve_exact(M, A, B, plans, options, init=None):
    """Solve the problems of a chunk exactly.

    Parameters
    ----------
    M : ndarray of shape (c, n, m)
        The chunk's float64 costs.
    A, B : ndarray of shape (c, n) and (c, m)
        The chunk's marginals, of equal masses.
    plans : NoPlans
        The sink that receives the plans, and the dual potentials if it keeps
        them (assignments then go to lapjv, which gives them, or else to the
        simplex).
    options : SolverOptions
        Reads ``max_iter`` and ``assignment_max_n``.
    init : tuple of ndarray of shape (c, n) and (c, m), default=None
        Dual potentials to start the network simplex from (a warm start).
        Problems solved as assignments do not need them.

    Returns
    -------
    cost : ndarray of shape (c,)
        The optimal costs.
    converged : ndarray of shape (c,), dtype=bool
        False where ``max_iter`` was reached.
    """
    max_n = options["assignment_max_n"]
    eligible = assignment_eligible(A, B, ASSIGNMENT_MAX_N if max_n is None else max_n)
    if plans.duals is not None and not gives_duals(M.shape[1]):
        eligible[:] = False
    cost = np.empty(len(M))
    converged = np.empty(len(M), dtype=bool)
    idx = np.flatnonzero(eligible)
    if idx.size:
        cost[idx], converged[idx] = solve_assignment(M, A, idx, plans)
    if plans.duals is not None:
        # An assignment that lapjv could not certify was solved by scipy,
        # which gives no potentials: the simplex solves it again.
        eligible &= ~np.isnan(plans.duals.u[:, 0])
    idx = np.flatnonzero(~eligible)
    if idx.size:
        cost[idx], converged[idx] = solve_simplex(
            M, A, B, idx, options["max_iter"], plans, init
        )
    return cost, converged


def prepare(batch, options):
    """Resolve ``assignment_max_n=None``: the largest n to solve as assignments.

    Up to :data:`ASSIGNMENT_MAX_N` the assignment solver always wins. For
    larger uniform square problems, both exact solvers are timed on the
    batch's first problem and the faster one is used for the whole batch.

    Parameters
    ----------
    batch : ProblemBatch
        The validated batch.
    options : SolverOptions
        The options; an explicit ``assignment_max_n`` is kept.

    Returns
    -------
    options : SolverOptions
        The options with ``assignment_max_n`` set.
    """
    if options["assignment_max_n"] is not None:
        return options
    return options.replace(assignment_max_n=_fastest_max_n(batch))


def _fastest_max_n(batch):
    if batch.ragged or len(batch) == 0:
        return ASSIGNMENT_MAX_N
    _, n, m = batch.costs.shape
    first = batch[:1]
    A, B = first.marginal_rows()
    if n <= ASSIGNMENT_MAX_N or not assignment_eligible(A, B, n)[0]:
        return ASSIGNMENT_MAX_N
    M = np.ascontiguousarray(first.costs, dtype=np.float64)
    idx = np.zeros(1, dtype=np.intp)
    timings = []
    for solve in (
        lambda: solve_assignment(M, A, idx, NoPlans(1, n, m)),
        lambda: solve_simplex(M, A, B, idx, 10**9, NoPlans(1, n, m)),
    ):
        start = time.perf_counter()
        solve()
        timings.append(time.perf_counter() - start)
    return n if timings[0] < timings[1] else ASSIGNMENT_MAX_N


def advise(options, costs):
    """Advice for problems that did not converge, from some of their costs.

    Costs near the float maximum overflow in the simplex's potentials (sums
    of up to n + m costs), which no iteration limit can fix.

    Parameters
    ----------
    options : SolverOptions
        The options they were solved with.
    costs : list of ndarray
        Cost matrices of some of the problems.

    Returns
    -------
    advice : str
        What to change.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._exact import advise
    >>> print(advise({}, [np.full((4, 4), 1e307)]))
    Their costs reach 1e+307, so sums of them overflow float64 in the solver: ...
    >>> print(advise({}, [np.ones((4, 4))]))
    Increase max_iter.
    """
    for M in costs:
        top = float(np.abs(M).max())
        if top * sum(M.shape) ** 2 > np.finfo(np.float64).max:
            return (
                f"Their costs reach {top:g}, so sums of them overflow float64 in "
                "the solver: rescale the costs (more iterations cannot help)."
            )
    return "Increase max_iter."
