"""Ground spaces of pairwise EMD: the problems of pairs of samples.

A sample is a histogram over the bins of a :class:`HistogramSpace`, or a point
cloud, weighted or not, under a ground metric; :class:`Samples` holds them
with the masses a method solves. This module builds the ground space, the
transport problems of given pairs (each chunk builds its own, so the costs of
all pairs never exist at once) and the closed form of histograms on a line,
with the CDFs it shares with the lower bounds of :mod:`skemd._bounds`.
"""

from dataclasses import dataclass

import numpy as np

from ._validation import ProblemBatch

METRICS = ("sqeuclidean", "euclidean", "cityblock")


def ground_distance(x, y, metric):
    """Ground costs between the points of ``x`` and ``y``.

    Parameters
    ----------
    x : ndarray of shape (..., p, d)
        Points.
    y : ndarray of shape (..., q, d)
        Points.
    metric : {"sqeuclidean", "euclidean", "cityblock"}
        The ground metric.

    Returns
    -------
    cost : ndarray of shape (..., p, q)
        The cost of moving each point of ``x`` to each point of ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._ground import ground_distance
    >>> ground_distance(np.array([[0.0], [1.0]]), np.array([[3.0]]), "sqeuclidean")
    array([[9.],
           [4.]])
    """
    # One coordinate at a time: exact (no |x|^2 + |y|^2 - 2 x.y cancellation)
    # and without a (..., p, q, d) temporary.
    cost = np.zeros(x.shape[:-1] + y.shape[-2:-1])
    for k in range(x.shape[-1]):
        gap = x[..., :, None, k] - y[..., None, :, k]
        cost += np.abs(gap) if metric == "cityblock" else gap * gap
    return np.sqrt(cost) if metric == "euclidean" else cost


@dataclass(frozen=True)
class HistogramSpace:
    """The ground space of histograms: a cost between bins.

    ``line`` holds the bin positions when the bins lie on a line and the
    cost is ``|x - y|``: the EMD then has a closed form. ``support`` and
    ``metric`` are the bins' positions and their metric, when the cost comes
    from them (the neighbour search's projected bounds need them).
    """

    cost: np.ndarray
    line: np.ndarray = None
    support: np.ndarray = None
    metric: str = None

    @classmethod
    def from_support(cls, support, metric):
        """The space of bins at ``support`` (n_bins, d) under ``metric``."""
        cost = ground_distance(support, support, metric)
        on_line = support.shape[1] == 1 and metric in ("cityblock", "euclidean")
        return cls(cost, support[:, 0] if on_line else None, support, metric)

    @property
    def symmetric(self):
        """Whether the exact EMD is symmetric with a zero diagonal here.

        True when the cost is exactly symmetric, non-negative and zero on its
        diagonal: a plan's transpose then costs the same, and the identity
        plan costs 0 (as always for point clouds under a metric).
        """
        cost = self.cost
        return bool(
            np.array_equal(cost, cost.T)
            and (cost >= 0).all()
            and not cost.diagonal().any()
        )


def ground_space(samples, support, ground_cost, metric):
    """The ground space of validated samples: a HistogramSpace, or the metric.

    Parameters
    ----------
    samples : Samples
        Histograms or point clouds.
    support : array-like of shape (n_bins, d) or (n_bins,) or None
        Bin positions of histograms; None puts bin ``i`` at ``i`` on a line.
    ground_cost : array-like of shape (n_bins, n_bins) or None
        Explicit cost between bins; excludes ``support``.
    metric : str
        The ground metric between points or bin positions.

    Returns
    -------
    space : HistogramSpace or str
        The histograms' space, or the clouds' metric.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._ground import Samples, ground_space
    >>> ground_space(Samples(np.ones((2, 3))), None, None, "cityblock").cost
    array([[0., 1., 2.],
           [1., 0., 1.],
           [2., 1., 0.]])
    """
    if not samples.histograms:
        if support is not None or ground_cost is not None:
            raise ValueError(
                "support and ground_cost describe the bins of histograms; point "
                "clouds are compared under metric alone."
            )
        return metric
    n_bins = samples.data.shape[1]
    if ground_cost is not None:
        if support is not None:
            raise ValueError("Give either support or ground_cost, not both.")
        cost = np.asarray(ground_cost, dtype=np.float64)
        if cost.shape != (n_bins, n_bins):
            raise ValueError(
                f"ground_cost must have shape ({n_bins}, {n_bins}) to match the "
                f"{n_bins} bins of X; got shape {cost.shape}."
            )
        if not np.isfinite(cost).all():
            raise ValueError("ground_cost must be finite.")
        return HistogramSpace(cost)
    if support is None:
        return HistogramSpace.from_support(
            np.arange(n_bins, dtype=float)[:, None], metric
        )
    positions = np.asarray(support, dtype=np.float64)
    positions = positions[:, None] if positions.ndim == 1 else positions
    if positions.ndim != 2 or len(positions) != n_bins:
        raise ValueError(
            f"support must have shape ({n_bins}, d) or ({n_bins},) to match the "
            f"{n_bins} bins of X; got shape {np.shape(support)}."
        )
    if not np.isfinite(positions).all():
        raise ValueError("support must be finite.")
    return HistogramSpace.from_support(positions, metric)


