"""The public batch solver: ``emd_batch`` and its result."""

import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._engine import chunk_bounds, map_chunks, shares_memory
from ._solvers import ChunkResult, choose_assignment_max_n, solve_chunk
from ._validation import check_batch, check_method, iteration_limit

# How many failing problem indices a ConvergenceWarning lists.
_SHOWN_FAILURES = 10

# Below this many cells (costs and kernel), a Sinkhorn chunk's iterations are
# dominated by numpy's per-call overhead, under the GIL, and threads contend.
_SINKHORN_MIN_CELLS = 1 << 18


@dataclass(frozen=True)
class EMDResult:
    """The result of :func:`emd_batch`: distances, flags and plans.

    Parameters
    ----------
    distance : ndarray of shape (k,)
        The optimal cost ``<T_i, M_i>`` of every problem.
    converged : ndarray of shape (k,), dtype=bool
        False where the solver stopped at ``max_iter`` before optimality.
    plan : ndarray of shape (k, n, m), csr_array of shape (k, n * m), list or None
        The optimal transport plans, when asked for: dense, sparse (one
        flattened plan per row), or a list for a ragged batch.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd import emd_batch
    >>> res = emd_batch(np.ones((2, 3, 3)))
    >>> res.distance, res.converged, res.plan
    (array([1., 1.]), array([ True,  True]), None)
    """

    distance: np.ndarray
    converged: np.ndarray
    plan: object = None


#: Parameter constraints of the solver, shared by ``emd_batch`` and the
#: estimators.
SOLVER_CONSTRAINTS = {
    "method": [StrOptions({"exact", "sinkhorn"})],
    "reg": [Interval(Real, 0, None, closed="neither"), None],
    "tol": [Interval(Real, 0, None, closed="neither")],
    "max_iter": [Interval(Integral, 1, None, closed="left"), None],
    "n_jobs": [Integral, None],
    "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "verbose": ["verbose"],
}

#: Parameter constraints of the batch functions' problems and solver.
BATCH_CONSTRAINTS = {
    "M": ["array-like"],
    "a": ["array-like", None],
    "b": ["array-like", None],
    "return_plan": ["boolean", StrOptions({"dense", "sparse"})],
    **SOLVER_CONSTRAINTS,
}


