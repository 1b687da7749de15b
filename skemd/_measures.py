"""Samples as weighted point sets, and the features of the EMD's lower bounds.

This module owns the per-sample features that :mod:`skemd._bounds` combines
into bounds: clouds (uniform, weighted or ragged) and histograms as padded
arrays of points with weight 0 for padding, the nearest-bin costs of the
relaxed bound, the projection directions that keep a projection 1-Lipschitz
for the metric, the embeddings of projected clouds whose L_p distances are
lower bounds of their 1-D transport costs (exact for uniform clouds of K
points; histograms under W1 embed their CDFs, :func:`~skemd._ground.line_cdfs`)
and the exact 1-D W1 and W2^2 between weighted discrete measures. Steps are
vectorised over chunks of :data:`CELLS` elements.
"""

import numpy as np

#: Elements of a vectorised step's temporaries: small enough to stay in cache.
CELLS = 1 << 17
_MASS_TOL = 1e-10  # |mass - 1| allowed, far below the bounds' RTOL


def by_chunks(function, q, f, cells):
    """``function(q, f)`` over chunks of pairs, so temporaries stay in cache.

    Parameters
    ----------
    function : callable
        Maps index arrays ``q, f`` of shape (n,) to an ndarray of shape (n,).
    q, f : ndarray of shape (n_pairs,)
        The pairs.
    cells : int
        Elements of the function's temporaries per pair.

    Returns
    -------
    values : ndarray of shape (n_pairs,)
        ``function(q, f)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._measures import by_chunks
    >>> by_chunks(np.add, np.arange(3), np.arange(3), cells=2**16)
    array([0, 2, 4])
    """
    step = max(1, CELLS // cells)
    parts = [function(q[i : i + step], f[i : i + step]) for i in range(0, len(q), step)]
    return np.concatenate(parts) if parts else np.empty(0)


def nearest_costs(H, cost):
    """Each histogram's nearest-bin costs, for the relaxed bound.

    Parameters
    ----------
    H, cost : ndarray of shape (n, n_bins) and (n_bins, n_bins)
        Histograms and the ground cost.

    Returns
    -------
    rows, cols : ndarray of shape (n, n_bins)
        ``rows[s, i] = min_{j: H[s, j] > 0} cost[i, j]`` and
        ``cols[s, j] = min_{i: H[s, i] > 0} cost[i, j]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._measures import nearest_costs
    >>> nearest_costs(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0], [2.0, 0.0]]))
    (array([[0., 2.]]), array([[0., 1.]]))
    """
    rows, cols = np.empty(H.shape), np.empty(H.shape)
    step = max(1, CELLS // cost.size)
    for i in range(0, len(H), step):
        mask = H[i : i + step] > 0
        rows[i : i + step] = np.where(mask[:, None, :], cost, np.inf).min(axis=2)
        cols[i : i + step] = np.where(mask[:, :, None], cost, np.inf).min(axis=1)
    return rows, cols


def projection_groups(metric, d, n=None, random_state=0):
    """Directions (groups of one) or orthonormal bases (groups of d).

    Unit directions for euclidean, of unit max norm for cityblock (then
    ``|theta.(x - y)|`` is at most the cost); orthonormal bases for
    sqeuclidean (the cost is the sum of the squared projections on one).
    Evenly spread in 2-D; in more, the axes first, then random ones.

    Parameters
    ----------
    metric : {"sqeuclidean", "euclidean", "cityblock"}
        The ground metric.
    d : int
        The dimension.
    n : int, default=None
        Directions (default 8) or bases (default 2).
    random_state : int, default=0
        Seeds the random directions.

    Returns
    -------
    groups : list of ndarray of shape (1, d) or (d, d)
        The directions, one per row.

    Examples
    --------
    >>> from skemd._measures import projection_groups
    >>> projection_groups("cityblock", 2, 2)
    [array([[1., 0.]]), array([[6.123234e-17, 1.000000e+00]])]
    """
    rng = np.random.default_rng(random_state)
    if d == 1:
        return [np.ones((1, 1))]
    if metric == "sqeuclidean":
        n = 2 if n is None else n
        if d == 2:
            angles = np.arange(n) * np.pi / (2 * n)
            c, s = np.cos(angles), np.sin(angles)
            return list(np.stack([np.stack([c, s], 1), np.stack([-s, c], 1)], 1))
        bases = [np.linalg.qr(rng.standard_normal((d, d)))[0].T for _ in range(n - 1)]
        return [np.eye(d), *bases][:n]
    n = 8 if n is None else n
    if d == 2:
        angles = np.arange(n) * np.pi / n
        theta = np.stack([np.cos(angles), np.sin(angles)], 1)
    else:
        theta = np.concatenate([np.eye(d), rng.standard_normal((max(0, n - d), d))])
        theta = theta[:n]
    norm = (
        np.abs(theta).max(1) if metric == "cityblock" else np.linalg.norm(theta, axis=1)
    )
    return list((theta / norm[:, None])[:, None, :])


def sliced_features(points, weights, group, K, uniform):
    """Sorted projections of clouds on a group of directions, and their embedding.

    Parameters
    ----------
    points, weights : ndarray of shape (n, width, d) and (n, width)
        Padded clouds and their weights, 0 for padding.
    group : ndarray of shape (g, d)
        Directions.
    K : int
        Quantile intervals of the embedding.
    uniform : int or None
        The clouds' common size when their weights are uniform.

    Returns
    -------
    embedding : ndarray of shape (n, g * K)
        Per direction, the :func:`quantile_means` (exact for uniform clouds
        of K points).
    projections : list of tuple of ndarray
        Per direction, sorted positions and cumulative weights, (n, width).

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._measures import sliced_features
    >>> cloud, w = np.array([[[2.0], [0.0]]]), np.full((1, 2), 0.5)
    >>> embedding, [(x, c)] = sliced_features(cloud, w, np.ones((1, 1)), 2, 2)
    >>> embedding, x, c
    (array([[0., 1.]]), array([[0., 2.]]), array([[0.5, 1. ]]))
    """
    parts, projections = [], []
    for theta in group:
        x = points @ theta
        order = np.argsort(x, axis=1, kind="stable")
        x, w = np.take_along_axis(x, order, 1), np.take_along_axis(weights, order, 1)
        c = np.cumsum(w, axis=1)
        projections.append((x, c))
        parts.append(x / K if uniform == K else quantile_means(x, c, w, K))
    return np.concatenate(parts, axis=1), projections


def quantile_means(x, c, w, K):
    """Integrals of 1-D quantile functions over ``[k/K, (k+1)/K]``.

    Parameters
    ----------
    x, c, w : ndarray of shape (n, width)
        Sorted positions, cumulative weights and weights.
    K : int
        The number of intervals.

    Returns
    -------
    means : ndarray of shape (n, K)
        ``A_k = int_{k/K}^{(k+1)/K} Q(t) dt``. By Jensen, between two
        measures ``W_p^p >= K^(p-1) sum_k |A_k - A'_k|^p``.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._measures import quantile_means
    >>> quantile_means(np.array([[0.0, 4.0]]), np.array([[0.25, 1.0]]),
    ...                np.array([[0.25, 0.75]]), 2)
    array([[1., 2.]])
    """
    t = np.arange(K + 1) / K
    start = c - w
    out = np.empty((len(x), K))
    step = max(1, CELLS // ((K + 1) * x.shape[1]))
    for i in range(0, len(x), step):
        s = slice(i, i + step)
        inside = np.clip(t[:, None] - start[s, None, :], 0.0, w[s, None, :])
        out[s] = np.diff(np.einsum("nkw,nw->nk", inside, x[s]), axis=1)
    return out


def wasserstein_1d(xa, ca, xb, cb, p):
    """W_p^p between 1-D measures, row by row, by merging quantile functions.

    Parameters
    ----------
    xa, xb : ndarray of shape (n_pairs, m_a) and (n_pairs, m_b)
        Sorted positions.
    ca, cb : ndarray of the same shapes
        Cumulative weights, ending at 1 (zero weights are allowed).
    p : {1, 2}
        The exponent.

    Returns
    -------
    cost : ndarray of shape (n_pairs,)
        ``int_0^1 |Q_a(t) - Q_b(t)|^p dt``.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._measures import wasserstein_1d
    >>> x, c = np.array([[0.0, 1.0]]), np.array([[0.5, 1.0]])
    >>> wasserstein_1d(x, c, x + 2, c, 2)
    array([4.])
    >>> wasserstein_1d(x, c, np.zeros((1, 1)), np.ones((1, 1)), 1)
    array([0.5])
    """
    (n, m_a), m_b = ca.shape, cb.shape[1]
    # Each breakpoint carries its side in its last mantissa bit, one ulp off:
    # sorting values alone is three times faster than an argsort.
    keys = np.abs(np.concatenate([ca, cb], axis=1)).view(np.int64)
    keys &= ~1
    keys |= np.arange(m_a + m_b) >= m_a
    keys.sort(axis=1)
    from_b = keys & 1
    keys ^= from_b
    breaks = keys.view(np.float64)
    # On the interval ending at a breakpoint, each quantile function stands at
    # the number of its own breakpoints before it.
    ib = np.cumsum(from_b, axis=1)
    ib -= from_b
    ia = np.arange(m_a + m_b) - ib
    rows = np.arange(n)[:, None]
    gap = xa.ravel()[np.minimum(ia, m_a - 1) + rows * m_a]
    gap -= xb.ravel()[np.minimum(ib, m_b - 1) + rows * m_b]
    gap = gap * gap if p == 2 else np.abs(gap)
    gap[:, 1:] *= np.diff(breaks, axis=1)
    gap[:, 0] *= breaks[:, 0]
    return gap.sum(axis=1)


def check_weights(w, name):
    """Raise unless every row is finite, non-negative and sums to 1.

    Parameters
    ----------
    w : ndarray of shape (n, width)
        Weights, one sample per row.
    name : str
        The samples' name, for the error.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._measures import check_weights
    >>> check_weights(np.array([[0.5, 0.5], [0.5, 0.6]]), "X")
    Traceback (most recent call last):
    ...
    ValueError: X[1] has mass 1.1, not 1: the bounds are for normalised samples.
    """
    bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)).all(axis=1))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] has a negative or non-finite weight.")
    mass = w.sum(axis=1)
    bad = np.flatnonzero(np.abs(mass - 1.0) > _MASS_TOL)
    if bad.size:
        raise ValueError(
            f"{name}[{bad[0]}] has mass {mass[bad[0]]:.6g}, not 1: the bounds are "
            "for normalised samples."
        )


