"""The driver: a batch, or pairs of samples, to chunks to one result.

It sits between the solvers and the public functions and estimators, each of
which validates its input, builds a :class:`~skemd._options.SolverOptions`
and calls one function here: :func:`solve_batch`, :func:`iter_results` or
:func:`solve_pairs`. The driver runs the method's ``prepare``, sizes the
chunks from the registry, joins what the chunks return and emits one
warning for the problems that failed.
"""

import dataclasses
import functools
import os

import numpy as np
from scipy import sparse

from ._engine import chunk_bounds, map_chunks, shares_memory
from ._ground import line_emd, pair_problems
from ._solvers import solve_chunk
from ._warnings import warn_failures


@dataclasses.dataclass(frozen=True)
class EMDResult:
    """The result of :func:`emd_batch`: distances, flags and plans.

    Parameters
    ----------
    distance : ndarray of shape (k,)
        The optimal cost ``<T_i, M_i>`` of every problem.
    converged : ndarray of shape (k,), dtype=bool
        False where the solver stopped at ``max_iter`` before optimality, or
        where the cost is not finite.
    plan : ndarray of shape (k, n, m), csr_array of shape (k, n * m), list or None
        The optimal transport plans, when asked for: dense, sparse (one
        flattened plan per row), or a list for a ragged batch.
    dual_a : ndarray of shape (k, n), list or None
        Optimal dual potentials of the sources, when asked for
        (``return_duals``); a list for a ragged batch.
    dual_b : ndarray of shape (k, m), list or None
        Optimal dual potentials of the targets, as ``dual_a``. Together they
        certify each converged distance: ``a @ dual_a[i] + b @ dual_b[i]``
        equals it and ``dual_a[i][:, None] + dual_b[i][None, :] <= M[i]``, up
        to rounding.

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
    dual_a: object = None
    dual_b: object = None


def check_result_fits(M, options):
    """Refuse, before the input is read, a result larger than this machine's RAM.

    Parameters
    ----------
    M : array-like
        The costs; only the shape of a (k, n, m) array is read.
    options : SolverOptions
        The plan format asked for.

    Raises
    ------
    ValueError
        If the distances and plans would not fit in physical memory.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._driver import check_result_fits
    >>> from skemd._options import SolverOptions
    >>> huge = np.broadcast_to(np.ones((1, 1, 1)), (10**6, 1000, 1000))
    >>> check_result_fits(huge, SolverOptions.build(return_plan="dense"))
    Traceback (most recent call last):
    ...
    ValueError: The dense plans of 1000000 problems of 1000x1000 take 8e+12 bytes, ...
    >>> check_result_fits(huge, SolverOptions.build())
    """
    shape = getattr(M, "shape", None)
    if shape is None or len(shape) != 3:
        return
    k, n, m = shape
    # Distances and flags; sparse plans hold n + m slots of an index and a
    # value per problem, twice while they are joined.
    needed = {None: 0, "dense": 8 * n * m, "sparse": 32 * (n + m)}[options.plan]
    needed = k * (9 + needed)
    if needed > _physical_memory():
        plans = f"{options.plan} plans" if options.plan else "distances"
        raise ValueError(
            f"The {plans} of {k} problems of {n}x{m} take {needed:.0e} bytes, more "
            "than this machine's memory; ask for sparse plans or no plans, or "
            "stream the results with iter_emd_batch."
        )


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return np.inf


def check_problems(batch, options):
    """Raise, before anything is solved, if the method cannot solve a problem.

    Parameters
    ----------
    batch : ProblemBatch
        The validated problems.
    options : SolverOptions
        The method and its parameters.

    Raises
    ------
    ValueError
        From the method's ``check``, naming the problem.
    """
    options.spec.check(batch, options)


def solve_batch(batch, options, out=None):
    """Solve a validated :class:`~skemd._validation.ProblemBatch`.

    Parameters
    ----------
    batch : ProblemBatch
        The problems.
    options : SolverOptions
        How to solve them.
    out : ndarray of shape (k,), default=None
        Where to write the distances; see :func:`skemd.emd_batch`.

    Returns
    -------
    result : EMDResult
        Distances, flags and plans, in the format ``options.plan``.
    """
    check_problems(batch, options)
    k = len(batch)
    distance = _check_out(out, k)
    converged = np.empty(k, dtype=bool)
    dense = None
    if options.plan == "dense" and not batch.ragged:
        dense = np.zeros(batch.costs.shape)
    gathered, dual_a, dual_b = [], [], []
    for (start, stop), chunk in _solve_chunks(batch, options, dense=dense):
        distance[start:stop] = chunk.distance
        converged[start:stop] = chunk.converged
        if chunk.plan is not None:
            gathered.append(chunk.plan)
        if options.duals:
            dual_a.append(chunk.dual_a)
            dual_b.append(chunk.dual_b)
    finite = np.isfinite(distance)
    warn_failures(converged, finite, options, lambda i: batch.costs[i])
    plan = dense if dense is not None else _join_plans(gathered, options.plan, batch)
    duals = (None, None)
    if options.duals:
        duals = (_join_duals(dual_a, batch, 1), _join_duals(dual_b, batch, 2))
    return EMDResult(distance, converged, plan, *duals)


def iter_results(batch, options, *, bounds=None, ordered=True, on_chunk=None):
    """Check ``batch`` now, then solve it chunk by chunk as a generator.

    Parameters
    ----------
    batch : ProblemBatch
        The problems.
    options : SolverOptions
        How to solve them.
    bounds : list of tuple of int, default=None
        The ``(start, stop)`` chunks to solve; None sizes them from the
        options and the registry.
    ordered : bool, default=True
        Yield in the order of ``bounds``, or as chunks finish.
    on_chunk : callable, default=None
        ``on_chunk(rows, result)``, run by the worker that solved a chunk.

    Returns
    -------
    chunks : generator of tuple of (slice, EMDResult)
        Each chunk's problems and their results. After the last, one warning
        covers the problems that failed.
    """
    check_problems(batch, options)
    task = functools.partial(_solve_and_hand_over, on_chunk=on_chunk)
    chunks = _solve_chunks(batch, options, task=task, bounds=bounds, ordered=ordered)
    return _gather_flags(chunks, batch, options)


def _gather_flags(chunks, batch, options):
    """Yield the chunks' results; then warn once about those that failed."""
    converged, finite = [], []
    for (start, stop), result in chunks:
        converged.append(result.converged)
        finite.append(np.isfinite(result.distance))
        yield slice(start, stop), result
    if converged:
        converged, finite = np.concatenate(converged), np.concatenate(finite)
        warn_failures(converged, finite, options, lambda i: batch.costs[i])


