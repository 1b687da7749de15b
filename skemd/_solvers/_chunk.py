"""One chunk: turn a slice of the batch into arrays, solve it, collect plans.

This is what a worker runs. It prepares what every method's solver takes
(float64 costs and marginal rows, a plan sink) and calls the solver of
``options.method`` from the registry; a ragged chunk is solved one problem
at a time.
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ._plans import plan_sink
from ._registry import METHODS


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk returns.

    ``plan`` is None (not asked for, or written into ``out``), an ndarray of
    shape (c, n, m), a list of per-problem plans (ragged), or for sparse
    plans of a dense batch a ``(counts, flat_indices, values)`` triple.
    ``dual_a`` and ``dual_b`` are None (not asked for), ndarrays of shape
    (c, n) and (c, m), or lists for a ragged chunk. A problem whose cost is
    not finite is never flagged converged.
    """

    distance: np.ndarray
    converged: np.ndarray
    plan: object = None
    dual_a: object = None
    dual_b: object = None


def solve_chunk(chunk, options, out=None):
    """Solve every problem of ``chunk`` serially.

    Parameters
    ----------
    chunk : ProblemBatch
        A validated chunk.
    options : SolverOptions
        The method, its parameters and the plan format.
    out : ndarray of shape (c, n, m), default=None
        A zeroed array to write dense plans into, in place of returning them.

    Returns
    -------
    result : ChunkResult
        The chunk's distances, convergence flags and plans.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._options import SolverOptions
    >>> from skemd._validation import check_batch
    >>> from skemd._solvers import solve_chunk
    >>> M = np.array([[[0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]])
    >>> res = solve_chunk(check_batch(M), SolverOptions.build(return_plan=True))
    >>> res.distance
    array([0., 0.])
    >>> res.plan[1]
    array([[0. , 0.5],
           [0.5, 0. ]])
    """
    solve = METHODS[options.method].solve
    with np.errstate(over="ignore"):  # an overflowed cost is reported as such
        if chunk.ragged:
            distance, converged, plan, duals = _solve_ragged(chunk, options, solve)
        else:
            M = np.ascontiguousarray(chunk.costs, dtype=np.float64)
            sink = plan_sink(options.plan, *M.shape, out, duals=options.duals)
            init = _init_kwargs(chunk.potential_rows())
            distance, converged = solve(
                M, *chunk.marginal_rows(), sink, options, **init
            )
            plan = sink.result()
            duals = (sink.duals.u, sink.duals.v) if options.duals else (None, None)
    return ChunkResult(distance, converged & np.isfinite(distance), plan, *duals)


def _init_kwargs(init):
    """Starting potentials reach only the solvers of methods that take them."""
    return {} if init is None else {"init": init}


def _solve_ragged(chunk, options, solve):
    """Solve a ragged chunk one problem at a time; plans and duals come as lists."""
    k = len(chunk)
    distance = np.empty(k)
    converged = np.empty(k, dtype=bool)
    plans, dual_a, dual_b = [], [], []
    for i, M in enumerate(chunk.costs):
        n, m = M.shape
        A = np.full(n, 1.0 / n) if chunk.a is None else chunk.a[i]
        B = np.full(m, 1.0 / m) if chunk.b is None else chunk.b[i]
        sink = plan_sink(options.plan and "dense", 1, n, m, duals=options.duals)
        init = None
        if chunk.potentials is not None:
            init = tuple(p[i][None] for p in chunk.potentials)
        distance[i : i + 1], converged[i : i + 1] = solve(
            M[None], A[None], B[None], sink, options, **_init_kwargs(init)
        )
        if options.plan == "dense":
            plans.append(sink.result()[0])
        elif options.plan == "sparse":
            plans.append(sparse.csr_array(sink.result()[0]))
        if options.duals:
            dual_a.append(sink.duals.u[0])
            dual_b.append(sink.duals.v[0])
    duals = (dual_a, dual_b) if options.duals else (None, None)
    return distance, converged, plans if options.plan else None, duals
