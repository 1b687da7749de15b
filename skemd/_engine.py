"""Chunked parallel execution over a batch of problems.

Problems are grouped into contiguous chunks and each chunk is one joblib task:
one task per problem costs more in dispatch than a small problem costs to
solve. Tasks go through :class:`sklearn.utils.parallel.Parallel`, which
honours ``n_jobs``, ``joblib.parallel_config`` and sklearn's global config.
Threads are preferred because POT's compiled solver releases the GIL; any
backend the caller configures is used instead. A progress bar, when asked
for, advances here as the chunks' results arrive.
"""

import math
from contextlib import closing

from joblib import effective_n_jobs
from joblib.parallel import get_active_backend
from sklearn.utils.parallel import Parallel, delayed

from ._progress import joblib_verbosity, progress_bar

# More chunks than workers balances uneven problems; a cap on the cells of a
# chunk (8 MB of float64 costs) bounds the memory a chunk takes while it is in
# flight, which is what lets a memmapped batch stream.
_CHUNKS_PER_WORKER = 4
_MAX_CHUNK_CELLS = 1 << 20


def chunk_bounds(
    k, *, n_jobs=None, batch_size="auto", cells_per_problem=1, min_cells=0
):
    """Split ``range(k)`` into contiguous ``(start, stop)`` chunks.

    Parameters
    ----------
    k : int
        Number of problems.
    n_jobs : int, default=None
        As in joblib; used by ``batch_size="auto"`` to size the chunks.
    batch_size : int or "auto", default="auto"
        Problems per chunk. "auto" makes 4 chunks per worker (one chunk when
        serial), capped so that a chunk holds at most about a million cost
        cells.
    cells_per_problem : int, default=1
        The mean ``n * m`` of a problem, for the cap.
    min_cells : int, default=0
        With "auto", the fewest cells of a chunk (except the last), for
        solvers that run Python code per step of a whole chunk: a smaller
        chunk would spend its time in that code, holding the GIL.

    Returns
    -------
    bounds : list of tuple of int
        The chunks' start and stop indices.

    Examples
    --------
    >>> from skemd._engine import chunk_bounds
    >>> chunk_bounds(10, batch_size=4)
    [(0, 4), (4, 8), (8, 10)]
    >>> len(chunk_bounds(1000, n_jobs=2))
    8
    >>> len(chunk_bounds(1000, n_jobs=2, cells_per_problem=100, min_cells=50_000))
    2
    """
    if batch_size == "auto":
        workers = effective_n_jobs(n_jobs)
        n_chunks = 1 if workers == 1 else _CHUNKS_PER_WORKER * workers
        batch_size = min(
            max(math.ceil(k / n_chunks), math.ceil(min_cells / cells_per_problem)),
            max(1, _MAX_CHUNK_CELLS // cells_per_problem),
        )
    batch_size = max(1, batch_size)
    return [(start, min(start + batch_size, k)) for start in range(0, k, batch_size)]


def shares_memory():
    """Whether joblib tasks will run in this process (threads or sequential).

    Mirrors the backend choice of ``Parallel(prefer="threads")``: the backend
    set through :func:`joblib.parallel_config`, or threads by default.

    Returns
    -------
    shared : bool
        True when tasks can write into the caller's arrays.

    Examples
    --------
    >>> import joblib
    >>> from skemd._engine import shares_memory
    >>> shares_memory()
    True
    >>> with joblib.parallel_config(backend="loky"):
    ...     shares_memory()
    False
    """
    backend, _ = get_active_backend(prefer="threads")
    return bool(getattr(backend, "supports_sharedmem", False))


def map_chunks(
    solve,
    batch,
    bounds,
    *,
    n_jobs=None,
    verbose=0,
    unit="problems",
    chunk_kwargs=None,
    ordered=True,
    **kwargs,
):
    """Run ``solve(batch[start:stop], **kwargs)`` for each chunk, in parallel.

    Each task receives a slice of the batch: a view on the threading backend,
    and only that slice's data on process or distributed backends (where
    joblib's loky backend sends a memmap's file name instead, and its dask
    backend scatters each slice once rather than embedding it in the graph).
    With ``verbose``, a progress bar counts the chunks' problems as their
    results arrive here, whatever the backend, and closes with the generator.

    Parameters
    ----------
    solve : callable
        The chunk solver.
    batch : ProblemBatch
        The validated problems.
    bounds : list of tuple of int
        The chunks, from :func:`chunk_bounds`.
    n_jobs : int, default=None
        Passed unchanged to :class:`sklearn.utils.parallel.Parallel`.
    verbose : int or bool, default=0
        1 shows a progress bar on stderr; 2 and more also joblib's messages
        (see :func:`~skemd._progress.joblib_verbosity`).
    unit : str, default="problems"
        What the progress bar counts.
    chunk_kwargs : callable, default=None
        ``chunk_kwargs(start, stop)`` gives extra keyword arguments for one
        chunk's call, such as a view of an output array.
    ordered : bool, default=True
        Yield in the order of ``bounds``; False yields each chunk as soon as
        it finishes.
    **kwargs : dict
        Passed to ``solve``.

    Yields
    ------
    bounds, result : tuple
        The chunk's ``(start, stop)`` and what ``solve`` returned.

    Examples
    --------
    >>> from skemd._engine import map_chunks
    >>> list(map_chunks(sum, [1, 2, 3, 4], [(0, 3), (3, 4)]))
    [((0, 3), 6), ((3, 4), 4)]
    """
    if not bounds:
        return
    total = sum(stop - start for start, stop in bounds)
    chunks = _dispatch(
        solve,
        batch,
        bounds,
        n_jobs=n_jobs,
        verbose=joblib_verbosity(verbose),
        extra=chunk_kwargs or (lambda start, stop: {}),
        ordered=ordered,
        kwargs=kwargs,
    )
    # Closing this generator early closes joblib's (which cancels the chunks
    # not yet started) and then the bar.
    with progress_bar(total, verbose=verbose, unit=unit) as bar, closing(chunks):
        for (start, stop), result in chunks:
            bar.update(stop - start)
            yield (start, stop), result


def _dispatch(solve, batch, bounds, *, n_jobs, verbose, extra, ordered, kwargs):
    """Yield each chunk's bounds and result, solved here or through joblib."""
    if len(bounds) == 1 and not verbose and shares_memory():
        # One chunk needs no dispatch, and joblib's generators poll for it.
        (start, stop) = bounds[0]
        yield bounds[0], solve(batch[start:stop], **kwargs, **extra(start, stop))
        return
    # A chunk is already a worthwhile task: joblib must not batch chunks
    # together, and dispatching one chunk per free worker keeps few chunks'
    # data in flight (it is what a process or cluster backend holds in memory).
    parallel = Parallel(
        n_jobs=n_jobs,
        prefer="threads",
        verbose=verbose,
        return_as="generator" if ordered else "generator_unordered",
        batch_size=1,
        pre_dispatch="n_jobs",
    )
    yield from parallel(
        delayed(_solve_tagged)(
            solve, (start, stop), batch[start:stop], **kwargs, **extra(start, stop)
        )
        for start, stop in bounds
    )


def _solve_tagged(solve, bounds, part, **kwargs):
    return bounds, solve(part, **kwargs)
