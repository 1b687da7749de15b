"""Lower bounds of the exact EMD between samples, for pruned neighbour searches.

This module owns what lets :func:`skemd._knn.knn_search` skip exact solves:
the samples' features, each lower bound of the balanced EMD between measures
of mass 1, their cascade (cheapest first) and the rounding margin that makes
a pruning decision safe. Every bound holds for any plan, hence for the EMD:

- ``centroid``: ``c(mean_x, mean_y)``; the cost is a norm (euclidean,
  cityblock: ``||E[x - y]|| <= E||x - y||``) or its square (Jensen).
- ``projected``: a map ``x -> theta.x`` with ``|theta.(x - y)| <= ||x - y||``
  (``||theta||_2 = 1`` for euclidean, ``||theta||_inf = 1`` for cityblock)
  sends any plan to a plan of the projected measures, so their 1-D W1 is a
  bound; the max over directions. For sqeuclidean the cost is the sum of the
  squared projections on an orthonormal basis, and a min of a sum is at least
  the sum of the mins: the sum over a basis of the 1-D W2^2, max over bases.
  The 1-D costs are bounded by L_p distances between embeddings (by Jensen,
  :func:`~skemd._measures.quantile_means`; exact for uniform clouds of K
  points and, the CDFs', for histograms under W1); ``projected-exact`` merges
  the quantile functions where the embedding is not exact.
- ``relaxed``: dropping one marginal constraint,
  ``max(sum_i a_i min_{b_j>0} C_ij, sum_j b_j min_{a_i>0} C_ij)``, any cost.
"""

import functools

import numpy as np

from ._ground import METRICS, HistogramSpace, Samples, ground_distance, line_cdfs
from ._measures import (
    by_chunks,
    check_weights,
    histogram_clouds,
    nearest_costs,
    padded_clouds,
    projection_groups,
    sliced_features,
    wasserstein_1d,
)

#: Relative margin of a pruning decision (see :meth:`PairBounds.threshold`).
RTOL = 1e-8


