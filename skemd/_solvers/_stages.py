"""The stages of the batched scaling iterations, shared by the Sinkhorn solvers.

This module owns what :mod:`._sinkhorn` and :mod:`._unbalanced` share besides
their iteration states: batched products of a chunk's kernels with vectors,
the loop that runs a state until each problem meets ``tol`` or ``max_iter``
(dropping the finished problems once most have), and :func:`solve_in_stages`:
plain or absorbed scaling first, then log-domain updates for the problems
whose scalings stopped being finite.

An iteration state (such as :class:`~._sinkhorn.PlainScaling`) holds the
iterates of some problems, one per row, and has ``check_every`` (iterations
between two stopping checks), ``update()``, ``error()`` (each row's stopping
criterion), ``cost(row, M)`` (``<T, M>`` of a row's plan), ``plan(mask)``
(the rows' dense plans) and ``keep(mask)`` (drop the other rows).
"""

import numpy as np


def subset(M, rows):
    """The rows ``rows`` of a chunk's array, without a copy when it is all of it.

    Parameters
    ----------
    M : ndarray of shape (c, ...)
        One entry per problem of the chunk.
    rows : ndarray of int
        Distinct problem indices, in increasing order.

    Returns
    -------
    subset : ndarray of shape (len(rows), ...)
        ``M`` itself when ``rows`` covers every problem, else ``M[rows]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._stages import subset
    >>> M = np.zeros((3, 2, 2))
    >>> subset(M, np.arange(3)) is M, subset(M, np.array([2])).shape
    (True, (1, 2, 2))
    """
    return M if rows.size == len(M) else M[rows]


def left(u, K):
    """``u_c @ K_c`` for every problem c (batched BLAS, unlike einsum).

    Parameters
    ----------
    u : ndarray of shape (c, n)
        One vector per problem.
    K : ndarray of shape (c, n, m)
        One kernel per problem.

    Returns
    -------
    product : ndarray of shape (c, m)
        Each problem's row vector times its kernel.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._stages import left
    >>> left(np.array([[1.0, 2.0]]), np.array([[[1.0, 0.0], [1.0, 1.0]]]))
    array([[3., 2.]])
    """
    return (u[:, None, :] @ K)[:, 0, :]


def right(K, v):
    """``K_c @ v_c`` for every problem c.

    Parameters
    ----------
    K : ndarray of shape (c, n, m)
        One kernel per problem.
    v : ndarray of shape (c, m)
        One vector per problem.

    Returns
    -------
    product : ndarray of shape (c, n)
        Each problem's kernel times its column vector.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._stages import right
    >>> right(np.array([[[1.0, 0.0], [1.0, 1.0]]]), np.array([[1.0, 2.0]]))
    array([[1., 3.]])
    """
    return (K @ v[:, :, None])[:, :, 0]


def solve_in_stages(M, plans, plain, states, options):
    """Solve a chunk with plain, absorbed, then log-domain updates.

    Parameters
    ----------
    M : ndarray of shape (c, n, m)
        The chunk's float64 costs.
    plans : NoPlans
        The sink that receives the plans.
    plain : ndarray of shape (c,), dtype=bool
        The problems that start with plain scaling; the others start with
        absorbed scaling.
    states : tuple of three callables
        ``state(rows)`` makes the plain, absorbed and log-domain iteration
        state (see the module's docstring) of the problems ``rows``. A
        problem whose iterates stop being finite in the first two is redone
        with the third.
    options : SolverOptions
        Reads ``tol`` and ``max_iter``.

    Returns
    -------
    cost : ndarray of shape (c,)
        The linear cost ``<T, M>`` of each problem's plan, NaN where the
        iterates never stayed finite.
    converged : ndarray of shape (c,), dtype=bool
        Whether each problem met ``tol`` within ``max_iter``.

    Examples
    --------
    Log-domain updates only, as ``ot.sinkhorn2(w, w, M[0], 0.5)``:

    >>> import numpy as np
    >>> from skemd._solvers._plans import plan_sink
    >>> from skemd._solvers._sinkhorn import LogScaling
    >>> from skemd._solvers._stages import solve_in_stages
    >>> M, w = np.array([[[0.0, 1.0], [1.0, 0.0]]]), np.full((1, 2), 0.5)
    >>> log = lambda rows: LogScaling(M[rows] / -0.5, w[rows], w[rows])
    >>> options = {"tol": 1e-9, "max_iter": 100}
    >>> plain = np.zeros(1, dtype=bool)  # no problem starts with plain scaling
    >>> solve_in_stages(M, plan_sink(None, 1, 2, 2), plain, (None, log, log), options)
    (array([0.11920292]), array([ True]))
    """
    tol, max_iter = options["tol"], options["max_iter"]
    result = _Result(M, plans)
    failed = np.zeros(len(M), dtype=bool)
    starts = (np.flatnonzero(plain), np.flatnonzero(~plain))
    for rows, make in zip(starts, states[:2], strict=True):
        if rows.size:
            failed[rows[~_iterate(make(rows), result, rows, tol, max_iter)]] = True
    rows = np.flatnonzero(failed)  # scalings stopped being finite
    if rows.size:
        _iterate(states[2](rows), result, rows, tol, max_iter)
    return result.cost, result.converged


class _Result:
    """Costs, flags and (through the sink) plans of problems as they finish."""

    def __init__(self, M, plans):
        self.M, self.plans = M, plans
        self.cost = np.full(len(M), np.nan)  # what never finishes stays NaN
        self.converged = np.zeros(len(M), dtype=bool)

    def finish(self, positions, state, mask, converged):
        """Take the problems ``positions`` from the rows ``mask`` of ``state``."""
        # One problem at a time: views, where batched indexing would copy.
        for position, row in zip(positions, np.flatnonzero(mask), strict=True):
            self.cost[position] = state.cost(row, self.M[position])
        self.converged[positions] = converged
        if self.plans.stores:
            self.plans.put_dense_many(positions, state.plan(mask))


def _iterate(state, result, where, tol, max_iter):
    """Run ``state`` until each problem converges; hand results to ``result``.

    Every ``state.check_every`` iterations and at the last, a problem stops
    when ``state.error()`` is below ``tol``. Returns a bool array over
    ``where``: False for problems whose iterates stopped being finite (they
    are not handed over).
    """
    rows = np.arange(where.size)  # the state's rows, as positions in `where`
    live = np.ones(where.size, dtype=bool)  # rows still iterating
    finite = np.ones(where.size, dtype=bool)
    for it in range(max_iter):
        state.update()
        last = it == max_iter - 1
        if it % state.check_every and not last:
            continue
        err = state.error()
        bad = live & ~np.isfinite(err)
        done = live & (err < tol)
        leave = done | bad | (live & last)
        good = leave & ~bad
        if good.any():
            result.finish(where[rows[good]], state, good, done[good])
        finite[rows[bad]] = False
        live &= ~leave
        if not live.any():
            break
        # Finished rows keep being updated (harmlessly) until most have left:
        # dropping them copies the kernel, which costs more than a few updates.
        if 2 * np.count_nonzero(live) <= live.size:
            state.keep(live)
            rows, live = rows[live], live[live]
    return finite
