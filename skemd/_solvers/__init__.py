"""Solver kernels: each solves one chunk of a validated batch.

``solve_chunk`` picks a route per problem and returns plain arrays, so that a
chunk's result pickles cheaply back from any joblib backend.
"""

from dataclasses import dataclass

import numpy as np

from ._assignment import assignment_eligible, solve_assignment
from ._simplex import solve_public, solve_simplex

#: The routes ``solve_chunk`` can be forced onto; "auto" picks per problem.
ROUTES = {
    "simplex": solve_simplex,
    "public": solve_public,
    "assignment": solve_assignment,
}


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk returns: per-problem costs, flags and (optional) plans."""

    distance: np.ndarray
    converged: np.ndarray
    plan: object = None


def solve_chunk(batch, *, return_plan=False, max_iter=100_000, route="auto"):
    """Solve every problem of ``batch`` serially.

    Parameters
    ----------
    batch : ProblemBatch
        A validated chunk.
    return_plan : bool, default=False
        Whether to return the transport plans.
    max_iter : int, default=100_000
        Network simplex iteration limit per problem.
    route : {"auto", "simplex", "public", "assignment"}, default="auto"
        "auto" uses the assignment solver where it is exact (uniform equal
        marginals, n == m, n small enough to win) and the network simplex
        elsewhere. The others force one route; "assignment" is only exact on
        problems that "auto" would send there.

    Returns
    -------
    result : ChunkResult
        ``plan`` is an ndarray of shape (k, n, m), a list for ragged chunks, or
        None.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._validation import check_batch
    >>> from skemd._solvers import solve_chunk
    >>> M = np.array([[[0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]])
    >>> solve_chunk(check_batch(M)).distance
    array([0., 0.])
    """
    k = len(batch)
    distance = np.empty(k)
    converged = np.empty(k, dtype=bool)
    solvers = _route_per_problem(batch, route)
    plan = allocate_plans(batch) if return_plan else None
    for i in range(k):
        a, b, M = batch.problem(i)
        G, distance[i], converged[i] = solvers[i](a, b, M, max_iter)
        if return_plan:
            plan[i] = G
    return ChunkResult(distance, converged, plan)


def _route_per_problem(batch, route):
    k = len(batch)
    if route != "auto":
        return [ROUTES[route]] * k
    if batch.ragged:
        eligible = [
            assignment_eligible(*batch.problem(i)[:2], *np.shape(batch.costs[i]))
            for i in range(k)
        ]
    else:
        _, n, m = batch.costs.shape
        eligible = np.broadcast_to(assignment_eligible(batch.a, batch.b, n, m), k)
    return [solve_assignment if e else solve_simplex for e in eligible]


def allocate_plans(batch):
    """Return an empty container for the batch's plans (array, or list if ragged)."""
    if batch.ragged:
        return [None] * len(batch)
    return np.empty(batch.costs.shape, dtype=np.float64)
