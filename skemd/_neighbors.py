"""Exact EMD nearest neighbours: :class:`EMDNeighborsTransformer`.

This module owns the neighbour graph estimator, a drop-in for scikit-learn's
:class:`~sklearn.neighbors.KNeighborsTransformer` under the EMD, and the
choice of search behind it: for methods whose values are exact EMDs, the
search of :mod:`skemd._knn`, pruned by the lower bounds of
:mod:`skemd._bounds`; for the others, every pair, a block of queries at a
time. Either way, no (n_queries, n_fit) array is built whole.
"""

import dataclasses
import os
import sys
from numbers import Integral

import numpy as np
from scipy import sparse
from sklearn.base import _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._bounds import EMDLowerBounds
from ._knn import every_pair_search, knn_search
from ._options import SOLVER_CONSTRAINTS, document_solver_parameters
from ._pairwise import SPACE_CONSTRAINTS, pair_solver, symmetric_pairs
from ._progress import progress_bar
from ._sample_estimator import SampleEstimator
from ._solvers import DEFAULT_METHOD
from ._warnings import OneWarningPerCategory


def nearest_samples(
    queries, fit, space, options, n_neighbors, *, include_self=False, memory=None
):
    """The exact ``n_neighbors`` nearest fit samples of each query.

    Parameters
    ----------
    queries : Samples or None
        The query samples; None searches ``fit`` itself.
    fit : Samples
        The samples searched, masses as given.
    space : HistogramSpace or str
        The ground space.
    options : SolverOptions
        How to solve pairs; ``options.verbose`` shows a bar over the queries
        and the share of pairs solved.
    n_neighbors : int
        k.
    include_self : bool, default=False
        When ``queries`` is None, whether a sample is a candidate of its own
        query: as ``transform`` of the training data (True) or as
        ``kneighbors(X=None)`` (False).
    memory : str, path-like, joblib.Memory or None, default=None
        Where the pair cache is kept, if anywhere.

    Returns
    -------
    distances : ndarray of shape (n_queries, n_neighbors)
        Each query's distances, increasing.
    indices : ndarray of shape (n_queries, n_neighbors)
        The fit indices; ties go to the smaller index.
    n_solved : int
        The pairs solved exactly (or looked up in the cache).

    Warns
    -----
    ConvergenceWarning
        Once per call, naming the first pairs that did not converge in any
        round of the search and counting them all.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._ground import Samples
    >>> from skemd._neighbors import nearest_samples
    >>> from skemd._options import SolverOptions
    >>> clouds = Samples(np.array([[[0.0], [1.0]], [[0.0], [2.0]], [[5.0], [6.0]]]))
    >>> distances, indices, n_solved = nearest_samples(
    ...     None, clouds, "euclidean", SolverOptions.build(), 1)
    >>> distances.ravel(), indices.ravel(), n_solved
    (array([0.5, 0.5, 4.5]), array([1, 0, 1]), 2)
    """
    verbose = options.verbose
    options = dataclasses.replace(options, verbose=0)  # one bar, over the queries
    solve = pair_solver(
        fit if queries is None else queries, fit, space, options, memory
    )
    n_queries = len(fit if queries is None else queries)
    exclude = queries is None and not include_self
    bar = progress_bar(n_queries, verbose=verbose, unit="queries")
    with OneWarningPerCategory(), bar:  # one warning for all the rounds
        if options.spec.emd_bounds:
            bounds = EMDLowerBounds(
                fit.solved_by(options.spec),
                space,
                support=getattr(space, "support", None),
                metric=getattr(space, "metric", None),
            )
            pairs = bounds.queries(
                None if queries is None else queries.solved_by(options.spec)
            )
            found = knn_search(
                pairs,
                solve,
                n_neighbors,
                include_self=include_self,
                symmetric=symmetric_pairs(space, options),
                progress=bar.update,
            )
        else:
            args = solve, n_queries, len(fit), n_neighbors
            found = every_pair_search(*args, exclude_self=exclude, progress=bar.update)
    if verbose:
        n_solved = found[2]
        # The pairs the full matrix solves: each once when the EMD is symmetric.
        if queries is None and symmetric_pairs(space, options):
            total = n_queries * (n_queries - 1) // 2
        else:
            total = n_queries * len(fit)
        print(
            f"[EMD neighbours] {n_solved:,} of {total:,} pairs solved exactly "
            f"({n_solved / max(total, 1):.1%}).",
            file=sys.stderr,
        )
    return found


