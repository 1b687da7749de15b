"""Dual potentials of exact problems, made feasible and centred as POT does.

A pair ``u`` (n,), ``v`` (m,) with ``u_i + v_j <= M_ij`` for every cell is a
lower bound ``a @ u + b @ v`` on the cost of every plan (weak duality); when it
equals the cost of the plan found, it certifies that plan optimal. The
compiled network simplex ignores rows and columns of zero weight, so its
potentials there may break the constraints: :func:`finish_duals` lowers
them just enough, as ``ot.emd`` does, and then centres both so that
``a @ u == b @ v``, which picks one of the equally valid pairs.
"""

import numpy as np


def finish_duals(u, v, a, b, M):
    """Feasible potentials at zero weights, then centred, as ``ot.emd`` returns them.

    Parameters
    ----------
    u, v : ndarray of shape (n,) and (m,)
        Optimal potentials on the rows and columns of positive weight.
    a, b : ndarray of shape (n,) and (m,)
        The marginals, of equal masses.
    M : ndarray of shape (n, m)
        The costs.

    Returns
    -------
    u, v : ndarray of shape (n,) and (m,)
        Potentials with ``u_i + v_j <= M_ij`` up to rounding wherever the
        given ones held it on positive weights, and ``a @ u == b @ v``.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._duals import finish_duals
    >>> M = np.array([[0.0, 1.0], [5.0, 2.0]])
    >>> u, v = finish_duals(np.zeros(2), np.array([0.0, 9.0]), np.array([1.0, 0.0]),
    ...                     np.array([1.0, 0.0]), M)
    >>> u, v
    (array([ 0., -7.]), array([0., 1.]))
    >>> bool((u[:, None] + v[None, :] <= M).all())
    True
    """
    live_a, live_b = a != 0, b != 0
    if not (live_a.all() and live_b.all()):
        violation = u[:, None] + v[None, :] - M
        u = u - np.where(live_a, 0.0, np.maximum(violation.max(axis=1), 0.0))
        v = v - np.where(live_b, 0.0, np.maximum(violation.max(axis=0), 0.0))
    return center_duals(u, v, a, b)


def center_duals(u, v, a, b):
    """Shift ``u`` up and ``v`` down by one constant so that ``a @ u == b @ v``.

    Parameters
    ----------
    u, v : ndarray of shape (n,) and (m,)
        Potentials.
    a, b : ndarray of shape (n,) and (m,)
        The marginals, of equal masses: the shift leaves ``a @ u + b @ v``
        and every ``u_i + v_j`` unchanged.

    Returns
    -------
    u, v : ndarray of shape (n,) and (m,)
        The centred potentials, as ``ot.lp.center_ot_dual`` centres them.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._duals import center_duals
    >>> center_duals(np.array([1.0, 1.0]), np.array([3.0]), np.full(2, 0.5),
    ...              np.ones(1))
    (array([2., 2.]), array([2.]))
    """
    shift = (b @ v - a @ u) / (a.sum() + b.sum())
    return u + shift, v - shift
