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

:func:`~._stages.solve_in_stages` runs the three stages; this module defines
their iteration states, which :mod:`._unbalanced` extends with POT's
unbalanced iterates and stopping rule.
"""

import numpy as np
from scipy.special import logsumexp

from ._stages import left, right, solve_in_stages, subset

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
        K = subset(M, rows) - low[rows]
        K *= -1.0 / reg
        np.exp(K, out=K)
        return PlainScaling(K, A[rows], B[rows])

    states = (
        plain_state,
        lambda rows: AbsorbedScaling(subset(M, rows) / -reg, A[rows], B[rows]),
        lambda rows: LogScaling(subset(M, rows) / -reg, A[rows], B[rows]),
    )
    return solve_in_stages(M, plans, plain, states, options)


class _MarginalStop:
    """POT's balanced stopping rule: the target marginal's violation, 2-norm."""

    check_every = _CHECK_EVERY

    def error(self):
        return np.linalg.norm(self.target_marginal() - self.b, axis=1)


class PlainScaling(_MarginalStop):
    """Sinkhorn-Knopp scalings ``u``, ``v`` of a kernel ``K`` (c, n, m).

    An iteration state of :func:`~._stages.solve_in_stages`, stopping on the
    target marginal's violation; the plan is ``u[:, :, None] * K * v[:, None]``.

    Parameters
    ----------
    K : ndarray of shape (c, n, m)
        The kernels ``exp(-(M - min M) / reg)``, one per problem.
    a, b : ndarray of shape (c, n) and (c, m)
        The marginals, of equal masses.

    Examples
    --------
    One iteration solves this symmetric problem, as ``ot.sinkhorn2(w, w,
    M[0], 0.5)``:

    >>> import numpy as np
    >>> from skemd._solvers._sinkhorn import PlainScaling
    >>> M, w = np.array([[[0.0, 1.0], [1.0, 0.0]]]), np.full((1, 2), 0.5)
    >>> state = PlainScaling(np.exp(M / -0.5), w, w)
    >>> state.update()
    >>> state.error() < 1e-12, round(float(state.cost(0, M[0])), 8)
    (array([ True]), 0.11920292)
    """

    def __init__(self, K, a, b):
        self.K, self.a, self.b = K, a, b
        self.u = np.full(a.shape, 1.0 / a.shape[1])
        self.v = np.full(b.shape, 1.0 / b.shape[1])

    def update(self):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            self.v = self.b / left(self.u, self.K)
            self.u = self.a / right(self.K, self.v)

    def target_marginal(self):
        with np.errstate(invalid="ignore", over="ignore"):
            return self.v * left(self.u, self.K)

    def plan(self, mask):
        return self.u[mask, :, None] * self.K[mask] * self.v[mask, None, :]

    def cost(self, row, M):
        """``<T, M>`` of the problem in ``row``, without forming its plan."""
        return self.u[row] @ ((self.K[row] * M) @ self.v[row])

    def keep(self, mask):
        self.K, self.a, self.b = self.K[mask], self.a[mask], self.b[mask]
        self.u, self.v = self.u[mask], self.v[mask]


class LogScaling(_MarginalStop):
    """Log-domain Sinkhorn on ``-M / reg`` (c, n, m), as POT's sinkhorn_log.

    An iteration state of :func:`~._stages.solve_in_stages`, with the
    potentials ``f`` and ``g``: the plan is ``exp(Mr + f[:, :, None] +
    g[:, None])``.

    Parameters
    ----------
    Mr : ndarray of shape (c, n, m)
        The costs over ``-reg``.
    a, b : ndarray of shape (c, n) and (c, m)
        The marginals, of equal masses; a zero weight has potential -inf.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._sinkhorn import LogScaling
    >>> M, w = np.array([[[0.0, 1.0], [1.0, 0.0]]]), np.full((1, 2), 0.5)
    >>> state = LogScaling(M / -0.5, w, w)
    >>> state.update()
    >>> state.error(), round(float(state.cost(0, M[0])), 8)
    (array([0.]), 0.11920292)
    """

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


class AbsorbedScaling(PlainScaling):
    """Scalings ``u``, ``v`` on the kernel ``exp(Mr + f + g)`` of potentials f, g.

    The first update is POT's first log-domain iteration, from ``g = 0``; it
    leaves every row and column of positive weight with positive mass in the
    kernel. Zero weights have potential ``-inf``: their kernel lines are 0,
    and so are their scalings. The iterates are :class:`LogScaling`'s.

    Parameters
    ----------
    Mr : ndarray of shape (c, n, m)
        The costs over ``-reg``.
    a, b : ndarray of shape (c, n) and (c, m)
        The marginals, of equal masses.

    Examples
    --------
    Where plain scaling's kernel underflows (a row of zeros, then NaN):

    >>> import numpy as np
    >>> from skemd._solvers._sinkhorn import AbsorbedScaling
    >>> M, w = np.array([[[0.0, 2.0], [2.0, 2.0]]]), np.full((1, 2), 0.5)
    >>> np.exp(M / -1e-3)[0, 1]
    array([0., 0.])
    >>> state = AbsorbedScaling(M / -1e-3, w, w)
    >>> for _ in range(3):
    ...     state.update()
    >>> state.error(), round(float(state.cost(0, M[0])), 6)
    (array([0.10101525]), 1.142857)
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
            self.v = _ratio(self.b, left(self.u, self.K))
            self.u = _ratio(self.a, right(self.K, self.v))
        self._absorb()

    def _log_state(self):
        """The log-domain state that runs the first iteration."""
        return LogScaling(self.Mr, self.a, self.b)

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