@document_solver_parameters
class EMDNeighborsTransformer(SampleEstimator):
    """The graph of each sample's exact EMD nearest neighbours.

    A drop-in for :class:`sklearn.neighbors.KNeighborsTransformer` under the
    Earth Mover's Distance: ``transform`` returns a sparse graph of the
    ``n_neighbors`` nearest training samples of each sample, for estimators
    that take ``metric="precomputed"`` graphs (``KNeighborsClassifier``,
    ``Isomap``, ``DBSCAN``, ``TSNE``, ``SpectralClustering`` with
    ``affinity="precomputed_nearest_neighbors"``) in a
    :class:`~sklearn.pipeline.Pipeline`. Samples are histograms or point
    clouds, as in :class:`PairwiseEMDTransformer`.

    The neighbours are exact, identical to those of the full distance matrix
    (ties go to the smaller index), but most pairs are never solved: cheap
    lower bounds of the EMD (the centroids' distance, 1-D transport along
    projections, each bin to its nearest bin with mass) rank the candidates,
    the most promising are solved first, and the search for a sample stops
    once the next bound exceeds its k-th distance found. Methods whose values
    are not exact EMDs solve every pair.

    Parameters
    ----------
    n_neighbors : int, default=5
        Neighbours of each sample. In ``mode="distance"``, each row of
        ``transform`` has ``n_neighbors + 1`` entries, as scikit-learn's
        transformer has it: on the training data, each sample is its own
        first neighbour, at distance 0.
    mode : {"distance", "connectivity"}, default="distance"
        The graph's values: distances, or ones.
    support : array-like of shape (n_bins, d) or (n_bins,), default=None
        Bin positions of histograms, under ``metric``.
    metric : {"sqeuclidean", "euclidean", "cityblock"}, default="sqeuclidean"
        Ground metric between points (clouds) or bin positions (histograms).
    ground_cost : array-like of shape (n_bins, n_bins), default=None
        Explicit cost between bins; excludes ``support``. Only the bound of
        each bin to its nearest bin prunes then.
    %(solver_parameters)s
    n_jobs : int, default=None
        Number of parallel jobs, as in :func:`emd_batch`.
    batch_size : int or "auto", default="auto"
        Pairs per parallel task.
    memory : str, pathlib.Path, joblib.Memory or None, default=None
        Where solved pairs are kept across fits and processes, as in
        :class:`PairwiseEMDTransformer`.
    %(verbose)s
        Here the bar counts samples searched, and a last line says how many
        pairs were solved.

    Attributes
    ----------
    X_fit_ : ndarray of shape (n_fit, n_bins) or (n_fit, n_points, d), or list
        The training samples, as given.
    weights_fit_ : ndarray, list or None
        The training clouds' weights.
    space_ : HistogramSpace or str
        The ground space of histograms, or the metric of clouds.
    n_samples_fit_ : int
        Number of training samples.
    n_features_in_ : int
        n_bins for histograms; d for clouds.
    n_pairs_solved_ : int
        Pairs solved exactly to build the training graph in
        ``fit_transform``, out of n_samples (n_samples - 1) / 2 (each pair
        once, for a symmetric EMD) without pruning; 0 after ``fit``, which
        solves nothing. With ``verbose``, every search prints its count.

    See Also
    --------
    sklearn.neighbors.KNeighborsTransformer : The same graph, for vectors.
    PairwiseEMDTransformer : Every pairwise distance.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd import EMDNeighborsTransformer
    >>> X = np.array([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 1]])
    >>> neighbours = EMDNeighborsTransformer(n_neighbors=1, metric="euclidean")
    >>> neighbours.fit_transform(X).toarray()
    array([[0. , 1. , 0. , 0. ],
           [1. , 0. , 0. , 0. ],
           [0. , 0. , 0. , 0.5],
           [0. , 0. , 0.5, 0. ]])
    """

    _parameter_constraints: dict = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "mode": [StrOptions({"distance", "connectivity"})],
        **SPACE_CONSTRAINTS,
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        **SOLVER_CONSTRAINTS,
    }

    def __init__(
        self,
        n_neighbors=5,
        *,
        mode="distance",
        support=None,
        metric="sqeuclidean",
        ground_cost=None,
        method=DEFAULT_METHOD,
        reg=None,
        tol=None,
        max_iter=None,
        method_params=None,
        n_jobs=None,
        batch_size="auto",
        memory=None,
        verbose=0,
    ):
        self.n_neighbors = n_neighbors
        self.mode = mode
        self.support = support
        self.metric = metric
        self.ground_cost = ground_cost
        self.method = method
        self.reg = reg
        self.tol = tol
        self.max_iter = max_iter
        self.method_params = method_params
        self.n_jobs = n_jobs
        self.batch_size = batch_size
        self.memory = memory
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, weights=None):
        """Store the training samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_bins) or (n_samples, n_points, d)
            Histograms or point clouds; a list of arrays of shape
            (n_points_i, d) for clouds of different sizes.
        y : None
            Ignored.
        weights : array-like of shape (n_samples, n_points), default=None
            The weights of each cloud's points (per-sample metadata, as in
            :class:`PairwiseEMDTransformer`). None is uniform.

        Returns
        -------
        self : EMDNeighborsTransformer
            The fitted transformer.
        """
        self.n_samples_fit_ = len(self._fit(X, weights))
        self.n_pairs_solved_ = 0
        return self

    def transform(self, X, weights=None):
        """The graph of the nearest training samples of each sample of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bins) or (n_queries, n_points, d)
            Samples of the kind seen in ``fit``.
        weights : array-like of shape (n_queries, n_points), default=None
            The weights of each cloud's points, as in ``fit``.

        Returns
        -------
        Xt : sparse matrix of shape (n_queries, n_samples_fit)
            CSR, each row holding the distances (or ones) of its neighbours,
            sorted by distance; explicit zeros are kept.
        """
        self._validate_params()
        check_is_fitted(self)
        return self._graph(self._validate_samples(X, weights, reset=False))[0]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, weights=None):
        """Fit, then return the graph of the training samples.

        Each sample is its own first neighbour (ties aside: a duplicate of a
        smaller index comes first), as ``fit(X).transform(X)`` gives it;
        when the EMD is symmetric, each pair is solved once.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_bins) or (n_samples, n_points, d)
            Histograms or point clouds.
        y : None
            Ignored.
        weights : array-like of shape (n_samples, n_points), default=None
            The weights of each cloud's points.

        Returns
        -------
        Xt : sparse matrix of shape (n_samples, n_samples)
            The graph, as ``transform`` returns it.
        """
        self.fit(X, weights=weights)
        graph, self.n_pairs_solved_ = self._graph(None)
        return graph

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True, weights=None):
        """The nearest training samples of each sample, as ``NearestNeighbors``.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_bins) or (n_queries, n_points, d)
            Samples of the kind seen in ``fit``. None queries the training
            samples, each excluded from its own neighbours.
        n_neighbors : int, default=None
            Neighbours per sample; None is ``self.n_neighbors``.
        return_distance : bool, default=True
            Whether to return the distances too.
        weights : array-like of shape (n_queries, n_points), default=None
            The weights of each cloud's points of ``X``.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries, n_neighbors)
            The distances, increasing; only if ``return_distance``.
        neigh_ind : ndarray of shape (n_queries, n_neighbors)
            The indices of the neighbours in the training samples.
        """
        self._validate_params()
        check_is_fitted(self)
        queries = None
        if X is not None:
            queries = self._validate_samples(X, weights, reset=False)
        elif weights is not None:
            raise ValueError("weights were given without X.")
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        distances, indices, _ = self._search(queries, k, include_self=False)
        return (distances, indices) if return_distance else indices

    def _graph(self, queries):
        """The CSR graph of the queries, and the pairs solved to build it."""
        k = self.n_neighbors + (self.mode == "distance")
        distances, indices, n_solved = self._search(queries, k, include_self=True)
        n_queries = len(indices)
        values = distances.ravel() if self.mode == "distance" else np.ones(indices.size)
        graph = sparse.csr_matrix(
            (values, indices.ravel(), np.arange(0, n_queries * k + 1, k)),
            shape=(n_queries, self.n_samples_fit_),
        )
        return graph, n_solved

    def _search(self, queries, k, include_self):
        n_fit = self.n_samples_fit_ - (queries is None and not include_self)
        if not isinstance(k, Integral) or not 0 < k <= n_fit:
            raise ValueError(
                f"Expected 0 < n_neighbors <= {n_fit}, the training samples "
                f"{'other than the query ' if n_fit < self.n_samples_fit_ else ''}"
                f"(n_samples_fit = {self.n_samples_fit_}); got n_neighbors = {k!r}."
            )
        return nearest_samples(
            queries,
            self._fitted(),
            self.space_,
            self._options(),
            int(k),
            include_self=include_self,
            memory=self.memory,
        )
