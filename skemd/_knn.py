"""Exact EMD k-nearest-neighbour search, pruned by lower bounds.

This module owns :func:`knn_search`: blocks of queries, each query's
candidates solved in the order of their lower bounds (from
:mod:`skemd._bounds`), rounds that gather the next candidates of every
unfinished query of a block into one call of the caller's ``solve``, the
stopping rule, and, when the queries are the fit samples and the distance is
symmetric, the reuse of solved pairs; and :func:`every_pair_search`, the
search without bounds, for distances that have none. It never imports the
driver: the caller solves the pairs.
"""

from numbers import Integral

import numpy as np

#: Pairs solved per block of queries of :func:`every_pair_search`.
BLOCK_PAIRS = 1 << 16


def knn_search(
    bounds,
    solve,
    n_neighbors,
    *,
    include_self=True,
    symmetric=False,
    block_size=None,
    round_size=None,
    memory_per_sample=None,
    progress=None,
):
    """The exact ``n_neighbors`` nearest fit samples of each query.

    Each query's candidates are solved in increasing order of their lower
    bound, a few per round, and a query is finished when its next bound
    exceeds its current k-th distance (with the margin of
    :meth:`~skemd._bounds.PairBounds.threshold`) or no candidate is left.
    Every pair left unsolved then has a distance strictly above the k-th, so
    the result is the brute force's: each row of the full distance matrix
    sorted by distance, ties broken by the smaller index.

    Parameters
    ----------
    bounds : PairBounds
        From :meth:`skemd._bounds.EMDLowerBounds.queries`; it is read
        through ``n_queries``, ``n_fit``, ``self_search``, ``first(rows)``,
        ``refine(q, f, lower, threshold, lazy)`` and ``threshold(kth)``.
    solve : callable
        ``solve(pairs) -> distances``: ``pairs`` an int ndarray of shape
        (p, 2) of (query index, fit index), the result an ndarray of shape
        (p,) of their exact EMD. Called once per round with every pair of the
        round, so it may solve them in parallel.
    n_neighbors : int
        k, at most the number of candidates of a query.
    include_self : bool, default=True
        In a self search (``bounds.self_search``), whether a sample is a
        candidate of its own query, as scikit-learn's ``KNeighborsTransformer``
        has it on its training data. Ignored otherwise.
    symmetric : bool, default=False
        Whether ``solve`` gives ``d(i, j) == d(j, i)`` and ``d(i, i) == 0``
        exactly (a symmetric ground cost with a zero diagonal and an exact
        method). In a self search, ``d(i, i)`` is then never solved, each
        pair is solved once, as ``(min(i, j), max(i, j))``, and answers both
        queries: within a block directly, across blocks through a store of
        each sample's ``memory_per_sample`` smallest distances found so far.
    block_size : int, default=None
        Queries per block; each block holds a few (block_size, n_fit)
        arrays. None: up to 512, about 2**20 pairs.
    round_size : int, default=None
        Candidates per query per round after the first, which solves k.
        None: ``max(2, n_neighbors // 2)``.
    memory_per_sample : int, default=None
        See ``symmetric``. None: ``4 * n_neighbors``.
    progress : callable, default=None
        ``progress(n)``, called as each block of ``n`` queries is finished.

    Returns
    -------
    distances : ndarray of shape (n_queries, n_neighbors)
        Each query's distances, increasing.
    indices : ndarray of shape (n_queries, n_neighbors)
        The fit indices, ties by the smaller index.
    n_solved : int
        How many pairs were passed to ``solve``.

    Examples
    --------
    >>> import numpy as np
    >>> import ot
    >>> from skemd._bounds import EMDLowerBounds
    >>> from skemd._knn import knn_search
    >>> clouds = np.array([[[0.0], [1.0]], [[0.0], [2.0]], [[5.0], [6.0]]])
    >>> def solve(pairs):
    ...     return np.array([ot.emd2([], [], ot.dist(clouds[i], clouds[j], "euclidean"))
    ...                      for i, j in pairs])
    >>> bounds = EMDLowerBounds(clouds, "euclidean").queries()
    >>> distances, indices, n_solved = knn_search(
    ...     bounds, solve, 1, include_self=False, symmetric=True)
    >>> distances, indices
    (array([[0.5],
           [0.5],
           [4.5]]), array([[1],
           [0],
           [1]]))
    """
    n_q, n_fit = bounds.n_queries, bounds.n_fit
    exclude = bounds.self_search and not include_self
    if not isinstance(n_neighbors, Integral) or not 1 <= n_neighbors <= n_fit - exclude:
        raise ValueError(
            f"n_neighbors must be an integer from 1 to {n_fit - exclude}, "
            f"the candidates of each query; got {n_neighbors!r}."
        )
    for name, value in [
        ("block_size", block_size),
        ("round_size", round_size),
        ("memory_per_sample", memory_per_sample),
    ]:
        if value is not None and not (isinstance(value, Integral) and value >= 1):
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    k = int(n_neighbors)
    reuse = bounds.self_search and symmetric
    block = block_size or max(1, min(512, (1 << 20) // n_fit))
    search = _Search(
        bounds,
        solve,
        k,
        exclude,
        reuse,
        round_size or max(2, k // 2),
        memory_per_sample or 4 * k,
    )
    distances, indices = np.empty((n_q, k)), np.empty((n_q, k), dtype=np.intp)
    for start in range(0, n_q, block):
        rows = np.arange(start, min(start + block, n_q))
        distances[rows], indices[rows] = search.block(rows)
        if progress is not None:
            progress(len(rows))
    return distances, indices, search.n_solved


def every_pair_search(
    solve, n_queries, n_fit, n_neighbors, *, exclude_self=False, progress=None
):
    """The ``n_neighbors`` nearest fit samples of each query, every pair solved.

    A block of queries at a time, about :data:`BLOCK_PAIRS` pairs, each
    block's pairs in one call of ``solve``.

    Parameters
    ----------
    solve : callable
        ``solve(pairs) -> distances``, as :func:`knn_search` takes it.
    n_queries, n_fit : int
        The numbers of queries and fit samples.
    n_neighbors : int
        k, at most the number of candidates of a query.
    exclude_self : bool, default=False
        Whether query ``i`` is not a candidate of its own (the queries are the
        fit samples, as ``kneighbors(X=None)`` has it).
    progress : callable, default=None
        ``progress(n)``, called as each block of ``n`` queries is finished.

    Returns
    -------
    distances, indices : ndarray of shape (n_queries, n_neighbors)
        Each query's distances, increasing, and the fit indices; ties go to
        the smaller index.
    n_solved : int
        How many pairs were passed to ``solve``.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._knn import every_pair_search
    >>> x = np.array([0.0, 1.0, 5.0])
    >>> def solve(pairs):
    ...     return np.abs(x[pairs[:, 0]] - x[pairs[:, 1]])
    >>> distances, indices, n_solved = every_pair_search(
    ...     solve, 3, 3, 1, exclude_self=True)
    >>> distances.ravel(), indices.ravel(), int(n_solved)
    (array([1., 1., 4.]), array([1, 0, 1]), 6)
    """
    distances = np.empty((n_queries, n_neighbors))
    indices = np.empty((n_queries, n_neighbors), dtype=np.intp)
    block = max(1, BLOCK_PAIRS // max(n_fit, 1))
    n_solved = 0
    for start in range(0, n_queries, block):
        rows = np.arange(start, min(start + block, n_queries))
        pairs = np.stack(np.meshgrid(rows, np.arange(n_fit), indexing="ij"), -1)
        wanted = pairs[:, :, 0] != pairs[:, :, 1]
        wanted |= not exclude_self
        D = np.full((len(rows), n_fit), np.inf)
        D[wanted] = solve(pairs[wanted])
        n_solved += np.count_nonzero(wanted)
        # Stable: equal distances keep the order of their indices.
        order = np.argsort(D, axis=1, kind="stable")[:, :n_neighbors]
        indices[rows] = order
        distances[rows] = np.take_along_axis(D, order, axis=1)
        if progress is not None:
            progress(len(rows))
    return distances, indices, n_solved


class _Search:
    """The state of one search: the caller's solver and the pair store."""

    def __init__(self, bounds, solve, k, exclude, reuse, round_size, memory):
        self.bounds, self.solve, self.k = bounds, solve, k
        self.exclude, self.reuse, self.round_size = exclude, reuse, round_size
        self.n_solved = 0
        if reuse:
            self.stored = np.full((bounds.n_fit, memory), np.inf)
            self.partner = np.full((bounds.n_fit, memory), -1, dtype=np.intp)

    def block(self, rows):
        """Search the queries ``rows``; their (distances, indices)."""
        k, bounds = self.k, self.bounds
        B, n_fit = len(rows), bounds.n_fit
        at = np.arange(B)
        lower = bounds.first(rows)
        # Exact distances found (nan: not yet); +inf closes a candidate.
        known = np.full((B, n_fit), np.nan)
        if self.exclude:
            known[at, rows] = np.inf
        elif self.reuse:
            known[at, rows] = 0.0
        if self.reuse:
            held = self.partner[rows] >= 0
            b, _ = np.nonzero(held)
            known[b, self.partner[rows][held]] = self.stored[rows][held]
        refined = self._seed(rows, lower, known)
        # Every candidate that the k distances found so far do not rule out,
        # refined by the cheap bounds, then solved in order of its bound, a
        # few per round, each first refined by the costly bounds.
        limit = bounds.threshold(_kth_smallest(known, k))
        b, j = np.nonzero(np.isnan(known) & (lower <= limit[:, None]))
        done = refined[b, j]
        tight = lower[b, j]
        pairs = rows[b[~done]], j[~done], tight[~done], limit[b[~done]]
        tight[~done] = bounds.refine(*pairs, lazy=False)
        keep = tight <= limit[b]
        b, j, tight, done = b[keep], j[keep], tight[keep], done[keep]
        order = np.lexsort((tight, b))
        b, j, tight, done = b[order], j[order], tight[order], done[order]
        ptr, end = np.searchsorted(b, at), np.searchsorted(b, at, side="right")
        found = np.nan_to_num(known, nan=np.inf)
        best = np.sort(np.partition(found, k - 1, axis=1)[:, :k], axis=1)
        step = np.arange(self.round_size)
        while True:
            limit = bounds.threshold(best[:, -1])
            live = ptr < end
            live[live] = tight[ptr[live]] <= limit[live]
            if not live.any():
                break
            slot = ptr[live, None] + step
            taken = (slot < end[live, None]) & (
                tight[np.minimum(slot, len(tight) - 1)] <= limit[live, None]
            )
            ptr[live] += taken.sum(axis=1)
            slot = slot[taken]
            slot = slot[np.isnan(known[b[slot], j[slot]])]
            todo = slot[~done[slot]]
            pairs = rows[b[todo]], j[todo], tight[todo], limit[b[todo]]
            tight[todo] = bounds.refine(*pairs, lazy=True)
            slot = slot[tight[slot] <= limit[b[slot]]]
            best = _merge_smallest(best, *self._solve(rows, b[slot], j[slot], known))
        finite = np.nan_to_num(known, nan=np.inf)
        # A stable sort breaks ties by the smaller index, as brute force does.
        order = np.argsort(finite, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(finite, order, 1), order

    def _seed(self, rows, lower, known):
        """Solve k good candidates of each query with fewer than k distances.

        They are the best, by the full cascade, of the 2k best by the first
        bound; the mask of the pairs so refined is returned.
        """
        k, bounds = self.k, self.bounds
        refined = np.zeros(lower.shape, dtype=bool)
        short = np.flatnonzero((known < np.inf).sum(axis=1) < k)
        if not short.size:
            return refined
        unknown = np.isnan(known[short])
        refined[short] = _smallest(np.where(unknown, lower[short], np.inf), 2 * k)
        b, j = np.nonzero(refined)
        lower[b, j] = bounds.refine(rows[b], j, lower[b, j], np.full(len(b), np.inf))
        need = k - (known[short] < np.inf).sum(axis=1)
        b, j = np.nonzero(
            _smallest(np.where(refined[short], lower[short], np.inf), need)
        )
        self._solve(rows, short[b], j, known)
        return refined

    def _solve(self, rows, b, j, known):
        """Solve the pairs ``(rows[b], j)`` and record them (and mirrors).

        Returns the block's rows and distances that became known.
        """
        if not b.size:
            return b, np.empty(0)
        pairs = np.column_stack([rows[b], j])
        if self.reuse:
            pairs.sort(axis=1)
        unique, back = np.unique(pairs, axis=0, return_inverse=True)
        distance = np.asarray(self.solve(unique), dtype=np.float64)
        if distance.shape != (len(unique),):
            raise ValueError(
                f"solve returned shape {distance.shape} for "
                f"{len(unique)} pairs; it must return one distance "
                "per pair."
            )
        bad = np.flatnonzero(~np.isfinite(distance))
        if bad.size:
            i, f = unique[bad[0]]
            raise ValueError(
                f"solve returned {distance[bad[0]]} for the pair "
                f"(query {i}, fit {f}); distances must be finite."
            )
        self.n_solved += len(unique)
        if not self.reuse:
            known[b, j] = distance[back.ravel()]
            return b, known[b, j]
        # Both sides of each pair: a query of this block, or a later one.
        start, stop = rows[0], rows[-1] + 1
        found_b, found_d = [], []
        for i, f in (unique.T, unique.T[::-1]):
            here = (i >= start) & (i < stop)
            here[here] = np.isnan(known[i[here] - start, f[here]])
            known[i[here] - start, f[here]] = distance[here]
            found_b.append(i[here] - start)
            found_d.append(distance[here])
            later = i >= stop
            self._store(i[later], f[later], distance[later])
        return np.concatenate(found_b), np.concatenate(found_d)

    def _store(self, targets, partners, distance):
        """Keep each target's ``memory`` smallest distances, ties by index."""
        if not targets.size:
            return
        memory = self.stored.shape[1]
        touched = np.unique(targets)
        t = np.concatenate([np.repeat(touched, memory), targets])
        p = np.concatenate([self.partner[touched].ravel(), partners])
        d = np.concatenate([self.stored[touched].ravel(), distance])
        order = np.lexsort((p, d, t))
        t, p, d = t[order], p[order], d[order]
        rank = np.arange(len(t)) - np.searchsorted(t, t)
        kept = rank < memory
        self.stored[t[kept], rank[kept]] = d[kept]
        self.partner[t[kept], rank[kept]] = p[kept]


def _kth_smallest(known, k):
    """The k-th smallest distance known in each row (inf: fewer than k)."""
    return np.partition(np.nan_to_num(known, nan=np.inf), k - 1, axis=1)[:, k - 1]


def _merge_smallest(best, b, distance):
    """Merge the distances found for rows ``b`` into each row's sorted k best."""
    if not b.size:
        return best
    B, k = best.shape
    rows = np.concatenate([np.repeat(np.arange(B), k), b])
    values = np.concatenate([best.ravel(), distance])
    order = np.lexsort((values, rows))
    rows, values = rows[order], values[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    merged = np.empty_like(best)
    merged[rows[rank < k], rank[rank < k]] = values[rank < k]
    return merged


def _smallest(values, counts):
    """Mask of the ``counts`` smallest finite values of each row."""
    counts = np.broadcast_to(counts, len(values))
    mask = np.zeros(values.shape, dtype=bool)
    top = int(min(counts.max(initial=0), values.shape[1]))
    if top <= 0:
        return mask
    part = np.argpartition(values, top - 1, axis=1)[:, :top]
    part = np.take_along_axis(
        part, np.argsort(np.take_along_axis(values, part, 1), 1), 1
    )
    keep = (np.arange(top) < counts[:, None]) & np.isfinite(
        np.take_along_axis(values, part, 1)
    )
    np.put_along_axis(mask, part, keep, axis=1)
    return mask
