"""EMD distance and kernel matrices between samples, for precomputed kernels.

This module owns :class:`PairwiseEMDTransformer`, an estimator around
:func:`~skemd._pairwise.distance_matrix`: it keeps the training samples and
their weights, checks new samples against them as scikit-learn does, takes
per-sample ``weights`` as routed metadata, and fixes the kernel's bandwidth
with :func:`~skemd._distance_kernel.fitted_gamma`, as :class:`DistanceKernel`
does.
"""

import os

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._distance_kernel import GAMMA_CONSTRAINTS, fitted_gamma
from ._options import SOLVER_CONSTRAINTS, document_solver_parameters
from ._pairwise import SPACE_CONSTRAINTS, distance_matrix
from ._sample_estimator import SampleEstimator
from ._solvers import DEFAULT_METHOD


@document_solver_parameters
class PairwiseEMDTransformer(SampleEstimator):
    """EMD distances (or an EMD kernel) between samples and the training set.

    Two kinds of sample are supported:

    - **histograms**, X of shape (n_samples, n_bins): non-negative rows over
      a fixed ground space of bins. The ground space is ``ground_cost``
      (n_bins, n_bins), or bins at ``support`` (n_bins, d) under ``metric``;
      with neither, bin ``i`` sits at position ``i`` on a line.
    - **point clouds**, X of shape (n_samples, n_points, d), or a list of
      arrays of shape (n_points_i, d) for clouds of different sizes; the
      ground cost is ``metric``. Points have uniform weights unless
      ``weights`` are passed to ``fit`` and ``transform``.

    A method that needs equal masses compares probability distributions: each
    histogram, and each cloud's weights, are divided by their sum. A method
    that takes weights of any masses (see ``method``) gets the histograms and
    the weights as given (uniform clouds have mass 1).

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
        "kernel" returns ``exp(-gamma_ * D)``. EMD kernels need not be positive
        semi-definite (the EMD is not a Hilbertian metric in general), so
        check your estimator tolerates that, or tune ``C`` accordingly.
    gamma : float or "auto", default="auto"
        Kernel bandwidth, > 0. "auto" is ``gamma_scale / median`` of the
        off-diagonal training distances (``gamma_scale`` when that median is
        0), fixed at fit time as ``gamma_``.
    gamma_scale : float, default=1.0
        Used only with ``gamma="auto"``, > 0: the bandwidth in units of
        ``1 / median`` training distance. Grid-searching it searches the same
        relative bandwidths whatever the scale of the ground cost. Ignored
        when ``gamma`` is a number, as ``SVC`` ignores ``degree`` for kernels
        other than "poly".
    %(solver_parameters)s
    memory : str, pathlib.Path, joblib.Memory or None, default=None
        A directory (or a ``joblib.Memory`` with a location) where solved
        pairs are kept across fits and processes, in the sqlite3 file
        ``skemd_pairs.sqlite3``: a grid search then solves each distinct pair
        once. Pairs are keyed by the samples' content (bytes, shape, dtype,
        weights), the ground space and the method with its parameters; each
        value is checksummed, and a corrupt file is reported, moved aside and
        rebuilt. The least recently used pairs past 10 million are evicted.
    n_jobs : int, default=None
        Number of parallel jobs, as in :func:`emd_batch`.
    batch_size : int or "auto", default="auto"
        Pairs per parallel task.
    %(verbose)s

    Attributes
    ----------
    X_fit_ : ndarray of shape (n_fit, n_bins) or (n_fit, n_points, d), or list
        The training samples, as float64, with their masses as given (a list
        of arrays of shape (n_points_i, d) for clouds of different sizes).
    weights_fit_ : ndarray of shape (n_fit, n_points), list or None
        The training clouds' weights, as given; None when uniform.
    space_ : HistogramSpace or str
        The ground space of histograms, or the metric of clouds.
    gamma_ : float
        The kernel bandwidth used (``output="kernel"`` only).
    n_features_in_ : int
        n_bins for histograms; d, the dimension of the points, for clouds.

    See Also
    --------
    pairwise_emd : The function this transformer wraps.
    DistanceKernel : The same kernel, from distances computed beforehand.

    Notes
    -----
    Per-sample ``weights`` are metadata: pass them to ``fit``, ``transform``
    or ``fit_transform``. Through a :class:`~sklearn.pipeline.Pipeline` or a
    cross-validation tool, enable metadata routing
    (``sklearn.set_config(enable_metadata_routing=True)``) and request them
    with ``set_fit_request(weights=True)`` and
    ``set_transform_request(weights=True)``; cross-validation then slices
    them with the samples, exactly like ``sample_weight``. (Before
    scikit-learn 1.8, a pipeline's default scorer routes no metadata: the
    test folds of ``cross_val_score`` are then transformed unweighted.)

    Exact shortcuts, each equal to the double loop of ``ot.emd2``: clouds of
    equal sizes with uniform weights use the assignment solver; histograms on
    a line with ``metric="cityblock"`` or ``"euclidean"`` use the closed form
    (the L1 distance between the CDFs, weighted by the gaps between bins);
    other histograms solve each pair only on the bins where its rows have
    mass.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd import PairwiseEMDTransformer
    >>> X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    >>> PairwiseEMDTransformer(metric="cityblock").fit_transform(X)
    array([[0., 1., 2.],
           [1., 0., 1.],
           [2., 1., 0.]])
    >>> clouds = [np.zeros((2, 1)), np.ones((3, 1))]
    >>> PairwiseEMDTransformer().fit(clouds).transform([np.ones((1, 1))])
    array([[1., 0.]])

    A kernel whose bandwidth is twice one over the median training distance
    (here 1, so ``K = exp(-2 * D)``):

    >>> kernel = PairwiseEMDTransformer(metric="cityblock", output="kernel")
    >>> kernel.set_params(gamma_scale=2.0).fit(X).gamma_
    2.0
    """

    _parameter_constraints: dict = {
        **SPACE_CONSTRAINTS,
        "output": [StrOptions({"distance", "kernel"})],
        **GAMMA_CONSTRAINTS,
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
        gamma_scale=1.0,
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
        self.gamma_scale = gamma_scale
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
    def fit(self, X, y=None, weights=None):
        """Store the training samples (and fix ``gamma_`` for a kernel).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_bins) or (n_samples, n_points, d)
            Histograms or point clouds; a list of arrays of shape
            (n_points_i, d) for clouds of different sizes.
        y : None
            Ignored.
        weights : array-like of shape (n_samples, n_points), default=None
            The weights of each cloud's points: non-negative, finite, with a
            positive sum (a list of vectors for clouds of different sizes).
            None is uniform.

        Returns
        -------
        self : PairwiseEMDTransformer
            The fitted transformer.
        """
        self._fit(X, weights)
        if self.output == "kernel":
            self._set_gamma(self._training_distances)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, weights=None):
        """Fit, then return the symmetric training matrix.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_bins) or (n_samples, n_points, d)
            Histograms or point clouds; a list of arrays of shape
            (n_points_i, d) for clouds of different sizes.
        y : None
            Ignored.
        weights : array-like of shape (n_samples, n_points), default=None
            The weights of each cloud's points, as in ``fit``.

        Returns
        -------
        D : ndarray of shape (n_samples, n_samples)
            Distances or kernel values; symmetric with a zero diagonal (before
            the kernel) when the ground space is.
        """
        self._fit(X, weights)
        D = self._training_distances()
        if self.output == "kernel":
            self._set_gamma(lambda: D)
        return self._output(D)

    def transform(self, X, weights=None):
        """Return the distances (or kernel) between ``X`` and the training set.

        Parameters
        ----------
        X : array-like of shape (n_new, n_bins) or (n_new, n_points, d)
            Samples of the kind seen in ``fit``: histograms over the same bins,
            or clouds of points in the same dimension, of any sizes.
        weights : array-like of shape (n_new, n_points), default=None
            The weights of each cloud's points, as in ``fit``.

        Returns
        -------
        D : ndarray of shape (n_new, n_fit)
            Distances or kernel values.
        """
        self._validate_params()
        check_is_fitted(self)
        samples = self._validate_samples(X, weights, reset=False)
        options = self._options()
        D = distance_matrix(samples, self._fitted(), self.space_, options, self.memory)
        return self._output(D)

    def _training_distances(self):
        options = self._options()
        return distance_matrix(self._fitted(), None, self.space_, options, self.memory)

    def _set_gamma(self, distances):
        self.gamma_ = fitted_gamma(self.gamma, self.gamma_scale, distances)

    def _output(self, D):
        return np.exp(-self.gamma_ * D) if self.output == "kernel" else D
