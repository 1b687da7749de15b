"""EMD between samples: ``pairwise_emd``, and the pair solving estimators share.

This module owns choosing the pairs to solve (those above the diagonal only
when the EMD is exactly symmetric) and solving chosen pairs through the pair
cache (:func:`pair_solver`), which :func:`pairwise_emd` and the estimators
share; :mod:`skemd._samples` validates the samples.
"""

import numpy as np
from sklearn.utils._param_validation import StrOptions, validate_params

from ._driver import solve_pairs
from ._ground import METRICS, HistogramSpace, ground_space
from ._options import SOLVER_CONSTRAINTS, SolverOptions, document_solver_parameters
from ._pair_cache import PairCache, config_key, sample_keys, store_path
from ._samples import check_samples
from ._solvers import DEFAULT_METHOD

#: The constraints of the ground space's arguments.
SPACE_CONSTRAINTS = {
    "metric": [StrOptions(set(METRICS))],
    "support": ["array-like", None],
    "ground_cost": ["array-like", None],
}


@validate_params(
    {
        "X": ["array-like"],
        "Y": ["array-like", None],
        **SPACE_CONSTRAINTS,
        "weights": ["array-like", None],
        "Y_weights": ["array-like", None],
        **SOLVER_CONSTRAINTS,
    },
    prefer_skip_nested_validation=True,
)
@document_solver_parameters
def pairwise_emd(
    X,
    Y=None,
    *,
    support=None,
    metric="sqeuclidean",
    ground_cost=None,
    weights=None,
    Y_weights=None,
    method=DEFAULT_METHOD,
    reg=None,
    tol=None,
    max_iter=None,
    method_params=None,
    n_jobs=None,
    batch_size="auto",
    verbose=0,
):
    """Compute the EMD between every sample of ``X`` and every sample of ``Y``.

    As :func:`sklearn.metrics.pairwise_distances` does for a metric, this
    returns ``D[i, j] = EMD(X[i], Y[j])``, and with ``Y=None`` the matrix of
    ``X`` against itself. A sample is a histogram over a fixed ground space
    of bins, or a point cloud, of any size and optionally weighted. Pairs are
    solved in chunks, in parallel, each chunk building only its own costs.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_bins) or (n_samples_X, n_points, d)
        Histograms (non-negative rows over the same bins, each with a positive
        sum) or point clouds of equal sizes. Clouds of different sizes are a
        list of arrays of shape (n_points_i, d), all with the same ``d``.
    Y : array-like of shape (n_samples_Y, n_bins) or (n_samples_Y, n_points, d)
        Samples of the same kind as ``X`` (the same bins, or points in the
        same dimension ``d``; a list for clouds of different sizes). None
        compares ``X`` with itself.
    support : array-like of shape (n_bins, d_bins) or (n_bins,), default=None
        Positions of the histograms' bins, under ``metric``. With neither
        ``support`` nor ``ground_cost``, bin ``i`` sits at ``i`` on a line.
    metric : {"sqeuclidean", "euclidean", "cityblock"}, default="sqeuclidean"
        Ground metric between the clouds' points or the bins' positions.
    ground_cost : array-like of shape (n_bins, n_bins), default=None
        Explicit cost between bins; excludes ``support``.
    weights : array-like of shape (n_samples_X, n_points), default=None
        The weights of the points of each cloud of ``X``, one non-negative,
        finite vector with a positive sum per cloud (a list of vectors of
        shape (n_points_i,) for clouds of different sizes). None is uniform,
        with mass 1. Histograms take none: their values are their weights.
    Y_weights : array-like of shape (n_samples_Y, n_points), default=None
        The weights of the clouds of ``Y``, as ``weights``.
    %(solver_parameters)s
    n_jobs : int, default=None
        Number of parallel jobs. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context; -1 means all processors.
    batch_size : int or "auto", default="auto"
        Pairs per parallel task.
    %(verbose)s

    Returns
    -------
    D : ndarray of shape (n_samples_X, n_samples_Y)
        The EMD of every pair; (n_samples_X, n_samples_X) when ``Y`` is None.

    Raises
    ------
    ValueError
        Before anything is solved, naming the sample: if a histogram has a
        negative or non-finite bin or sums to 0, a cloud is not 2-D or its
        dimension differs, a weight is negative or non-finite, a weight vector
        sums to 0 or does not match its cloud, ``Y`` is not of the kind of
        ``X``, or a parameter does not suit the method.

    Warns
    -----
    ConvergenceWarning
        Once per call, if any pair did not converge; the message says which.

    See Also
    --------
    PairwiseEMDTransformer : These matrices as a transformer, with a kernel
        and a pair cache.
    emd_batch : The EMD of stacked cost matrices.

    Notes
    -----
    A method that needs equal masses compares probability distributions:
    each histogram, and each cloud's weights, are divided by their sum. A
    method that takes weights of any masses (see ``method``) gets them as
    given: histograms keep their sums, and clouds their weights (uniform
    clouds have mass 1).

    With ``Y=None``, when the ground cost is symmetric with a zero diagonal
    and no negative entry (always so for clouds and ``support``; checked
    exactly for a ``ground_cost``) and the method's values are exactly
    symmetric, only the n (n - 1) / 2 pairs above the diagonal are solved.

    Exact shortcuts: clouds of equal sizes with uniform weights use the
    assignment solver, histograms on a line under ``metric="cityblock"`` (or
    ``"euclidean"``) the closed form, and other histograms solve each pair on
    the bins where either has mass.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd import pairwise_emd
    >>> X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    >>> pairwise_emd(X, metric="cityblock")
    array([[0., 1., 2.],
           [1., 0., 1.],
           [2., 1., 0.]])

    Point clouds of different sizes, with weights:

    >>> clouds = [np.array([[0.0], [1.0]]), np.array([[0.0], [1.0], [2.0]])]
    >>> pairwise_emd(clouds, weights=[[3, 1], [1, 1, 2]], metric="cityblock")
    array([[0., 1.],
           [1., 0.]])
    >>> pairwise_emd(clouds[:1], clouds, metric="cityblock")
    array([[0. , 0.5]])
    """
    options = SolverOptions.from_params(locals())
    left = check_samples(X, weights)
    if Y is None and Y_weights is not None:
        raise ValueError("Y_weights was given without Y; X's weights are weights.")
    right = None if Y is None else check_samples(Y, Y_weights, name="Y", like=left)
    space = ground_space(left, support, ground_cost, metric)
    return distance_matrix(left, right, space, options)


