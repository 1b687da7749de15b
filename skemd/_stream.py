"""Streaming: solve a batch chunk by chunk and hand each chunk over as it is done."""

from sklearn.utils._param_validation import validate_params

from ._driver import iter_results
from ._options import BATCH_CONSTRAINTS, SolverOptions, document_solver_parameters
from ._solvers import DEFAULT_METHOD
from ._validation import check_batch


@validate_params(
    {
        **BATCH_CONSTRAINTS,
        "chunks": [list, None],
        "ordered": ["boolean"],
        "on_chunk": [callable, None],
    },
    prefer_skip_nested_validation=True,
)
@document_solver_parameters
def iter_emd_batch(
    M,
    a=None,
    b=None,
    *,
    return_plan=False,
    return_duals=False,
    potentials_init=None,
    method=DEFAULT_METHOD,
    reg=None,
    tol=None,
    max_iter=None,
    method_params=None,
    n_jobs=None,
    batch_size="auto",
    verbose=0,
    chunks=None,
    ordered=True,
    on_chunk=None,
):
    """Solve k optimal transport problems, yielding results chunk by chunk.

    The streaming form of :func:`emd_batch`: the same problems, solvers and
    parameters, but each chunk's results are handed over as soon as they are
    ready, so that nothing of size k (let alone k plans) needs to be held at
    once. With a read-only memmapped ``M``, each chunk's pages are released
    once it is solved, so a batch much larger than memory streams through.
    All inputs are validated before the first chunk is solved.

    Parameters
    ----------
    M : array-like of shape (k, n, m) or sequence of array-like of shape (n_i, m_i)
        The cost matrices, as in :func:`emd_batch`.
    a : array-like of shape (n,) or (k, n), default=None
        Source weights, as in :func:`emd_batch`.
    b : array-like of shape (m,) or (k, m), default=None
        Target weights, as in :func:`emd_batch`.
    return_plan : bool, "dense" or "sparse", default=False
        Plans per chunk: an ndarray of shape (c, n, m), or a
        :class:`scipy.sparse.csr_array` of shape (c, n * m) for "sparse".
    return_duals : bool, default=False
        Dual potentials per chunk, ``dual_a`` of shape (c, n) and ``dual_b``
        of shape (c, m), as in :func:`emd_batch`.
    potentials_init : tuple or list of two array-like, default=None
        Dual potentials to start the network simplex from, as in
        :func:`emd_batch`.
    %(solver_parameters)s
    n_jobs : int, default=None
        Number of parallel jobs, as in :func:`emd_batch`.
    batch_size : int or "auto", default="auto"
        Problems per chunk when ``chunks`` is None.
    %(verbose)s
    chunks : list of tuple of int, default=None
        The ``(start, stop)`` chunks to solve, for instance those a resumed
        run has not done yet. None splits all k problems by ``batch_size``.
    ordered : bool, default=True
        Yield the chunks in order. False yields each as soon as it finishes
        (joblib's ``return_as="generator_unordered"``), which is what a
        consumer that checkpoints wants.
    on_chunk : callable, default=None
        ``on_chunk(rows, result)`` is called by the worker that solved a
        chunk, as soon as it has, with what the generator will yield for it:
        for instance to save it, so that an interrupted run loses at most the
        chunks being solved. It must be picklable on process and distributed
        backends, and thread-safe on threads.

    Returns
    -------
    chunks : generator of tuple of (slice, EMDResult)
        For each chunk, the slice of problems it covers and its results.
        After the last chunk, one :class:`~sklearn.exceptions.ConvergenceWarning`
        is emitted if any problem reached ``max_iter`` or has a non-finite
        cost.

    Raises
    ------
    ValueError
        As :func:`emd_batch` does, and if a chunk is not within ``range(k)``;
        raised by this call, before any solving.

    See Also
    --------
    emd_batch : All results at once, or distances into a preallocated ``out``.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd import emd_batch, iter_emd_batch
    >>> M = np.random.default_rng(0).random((10, 4, 4))
    >>> distance = np.empty(10)
    >>> for rows, res in iter_emd_batch(M, return_plan="sparse", batch_size=4):
    ...     distance[rows] = res.distance
    ...     print(rows, res.plan.shape)
    slice(0, 4, None) (4, 16)
    slice(4, 8, None) (4, 16)
    slice(8, 10, None) (2, 16)
    >>> bool(np.array_equal(distance, emd_batch(M).distance))
    True
    """
    options = SolverOptions.from_params(locals())
    batch = check_batch(
        M, a, b, potentials=potentials_init, equal_mass=options.spec.needs_equal_mass
    )
    if chunks is not None:
        chunks = _check_chunks(chunks, len(batch))
    return iter_results(
        batch, options, bounds=chunks, ordered=ordered, on_chunk=on_chunk
    )


def _check_chunks(chunks, k):
    bounds = []
    for chunk in chunks:
        start, stop = (int(i) for i in chunk)
        if not 0 <= start < stop <= k:
            raise ValueError(
                f"Each chunk must be a (start, stop) with 0 <= start < stop <= "
                f"k={k}; got {tuple(chunk)}."
            )
        bounds.append((start, stop))
    return bounds