class EMDLowerBounds:
    """Lower bounds of the exact EMD against a fixed set of fit samples.

    Parameters
    ----------
    fit : ndarray of shape (n_fit, n_bins) or (n_fit, n_points, d), list or Samples
        Histograms of mass 1 (``space`` a HistogramSpace), or point clouds
        (``space`` a metric), uniform unless ``weights`` says otherwise, or a
        list of (n_i, d) arrays; a ``Samples`` brings its own weights.
    space : HistogramSpace or {"sqeuclidean", "euclidean", "cityblock"}
        As :func:`skemd._driver.solve_pairs` takes it.
    support : ndarray of shape (n_bins, d), default=None
        Histograms only: the bins' positions, with ``metric``, such that
        ``space.cost`` is ``ground_distance(support, support, metric)``.
        Without it, only the relaxed bound applies.
    metric : {"sqeuclidean", "euclidean", "cityblock"}, default=None
        Histograms only: the metric of ``support``.
    weights : ndarray of shape (n_fit, n_points) or list, default=None
        Clouds only: the points' weights, non-negative, summing to 1.
    n_projections : int, default=None
        Directions (default 8) or, for sqeuclidean, orthonormal bases (2).
    n_quantiles : int, default=32
        K of the quantile embedding; uniform fit clouds use their size.
    random_state : int, default=0
        Seeds the random directions in more than 2 dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._bounds import EMDLowerBounds
    >>> clouds = np.array([[[0.0], [1.0]], [[3.0], [3.0]]])
    >>> pairs = EMDLowerBounds(clouds, "euclidean").queries()
    >>> pairs.first(np.arange(2))
    array([[0. , 2.5],
           [2.5, 0. ]])
    """

    def __init__(
        self,
        fit,
        space,
        *,
        support=None,
        metric=None,
        weights=None,
        n_projections=None,
        n_quantiles=32,
        random_state=0,
    ):
        self.histograms = isinstance(space, HistogramSpace)
        self.space, self.support, self.metric = space, None, space
        if self.histograms:
            self.metric = metric
            if weights is not None or (support is None) != (metric is None):
                raise ValueError("Histograms take support and metric, or neither.")
        elif support is not None or metric is not None:
            raise ValueError(f"Clouds take no support; their metric is {space!r}.")
        if self.metric is not None and self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}; got {self.metric!r}.")
        if support is not None:
            self.support = np.asarray(support, dtype=np.float64)
            exact = ground_distance(self.support, self.support, metric)
            same = exact.shape == space.cost.shape
            if not (same and np.allclose(exact, space.cost, rtol=1e-12, atol=0)):
                raise ValueError(
                    f"space.cost is not the {metric} cost between the support "
                    "points: the geometric bounds would not hold."
                )
        self.p = 2 if self.metric == "sqeuclidean" else 1
        self._fit = self._features(fit, weights, "fit")
        self.K = self._fit.get("uniform") or n_quantiles
        if self.metric is not None:
            d = self._fit["points"].shape[2]
            self.groups = projection_groups(self.metric, d, n_projections, random_state)
            self._fit.update(self._projected(self._fit))

    def queries(self, X=None, weights=None):
        """The bounds between query samples and the fit samples.

        Parameters
        ----------
        X : samples of the fit samples' kind, default=None
            The queries; None searches the fit samples themselves.
        weights : ndarray or list, default=None
            The queries' weights, for clouds.

        Returns
        -------
        bounds : PairBounds
            What :func:`skemd._knn.knn_search` takes.

        Examples
        --------
        >>> import numpy as np
        >>> from skemd._bounds import EMDLowerBounds
        >>> fit = np.array([[[0.0, 0.0]], [[3.0, 4.0]]])
        >>> EMDLowerBounds(fit, "euclidean").queries(fit[:1]).first([0])
        array([[0., 5.]])
        """
        if X is None:
            return PairBounds(self, self._fit, self._fit, self_search=True)
        queries = self._features(X, weights, "X")
        if self.metric is not None:
            queries.update(self._projected(queries))
        return PairBounds(self, queries, self._fit, self_search=False)

    def _features(self, X, weights, name):
        if isinstance(X, Samples):
            X, weights = X.data, X.weights
        s = {}
        if self.histograms:
            H = np.asarray(X, dtype=np.float64)
            n_bins = len(self.space.cost)
            if H.ndim != 2 or H.shape[1] != n_bins:
                wanted = f"histograms of shape (n, {n_bins})"
                raise ValueError(f"{name} must be {wanted}; got shape {H.shape}.")
            check_weights(H, name)
            s = {"n": len(H), "hist": H, "uniform": None}
            s["rows"], s["cols"] = nearest_costs(H, self.space.cost)
            if self.metric is None:
                return s
            points, w = histogram_clouds(H, self.support)
        else:
            points, w, s["uniform"] = padded_clouds(X, weights, name)
            fit = getattr(self, "_fit", None)
            if fit is not None and points.shape[2] != fit["points"].shape[2]:
                raise ValueError(f"{name} and the fit samples differ in dimension.")
        means = np.einsum("nw,nwd->nd", w, points)
        return s | {"n": len(w), "points": points, "weights": w, "means": means}

    def _projected(self, s):
        """Per group of directions: the embedding and the sorted projections."""
        if self.histograms and self.p == 1:
            cdfs = (line_cdfs(s["hist"], self.support @ g[0]) for g in self.groups)
            return {"embeddings": [cdf * widths for cdf, widths in cdfs]}
        args = s["points"], s["weights"]
        groups = [sliced_features(*args, g, self.K, s["uniform"]) for g in self.groups]
        return {"embeddings": [e for e, _ in groups], "sorted": [p for _, p in groups]}