def distance_matrix(left, right, space, options, memory=None):
    """The EMD matrix between validated samples, of shape (len(left), len(right)).

    ``right=None`` compares ``left`` with itself, solving only the pairs above
    the diagonal when :func:`symmetric_pairs`. ``space`` comes from
    :func:`~skemd._ground.ground_space`; ``memory`` is where the pair cache
    is kept, if anywhere (see :func:`pair_solver`).
    """
    same = right is None
    right = left if same else right
    solve = pair_solver(left, right, space, options, memory)
    n, m = len(left), len(right)
    if not (same and symmetric_pairs(space, options)):
        return solve(np.indices((n, m)).reshape(2, -1).T).reshape(n, m)
    pairs = np.column_stack(np.triu_indices(n, k=1))
    D = np.zeros((n, n))
    D[pairs[:, 0], pairs[:, 1]] = solve(pairs)
    return D + D.T


def pair_solver(left, right, space, options, memory=None):
    """Return ``solve(pairs)``: the EMD of chosen pairs ``(left[i], right[j])``.

    Parameters
    ----------
    left, right : Samples
        Validated samples, masses as given (set for the method here, once);
        ``right`` may be ``left`` itself.
    space : HistogramSpace or str
        The ground space.
    options : SolverOptions
        How to solve the pairs.
    memory : str, path-like, joblib.Memory or None, default=None
        Where the pair cache is kept: each call then looks its pairs up,
        solves the others and stores them.

    Returns
    -------
    solve : callable
        ``solve(pairs)``, for int indices of shape (n_pairs, 2) into ``left``
        and ``right``, returns their EMD of shape (n_pairs,) (and warns once
        about the pairs that did not converge).

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._ground import Samples, ground_space
    >>> from skemd._options import SolverOptions
    >>> from skemd._pairwise import pair_solver
    >>> X = Samples(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]]))
    >>> support = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> space = ground_space(X, support, None, "euclidean")
    >>> solve = pair_solver(X, X, space, SolverOptions.build())
    >>> solve(np.array([[0, 1], [1, 1]]))  # the masses are normalised
    array([1.41421356, 0.        ])
    """
    same = right is left
    left = left.solved_by(options.spec)
    right = left if same else right.solved_by(options.spec)
    path = store_path(memory)
    if path is None:
        return lambda pairs: solve_pairs(left, right, pairs, space, options).distance
    symmetric = symmetric_pairs(space, options)
    cache = PairCache(path, _config_key(space, options, symmetric), symmetric)
    left_keys = sample_keys(left.data, left.weights)
    right_keys = left_keys if same else sample_keys(right.data, right.weights)

    def solve(pairs):
        distance = cache.lookup(left_keys, right_keys, pairs)
        missing = np.isnan(distance)
        solved = solve_pairs(left, right, pairs[missing], space, options)
        distance[missing] = solved.distance
        # A pair that failed is not kept: solved again, it warns again.
        kept = solved.converged
        cache.store(left_keys, right_keys, pairs[missing][kept], solved.distance[kept])
        return distance

    return solve


def symmetric_pairs(space, options):
    """Whether ``EMD(x, y) == EMD(y, x)`` and ``EMD(x, x) == 0``, exactly.

    So when the method's values are (its ``symmetric_pairs`` in the registry)
    and the ground cost is symmetric, non-negative and zero on its diagonal,
    as it always is for point clouds under a metric.
    """
    exact = not isinstance(space, HistogramSpace) or space.symmetric
    return options.spec.symmetric_pairs and exact


def _config_key(space, options, symmetric):
    """The pair cache's key of everything but the samples that decides a value."""
    described = {"solver": options.identity, "symmetric": symmetric}
    if isinstance(space, HistogramSpace):
        return config_key(
            {"samples": "histograms", **described}, cost=space.cost, line=space.line
        )
    return config_key({"samples": "clouds", "metric": space, **described})
