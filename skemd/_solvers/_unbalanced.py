"""Entropic KL-unbalanced OT, vectorised over the problems of a chunk.

The plan ``T`` minimises ``<T, M> + reg KL(T | a b^T) + reg_m KL(T 1 | a)
+ reg_m KL(T^T 1 | b)``, as ``ot.unbalanced.sinkhorn_unbalanced`` defines it
(``reg_type="kl"``), for weights ``a`` and ``b`` of any masses. POT's
generalised Sinkhorn iteration scales ``K = exp(-M / reg) * a b^T`` by
``x = (a / (K y)) ** fi`` and ``y = (b / (K^T x)) ** fi`` with
``fi = reg_m / (reg_m + reg)``, from ``x = y = 1``, and stops as soon as the
mean of the two scalings' largest relative changes in an iteration is below
``tol``; the value is ``<T, M>``, as ``ot.unbalanced.sinkhorn_unbalanced2``
returns it.

The batched Sinkhorn's stages (:mod:`._stages`) run these iterates, each
problem stopping on its own, with the three update rules of :mod:`._sinkhorn`:
plain scaling where ``|M| / reg`` is at most
:data:`~._sinkhorn.PLAIN_MAX_RANGE`, absorbed scaling beyond, and log-domain
updates for any problem whose scalings stopped being finite. All three run
POT's iterates from POT's start with POT's stopping rule, computed from the
logarithms of the scalings where these would overflow. A zero weight's line
of the plan is 0, as the problem defines it; POT's own plain iteration stops
at its first step there, with a plan that is not the solution.
"""

import numpy as np
from scipy.special import logsumexp

from . import _sinkhorn
from ._sinkhorn import PLAIN_MAX_RANGE, AbsorbedScaling, LogScaling, PlainScaling
from ._stages import left, right, solve_in_stages, subset


def solve_unbalanced(M, A, B, plans, options):
    """Solve the entropic unbalanced problems of a chunk.

    Parameters
    ----------
    M : ndarray of shape (c, n, m)
        The chunk's float64 costs.
    A, B : ndarray of shape (c, n) and (c, m)
        The chunk's marginals, of any masses.
    plans : NoPlans
        The sink that receives the plans.
    options : SolverOptions
        Reads ``reg`` and ``reg_m`` (> 0), ``tol`` (POT's stopping threshold
        on the scalings' relative change) and ``max_iter``.

    Returns
    -------
    cost : ndarray of shape (c,)
        The linear cost ``<T, M>`` of each plan ``T``.
    converged : ndarray of shape (c,), dtype=bool
        False where ``max_iter`` was reached first.

    Examples
    --------
    POT's example, ``ot.unbalanced.sinkhorn_unbalanced2(a, a, M, 1.0, 1.0)``:

    >>> import numpy as np
    >>> from skemd._solvers._plans import plan_sink
    >>> from skemd._solvers._unbalanced import solve_unbalanced
    >>> M, a = np.array([[[0.0, 1.0], [1.0, 0.0]]]), np.full((1, 2), 0.5)
    >>> options = {"reg": 1.0, "reg_m": 1.0, "tol": 1e-6, "max_iter": 1000}
    >>> cost, converged = solve_unbalanced(M, a, a, plan_sink(None, 1, 2, 2), options)
    >>> cost.round(7), converged
    (array([0.2369538]), array([ True]))
    """
    reg, reg_m = options["reg"], options["reg_m"]
    fi = reg_m / (reg_m + reg)
    A, B = np.asarray(A), np.asarray(B)
    # POT's iterates depend on the level of the costs, not only on their
    # range: exp(-M / reg) is taken unshifted.
    plain = np.abs(M).max(axis=(1, 2)) / reg <= PLAIN_MAX_RANGE

    def plain_state(rows):
        K = subset(M, rows) * (-1.0 / reg)
        return _PlainUnbalanced(np.exp(K, out=K), A[rows], B[rows], fi)

    def log_state(kind):
        return lambda rows: kind(subset(M, rows) / -reg, A[rows], B[rows], fi)

    states = (plain_state, log_state(_AbsorbedUnbalanced), log_state(_LogUnbalanced))
    return solve_in_stages(M, plans, plain, states, options)


def _power(x, p, w):
    """``x ** p`` for ``p < 0``, with 0 where the weight ``w`` is 0.

    A zero weight's line of the plan is 0. ``exp(p log x)`` is faster than
    ``np.power``; its log starts at ``inf`` where ``w`` is 0, which ``exp``
    turns into 0.
    """
    with np.errstate(divide="ignore"):  # 0 ** p is inf: the iterates failed
        out = np.log(x, out=np.full_like(x, np.inf), where=w > 0)
    out *= p
    return np.exp(out, out=out)


def _change(x, previous):
    """POT's relative change of scalings ``x`` (c, n) since ``previous``."""
    top = np.maximum(np.maximum(x.max(axis=1), previous.max(axis=1)), 1.0)
    with np.errstate(invalid="ignore"):  # inf - inf: not finite, as it should be
        return np.abs(x - previous).max(axis=1) / top


def _log_change(lx, lp):
    """:func:`_change` of the scalings ``exp(lx)`` since ``exp(lp)``, in logs."""
    top = np.maximum(np.maximum(lx.max(axis=1), lp.max(axis=1)), 0.0)
    hi, lo = np.maximum(lx, lp), np.minimum(lx, lp)
    with np.errstate(divide="ignore", invalid="ignore"):
        # log |e^hi - e^lo|; two zero scalings (-inf) do not change.
        diff = np.where(hi > -np.inf, hi + np.log(-np.expm1(lo - hi)), -np.inf)
        return np.exp(diff.max(axis=1) - top)


