"""Entropic OT (Sinkhorn), vectorised over the problems of a chunk.

Each iteration updates every still-active problem of the chunk with batched
numpy operations; a problem leaves the active set as soon as it meets the
tolerance, with POT's stopping rule: every 10 iterations, the 2-norm of the
violation of the target marginal is compared with ``tol``.

Three update rules run the same iterates from the same start, so they reach
the same fixed point at the same iteration:

- plain scaling of ``K = exp(-(M - min M) / reg)``, used when the cost range
  over ``reg`` is at most :data:`PLAIN_MAX_RANGE`, so ``K`` spans at most
  ``e**100`` and neither it nor the scalings over- or underflow;
- absorbed scaling for the other problems: after one log-domain iteration,
  the potentials go into the kernel and plain scalings run on top of it; a
  scaling that leaves ``[1 / ABSORB_AT, ABSORB_AT]`` is absorbed into its
  potential and the kernel rebuilt (Schmitzer's stabilisation). An iteration
  costs two matrix-vector products, where a log-domain one costs two
  ``logsumexp``;
- log-domain updates with ``logsumexp`` (as POT's ``sinkhorn_log``), for any
  problem whose scalings stopped being finite.

:func:`solve_in_stages` runs these three stages for any iteration states with
their own stopping rule; ``_unbalanced`` runs POT's unbalanced iterates on it.
"""

import numpy as np
from scipy.special import logsumexp

#: Largest ``(max(M) - min(M)) / reg`` solved with plain scaling.
PLAIN_MAX_RANGE = 100.0

#: Absorbed scalings stay within ``[1 / ABSORB_AT, ABSORB_AT]``. A kernel entry
#: that underflowed (below ``1e-323``) then stays below ``1e-223`` in every
#: plan, far under a double's precision, and kernel entries, about
#: ``T / (u v)``, stay far from overflowing in any product.
ABSORB_AT = 1e50

#: Above this cost range over ``reg``, slow convergence is blamed on ``reg``.
SLOW_RANGE = 1000.0

# POT checks the marginal violation every 10 iterations.
_CHECK_EVERY = 10


def solve_sinkhorn(M, A, B, plans, options):
    """Solve the problems of a chunk with entropic regularisation.

    Parameters
    ----------
    M : ndarray of shape (c, n, m)
        The chunk's float64 costs.
    A, B : ndarray of shape (c, n) and (c, m)
        The chunk's marginals, ``B`` rescaled to the mass of ``A``.
    plans : NoPlans
        The sink that receives the plans.
    options : SolverOptions
        Reads ``reg`` (> 0), ``tol`` (a problem stops when its
        target-marginal violation is below it) and ``max_iter``.

    Returns
    -------
    cost : ndarray of shape (c,)
        The linear cost ``<T, M>`` of each entropic plan ``T``.
    converged : ndarray of shape (c,), dtype=bool
        False where ``max_iter`` was reached first.
    """
    reg = options["reg"]
    A, B = np.asarray(A), np.asarray(B)
    low = M.min(axis=(1, 2), keepdims=True)
    plain = (M.max(axis=(1, 2)) - low[:, 0, 0]) / reg <= PLAIN_MAX_RANGE

    def plain_state(rows):
        K = _subset(M, rows) - low[rows]
        K *= -1.0 / reg
        np.exp(K, out=K)
        return _PlainScaling(K, A[rows], B[rows])

    states = (
        plain_state,
        lambda rows: _AbsorbedScaling(_subset(M, rows) / -reg, A[rows], B[rows]),
        lambda rows: _LogScaling(_subset(M, rows) / -reg, A[rows], B[rows]),
    )
    return solve_in_stages(M, plans, plain, states, options)


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
        state of the problems ``rows``. A problem whose iterates stop being
        finite in the first two is redone with the third.
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
    >>> from skemd._solvers._sinkhorn import _LogScaling, solve_in_stages
    >>> M, w = np.array([[[0.0, 1.0], [1.0, 0.0]]]), np.full((1, 2), 0.5)
    >>> log = lambda rows: _LogScaling(M[rows] / -0.5, w[rows], w[rows])
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


def _subset(M, rows):
    return M if rows.size == len(M) else M[rows]


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


def _left(u, K):
    """``u_c @ K_c`` for every problem c (batched BLAS, unlike einsum)."""
    return (u[:, None, :] @ K)[:, 0, :]


def _right(K, v):
    """``K_c @ v_c`` for every problem c."""
    return (K @ v[:, :, None])[:, :, 0]


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


class _MarginalStop:
    """POT's balanced stopping rule: the target marginal's violation, 2-norm."""

    check_every = _CHECK_EVERY

    def error(self):
        return np.linalg.norm(self.target_marginal() - self.b, axis=1)


class _PlainScaling(_MarginalStop):
    """Sinkhorn-Knopp scalings ``u``, ``v`` of a kernel ``K`` (c, n, m)."""

    def __init__(self, K, a, b):
        self.K, self.a, self.b = K, a, b
        self.u = np.full(a.shape, 1.0 / a.shape[1])
        self.v = np.full(b.shape, 1.0 / b.shape[1])

    def update(self):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            self.v = self.b / _left(self.u, self.K)
            self.u = self.a / _right(self.K, self.v)

    def target_marginal(self):
        with np.errstate(invalid="ignore", over="ignore"):
            return self.v * _left(self.u, self.K)

    def plan(self, mask):
        return self.u[mask, :, None] * self.K[mask] * self.v[mask, None, :]

    def cost(self, row, M):
        """``<T, M>`` of the problem in ``row``, without forming its plan."""
        return self.u[row] @ ((self.K[row] * M) @ self.v[row])

    def keep(self, mask):
        self.K, self.a, self.b = self.K[mask], self.a[mask], self.b[mask]
        self.u, self.v = self.u[mask], self.v[mask]


