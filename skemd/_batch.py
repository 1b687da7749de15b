"""The public batch solver, ``emd_batch``: k problems in, k results out."""

import numpy as np
from sklearn.utils._param_validation import validate_params

from ._driver import check_result_fits, solve_batch
from ._options import BATCH_CONSTRAINTS, SolverOptions, document_solver_parameters
from ._solvers import DEFAULT_METHOD
from ._validation import check_batch


@validate_params(
    {**BATCH_CONSTRAINTS, "out": [np.ndarray, None]},
    prefer_skip_nested_validation=True,
)
@document_solver_parameters
def emd_batch(
    M,
    a=None,
    b=None,
    *,
    return_plan=False,
    return_duals=False,
    potentials_init=None,
    out=None,
    method=DEFAULT_METHOD,
    reg=None,
    tol=None,
    max_iter=None,
    method_params=None,
    n_jobs=None,
    batch_size="auto",
    verbose=0,
):
    """Solve k optimal transport (Earth Mover's Distance) problems.

    With the default method, every value equals ``ot.emd2(a_i, b_i, M[i])``
    and every plan is optimal like ``ot.emd``'s. Problems are solved in
    chunks, in parallel through joblib; where marginals are uniform and equal
    and n == m, an exact assignment solver is used instead of the network
    simplex. The other methods (see ``method``) are vectorised over each
    chunk or looped within it in the same way.

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
    return_duals : bool, default=False
        Whether to return optimal dual potentials, ``dual_a`` of shape (k, n)
        and ``dual_b`` of shape (k, m) (lists for a ragged batch), centred as
        ``ot.emd`` centres them (``a @ u == b @ v``). They certify each
        distance, checkably without trusting skemd: ``a @ u + b @ v`` equals
        it and ``u[:, None] + v[None, :] <= M[i]``, up to rounding, for every
        problem flagged converged. Uniform
        square problems then go to an assignment solver only if it gives
        potentials (lapjv, from n = 80), else to the network simplex. Only
        methods that give potentials accept it (the exact method).
    potentials_init : tuple or list of two array-like, default=None
        Dual potentials ``(alpha, beta)`` to start the network simplex from,
        as ``ot.emd``'s ``potentials_init``: ``alpha`` shaped as ``a`` would
        be, (n,) or (k, n), and ``beta`` as ``b``; sequences of 1-D arrays for
        a ragged batch. Any finite values give the same distances, to
        rounding; values near the optimal ones save pivots. The natural source
        is ``(res.dual_a, res.dual_b)`` of an earlier ``return_duals=True``
        call on slightly different costs: the "Warm starts" section of the
        user guide's page on problems, plans and marginals says when it pays.
        Only the exact method takes it; uniform square problems solved as
        assignments, and any problem with a POT older than 0.9.7, are solved
        without it.
    out : ndarray of shape (k,), default=None
        A preallocated float64 array, such as a writable :class:`numpy.memmap`,
        that receives the distances as chunks finish; it is returned as
        ``distance``. See :func:`iter_emd_batch` to consume chunks as they
        come.
    %(solver_parameters)s
    n_jobs : int, default=None
        Number of parallel jobs. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context; -1 means all processors.
    batch_size : int or "auto", default="auto"
        Problems per parallel task. "auto" makes about 4 tasks per worker.
    %(verbose)s

    Returns
    -------
    result : EMDResult
        ``distance`` of shape (k,), ``converged`` of shape (k,), ``plan``
        (None unless ``return_plan``), ``dual_a`` and ``dual_b`` (None unless
        ``return_duals``).

    Raises
    ------
    ValueError
        Before anything is solved, if a parameter does not suit the method,
        a cost is not finite, a weight is negative, not finite or a weight
        vector sums to 0 or overflows, the masses differ (for methods that
        need equal masses), or the shapes do not match. The message names the
        problem index.

    Warns
    -----
    ConvergenceWarning
        Once per call, if any problem reached ``max_iter`` or has a
        non-finite cost; the message says which, and what to change.

    Notes
    -----
    The user guide's page on solvers describes how each method solves a
    chunk, and how to add a method.

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

    Dual potentials certify each distance, in one line anyone can check:

    >>> a, b = np.full(5, 0.2), np.full(4, 0.25)
    >>> res = emd_batch(M, a, b, return_duals=True)
    >>> u, v = res.dual_a, res.dual_b
    >>> bool(np.allclose(u @ a + v @ b, res.distance)
    ...      and (u[:, :, None] + v[:, None, :] <= M + 1e-12).all())
    True

    Distances can go straight into a preallocated array or memmap:

    >>> out = np.zeros(100)
    >>> emd_batch(M, out=out).distance is out
    True
    """
    options = SolverOptions.from_params(locals())
    check_result_fits(M, options)
    batch = check_batch(
        M, a, b, potentials=potentials_init, equal_mass=options.spec.needs_equal_mass
    )
    return solve_batch(batch, options, out=out)