@dataclass(frozen=True)
class Samples:
    """Validated samples of pairwise EMD, with their weights.

    Attributes
    ----------
    data : ndarray or list of ndarray
        Histograms (n, n_bins), each row the weights of its bins; point
        clouds of equal sizes (n, n_points, d); or a list of n point clouds
        of shapes (n_i, d).
    weights : None, ndarray of shape (n, n_points) or list of ndarray
        The clouds' point weights, one vector per sample; None is uniform with
        mass 1 (and always None for histograms).

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._ground import Samples
    >>> from skemd._options import SolverOptions
    >>> weights = [np.array([1.0, 3.0]), np.full(3, 2.0)]
    >>> clouds = Samples([np.zeros((2, 1)), np.ones((3, 1))], weights)
    >>> clouds.histograms, clouds.size, len(clouds)
    (False, 2, 2)

    The exact EMD needs equal masses: it compares the normalised weights.

    >>> clouds.solved_by(SolverOptions.build().spec).weights
    [array([0.25, 0.75]), array([0.33333333, 0.33333333, 0.33333333])]
    """

    data: object
    weights: object = None

    def __len__(self):
        return len(self.data)

    @property
    def histograms(self):
        """Whether the samples are histograms, not point clouds."""
        return not isinstance(self.data, list) and self.data.ndim == 2

    @property
    def size(self):
        """Bins or points per sample (the mean, for clouds of many sizes)."""
        if not isinstance(self.data, list):
            return self.data.shape[1]
        return max(1, sum(map(len, self.data)) // max(1, len(self.data)))

    def solved_by(self, spec):
        """The samples with the masses the method ``spec`` solves.

        A method that needs equal masses compares probability distributions:
        each histogram, and each cloud's weights, are divided by their sum.
        Weights uniform within a cloud become exactly ``1 / n_i``, and all
        uniform become None (the assignment route). Other methods keep the
        masses as given.
        """
        if not spec.needs_equal_mass:
            return self
        if self.histograms:
            return Samples(self.data / self.data.sum(axis=1, keepdims=True))
        if self.weights is None:
            return self
        uniform = [bool((w == w[0]).all()) for w in self.weights]
        if all(uniform):
            return Samples(self.data)
        weights = [
            np.full(len(w), 1.0 / len(w)) if flat else w / w.sum()
            for w, flat in zip(self.weights, uniform, strict=True)
        ]
        dense = not isinstance(self.weights, list)
        return Samples(self.data, np.stack(weights) if dense else weights)


def pair_problems(left, right, pairs, space, options=None):
    """The problems of the pairs ``(left[i], right[j])``, as a ProblemBatch.

    Parameters
    ----------
    left, right : Samples
        Histograms or point clouds, with the masses to solve.
    pairs : ndarray of shape (n_pairs, 2)
        Indices into ``left`` and ``right``.
    space : HistogramSpace or str
        The histograms' ground space, or the clouds' metric.
    options : SolverOptions, default=None
        When given, the method's ``check`` runs on the problems, and a
        ValueError names the first pair that fails it.

    Returns
    -------
    problems : ProblemBatch
        For histograms, a ragged batch restricted to the bins where either
        sample has mass; for clouds, a dense batch (ragged if either side's
        clouds differ in size), uniform where the weights are None.
    """
    if isinstance(space, HistogramSpace):
        problems = _histogram_problems(left.data, right.data, pairs, space.cost)
    else:
        problems = _cloud_problems(left, right, pairs, space)
    if options is not None:
        _check_pairs(problems, pairs, options)
    return problems


def _cloud_problems(left, right, pairs, metric):
    i, j = pairs.T
    if isinstance(left.data, list) or isinstance(right.data, list):
        costs = [ground_distance(left.data[p], right.data[q], metric) for p, q in pairs]
        return ProblemBatch(costs, _listed(left.weights, i), _listed(right.weights, j))
    costs = ground_distance(left.data[i], right.data[j], metric)
    a = None if left.weights is None else left.weights[i]
    return ProblemBatch(costs, a, None if right.weights is None else right.weights[j])


def _listed(weights, index):
    return None if weights is None else [weights[k] for k in index]


def _histogram_problems(left, right, pairs, cost):
    """One problem per pair, restricted to the bins where either has mass."""
    costs, a, b = [], [], []
    for i, j in pairs:
        rows, cols = np.flatnonzero(left[i]), np.flatnonzero(right[j])
        costs.append(np.ascontiguousarray(cost[np.ix_(rows, cols)]))
        a.append(left[i, rows])
        b.append(right[j, cols])
    return ProblemBatch(costs, a, b)


def _check_pairs(problems, pairs, options):
    """Run the method's check on the problems; name the first failing pair."""
    try:
        options.spec.check(problems, options)
    except ValueError:
        for k, (i, j) in enumerate(pairs):
            try:
                options.spec.check(problems[k : k + 1], options)
            except ValueError as error:
                raise ValueError(
                    f"Pair ({i}, {j}) of the EMD matrix: {error}"
                ) from None
        raise


def line_cdfs(H, positions):
    """Histograms on a line as CDFs, and the gaps between their sorted bins.

    With bins at sorted positions ``x`` and ``H``, ``G`` two histograms'
    cumulative sums, ``EMD(h, g) = sum_k |H_k - G_k| (x_{k+1} - x_k)``: the
    rows ``H_k (x_{k+1} - x_k)`` are an embedding whose L1 distances are the
    EMD, and :func:`line_emd` is its closed form.

    Parameters
    ----------
    H : ndarray of shape (n, n_bins)
        Histograms of equal masses.
    positions : ndarray of shape (n_bins,)
        The bins' positions on the line, in any order.

    Returns
    -------
    cdfs : ndarray of shape (n, n_bins - 1)
        The cumulative sums over the sorted bins, but the last (the mass).
    widths : ndarray of shape (n_bins - 1,)
        The gaps between consecutive sorted positions.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._ground import line_cdfs
    >>> line_cdfs(np.array([[0.5, 0.0, 0.5]]), np.array([3.0, 0.0, 1.0]))
    (array([[0. , 0.5]]), array([1., 2.]))
    """
    order = np.argsort(positions, kind="stable")
    return np.cumsum(H[:, order], axis=1)[:, :-1], np.diff(positions[order])


def line_emd(left, right, pairs, positions, block=4096):
    """Closed-form EMD on a line: the L1 distance between the CDFs.

    Parameters
    ----------
    left, right : ndarray of shape (n_left, n_bins) and (n_right, n_bins)
        Histograms of equal masses; ``right`` may be ``left`` itself.
    pairs : ndarray of shape (n_pairs, 2)
        Indices into ``left`` and ``right``.
    positions : ndarray of shape (n_bins,)
        The bins' positions; the cost is ``|x - y|``.
    block : int, default=4096
        Pairs per vectorised step.

    Returns
    -------
    distance : ndarray of shape (n_pairs,)
        ``sum_k |H_k - G_k| (x_{k+1} - x_k)`` (see :func:`line_cdfs`).

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._ground import line_emd
    >>> H = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    >>> line_emd(H, H, np.array([[0, 1], [1, 1]]), np.array([0.0, 1.0, 3.0]))
    array([2., 0.])
    """
    cdf_left, widths = line_cdfs(left, positions)
    cdf_right = cdf_left if right is left else line_cdfs(right, positions)[0]
    distance = np.empty(len(pairs))
    for start in range(0, len(pairs), block):
        i, j = pairs[start : start + block].T
        distance[start : start + block] = np.abs(cdf_left[i] - cdf_right[j]) @ widths
    return distance