def _log_scalings(f, loga):
    """POT's log-scalings ``log x = f - log a`` of weighted potentials ``f``."""
    with np.errstate(invalid="ignore"):
        return np.where(loga > -np.inf, f - loga, -np.inf)


class _PlainUnbalanced(PlainScaling):
    """POT's scalings ``x``, ``y`` on ``K = exp(-M / reg)`` (c, n, m).

    The plan is ``u K v`` with ``u = a x`` and ``v = b y``, as in balanced
    plain scaling, so a zero weight's scaling is 0.
    """

    check_every = 1

    def __init__(self, K, a, b, fi):
        self.K, self.a, self.b, self.fi = K, a, b, fi
        self.x, self.y = (a > 0) * 1.0, (b > 0) * 1.0
        self.u, self.v = self.a * self.x, self.b * self.y

    def update(self):
        self.last = self.x, self.y
        with np.errstate(invalid="ignore", over="ignore"):
            self.x = _power(right(self.K, self.v), -self.fi, self.a)
            self.u = self.a * self.x
            self.y = _power(left(self.u, self.K), -self.fi, self.b)
            self.v = self.b * self.y

    def error(self):
        x, y = self.last
        return 0.5 * (_change(self.x, x) + _change(self.y, y))

    def keep(self, mask):
        super().keep(mask)
        self.x, self.y = self.x[mask], self.y[mask]


class _LogStop:
    """POT's stopping rule, from the logarithms of its scalings.

    ``scalings()`` gives them now, and ``last`` before the last update.
    """

    check_every = 1

    def error(self):
        (x, y), (px, py) = self.scalings(), self.last
        return 0.5 * (_log_change(x, px) + _log_change(y, py))


class _LogUnbalanced(_LogStop, LogScaling):
    """POT's iterates in the log domain, on ``-M / reg`` (c, n, m).

    ``f`` and ``g`` are the logarithms of the weighted scalings ``a x`` and
    ``b y``: the plan is ``exp(-M / reg + f + g)``.
    """

    def __init__(self, Mr, a, b, fi):
        super().__init__(Mr, a, b)
        self.fi = fi
        self.f, self.g = self.loga.copy(), self.logb.copy()

    def update(self):
        self.last = self.scalings()
        with np.errstate(invalid="ignore"):  # inf - inf: the iterates failed
            lse = logsumexp(self.Mr + self.g[:, None, :], axis=2)
            self.f = self.loga - self.fi * lse
            lse = logsumexp(self.Mr + self.f[:, :, None], axis=1)
            self.g = self.logb - self.fi * lse

    def scalings(self):
        """POT's log-scalings ``log x`` and ``log y``."""
        return _log_scalings(self.f, self.loga), _log_scalings(self.g, self.logb)


class _AbsorbedUnbalanced(_LogStop, AbsorbedScaling):
    """POT's iterates as scalings ``u``, ``v`` on an absorbed kernel.

    The kernel is ``exp(Mr + f + g)`` for weighted potentials ``f``, ``g``;
    POT's scaling ``x`` is ``exp(f) u / a``. Its update ``x = (K y) ** -fi``
    becomes ``u = ca (K v) ** -fi`` with ``ca = a exp(-(1 - fi) f)``, which
    changes only when ``f`` does.
    """

    def __init__(self, Mr, a, b, fi):
        super().__init__(Mr, a, b)
        self.fi = fi
        with np.errstate(divide="ignore"):
            self.loga, self.logb = np.log(a), np.log(b)

    def _log_state(self):
        return _LogUnbalanced(self.Mr, self.a, self.b, self.fi)

    def update(self):
        if self.K is None:  # one log-domain iteration from POT's x = y = 1
            start = (np.where(w > 0, 0.0, -np.inf) for w in (self.a, self.b))
            self.last = tuple(start)
            with np.errstate(invalid="ignore", over="ignore"):
                super().update()
                self.ca = self._coefficient(self.a, self.f)
                self.cb = self._coefficient(self.b, self.g)
            return
        self.last = self.scalings()
        with np.errstate(invalid="ignore", over="ignore"):
            self.u = self.ca * _power(right(self.K, self.v), -self.fi, self.a)
            self.v = self.cb * _power(left(self.u, self.K), -self.fi, self.b)
            far = self._absorb()
            self.ca[far] = self._coefficient(self.a[far], self.f[far])
            self.cb[far] = self._coefficient(self.b[far], self.g[far])

    def _coefficient(self, w, f):
        """``w exp(-(1 - fi) f)``, 0 where ``w`` is (and ``f`` is -inf)."""
        c = np.exp(-(1.0 - self.fi) * f, out=np.zeros_like(f), where=w > 0)
        return np.multiply(c, w, out=c)

    def scalings(self):
        """POT's log-scalings ``log x`` and ``log y``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            x = _log_scalings(self.f + np.log(self.u), self.loga)
            return x, _log_scalings(self.g + np.log(self.v), self.logb)

    def keep(self, mask):
        super().keep(mask)
        self.loga, self.logb = self.loga[mask], self.logb[mask]
        self.ca, self.cb = self.ca[mask], self.cb[mask]


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
    >>> from skemd._solvers._unbalanced import advise
    >>> print(advise({"reg": 0.1, "reg_m": 10.0}, [np.array([[0.0, 2.0]])]))
    Increase max_iter, or tol. The iterations grow with reg_m / reg (here 100): ...
    """
    ratio = options["reg_m"] / options["reg"]
    return (
        f"{_sinkhorn.advise(options, costs)} The iterations grow with reg_m / reg "
        f"(here {ratio:.3g}): a smaller reg_m converges faster, holding the "
        "masses more loosely."
    )
