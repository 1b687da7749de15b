"""Plan sinks: where a chunk's kernels put the plans they find.

A kernel hands over each plan in the form it has (a dense matrix from the
network simplex, a permutation from the assignment solver) and the sink stores
it in the form asked for, so that no dense plan is built for sparse output.
"""

import numpy as np


class NoPlans:
    """Discards plans: distances only."""

    #: Whether the sink keeps plans (solvers skip building ones it would drop).
    stores = False

    def __init__(self, k, n, m, out=None):
        pass

    def put_dense(self, i, G):
        pass

    def put_permutations(self, idx, cols, weights):
        pass

    def put_dense_many(self, idx, G):
        pass

    def result(self):
        return None


class DensePlans(NoPlans):
    """Stores plans in a zeroed (k, n, m) array: ``out`` if given, else its own."""

    stores = True

    def __init__(self, k, n, m, out=None):
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
        return None if self.in_place else self.plans


class SparsePlans(NoPlans):
    """Stores each plan's nonzeros as flat (row-major) indices and values.

    A plan of the network simplex is a spanning-tree solution, with at most
    n + m - 1 nonzeros on real arcs (n + m counting a stopped solve's
    artificial arcs), so fixed-width rows of n + m slots hold any plan.
    """

    stores = True

    def __init__(self, k, n, m, out=None):
        self.m = m
        self.counts = np.zeros(k, dtype=np.int64)
        self.indices = np.zeros((k, n + m), dtype=np.int64)
        self.values = np.zeros((k, n + m))

    def put_dense(self, i, G):
        flat = np.flatnonzero(G)
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


SINKS = {None: NoPlans, "dense": DensePlans, "sparse": SparsePlans}
