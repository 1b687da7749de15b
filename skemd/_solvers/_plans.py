"""Plan sinks: where a chunk's solver puts the plans it finds.

A solver hands over each plan in the form it has (a dense matrix from the
network simplex or Sinkhorn, a permutation from the assignment solver) and
the sink stores it in the plan format asked for (``return_plan``: none,
"dense" or "sparse"), so that no dense plan is built for sparse output. A
sink that keeps plans never drops one: what it cannot store is an error.
When dual potentials are asked for, the sink also holds a
:class:`DualPotentials` store, ``sink.duals`` (None otherwise).
"""

import numpy as np


class NoPlans:
    """Discards plans: distances only."""

    #: Whether the sink keeps plans (solvers skip building ones it would drop).
    stores = False

    def __init__(self, k, n, m, out=None):
        self.duals = None

    def put_dense(self, i, G):
        """Store the (n, m) plan ``G`` of problem ``i``."""

    def put_dense_many(self, idx, G):
        """Store the plans ``G`` of shape (len(idx), n, m) of problems ``idx``."""
        for i, Gi in zip(idx, G, strict=True):
            self.put_dense(i, Gi)

    def put_permutations(self, idx, cols, weights):
        """Store permutation plans: row r of problem ``idx[j]`` to ``cols[j, r]``."""

    def result(self):
        """Return the stored plans (None for this sink)."""
        return None


class DensePlans(NoPlans):
    """Stores plans in a zeroed (k, n, m) array: ``out`` if given, else its own."""

    stores = True

    def __init__(self, k, n, m, out=None):
        super().__init__(k, n, m)
        self.in_place = out is not None
        self.plans = out if self.in_place else np.zeros((k, n, m))

    def put_dense(self, i, G):
        self.plans[i] = G

    def put_dense_many(self, idx, G):
        self.plans[idx] = G

    def put_permutations(self, idx, cols, weights):
        n = cols.shape[1]
        self.plans[idx[:, None], np.arange(n), cols] = weights[:, None]

    def result(self):
        """Return the (k, n, m) plans, or None when written into ``out``."""
        return None if self.in_place else self.plans


class SparsePlans(NoPlans):
    """Stores each plan's nonzeros as flat (row-major) indices and values.

    An optimal basic plan (network simplex, assignment) is a spanning-tree
    solution with at most n + m - 1 nonzeros on real arcs (n + m counting a
    stopped solve's artificial arcs), so fixed-width rows of n + m slots hold
    it. A plan with more nonzeros (an entropic plan, say) is refused.
    """

    stores = True

    def __init__(self, k, n, m, out=None):
        super().__init__(k, n, m)
        self.m = m
        self.counts = np.zeros(k, dtype=np.int64)
        self.indices = np.zeros((k, n + m), dtype=np.int64)
        self.values = np.zeros((k, n + m))

    def put_dense(self, i, G):
        flat = np.flatnonzero(G)
        if flat.size > self.indices.shape[1]:
            raise ValueError(
                f"A plan with {flat.size} nonzeros cannot be stored as a sparse "
                f"basic plan (at most n + m = {self.indices.shape[1]}); ask for "
                "dense plans."
            )
        self.counts[i] = flat.size
        self.indices[i, : flat.size] = flat
        self.values[i, : flat.size] = G.ravel()[flat]

    def put_permutations(self, idx, cols, weights):
        n = cols.shape[1]
        self.counts[idx] = n
        self.indices[idx, :n] = np.arange(n) * self.m + cols
        self.values[idx, :n] = weights[:, None]

    def result(self):
        """Return ``(counts, flat_indices, values)``, problems in order."""
        used = np.arange(self.indices.shape[1]) < self.counts[:, None]
        return self.counts, self.indices[used], self.values[used]


class DualPotentials:
    """Dual potentials ``u`` (k, n) and ``v`` (k, m), NaN until a problem's are put.

    Parameters
    ----------
    k, n, m : int
        The number of problems and their shape.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._plans import DualPotentials
    >>> duals = DualPotentials(2, 2, 3)
    >>> duals.put(1, np.array([0.0, 1.0]), np.array([0.0, -1.0, 2.0]))
    >>> duals.u
    array([[nan, nan],
           [ 0.,  1.]])
    >>> duals.v[1]
    array([ 0., -1.,  2.])
    """

    def __init__(self, k, n, m):
        self.u = np.full((k, n), np.nan)
        self.v = np.full((k, m), np.nan)

    def put(self, i, u, v):
        """Store the potentials of problem(s) ``i``."""
        self.u[i] = u
        self.v[i] = v


def plan_sink(plan_format, k, n, m, out=None, *, duals=False):
    """Return the sink for ``plan_format`` (None, "dense" or "sparse").

    Parameters
    ----------
    plan_format : {None, "dense", "sparse"}
        The plans asked for.
    k, n, m : int
        The number of problems and their shape.
    out : ndarray of shape (k, n, m), default=None
        A zeroed array that dense plans are written into.
    duals : bool, default=False
        Whether the sink also keeps dual potentials, in ``sink.duals``.

    Returns
    -------
    sink : NoPlans
        The sink.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._solvers._plans import plan_sink
    >>> sink = plan_sink("sparse", 1, 2, 3)
    >>> sink.put_dense(0, np.array([[0.5, 0.0, 0.0], [0.0, 0.25, 0.25]]))
    >>> sink.result()
    (array([3]), array([0, 4, 5]), array([0.5 , 0.25, 0.25]))
    >>> sink.put_dense(0, np.full((2, 3), 1 / 6))
    Traceback (most recent call last):
    ...
    ValueError: A plan with 6 nonzeros cannot be stored as a sparse basic plan ...
    """
    sink = {None: NoPlans, "dense": DensePlans, "sparse": SparsePlans}[plan_format]
    sink = sink(k, n, m, out)
    if duals:
        sink.duals = DualPotentials(k, n, m)
    return sink
