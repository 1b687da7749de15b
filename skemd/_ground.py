"""EMD between pairs of samples: histograms over a ground space, or clouds.

Pairs are solved in chunks through the same engine and kernels as
:func:`skemd.emd_batch`; each chunk builds its own cost matrices, so the
costs of all pairs never exist at once.
"""

from dataclasses import dataclass

import numpy as np

from ._batch import warn_unconverged
from ._engine import chunk_bounds, map_chunks
from ._solvers import choose_assignment_max_n, solve_chunk
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


def solve_pairs(left, right, pairs, space, *, n_jobs, batch_size, verbose, **solver):
    """EMD between ``left[i]`` and ``right[j]`` for each row ``(i, j)`` of pairs.

    Parameters
    ----------
    left, right : ndarray of shape (n, n_bins) or (n, n_points, d)
        Normalised histograms (with ``space``) or point clouds (``space`` is
        a metric name).
    pairs : ndarray of shape (n_pairs, 2)
        Indices into ``left`` and ``right``.
    space : HistogramSpace or str
        The histograms' ground space, or the clouds' metric.
    n_jobs, batch_size, verbose
        As in :func:`skemd.emd_batch`.
    **solver : dict
        ``method``, ``reg``, ``tol`` and ``max_iter`` of :func:`solve_chunk`.

    Returns
    -------
    distance : ndarray of shape (n_pairs,)
        The EMD of each pair.
    """
    line = getattr(space, "line", None)
    if line is not None and solver["method"] == "exact":
        return _line_emd(left, right, pairs, line)
    distance = np.empty(len(pairs))
    converged = np.ones(len(pairs), dtype=bool)
    if not isinstance(space, HistogramSpace) and len(pairs):
        first = ProblemBatch(_cloud_costs(left, right, pairs[:1], space))
        solver["assignment_max_n"] = choose_assignment_max_n(first)
    cells = (left.shape[1] * right.shape[1]) if left.ndim == 3 else left.shape[1] ** 2
    bounds = chunk_bounds(
        len(pairs), n_jobs=n_jobs, batch_size=batch_size, cells_per_problem=cells
    )
    chunks = map_chunks(
        _solve_pair_chunk,
        pairs,
        bounds,
        n_jobs=n_jobs,
        verbose=verbose,
        left=left,
        right=right,
        space=space,
        **solver,
    )
    for (start, stop), result in chunks:
        distance[start:stop] = result.distance
        converged[start:stop] = result.converged
    warn_unconverged(converged, solver["max_iter"], solver["method"])
    return distance


def _solve_pair_chunk(pairs, *, left, right, space, **solver):
    if isinstance(space, HistogramSpace):
        batch = _histogram_problems(left, right, pairs, space.cost)
    else:
        batch = ProblemBatch(_cloud_costs(left, right, pairs, space))
    return solve_chunk(batch, **solver)


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


def _line_emd(left, right, pairs, positions, block=4096):
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
