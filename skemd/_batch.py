"""The public batch solver: ``emd_batch`` and its result."""

import warnings
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._engine import chunk_bounds, map_chunks
from ._solvers import allocate_plans, solve_chunk
from ._validation import check_batch

# How many failing problem indices a ConvergenceWarning lists.
_SHOWN_FAILURES = 10


@dataclass(frozen=True)
class EMDResult:
    """The result of :func:`emd_batch`.

    Attributes
    ----------
    distance : ndarray of shape (k,)
        The optimal cost ``<T_i, M_i>`` of every problem.
    converged : ndarray of shape (k,), dtype=bool
        False where the solver stopped at ``max_iter`` before optimality.
    plan : ndarray of shape (k, n, m), list of ndarray or None
        The optimal transport plans, when asked for; a list for a ragged batch.

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


@validate_params(
    {
        "M": ["array-like"],
        "a": ["array-like", None],
        "b": ["array-like", None],
        "return_plan": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def emd_batch(
    M,
    a=None,
    b=None,
    *,
    return_plan=False,
    max_iter=100_000,
    n_jobs=None,
    batch_size="auto",
    verbose=0,
):
    """Solve k exact optimal transport (Earth Mover's Distance) problems.

    Every value equals ``ot.emd2(a_i, b_i, M[i])`` and every plan is optimal
    like ``ot.emd``'s. Problems are solved in chunks, in parallel through
    joblib; where marginals are uniform and equal and n == m, an exact
    assignment solver is used instead of the network simplex.

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
    return_plan : bool, default=False
        Whether to return the transport plans as well.
    max_iter : int, default=100_000
        Iteration limit of the network simplex, per problem. A problem that
        reaches it is flagged in ``converged`` and its cost is that of the
        last plan found, as ``ot.emd2`` returns it.
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
    """
    batch = check_batch(M, a, b)
    return solve_batch(
        batch,
        return_plan=return_plan,
        max_iter=max_iter,
        n_jobs=n_jobs,
        batch_size=batch_size,
        verbose=verbose,
    )


def solve_batch(batch, *, return_plan, max_iter, n_jobs, batch_size, verbose):
    """Solve a validated :class:`ProblemBatch`; see :func:`emd_batch`."""
    k = len(batch)
    distance = np.empty(k)
    converged = np.empty(k, dtype=bool)
    plan = allocate_plans(batch) if return_plan else None
    bounds = chunk_bounds(
        k, n_jobs=n_jobs, batch_size=batch_size, cells_per_problem=_cells(batch)
    )
    chunks = map_chunks(
        solve_chunk,
        batch,
        bounds,
        n_jobs=n_jobs,
        verbose=verbose,
        return_plan=return_plan,
        max_iter=max_iter,
    )
    for (start, stop), chunk in chunks:
        distance[start:stop] = chunk.distance
        converged[start:stop] = chunk.converged
        if return_plan:
            plan[start:stop] = chunk.plan
    _warn_unconverged(converged, max_iter)
    return EMDResult(distance, converged, plan)


def _cells(batch):
    if not batch.ragged:
        return max(1, batch.costs.shape[1] * batch.costs.shape[2])
    return max(1, sum(M.size for M in batch.costs) // max(1, len(batch)))


def _warn_unconverged(converged, max_iter):
    failed = np.flatnonzero(~converged)
    if failed.size == 0:
        return
    shown = ", ".join(map(str, failed[:_SHOWN_FAILURES]))
    more = ", ..." if failed.size > _SHOWN_FAILURES else ""
    warnings.warn(
        f"{failed.size} of {converged.size} problems did not converge within "
        f"max_iter={max_iter} (indices {shown}{more}); their results are "
        "flagged in `converged`. Increase max_iter.",
        ConvergenceWarning,
        stacklevel=3,
    )