def _solve_and_hand_over(part, options, *, rows, on_chunk):
    """Solve one chunk, in the worker, and hand it to ``on_chunk`` there."""
    chunk = solve_chunk(part, options)
    plan = chunk.plan
    if options.plan == "sparse" and not part.ragged:
        plan = _join_plans([plan], "sparse", part)
    result = EMDResult(
        chunk.distance, chunk.converged, plan, chunk.dual_a, chunk.dual_b
    )
    if on_chunk is not None:
        on_chunk(rows, result)
    return result


def solve_pairs(left, right, pairs, space, options):
    """EMD between ``left[i]`` and ``right[j]`` for each row ``(i, j)`` of pairs.

    Parameters
    ----------
    left, right : Samples
        Histograms (with a :class:`~skemd._ground.HistogramSpace`) or point
        clouds (``space`` is a metric name), with the masses to solve.
    pairs : ndarray of shape (n_pairs, 2)
        Indices into ``left`` and ``right``.
    space : HistogramSpace or str
        The histograms' ground space, or the clouds' metric.
    options : SolverOptions
        How to solve them (no plans).

    Returns
    -------
    result : EMDResult
        The EMD of each pair, and whether it converged.
    """
    spec = options.spec
    line = getattr(space, "line", None)
    if line is not None and spec.closed_forms:
        distance = line_emd(left.data, right.data, pairs, line)
        return EMDResult(distance, np.ones(len(pairs), dtype=bool))
    distance = np.empty(len(pairs))
    converged = np.ones(len(pairs), dtype=bool)
    if len(pairs):
        first = pair_problems(left, right, pairs[:1], space, options)  # checked
        options = spec.prepare(first, options)
    cells = left.size * right.size
    chunks = map_chunks(
        _solve_pair_chunk,
        pairs,
        _bounds(len(pairs), cells, options),
        n_jobs=options.n_jobs,
        verbose=options.verbose,
        unit="pairs",
        options=options,
        left=left,
        right=right,
        space=space,
    )
    for (start, stop), result in chunks:
        distance[start:stop] = result.distance
        converged[start:stop] = result.converged

    def costs(i):
        return pair_problems(left, right, pairs[i : i + 1], space).costs[0]

    warn_failures(converged, np.isfinite(distance), options, costs, pairs)
    return EMDResult(distance, converged)


def _solve_pair_chunk(pairs, *, left, right, space, options):
    return solve_chunk(pair_problems(left, right, pairs, space, options), options)


def _solve_chunks(batch, options, *, dense=None, task=None, bounds=None, ordered=True):
    """Yield ``((start, stop), result)`` as the chunks of ``batch`` are solved.

    ``dense``, a zeroed (k, n, m) array, receives dense plans in place of the
    chunks' results. ``task(part, options, rows=...)`` replaces
    :func:`solve_chunk` as what a worker runs on a chunk. Each chunk's
    memmapped costs are released once it is solved, so a batch larger than
    memory streams through.
    """
    options = options.spec.prepare(batch, options)
    if bounds is None:
        bounds = _bounds(len(batch), _mean_cells(batch), options)
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
        n_jobs=options.n_jobs,
        verbose=options.verbose,
        ordered=ordered,
        chunk_kwargs=chunk_kwargs,
        options=options,
    )
    for (start, stop), chunk in chunks:
        batch[start:stop].release()
        if dense is not None and not in_place:
            dense[start:stop] = chunk.plan
        if dense is not None:
            chunk = dataclasses.replace(chunk, plan=None)
        yield (start, stop), chunk


def _bounds(k, cells, options):
    """The chunks of k problems of ``cells`` cost cells, sized for the method."""
    spec = options.spec
    return chunk_bounds(
        k,
        n_jobs=options.n_jobs,
        batch_size=options.batch_size,
        cells_per_problem=spec.chunk_cost * cells,
        min_cells=spec.min_chunk_cells,
    )


def _mean_cells(batch):
    if not batch.ragged:
        return max(1, batch.costs.shape[1] * batch.costs.shape[2])
    return max(1, sum(M.size for M in batch.costs) // max(1, len(batch)))


def _check_out(out, k):
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


def _join_duals(parts, batch, axis):
    """Join the chunks' potentials: a list for a ragged batch, else one array."""
    if batch.ragged:
        return [u for part in parts for u in part]
    if not parts:
        return np.empty((0, batch.costs.shape[axis]))
    return np.concatenate(parts)


def _join_plans(gathered, plan_format, batch):
    """Join the chunks' plans: lists for ragged batches, else one CSR array."""
    if plan_format is None:
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
