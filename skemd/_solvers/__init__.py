"""Solver kernels: each solves the problems of one chunk.

A kernel ``kernel(M, A, B, idx, max_iter, plans)`` solves the problems ``idx``
of a chunk (float64 costs ``M``, marginal rows ``A`` and ``B``), returns their
costs and convergence flags, and hands each plan to the sink ``plans`` in the
form it has (see ``_plans``). ``solve_chunk`` picks the kernel per problem
(assignment, network simplex) or per call (Sinkhorn) and the sink (none,
dense, sparse), so a dense plan is only built where dense plans were asked for.
"""

import functools
import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .._validation import ProblemBatch
from ._assignment import (
    ASSIGNMENT_MAX_N,
    assignment_eligible,
    assignment_one,
    solve_assignment,
)
from ._plans import SINKS, NoPlans
from ._simplex import public_one, simplex_one, solve_public, solve_simplex
from ._sinkhorn import solve_sinkhorn

#: The kernels ``solve_chunk`` can be forced onto; "auto" picks per problem.
ROUTES = {
    "simplex": solve_simplex,
    "public": solve_public,
    "assignment": solve_assignment,
}


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk returns.

    ``plan`` is None (not asked for, or written into ``out``), an ndarray of
    shape (c, n, m), a list of per-problem plans (ragged), or for sparse
    plans of a dense batch a ``(counts, flat_indices, values)`` triple.
    """

    distance: np.ndarray
    converged: np.ndarray
    plan: object = None


def solve_chunk(
    batch,
    *,
    plan=None,
    out=None,
    max_iter=100_000,
    route="auto",
    assignment_max_n=ASSIGNMENT_MAX_N,
    method="exact",
    reg=None,
    tol=1e-9,
):
    """Solve every problem of ``batch`` serially.

    Parameters
    ----------
    batch : ProblemBatch
        A validated chunk.
    plan : {None, "dense", "sparse"}, default=None
        Which plans to return.
    out : ndarray of shape (c, n, m), default=None
        A zeroed array to write dense plans into, in place of returning them.
    max_iter : int, default=100_000
        Network simplex iteration limit per problem.
    route : {"auto", "simplex", "public", "assignment"}, default="auto"
        "auto" uses the assignment solver where it is exact (uniform equal
        marginals, n == m, n small enough to win) and the network simplex
        elsewhere. The others force one kernel; "assignment" is only exact on
        problems that "auto" would send there.
    assignment_max_n : int, default=ASSIGNMENT_MAX_N
        With "auto", the largest n solved as an assignment; see
        :func:`choose_assignment_max_n`.
    method : {"exact", "sinkhorn"}, default="exact"
        "sinkhorn" solves the entropic problem instead and ignores ``route``.
    reg : float, default=None
        The entropic regularisation, for "sinkhorn".
    tol : float, default=1e-9
        The marginal tolerance, for "sinkhorn".

    Returns
    -------
    result : ChunkResult
        The chunk's distances, convergence flags and plans.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._validation import check_batch
    >>> from skemd._solvers import solve_chunk
    >>> M = np.array([[[0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]])
    >>> res = solve_chunk(check_batch(M), plan="dense")
    >>> res.distance
    array([0., 0.])
    >>> res.plan[1]
    array([[0. , 0.5],
           [0.5, 0. ]])
    """
    if batch.ragged:
        return _solve_ragged(
            batch, plan, max_iter, route, method, reg, tol, assignment_max_n
        )
    M = np.ascontiguousarray(batch.costs, dtype=np.float64)
    c, n, m = M.shape
    A, B = _marginal_rows(batch.a, c, n), _marginal_rows(batch.b, c, m)
    distance = np.empty(c)
    converged = np.empty(c, dtype=bool)
    plans = SINKS[plan](c, n, m, out)
    if method == "sinkhorn":
        kernel = functools.partial(solve_sinkhorn, reg=reg, tol=tol)
        routes = [(kernel, np.arange(c))]
    else:
        routes = _kernels(batch, route, assignment_max_n)
    for kernel, idx in routes:
        distance[idx], converged[idx] = kernel(M, A, B, idx, max_iter, plans)
    return ChunkResult(distance, converged, plans.result())


def choose_assignment_max_n(batch):
    """Return the largest n to solve as assignments in this batch.

    Up to :data:`ASSIGNMENT_MAX_N` the assignment solver always wins. For
    larger uniform square problems, both exact solvers are timed on the
    batch's first problem and the faster one is used for the whole batch.
    Both are exact: only the choice among equally optimal plans can differ.

    Parameters
    ----------
    batch : ProblemBatch
        The validated batch.

    Returns
    -------
    max_n : int
        :data:`ASSIGNMENT_MAX_N`, or n if the assignment solver won.
    """
    if batch.ragged or len(batch) == 0:
        return ASSIGNMENT_MAX_N
    _, n, m = batch.costs.shape
    first = batch[:1]
    if n <= ASSIGNMENT_MAX_N or not assignment_eligible(first.a, first.b, n, m, n):
        return ASSIGNMENT_MAX_N
    M = np.ascontiguousarray(first.costs, dtype=np.float64)
    w = np.full((1, n), 1.0 / n)
    timings = []
    for kernel in (solve_assignment, solve_simplex):
        start = time.perf_counter()
        kernel(M, w, w, np.zeros(1, dtype=np.intp), 10**9, NoPlans(1, n, m))
        timings.append(time.perf_counter() - start)
    return n if timings[0] < timings[1] else ASSIGNMENT_MAX_N


def _marginal_rows(w, c, size):
    """Return the chunk's marginal as (c, size) rows (a view when shared)."""
    return np.broadcast_to(np.full(size, 1.0 / size) if w is None else w, (c, size))


def _kernels(batch, route, assignment_max_n):
    c, n, m = batch.costs.shape
    if route != "auto":
        return [(ROUTES[route], np.arange(c))]
    eligible = assignment_eligible(batch.a, batch.b, n, m, assignment_max_n)
    eligible = np.broadcast_to(eligible, c)
    return [
        (solve_assignment, np.flatnonzero(eligible)),
        (solve_simplex, np.flatnonzero(~eligible)),
    ]


#: One-problem solvers behind the routes, for ragged batches.
ONE_PROBLEM = {
    "simplex": simplex_one,
    "public": public_one,
    "assignment": assignment_one,
}


def _solve_ragged(batch, plan, max_iter, route, method, reg, tol, assignment_max_n):
    """Solve a ragged chunk one problem at a time."""
    k = len(batch)
    distance = np.empty(k)
    converged = np.empty(k, dtype=bool)
    plans = []
    for i, M in enumerate(batch.costs):
        n, m = M.shape
        a = np.full(n, 1.0 / n) if batch.a is None else batch.a[i]
        b = np.full(m, 1.0 / m) if batch.b is None else batch.b[i]
        if method == "sinkhorn":
            one = ProblemBatch(M[None], a[None], b[None])
            res = solve_chunk(
                one,
                plan=plan and "dense",
                max_iter=max_iter,
                method=method,
                reg=reg,
                tol=tol,
            )
            G, distance[i], converged[i] = res.plan, res.distance[0], res.converged[0]
            G = None if G is None else G[0]
        else:
            name = route
            if route == "auto":
                square = n == m <= assignment_max_n
                name = "assignment" if square and _uniform_equal(a, b) else "simplex"
            G, distance[i], converged[i] = ONE_PROBLEM[name](a, b, M, max_iter)
        if plan == "dense":
            plans.append(G)
        elif plan == "sparse":
            plans.append(sparse.csr_array(G))
    return ChunkResult(distance, converged, plans if plan else None)


def _uniform_equal(a, b):
    return a.min() == a.max() == b.min() == b.max()
