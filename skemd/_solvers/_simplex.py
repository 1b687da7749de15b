"""Exact network simplex through POT, one problem at a time.

Two routes reach the same compiled solver. The lean route calls POT's private
``ot.lp.emd_wrap.emd_c`` directly and skips ``ot.emd``'s Python wrapper (about
80 µs a call, most of the cost for small problems). It is used only when the
installed POT exposes a signature we know; otherwise the public ``ot.emd`` is
called, which is slower but always correct.

From POT 0.9.7 on, both routes can start from given dual potentials (a warm
start); with an older POT the potentials are not used, which changes the
time taken but never the result.
"""

import inspect
import os

import numpy as np
import ot

from ._duals import finish_duals

# POT's result code for an optimal solution (see ot.lp.emd_wrap.check_result).
_OPTIMAL = 1
_KNOWN_EMD_C_PARAMETERS = ("a", "b", "M", "max_iter", "numThreads")


def find_lean_solver(module=None):
    """Return POT's compiled ``emd_c`` if its signature is known, else None.

    Parameters
    ----------
    module : module, default=None
        The module to look in; ``None`` means ``ot.lp.emd_wrap``.

    Returns
    -------
    emd_c : callable or None
        The compiled solver, or None when its signature is not one we support.

    Examples
    --------
    >>> from skemd._solvers._simplex import find_lean_solver
    >>> find_lean_solver() is not None
    True
    """
    if module is None:
        from ot.lp import emd_wrap as module
    emd_c = getattr(module, "emd_c", None)
    parameters = _parameters(emd_c)
    return emd_c if parameters[:5] == _KNOWN_EMD_C_PARAMETERS else None


def _parameters(function):
    try:
        return tuple(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return ()


_EMD_C = find_lean_solver()
_LEAN_WARM_STARTS = _parameters(_EMD_C)[5:7] == ("alpha_init", "beta_init")
_PUBLIC_WARM_STARTS = "potentials_init" in _parameters(ot.emd)


def solve_lean(a, b, M, max_iter, init=None):
    """Solve one problem with POT's compiled ``emd_c``.

    ``init`` is None or starting potentials ``(alpha, beta)``. Returns
    ``(plan, cost, converged, u, v)``, the dual potentials as the solver
    leaves them (see :func:`~skemd._solvers._duals.finish_duals`).
    """
    warm = () if init is None or not _LEAN_WARM_STARTS else init
    plan, cost, u, v, code = _EMD_C(a, b, M, max_iter, 1, *warm)
    return plan, cost, code == _OPTIMAL, u, v


def solve_public(a, b, M, max_iter, init=None):
    """Solve one problem with the public ``ot.emd``, as :func:`solve_lean`."""
    warm = {} if init is None or not _PUBLIC_WARM_STARTS else {"potentials_init": init}
    plan, log = ot.emd(a, b, M, numItermax=max_iter, log=True, **warm)
    return plan, log["cost"], log["result_code"] == _OPTIMAL, log["u"], log["v"]


def nonnegative_costs(a, b, M):
    """Costs with the same optimal plans as ``M``, all non-negative.

    Only the cells between positive weights can carry mass: they are shifted
    by their least cost, and the others set to 0. A large cost in a cell that
    carries nothing would otherwise set the shift and swamp, in rounding, the
    differences between the costs that matter.

    Parameters
    ----------
    a, b : ndarray of shape (n,) and (m,)
        The marginals.
    M : ndarray of shape (n, m)
        The costs.

    Returns
    -------
    costs : ndarray of shape (n, m)
        The shifted costs.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._simplex import nonnegative_costs
    >>> M = np.array([[-1e16, 0.0], [-2.0, 1.0]])
    >>> nonnegative_costs(np.array([0.0, 1.0]), np.ones(2), M)
    array([[0., 0.],
           [0., 3.]])
    """
    live, low = _live_cells_and_shift(a, b, M)
    return np.where(live, M - low, 0.0)


def _live_cells_and_shift(a, b, M):
    live = np.outer(a > 0, b > 0)
    return live, min(M[live].min(initial=0.0), 0.0)


def on_nonnegative_costs(solve):
    """Make a one-problem solver exact on costs with negative entries.

    POT 0.9.7's network simplex reports some feasible problems with negative
    costs as infeasible and returns a zero plan (all costs -2 on a 2x3
    problem, say). :func:`nonnegative_costs` keeps the optimal plans; the
    cost is then taken on the original costs, which is exact where adding
    back the shift times ``sum(plan)`` would round.
    """

    def solve_one(a, b, M, max_iter, init=None):
        """Solve one problem; return ``(plan, cost, converged, u, v)``."""
        if M.min() >= 0:
            return solve(a, b, M, max_iter, init)
        live, low = _live_cells_and_shift(a, b, M)
        if init is not None:
            init = (init[0], init[1] - low)
        shifted = np.where(live, M - low, 0.0)
        plan, _, converged, u, v = solve(a, b, shifted, max_iter, init)
        # On the live cells the costs solved are M - low, so u, v + low are
        # potentials of M there (those of zero weights are made feasible later).
        return plan, (plan * M).sum(), converged, u, v + low

    return solve_one


#: Whether to call the public ``ot.emd``: on a POT whose private signature is
#: unknown, or when the environment sets ``SKEMD_PUBLIC_EMD=1`` (an escape
#: hatch, and how the test suite runs on that route, workers included).
USES_PUBLIC = _EMD_C is None or os.environ.get("SKEMD_PUBLIC_EMD") == "1"

#: The one-problem solver in use.
solve_one = on_nonnegative_costs(solve_public if USES_PUBLIC else solve_lean)

#: Whether the route in use can start from given dual potentials (POT >= 0.9.7).
WARM_STARTS = _PUBLIC_WARM_STARTS if USES_PUBLIC else _LEAN_WARM_STARTS


def solve_simplex(M, A, B, idx, max_iter, plans, init=None):
    """Solve the problems ``idx`` of a chunk with the network simplex.

    Parameters
    ----------
    M : ndarray of shape (c, n, m)
        The chunk's float64 costs.
    A, B : ndarray of shape (c, n) and (c, m)
        The chunk's marginals.
    idx : ndarray of int
        The problems to solve.
    max_iter : int
        Iteration limit per problem.
    plans : NoPlans
        The sink that receives the plans, and the dual potentials if it
        keeps them.
    init : tuple of ndarray of shape (c, n) and (c, m), default=None
        Dual potentials to start each problem from (a warm start).

    Returns
    -------
    cost : ndarray of shape (len(idx),)
        The optimal costs.
    converged : ndarray of shape (len(idx),), dtype=bool
        False where ``max_iter`` was reached.
    """
    cost = np.empty(idx.size)
    converged = np.empty(idx.size, dtype=bool)
    duals = plans.duals
    for j, i in enumerate(idx.tolist()):
        start = None if init is None else (init[0][i], init[1][i])
        G, cost[j], converged[j], u, v = solve_one(A[i], B[i], M[i], max_iter, start)
        plans.put_dense(i, G)
        if duals is not None:
            duals.put(i, *finish_duals(u, v, A[i], B[i], M[i]))
    return cost, converged
