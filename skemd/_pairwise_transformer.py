"""EMD distance and kernel matrices between samples, for precomputed kernels.

This module owns :class:`PairwiseEMDTransformer`: validating samples and the
ground space, choosing the pairs to solve (the upper triangle only when the
space is symmetric with a zero diagonal, every ordered pair otherwise) and
routing them through the pair cache of :mod:`skemd._pair_cache`.
"""

import os
from numbers import Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._driver import solve_pairs
from ._ground import METRICS, HistogramSpace
from ._options import SOLVER_CONSTRAINTS, SolverOptions, document_solver_parameters
from ._pair_cache import PairCache, config_key, sample_keys, store_path
from ._solvers import DEFAULT_METHOD


@document_solver_parameters
class PairwiseEMDTransformer(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """EMD distances (or an EMD kernel) between samples and the training set.

    Two kinds of sample are supported:

    - **histograms**, X of shape (n_samples, n_bins): non-negative rows over
      a fixed ground space of bins. Each row is divided by its sum, so the
      EMD compares the rows' shapes as probability distributions. The ground
      space is ``ground_cost`` (n_bins, n_bins), or bins at ``support``
      (n_bins, d) under ``metric``; with neither, bin ``i`` sits at
      position ``i`` on a line.
    - **point clouds**, X of shape (n_samples, n_points, d): each sample is
      n_points points with uniform weights, the ground cost is ``metric``.

    ``fit`` stores the training samples; ``transform`` returns the
    (n_new, n_fit) matrix ``D[i, j] = EMD(X[i], X_fit[j])``; ``fit_transform``
    returns the training matrix. When the ground cost is symmetric with a zero
    diagonal and no negative entry (always so for ``support`` or point clouds
    under ``metric``; checked exactly for an explicit ``ground_cost``), the
    EMD is symmetric with a zero diagonal too, and only the n (n - 1) / 2
    pairs above the diagonal are solved, unless the method's values are not
    exactly symmetric (entropic OT's are symmetric only to ``tol``). Otherwise
    every ordered pair is solved, the diagonal included (symmetrise a nearly
    symmetric ``ground_cost`` with ``(C + C.T) / 2`` to halve the work).

    Parameters
    ----------
    metric : {"sqeuclidean", "euclidean", "cityblock"}, default="sqeuclidean"
        Ground metric between points (clouds) or bin positions (histograms).
    support : array-like of shape (n_bins, d) or (n_bins,), default=None
        Bin positions of histograms.
    ground_cost : array-like of shape (n_bins, n_bins), default=None
        Explicit cost between bins; excludes ``support``.
    output : {"distance", "kernel"}, default="distance"
        "kernel" returns ``exp(-gamma * D)``. EMD kernels need not be positive
        semi-definite (the EMD is not a Hilbertian metric in general), so
        check your estimator tolerates that, or tune ``C`` accordingly.
    gamma : float or "auto", default="auto"
        Kernel bandwidth. "auto" is ``1 / median`` of the off-diagonal
        training distances (1 when that median is 0), fixed at fit time.
    %(solver_parameters)s
    memory : str, pathlib.Path, joblib.Memory or None, default=None
        A directory (or a ``joblib.Memory`` with a location) where solved
        pairs are kept across fits and processes, in the sqlite3 file
        ``skemd_pairs.sqlite3``: a grid search then solves each distinct pair
        once. Pairs are keyed by the samples' content (bytes, shape, dtype),
        the ground space and the method with its parameters; each value is
        checksummed, and a corrupt file is reported, moved aside and rebuilt.
        The least recently used pairs past 10 million are evicted.
    n_jobs : int, default=None
        Number of parallel jobs, as in :func:`emd_batch`.
    batch_size : int or "auto", default="auto"
        Pairs per parallel task.
    verbose : int, default=0
        Progress messages, as joblib prints them.

    Attributes
    ----------
    X_fit_ : ndarray of shape (n_fit, n_bins) or (n_fit, n_points, d)
        The training samples, histograms normalised.
    gamma_ : float
        The kernel bandwidth used (``output="kernel"`` only).
    n_features_in_ : int
        n_bins, or n_points for clouds.

    Notes
    -----
    Exact shortcuts, each equal to the double loop of ``ot.emd2``: equal-size
    clouds use the assignment solver; histograms on a line with
    ``metric="cityblock"`` or ``"euclidean"`` use the closed form (the L1
    distance between the CDFs, weighted by the gaps between bins); other
    histograms solve each pair only on the bins where its rows have mass.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd import PairwiseEMDTransformer
    >>> X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    >>> PairwiseEMDTransformer(metric="cityblock").fit_transform(X)
    array([[0., 1., 2.],
           [1., 0., 1.],
           [2., 1., 0.]])
    """

    _parameter_constraints: dict = {
        "metric": [StrOptions(set(METRICS))],
        "support": ["array-like", None],
        "ground_cost": ["array-like", None],
        "output": [StrOptions({"distance", "kernel"})],
        "gamma": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        **SOLVER_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        metric="sqeuclidean",
        support=None,
        ground_cost=None,
        output="distance",
        gamma="auto",
        method=DEFAULT_METHOD,
        reg=None,
        tol=None,
        max_iter=None,
        method_params=None,
        memory=None,
        n_jobs=None,
        batch_size="auto",
        verbose=0,
    ):
        self.metric = metric
        self.support = support
        self.ground_cost = ground_cost
        self.output = output
        self.gamma = gamma
        self.method = method
        self.reg = reg
        self.tol = tol
        self.max_iter = max_iter
        self.method_params = method_params
        self.memory = memory
        self.n_jobs = n_jobs
        self.batch_size = batch_size
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Store the training samples (and fix ``gamma_`` for a kernel).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_bins) or (n_samples, n_points, d)
            Histograms or point clouds.
        y : None
            Ignored.

        Returns
        -------
        self : PairwiseEMDTransformer
            The fitted transformer.
        """
        self._fit(X)
        if self.output == "kernel":
            self._set_gamma(self._training_distances)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit, then return the symmetric training matrix.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_bins) or (n_samples, n_points, d)
            Histograms or point clouds.
        y : None
            Ignored.

        Returns
        -------
        D : ndarray of shape (n_samples, n_samples)
            Distances or kernel values; symmetric with a zero diagonal (before
            the kernel) when the ground space is.
        """
        self._fit(X)
        D = self._training_distances()
        if self.output == "kernel":
            self._set_gamma(lambda: D)
        return self._output(D)

    def transform(self, X):
        """Return the distances (or kernel) between ``X`` and the training set.

        Parameters
        ----------
        X : array-like of shape (n_new, n_bins) or (n_new, n_points, d)
            Samples of the kind seen in ``fit``.

        Returns
        -------
        D : ndarray of shape (n_new, n_fit)
            Distances or kernel values.
        """
        self._validate_params()
        check_is_fitted(self)
        X = self._validate_samples(X, reset=False)
        rows, cols = np.indices((len(X), len(self.X_fit_))).reshape(2, -1)
        D = self._solve(X, self.X_fit_, np.column_stack([rows, cols]))
        return self._output(D.reshape(len(X), len(self.X_fit_)))

    def _fit(self, X):
        self._options()  # fails early on options that do not fit together
        store_path(self.memory)  # and on a memory that cannot hold the cache
        X = self._validate_samples(X, reset=True)
        self.space_ = self._ground_space(X) if X.ndim == 2 else self.metric
        self.X_fit_ = X

    def _training_distances(self):
        n = len(self.X_fit_)
        if not self._symmetric(self._options()):
            pairs = np.indices((n, n)).reshape(2, -1).T
            return self._solve(self.X_fit_, self.X_fit_, pairs).reshape(n, n)
        pairs = np.column_stack(np.triu_indices(n, k=1))
        D = np.zeros((n, n))
        D[pairs[:, 0], pairs[:, 1]] = self._solve(self.X_fit_, self.X_fit_, pairs)
        return D + D.T

    def _symmetric(self, options):
        """Whether d(x, y) == d(y, x) and d(x, x) == 0, exactly."""
        return options.spec.symmetric_pairs and _symmetric(self.space_)

    def _set_gamma(self, distances):
        if self.gamma != "auto":
            self.gamma_ = float(self.gamma)
            return
        D = distances()
        off_diagonal = D[~np.eye(len(D), dtype=bool)]
        median = np.median(off_diagonal) if off_diagonal.size else 0.0
        self.gamma_ = 1.0 / median if median > 0 else 1.0

    def _output(self, D):
        return np.exp(-self.gamma_ * D) if self.output == "kernel" else D

    def _options(self):
        return SolverOptions.from_params(self.get_params(deep=False))

    def _solve(self, left, right, pairs):
        options = self._options()
        space = self.space_
        path = store_path(self.memory)
        if path is None:
            return solve_pairs(left, right, pairs, space, options).distance
        symmetric = self._symmetric(options)
        cache = PairCache(path, _config_key(space, options, symmetric), symmetric)
        left_keys = sample_keys(left)
        right_keys = left_keys if right is left else sample_keys(right)
        distance = cache.lookup(left_keys, right_keys, pairs)
        missing = np.isnan(distance)
        solved = solve_pairs(left, right, pairs[missing], space, options)
        distance[missing] = solved.distance
        # A pair that failed is not kept: solved again, it warns again.
        kept = solved.converged
        cache.store(left_keys, right_keys, pairs[missing][kept], solved.distance[kept])
        return distance

    def _validate_samples(self, X, reset):
        X = validate_data(self, X, reset=reset, allow_nd=True, dtype=np.float64)
        if X.ndim not in (2, 3):
            raise ValueError(
                "X must be histograms of shape (n_samples, n_bins) or point clouds "
                f"of shape (n_samples, n_points, d); got shape {X.shape}."
            )
        if not reset and X.shape[1:] != self.X_fit_.shape[1:]:
            raise ValueError(
                f"X has samples of shape {X.shape[1:]}, but {type(self).__name__} "
                f"was fitted on samples of shape {self.X_fit_.shape[1:]}."
            )
        return _normalised_histograms(X, type(self).__name__) if X.ndim == 2 else X

    def _ground_space(self, X):
        n_bins = X.shape[1]
        if self.ground_cost is not None:
            if self.support is not None:
                raise ValueError("Give either support or ground_cost, not both.")
            cost = np.asarray(self.ground_cost, dtype=np.float64)
            if cost.shape != (n_bins, n_bins):
                raise ValueError(
                    f"ground_cost must have shape ({n_bins}, {n_bins}) to match the "
                    f"{n_bins} bins of X; got shape {cost.shape}."
                )
            if not np.isfinite(cost).all():
                raise ValueError("ground_cost must be finite.")
            return HistogramSpace(cost)
        if self.support is None:
            support = np.arange(n_bins, dtype=np.float64)[:, None]
        else:
            support = np.asarray(self.support, dtype=np.float64)
            support = support[:, None] if support.ndim == 1 else support
            if support.ndim != 2 or len(support) != n_bins:
                raise ValueError(
                    f"support must have shape ({n_bins}, d) or ({n_bins},) to match "
                    f"the {n_bins} bins of X; got shape {np.shape(self.support)}."
                )
            if not np.isfinite(support).all():
                raise ValueError("support must be finite.")
        return HistogramSpace.from_support(support, self.metric)

    @property
    def _n_features_out(self):
        return len(self.X_fit_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags


def _symmetric(space):
    """Whether the exact EMD is symmetric with a zero diagonal in ``space``.

    True when the cost is exactly symmetric, non-negative and zero on its
    diagonal (a plan's transpose then costs the same, and the identity plan
    costs 0), as it always is for point clouds under a metric.
    """
    if not isinstance(space, HistogramSpace):
        return True
    cost = space.cost
    return bool(
        np.array_equal(cost, cost.T) and (cost >= 0).all() and not cost.diagonal().any()
    )


def _config_key(space, options, symmetric):
    """The pair cache's key of everything but the samples that decides a value."""
    solver = options.identity
    if isinstance(space, HistogramSpace):
        return config_key(
            {"samples": "histograms", "solver": solver, "symmetric": symmetric},
            cost=space.cost,
            line=space.line,
        )
    return config_key(
        {"samples": "clouds", "metric": space, "solver": solver, "symmetric": symmetric}
    )


def _normalised_histograms(X, whom):
    negative = np.argwhere(X < 0)
    if negative.size:
        i, j = negative[0]
        raise ValueError(
            f"Negative values in data passed to {whom}: histogram X[{i}] has the "
            f"bin {X[i, j]} at position {j}."
        )
    mass = X.sum(axis=1, keepdims=True)
    empty = np.flatnonzero(mass[:, 0] == 0)
    if empty.size:
        raise ValueError(f"X[{empty[0]}] is an empty histogram (all bins are 0).")
    return X / mass