@validate_params(
    {**BATCH_CONSTRAINTS, "out": [np.ndarray, None]},
    prefer_skip_nested_validation=True,
)
def emd_batch(
    M,
    a=None,
    b=None,
    *,
    return_plan=False,
    out=None,
    method="exact",
    reg=None,
    tol=1e-9,
    max_iter=None,
    n_jobs=None,
    batch_size="auto",
    verbose=0,
):
    """Solve k optimal transport (Earth Mover's Distance) problems.

    Every value equals ``ot.emd2(a_i, b_i, M[i])`` and every plan is optimal
    like ``ot.emd``'s. Problems are solved in chunks, in parallel through
    joblib; where marginals are uniform and equal and n == m, an exact
    assignment solver is used instead of the network simplex. With
    ``method="sinkhorn"``, the entropic problems are solved instead,
    vectorised over each chunk.

    Parameters
    ----------
    M : array-like of shape (k, n, m) or sequence of array-like of shape (n_i, m_i)
        The cost matrices. Any real dtype; a read-only memmap is read chunk by
        chunk and never copied whole. A sequence of matrices of different
        shapes is a ragged batch.
    a : array-like of shape (n,) or (k, n), default=None
        Source weights: shared by every problem (1-D) or one row per problem
        (2-D); a sequence of 1-D arrays for a ragged batch. None is uniform
        with mass 1. Zeros are allowed.
    b : array-like of shape (m,) or (k, m), default=None
        Target weights, as ``a``. The masses of ``a`` and ``b`` must agree
        within a relative tolerance of 1e-6; ``b`` is then rescaled to the
        mass of ``a``, as ``ot.emd`` does.
    return_plan : bool, "dense" or "sparse", default=False
        Whether to return the transport plans as well. True or "dense" gives
        an ndarray of shape (k, n, m). "sparse" gives a
        :class:`scipy.sparse.csr_array` of shape (k, n * m) whose row ``i`` is
        problem ``i``'s plan flattened row-major (``plan[[i]].toarray()
        .reshape(n, m)``); an optimal plan has at most n + m - 1 nonzeros, and
        no dense plan is built. For a ragged batch, a list of dense arrays or
        of CSR arrays of shape (n_i, m_i).
    out : ndarray of shape (k,), default=None
        A preallocated float64 array, such as a writable :class:`numpy.memmap`,
        that receives the distances as chunks finish; it is returned as
        ``distance``. See :func:`iter_emd_batch` to consume chunks as they
        come.
    method : {"exact", "sinkhorn"}, default="exact"
        "exact" solves the linear program (network simplex or assignment).
        "sinkhorn" solves the entropic problem with regularisation ``reg``;
        its ``distance`` is the linear part ``<T, M>`` of the entropic plan
        ``T``, as ``ot.sinkhorn2`` returns it. Small ``reg`` is stabilised
        automatically (see Notes).
    reg : float, default=None
        Entropic regularisation, > 0; needed by "sinkhorn", ignored by
        "exact" (so that a grid search can vary both).
    tol : float, default=1e-9
        For "sinkhorn": a problem stops when the 2-norm of its target-marginal
        violation is below ``tol`` (checked every 10 iterations, as POT does).
    max_iter : int, default=None
        Iteration limit per problem: network simplex pivots for "exact"
        (None means 100_000), Sinkhorn iterations for "sinkhorn" (None means
        1000). A problem that reaches it is flagged in ``converged`` and keeps
        the last plan found, as POT returns it.
    n_jobs : int, default=None
        Number of parallel jobs. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context; -1 means all processors.
    batch_size : int or "auto", default="auto"
        Problems per parallel task. "auto" makes about 4 tasks per worker.
    verbose : int, default=0
        Progress messages, as joblib prints them.

    Returns
    -------
    result : EMDResult
        ``distance`` of shape (k,), ``converged`` of shape (k,) and ``plan``
        (None unless ``return_plan``).

    Raises
    ------
    ValueError
        Before anything is solved, if a cost is not finite, a weight is
        negative, not finite or a weight vector sums to 0, the masses differ,
        or the shapes do not match. The message names the problem index.

    Warns
    -----
    ConvergenceWarning
        Once per call, if any problem reached ``max_iter``.

    Notes
    -----
    With "sinkhorn", a problem whose cost range over ``reg`` is at most 100
    runs plain Sinkhorn-Knopp scaling of ``exp(-(M - min M) / reg)``. The
    others run absorbed scaling: after one log-domain iteration, the dual
    potentials are folded into the kernel and plain scalings run on top of
    it, folded in again whenever they leave ``[1e-50, 1e50]``. A problem whose
    scalings still stop being finite is redone with the log-domain updates of
    POT's ``sinkhorn_log``. All three run the same iterates from POT's start,
    so they stop at the same iteration with the same result, up to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd import emd_batch
    >>> M = np.random.default_rng(0).random((100, 5, 4))
    >>> res = emd_batch(M, a=[0.1, 0.2, 0.3, 0.4, 0.0], return_plan=True)
    >>> res.distance.shape, res.plan.shape
    ((100,), (100, 5, 4))
    >>> bool(np.allclose(res.plan.sum(axis=2), [0.1, 0.2, 0.3, 0.4, 0.0]))
    True
    >>> sparse_plans = emd_batch(M, return_plan="sparse").plan
    >>> sparse_plans.shape, bool(sparse_plans[[0]].nnz <= 5 + 4 - 1)
    ((100, 20), True)
    >>> entropic = emd_batch(M, method="sinkhorn", reg=0.1)
    >>> bool((entropic.distance >= emd_batch(M).distance).all())
    True

    Distances can go straight into a preallocated array or memmap:

    >>> out = np.zeros(100)
    >>> emd_batch(M, out=out).distance is out
    True
    """
    check_method(method, reg, return_plan)
    batch = check_batch(M, a, b)
    return solve_batch(
        batch,
        return_plan=return_plan,
        out=out,
        method=method,
        reg=reg,
        tol=tol,
        max_iter=max_iter,
        n_jobs=n_jobs,
        batch_size=batch_size,
        verbose=verbose,
    )


def solve_batch(batch, *, return_plan=False, out=None, **solver):
    """Solve a validated :class:`ProblemBatch`; see :func:`emd_batch`."""
    k = len(batch)
    mode = plan_mode(return_plan)
    distance = check_out(out, k)
    converged = np.empty(k, dtype=bool)
    dense = None if mode != "dense" or batch.ragged else np.zeros(batch.costs.shape)
    gathered = []
    for (start, stop), chunk in solve_chunks(batch, mode=mode, dense=dense, **solver):
        distance[start:stop] = chunk.distance
        converged[start:stop] = chunk.converged
        if chunk.plan is not None:
            gathered.append(chunk.plan)
    warn_unconverged(converged, solver.get("max_iter"), solver.get("method", "exact"))
    plan = dense if dense is not None else join_plans(gathered, mode, batch)
    return EMDResult(distance, converged, plan)


