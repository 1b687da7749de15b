"""Ground spaces of pairwise EMD: the problems of pairs of samples.

A sample is a histogram over the bins of a :class:`HistogramSpace`, or a point
cloud under a ground metric. This module builds the transport problems of
given pairs (each chunk builds its own, so the costs of all pairs never exist
at once) and the closed form of histograms on a line.
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
    cost is ``|x - y|``: the EMD then has a closed form.
    """

    cost: np.ndarray
    line: np.ndarray = None

    @classmethod
    def from_support(cls, support, metric):
        """The space of bins at ``support`` (n_bins, d) under ``metric``."""
        cost = ground_distance(support, support, metric)
        on_line = support.shape[1] == 1 and metric in ("cityblock", "euclidean")
        return cls(cost, support[:, 0] if on_line else None)


def pair_problems(left, right, pairs, space):
    """The problems of the pairs ``(left[i], right[j])``, as a ProblemBatch.

    Parameters
    ----------
    left, right : ndarray of shape (n, n_bins) or (n, n_points, d)
        Normalised histograms or point clouds.
    pairs : ndarray of shape (n_pairs, 2)
        Indices into ``left`` and ``right``.
    space : HistogramSpace or str
        The histograms' ground space, or the clouds' metric.

    Returns
    -------
    problems : ProblemBatch
        For clouds, a dense batch of uniform problems; for histograms, a
        ragged batch restricted to the bins where either sample has mass.
    """
    if isinstance(space, HistogramSpace):
        return _histogram_problems(left, right, pairs, space.cost)
    return ProblemBatch(_cloud_costs(left, right, pairs, space))


def _cloud_costs(left, right, pairs, metric):
    return ground_distance(left[pairs[:, 0]], right[pairs[:, 1]], metric)


def _histogram_problems(left, right, pairs, cost):
    """One problem per pair, restricted to the bins where either has mass."""
    costs, a, b = [], [], []
    for i, j in pairs:
        rows, cols = np.flatnonzero(left[i]), np.flatnonzero(right[j])
        costs.append(np.ascontiguousarray(cost[np.ix_(rows, cols)]))
        a.append(left[i, rows])
        b.append(right[j, cols])
    return ProblemBatch(costs, a, b)


def line_emd(left, right, pairs, positions, block=4096):
    """Closed-form EMD on a line: the L1 distance between the CDFs.

    With bins at sorted positions ``x``, ``EMD(h, g) = sum_k |H_k - G_k|
    (x_{k+1} - x_k)`` where ``H`` and ``G`` are the cumulative sums.
    """
    order = np.argsort(positions, kind="stable")
    widths = np.diff(positions[order])
    cdf_left = np.cumsum(left[:, order], axis=1)[:, :-1]
    cdf_right = np.cumsum(right[:, order], axis=1)[:, :-1]
    distance = np.empty(len(pairs))
    for start in range(0, len(pairs), block):
        i, j = pairs[start : start + block].T
        distance[start : start + block] = np.abs(cdf_left[i] - cdf_right[j]) @ widths
    return distance
