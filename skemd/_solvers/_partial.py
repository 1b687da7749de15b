"""The "partial" method: exact partial transport of a given total mass.

Between weights ``a`` and ``b`` of possibly different masses, the cheapest
plan ``T >= 0`` with ``T 1 <= a``, ``T^T 1 <= b`` and ``sum(T) = mass``, as
``ot.partial.partial_wasserstein2`` defines it. Each problem is solved
exactly by POT's network simplex on an augmented problem, as POT does: one
dummy row takes ``sum(b) - mass`` and one dummy column ``sum(a) - mass`` at
zero cost, and the dummy-to-dummy arc costs more than any real arc, so that
exactly ``mass`` moves between real bins.
"""

import numpy as np

from . import _simplex

# ``mass`` may exceed the smaller mass by this much (relative) from rounding;
# it is then taken as that mass.
_MASS_RTOL = 1e-12


def solve_partial(M, A, B, plans, options):
    """Solve the partial transport problems of a chunk.

    Parameters
    ----------
    M : ndarray of shape (c, n, m)
        The chunk's float64 costs.
    A, B : ndarray of shape (c, n) and (c, m)
        The chunk's marginals, of any masses.
    plans : NoPlans
        The sink that receives the plans.
    options : SolverOptions
        Reads ``mass`` (None: the smaller of the two masses) and
        ``max_iter``.

    Returns
    -------
    cost : ndarray of shape (c,)
        The optimal costs ``<T, M>``.
    converged : ndarray of shape (c,), dtype=bool
        False where ``max_iter`` was reached.
    """
    cost = np.empty(len(M))
    converged = np.empty(len(M), dtype=bool)
    for i in range(len(M)):
        G, cost[i], converged[i] = _solve_one(
            A[i], B[i], M[i], options["mass"], options["max_iter"]
        )
        plans.put_dense(i, G)
    return cost, converged


def _solve_one(a, b, M, mass, max_iter):
    n, m = M.shape
    mass_a, mass_b = a.sum(), b.sum()
    mass = min(mass_a, mass_b) if mass is None else min(mass, mass_a, mass_b)
    # A constant shift of the costs moves every plan of mass ``mass`` alike,
    # and makes the dummy arc's cost dominate every real one.
    shifted = _simplex.nonnegative_costs(a, b, M)
    top = shifted.max()
    M_ext = np.zeros((n + 1, m + 1))
    M_ext[:n, :m] = shifted
    M_ext[n, m] = 2.0 * top if top > 0 else 1.0
    a_ext = np.append(a, mass_b - mass)
    b_ext = np.append(b, mass_a - mass)
    b_ext *= a_ext.sum() / b_ext.sum()  # equal to the last bit, as ot.emd makes it
    G, _, converged, _, _ = _simplex.solve_one(a_ext, b_ext, M_ext, max_iter)
    plan = np.ascontiguousarray(G[:n, :m])
    return plan, (plan * M).sum(), converged


def check(batch, options):
    """Check, before solving, that ``mass`` fits every problem.

    Parameters
    ----------
    batch : ProblemBatch
        The validated batch.
    options : SolverOptions
        The options.

    Raises
    ------
    ValueError
        If ``mass`` exceeds the smaller of a problem's two masses; the message
        names the first such problem.
    """
    mass = options["mass"]
    if mass is None or len(batch) == 0:
        return
    smaller = np.minimum(*batch.masses())
    over = np.flatnonzero(mass > smaller * (1 + _MASS_RTOL))
    if over.size:
        i = over[0]
        raise ValueError(
            f"Problem {i}: mass={mass!r} exceeds the smaller of its masses "
            f"({float(smaller[i])!r}); partial transport cannot move more than that."
        )
