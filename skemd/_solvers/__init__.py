"""Solver kernels: each solves one chunk of a validated batch.

A route solves one problem and returns ``(cost, converged, support)``, the
support being the plan's nonzeros ``(rows, cols, values)`` when asked for.
``solve_chunk`` picks a route per problem and gathers the plans in the form
asked for, so a dense plan is only ever built where dense plans were asked for.
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse

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
    """What one chunk returns.

    ``plan`` is None (not asked for, or written into ``out``), an ndarray of
    shape (c, n, m), a list of per-problem plans (ragged), or for sparse
    plans of a dense batch a ``(counts, flat_indices, values)`` triple.
    """

    distance: np.ndarray
    converged: np.ndarray
    plan: object = None


def solve_chunk(batch, *, plan=None, out=None, max_iter=100_000, route="auto"):
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
        elsewhere. The others force one route; "assignment" is only exact on
        problems that "auto" would send there.

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
    k = len(batch)
    distance = np.empty(k)
    converged = np.empty(k, dtype=bool)
    solvers = _route_per_problem(batch, route)
    plans = _PLAN_COLLECTORS[plan, batch.ragged](k, batch, out)
    for i in range(k):
        a, b, M = batch.problem(i)
        distance[i], converged[i], support = solvers[i](a, b, M, max_iter, plans.wanted)
        plans.add(i, M.shape, support)
    return ChunkResult(distance, converged, plans.result())


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


class _NoPlans:
    wanted = False

    def __init__(self, k, batch, out):
        pass

    def add(self, i, shape, support):
        pass

    def result(self):
        return None


class _DensePlans(_NoPlans):
    """Scatters each support into a zeroed (c, n, m) array, ``out`` if given."""

    wanted = True

    def __init__(self, k, batch, out):
        self.in_place = out is not None
        self.plans = out if self.in_place else np.zeros((k, *batch.costs.shape[1:]))

    def add(self, i, shape, support):
        rows, cols, values = support
        self.plans[i, rows, cols] = values

    def result(self):
        return None if self.in_place else self.plans


class _RaggedDensePlans(_NoPlans):
    wanted = True

    def __init__(self, k, batch, out):
        self.plans = []

    def add(self, i, shape, support):
        G = np.zeros(shape)
        rows, cols, values = support
        G[rows, cols] = values
        self.plans.append(G)

    def result(self):
        return self.plans


class _SparsePlans(_NoPlans):
    """Collects flat (row-major) indices and values, one CSR row per problem."""

    wanted = True

    def __init__(self, k, batch, out):
        self.counts = np.empty(k, dtype=np.int64)
        self.indices, self.values = [], []

    def add(self, i, shape, support):
        rows, cols, values = support
        self.counts[i] = rows.size
        self.indices.append(rows * shape[1] + cols)
        self.values.append(values)

    def result(self):
        if not self.values:
            return self.counts, np.empty(0, np.int64), np.empty(0)
        return self.counts, np.concatenate(self.indices), np.concatenate(self.values)


class _RaggedSparsePlans(_RaggedDensePlans):
    def add(self, i, shape, support):
        rows, cols, values = support
        self.plans.append(sparse.csr_array((values, (rows, cols)), shape=shape))


_PLAN_COLLECTORS = {
    (None, False): _NoPlans,
    (None, True): _NoPlans,
    ("dense", False): _DensePlans,
    ("dense", True): _RaggedDensePlans,
    ("sparse", False): _SparsePlans,
    ("sparse", True): _RaggedSparsePlans,
}