class PairBounds:
    """The lower bounds between a set of queries and the fit samples.

    Built by :meth:`EMDLowerBounds.queries`. The cascade's first level
    (``centroid``, and ``relaxed`` for histograms) is computed for a block of
    queries against every fit sample; the others pair by pair, each only
    where the previous ones did not rule the pair out.

    Attributes
    ----------
    n_queries, n_fit : int
        The numbers of queries and fit samples.
    self_search : bool
        Whether the queries are the fit samples.
    atol : float
        Absolute margin of a pruning decision, ``RTOL`` times the largest
        cost the samples' coordinates allow.
    names : tuple of str
        The bounds, in cascade order.
    evaluated : dict of str to int
        How many pairs each bound was computed for, so far.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._bounds import EMDLowerBounds
    >>> clouds = np.array([[[0.0, 0.0], [2.0, 0.0]], [[0.0, 1.0], [2.0, 1.0]]])
    >>> bounds = EMDLowerBounds(clouds, "sqeuclidean").queries()
    >>> bounds.names
    ('centroid', 'projected', 'relaxed')
    >>> q, f = np.array([0]), np.array([1])
    >>> [float(bounds.bound(name, q, f)[0]) for name in bounds.names]
    [1.0, 1.0, 1.0]
    """

    def __init__(self, owner, queries, fit, self_search):
        self.n_queries, self.n_fit = queries["n"], fit["n"]
        self.self_search = self_search
        self._o, self._q, self._f = owner, queries, fit
        o, partial = owner, functools.partial
        # (name, function of pairs, temporary cells per pair): the first
        # level, the cheap (eager) stages, then the costly (lazy) ones.
        first, eager, lazy = [], [], []
        if o.histograms:
            first = [("relaxed", self._relaxed_histograms, len(o.space.cost))]
        if o.metric is not None:
            first.insert(0, ("centroid", self._centroid, 4))
            for g, e in enumerate(fit["embeddings"]):
                eager.append(("projected", partial(self._embedded, g), e.shape[1]))
            exact = o.histograms and o.p == 1
            exact |= queries["uniform"] == fit["uniform"] == o.K
            width = queries["weights"].shape[1] + fit["weights"].shape[1]
            for g in range(len(o.groups) * (not exact)):
                lazy.append(("projected-exact", partial(self._merged, g), 2 * width))
            if not o.histograms:
                lazy.append(("relaxed", self._relaxed_clouds, width * width // 2))
        stages = self._stages = first + eager + lazy
        self._n_first, self._n_eager = len(first), len(first) + len(eager)
        self.names = tuple(dict.fromkeys(stage[0] for stage in stages))
        self.evaluated = dict.fromkeys(self.names, 0)
        scale = np.abs(owner.space.cost).max(initial=0.0) if owner.histograms else 0.0
        if owner.metric is not None:
            reach = max(np.abs(s["points"]).max(initial=0.0) for s in (queries, fit))
            corner = np.full((1, fit["points"].shape[2]), reach)
            scale = max(scale, ground_distance(corner, -corner, owner.metric)[0, 0])
        self.atol = RTOL * scale

    def threshold(self, kth):
        """The largest bound that cannot rule a pair out, given k-th distances.

        A pair is pruned only when its bound exceeds ``kth + RTOL * |kth| +
        atol``. The bounds and the solver's costs are sums of a few n_points
        terms at most the largest cost, weighted by masses summing to 1: their
        rounding errors, some n_points * 1e-16 of that cost, are far below the
        margin, so a pair whose distance ties the k-th is never pruned.

        Parameters
        ----------
        kth : ndarray
            The current k-th smallest exact distances (inf: none yet).

        Returns
        -------
        threshold : ndarray
            Same shape as ``kth``.

        Examples
        --------
        >>> import numpy as np
        >>> from skemd._bounds import EMDLowerBounds
        >>> bounds = EMDLowerBounds(np.zeros((1, 1, 1)), "euclidean").queries()
        >>> bounds.threshold(np.array([1.0, np.inf]))
        array([1.00000001,        inf])
        """
        kth = np.asarray(kth, dtype=np.float64)
        return kth + RTOL * np.abs(kth) + self.atol

    def first(self, rows):
        """The first level of the cascade, for queries ``rows`` against all.

        Parameters
        ----------
        rows : array-like of int
            Query indices.

        Returns
        -------
        lower : ndarray of shape (len(rows), n_fit)
            A lower bound of each pair's EMD.
        """
        rows = np.asarray(rows, dtype=np.intp)
        q, f, o = self._q, self._f, self._o
        # Not 0: under a ground cost with negative entries, EMDs can be < 0.
        lower = np.full((len(rows), self.n_fit), -np.inf)
        if o.metric is not None:
            lower = ground_distance(q["means"][rows], f["means"], o.metric)
        if o.histograms:
            relaxed = q["hist"][rows] @ f["rows"].T, q["cols"][rows] @ f["hist"].T
            lower = np.maximum(lower, np.maximum(*relaxed))
        for name, *_ in self._stages[: self._n_first]:
            self.evaluated[name] += lower.size
        return lower

    def refine(self, q, f, lower, threshold, lazy=None):
        """Tighten ``lower`` for the pairs ``(q, f)`` with the later bounds.

        Parameters
        ----------
        q, f : ndarray of shape (n_pairs,)
            Query and fit indices.
        lower : ndarray of shape (n_pairs,)
            Their bounds so far (from :meth:`first`).
        threshold : ndarray of shape (n_pairs,)
            A pair stops being refined once its bound exceeds its threshold.
        lazy : bool, default=None
            False: only the cheap bounds after the first level (projections'
            embeddings); True: only the others, costing a few times the
            samples' sizes (``projected-exact``, and ``relaxed`` for clouds);
            None: both.

        Returns
        -------
        lower : ndarray of shape (n_pairs,)
            The tightened bounds.
        """
        lower = np.array(lower, dtype=np.float64)
        live = np.flatnonzero(lower <= threshold)
        start = self._n_eager if lazy else self._n_first
        stop = self._n_eager if lazy is False else len(self._stages)
        for name, bound, cells in self._stages[start:stop]:
            if not live.size:
                break
            self.evaluated[name] += live.size
            tighter = by_chunks(bound, q[live], f[live], cells)
            lower[live] = np.maximum(lower[live], tighter)
            live = live[lower[live] <= threshold[live]]
        return lower

    def bound(self, name, q, f):
        """One bound of the cascade alone (the max over its stages), for pairs.

        Parameters
        ----------
        name : str
            One of :attr:`names`.
        q, f : ndarray of shape (n_pairs,)
            Query and fit indices.

        Returns
        -------
        lower : ndarray of shape (n_pairs,)
            The bound of each pair.
        """
        q, f = np.asarray(q, dtype=np.intp), np.asarray(f, dtype=np.intp)
        lower = np.full(len(q), -np.inf)
        for stage, bound, cells in self._stages:
            if stage == name:
                lower = np.maximum(lower, by_chunks(bound, q, f, cells))
        return lower

    def _centroid(self, q, f):
        pair = (self._q["means"][q, None], self._f["means"][f, None])
        return ground_distance(*pair, self._o.metric)[:, 0, 0]

    def _relaxed_histograms(self, q, f):
        qs, fs = self._q, self._f
        to_fit = np.einsum("pi,pi->p", qs["hist"][q], fs["rows"][f])
        return np.maximum(to_fit, np.einsum("pi,pi->p", qs["cols"][q], fs["hist"][f]))

    def _relaxed_clouds(self, q, f):
        qs, fs = self._q, self._f
        wq, wf = qs["weights"][q], fs["weights"][f]
        cost = ground_distance(qs["points"][q], fs["points"][f], self._o.metric)
        to_fit = np.where(wf[:, None, :] > 0, cost, np.inf).min(axis=2)
        to_query = np.where(wq[:, :, None] > 0, cost, np.inf).min(axis=1)
        return np.maximum((wq * to_fit).sum(axis=1), (wf * to_query).sum(axis=1))

    def _embedded(self, g, q, f):
        gap = np.abs(self._q["embeddings"][g][q] - self._f["embeddings"][g][f])
        return (gap * gap).sum(axis=1) * self._o.K if self._o.p == 2 else gap.sum(1)

    def _merged(self, g, q, f):
        total = np.zeros(len(q))
        sides = zip(self._q["sorted"][g], self._f["sorted"][g], strict=True)
        for (xq, cq), (xf, cf) in sides:
            total += wasserstein_1d(xq[q], cq[q], xf[f], cf[f], self._o.p)
        return total