def solve_chunks(
    batch,
    *,
    mode=None,
    dense=None,
    task=None,
    method="exact",
    reg=None,
    tol=1e-9,
    max_iter=None,
    n_jobs=None,
    batch_size="auto",
    verbose=0,
    bounds=None,
    ordered=True,
):
    """Yield ``((start, stop), result)`` as the chunks of ``batch`` are solved.

    ``dense``, a zeroed (k, n, m) array, receives dense plans in place of the
    chunks' results. ``task`` replaces :func:`solve_chunk` as what a worker
    runs on a chunk; it takes the same arguments and ``rows``, the chunk's
    slice. ``bounds`` (default: :func:`chunk_bounds`) says which chunks to
    solve; ``ordered=False`` yields them as they finish. Each chunk's
    memmapped costs are released once it is solved, so a batch larger than
    memory streams through.
    """
    max_iter = iteration_limit(method, max_iter)
    if bounds is None:
        # Sinkhorn keeps a kernel as large as the costs while it iterates, and
        # runs a few numpy calls per iteration of a whole chunk.
        sinkhorn = method == "sinkhorn"
        bounds = chunk_bounds(
            len(batch),
            n_jobs=n_jobs,
            batch_size=batch_size,
            cells_per_problem=(1 + sinkhorn) * _cells(batch),
            min_cells=_SINKHORN_MIN_CELLS if sinkhorn else 0,
        )
    # Threads write dense plans straight into the output; other backends
    # return them and they are copied in.
    in_place = dense is not None and shares_memory()

    def chunk_kwargs(start, stop):
        kwargs = {"out": dense[start:stop]} if in_place else {}
        return kwargs if task is None else {**kwargs, "rows": slice(start, stop)}

    chunks = map_chunks(
        solve_chunk if task is None else task,
        batch,
        bounds,
        n_jobs=n_jobs,
        verbose=verbose,
        ordered=ordered,
        chunk_kwargs=chunk_kwargs,
        plan=mode,
        max_iter=max_iter,
        method=method,
        reg=reg,
        tol=tol,
        assignment_max_n=choose_assignment_max_n(batch) if method == "exact" else 0,
    )
    for (start, stop), chunk in chunks:
        batch[start:stop].release()
        if dense is not None and not in_place:
            dense[start:stop] = chunk.plan
        if dense is not None:
            chunk = ChunkResult(chunk.distance, chunk.converged)
        yield (start, stop), chunk


def plan_mode(return_plan):
    """Map ``return_plan`` to a chunk plan mode: None, "dense" or "sparse"."""
    return {False: None, True: "dense"}.get(return_plan, return_plan)


def check_out(out, k):
    """Return ``out``, checked to hold k float64 distances, or a new array."""
    if out is None:
        return np.empty(k)
    if (
        not isinstance(out, np.ndarray)
        or out.shape != (k,)
        or out.dtype != np.float64
        or not out.flags.writeable
    ):
        raise ValueError(
            f"out must be a writable float64 ndarray of shape ({k},); got "
            f"{type(out).__name__} of shape {getattr(out, 'shape', None)} and dtype "
            f"{getattr(out, 'dtype', None)}."
        )
    return out


def join_plans(gathered, mode, batch):
    """Join the chunks' plans: lists for ragged batches, else one CSR array."""
    if mode is None:
        return None
    if batch.ragged:
        return [G for chunk in gathered for G in chunk]
    _, n, m = batch.costs.shape
    if not gathered:
        gathered = [(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))]
    counts, indices, values = map(np.concatenate, zip(*gathered, strict=True))
    indptr = np.concatenate([[0], np.cumsum(counts)])
    index_dtype = np.int32 if max(n * m, indptr[-1]) < 2**31 else np.int64
    return sparse.csr_array(
        (values, indices.astype(index_dtype), indptr.astype(index_dtype)),
        shape=(len(batch), n * m),
    )


def _cells(batch):
    if not batch.ragged:
        return max(1, batch.costs.shape[1] * batch.costs.shape[2])
    return max(1, sum(M.size for M in batch.costs) // max(1, len(batch)))


def warn_unconverged(converged, max_iter, method="exact"):
    """Emit one ConvergenceWarning naming the first problems that failed."""
    failed = np.flatnonzero(~converged)
    if failed.size == 0:
        return
    max_iter = iteration_limit(method, max_iter)
    shown = ", ".join(map(str, failed[:_SHOWN_FAILURES]))
    more = ", ..." if failed.size > _SHOWN_FAILURES else ""
    warnings.warn(
        f"{failed.size} of {converged.size} problems did not converge within "
        f"max_iter={max_iter} (indices {shown}{more}); their results are "
        "flagged in `converged`. Increase max_iter.",
        ConvergenceWarning,
        stacklevel=3,
    )