def histogram_clouds(H, support):
    """Each histogram as the cloud of its nonzero bins, padded with weight 0.

    Parameters
    ----------
    H, support : ndarray of shape (n, n_bins) and (n_bins, d)
        Histograms and the bins' positions.

    Returns
    -------
    points, weights : ndarray of shape (n, width, d) and (n, width)
        ``width`` is the most nonzero bins of a histogram.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._measures import histogram_clouds
    >>> histogram_clouds(np.array([[0.0, 1.0, 0.0]]), np.array([[0.0], [1.0], [2.0]]))
    (array([[[1.]]]), array([[1.]]))
    """
    mask = H > 0
    width = max(1, mask.sum(axis=1).max(initial=1))
    bins = np.argsort(~mask, axis=1, kind="stable")[:, :width]
    return support[bins], np.take_along_axis(H, bins, axis=1)


def padded_clouds(X, weights, name):
    """Clouds as one array of points and one of weights, 0 for padding.

    Parameters
    ----------
    X : ndarray of shape (n, n_points, d) or list of ndarray of shape (n_i, d)
        Point clouds.
    weights : None, ndarray of shape (n, n_points) or list of ndarray
        Their weights; None is uniform.
    name : str
        The samples' name, for errors.

    Returns
    -------
    points, weights : ndarray of shape (n, width, d) and (n, width)
    uniform : int or None
        The common size of uniform clouds of one size, else None.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._measures import padded_clouds
    >>> clouds = [np.zeros((1, 2)), np.ones((2, 2))]
    >>> points, w, uniform = padded_clouds(clouds, None, "X")
    >>> points.shape, w, uniform
    ((2, 2, 2), array([[1. , 0. ],
           [0.5, 0.5]]), None)
    """
    if isinstance(X, np.ndarray) and X.ndim == 3:
        points = np.asarray(X, dtype=np.float64)
        sizes = np.full(len(X), X.shape[1])
    else:
        clouds = [np.asarray(x, dtype=np.float64) for x in X]
        if any(x.ndim != 2 for x in clouds) or len({x.shape[1] for x in clouds}) != 1:
            raise ValueError(f"{name} must hold clouds of shapes (n_i, d), one d.")
        sizes = np.array([len(x) for x in clouds])
        points = np.zeros((len(clouds), sizes.max(), clouds[0].shape[1]))
        for i, x in enumerate(clouds):
            points[i, : len(x)] = x
    if not (points.shape[1] and np.isfinite(points).all() and sizes.all()):
        raise ValueError(f"{name} has an empty cloud or a non-finite coordinate.")
    slots = np.arange(points.shape[1]) < sizes[:, None]
    if weights is None:
        uniform = int(sizes[0]) if (sizes == sizes[0]).all() else None
        return points, slots / sizes[:, None], uniform
    if len(weights) != len(sizes):
        raise ValueError(f"{len(weights)} weight vectors for {len(sizes)} clouds.")
    w = np.zeros(slots.shape)
    for i, wi in enumerate(weights):
        wi = np.asarray(wi, dtype=np.float64)
        if wi.shape != (sizes[i],):
            raise ValueError(
                f"{name}[{i}] has {sizes[i]} points but weights of shape {wi.shape}."
            )
        w[i, : sizes[i]] = wi
    check_weights(w, name)
    return points, w, None
