"""Exact network simplex through POT, one problem at a time.

Two routes reach the same compiled solver. The lean route calls POT's private
``ot.lp.emd_wrap.emd_c`` directly and skips ``ot.emd``'s Python wrapper (about
80 µs a call, most of the cost for small problems). It is used only when the
installed POT exposes a signature we know; otherwise the public ``ot.emd`` is
called, which is slower but always correct.
"""

import inspect

import numpy as np
import ot

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
    try:
        parameters = tuple(inspect.signature(emd_c).parameters)
    except (TypeError, ValueError):
        return None
    return emd_c if parameters[:5] == _KNOWN_EMD_C_PARAMETERS else None


_EMD_C = find_lean_solver()


def _solve_lean(a, b, M, max_iter):
    plan, cost, _, _, code = _EMD_C(a, b, M, max_iter, 1)
    return plan, cost, code == _OPTIMAL


def _solve_public(a, b, M, max_iter):
    plan, log = ot.emd(a, b, M, numItermax=max_iter, log=True)
    return plan, log["cost"], log["result_code"] == _OPTIMAL


def _simplex_route(solve):
    """Wrap a dense solver into a route: ``(a, b, M, max_iter, support)``.

    A route returns ``(cost, converged, support)``, where ``support`` is the
    plan's nonzeros as ``(rows, cols, values)`` when asked for, else None.

    POT 0.9.7's network simplex reports some feasible problems with negative
    costs as infeasible and returns a zero plan (for example all costs -2 on a
    2x3 problem), so such costs are shifted by their minimum: that leaves the
    optimal plans unchanged and shifts the optimal cost by
    ``min(M) * sum(plan)``.
    """

    def route(a, b, M, max_iter, support=False):
        low = M.min()
        if low < 0:
            plan, cost, converged = solve(a, b, M - low, max_iter)
            cost += low * plan.sum()
        else:
            plan, cost, converged = solve(a, b, M, max_iter)
        if not support:
            return cost, converged, None
        rows, cols = np.nonzero(plan)
        return cost, converged, (rows, cols, plan[rows, cols])

    return route


solve_public = _simplex_route(_solve_public)
solve_lean = _simplex_route(_solve_lean) if _EMD_C is not None else None
solve_simplex = solve_lean or solve_public