class _LogScaling(_MarginalStop):
    """Log-domain Sinkhorn on ``-M / reg`` (c, n, m), as POT's sinkhorn_log."""

    def __init__(self, Mr, a, b):
        self.Mr, self.b = Mr, b
        with np.errstate(divide="ignore"):  # log(0) = -inf for zero weights
            self.loga, self.logb = np.log(a), np.log(b)
        self.f = np.zeros(a.shape)
        self.g = np.zeros(b.shape)

    def update(self):
        self.g = self.logb - logsumexp(self.Mr + self.f[:, :, None], axis=1)
        self.f = self.loga - logsumexp(self.Mr + self.g[:, None, :], axis=2)

    def target_marginal(self):
        return np.exp(logsumexp(self.Mr + self.f[:, :, None], axis=1) + self.g)

    def plan(self, mask):
        return np.exp(self.Mr[mask] + self.f[mask, :, None] + self.g[mask, None, :])

    def cost(self, row, M):
        T = np.exp(self.Mr[row] + self.f[row, :, None] + self.g[row, None, :])
        return np.einsum("nm,nm->", T, M)

    def keep(self, mask):
        self.Mr, self.b = self.Mr[mask], self.b[mask]
        self.loga, self.logb = self.loga[mask], self.logb[mask]
        self.f, self.g = self.f[mask], self.g[mask]


class _AbsorbedScaling(_PlainScaling):
    """Scalings ``u``, ``v`` on the kernel ``exp(Mr + f + g)`` of potentials f, g.

    The first update is POT's first log-domain iteration, from ``g = 0``; it
    leaves every row and column of positive weight with positive mass in the
    kernel. Zero weights have potential ``-inf``: their kernel lines are 0,
    and so are their scalings.
    """

    def __init__(self, Mr, a, b):
        self.Mr, self.a, self.b, self.K = Mr, a, b, None

    def update(self):
        if self.K is None:
            log = self._log_state()
            log.update()
            self.f, self.g = log.f, log.g
            self.u, self.v = (self.a > 0) * 1.0, (self.b > 0) * 1.0
            self.K = _absorbed_kernel(self.Mr, self.f, self.g)
            return
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            self.v = _ratio(self.b, _left(self.u, self.K))
            self.u = _ratio(self.a, _right(self.K, self.v))
        self._absorb()

    def _log_state(self):
        """The log-domain state that runs the first iteration."""
        return _LogScaling(self.Mr, self.a, self.b)

    def _absorb(self):
        """Move scalings far from 1 into the potentials; rebuild those kernels.

        Returns the rows whose potentials changed.
        """
        far = _outside(self.u).any(axis=1) | _outside(self.v).any(axis=1)
        far = np.flatnonzero(far)
        if far.size == 0:
            return far
        # A scaling that is no longer finite poisons its problem's kernel; the
        # problem's marginal error is then not finite, and it is redone in the
        # log domain.
        with np.errstate(invalid="ignore", over="ignore"):
            for pot, scaling in ((self.f, self.u), (self.g, self.v)):
                s = scaling[far]
                pot[far] += np.log(s, out=np.zeros_like(s), where=s > 0)
                scaling[far] = s > 0
            self.K[far] = _absorbed_kernel(self.Mr[far], self.f[far], self.g[far])
        return far

    def keep(self, mask):
        super().keep(mask)
        self.Mr, self.f, self.g = self.Mr[mask], self.f[mask], self.g[mask]


def _outside(scaling):
    return (scaling > ABSORB_AT) | ((scaling < 1 / ABSORB_AT) & (scaling > 0))


def _ratio(w, x):
    """``w / x``, with 0 where ``w`` is 0 (a zero weight's line is 0 too)."""
    return np.divide(w, x, out=np.zeros_like(w), where=w > 0)


def _absorbed_kernel(Mr, f, g):
    K = Mr + f[:, :, None]
    K += g[:, None, :]
    return np.exp(K, out=K)


def advise(options, costs):
    """Advice for problems that did not converge, from some of their costs.

    Parameters
    ----------
    options : SolverOptions
        The options they were solved with.
    costs : list of ndarray
        Cost matrices of some of the problems.

    Returns
    -------
    advice : str
        What to change.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._sinkhorn import advise
    >>> print(advise({"reg": 1e-4}, [np.array([[0.0, 2.0]])]))
    reg=0.0001 is small against the cost range (2 = 2e+04 reg): increase reg, ...
    """
    spread = max((float(np.ptp(M)) for M in costs), default=0.0)
    reg = options["reg"]
    if spread > SLOW_RANGE * reg:
        return (
            f"reg={reg:g} is small against the cost range ({spread:g} = "
            f"{spread / reg:.0e} reg): increase reg, or max_iter."
        )
    return "Increase max_iter, or tol."
