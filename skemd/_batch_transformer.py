"""``BatchEMDTransformer``: EMD values or plans of stacked costs as features."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._driver import check_problems, solve_batch
from ._options import SOLVER_CONSTRAINTS, SolverOptions, document_solver_parameters
from ._solvers import DEFAULT_METHOD
from ._validation import check_batch


@document_solver_parameters
class BatchEMDTransformer(TransformerMixin, BaseEstimator):
    """Turn each sample's cost matrix into its exact EMD value or plan.

    A sample is one optimal transport problem: ``X[i]`` is its cost matrix of
    shape (n, m). The transformer is stateless: ``fit`` only validates the
    input and the parameters and records the cost shape, so it is safe in a
    :class:`~sklearn.pipeline.Pipeline` under cross-validation.

    Parameters
    ----------
    output : {"distance", "plan"}, default="distance"
        "distance" gives one feature, the EMD ``<T_i, X[i]>``; "plan" gives the
        n * m entries of the optimal plan, row-major.
    a : array-like of shape (n,), default=None
        Source weights shared by every sample; None is uniform. Per-sample
        weights are passed to ``fit``/``transform`` instead, so that
        cross-validation slices them with the samples.
    b : array-like of shape (m,), default=None
        Target weights shared by every sample, as ``a``.
    sparse_output : bool, default=False
        With ``output="plan"``, return a :class:`scipy.sparse.csr_array` of
        shape (k, n * m) instead of a dense array; a plan has at most
        n + m - 1 nonzeros. Ignored for ``output="distance"``.
    %(solver_parameters)s
    n_jobs : int, default=None
        Number of parallel jobs. ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context; -1 means all processors.
    batch_size : int or "auto", default="auto"
        Problems per parallel task.
    %(verbose)s

    Attributes
    ----------
    n_features_in_ : int
        The number of rows n of each cost matrix seen in ``fit``.
    cost_shape_ : tuple of int
        The shape (n, m) of the cost matrices seen in ``fit``.

    See Also
    --------
    emd_batch : The function this transformer wraps.

    Notes
    -----
    Per-sample marginals of shape (k, n) and (k, m) are metadata: pass them as
    ``a=``/``b=`` to ``fit``, ``transform`` or ``fit_transform``. Through a
    :class:`~sklearn.pipeline.Pipeline` or a cross-validation tool, enable
    metadata routing (``sklearn.set_config(enable_metadata_routing=True)``)
    and request them with ``set_fit_request(a=True, b=True)`` and
    ``set_transform_request(a=True, b=True)``; cross-validation then slices
    them with the samples, exactly like ``sample_weight``. Weights given to
    the constructor are parameters and are never sliced.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd import BatchEMDTransformer
    >>> X = np.random.default_rng(0).random((6, 4, 3))
    >>> BatchEMDTransformer().fit_transform(X).shape
    (6, 1)
    >>> BatchEMDTransformer(output="plan").fit_transform(X).shape
    (6, 12)
    """

    _parameter_constraints: dict = {
        "output": [StrOptions({"distance", "plan"})],
        "a": ["array-like", None],
        "b": ["array-like", None],
        "sparse_output": ["boolean"],
        **SOLVER_CONSTRAINTS,
    }

    def __init__(
        self,
        output="distance",
        *,
        a=None,
        b=None,
        sparse_output=False,
        method=DEFAULT_METHOD,
        reg=None,
        tol=None,
        max_iter=None,
        method_params=None,
        n_jobs=None,
        batch_size="auto",
        verbose=0,
    ):
        self.output = output
        self.a = a
        self.b = b
        self.sparse_output = sparse_output
        self.method = method
        self.reg = reg
        self.tol = tol
        self.max_iter = max_iter
        self.method_params = method_params
        self.n_jobs = n_jobs
        self.batch_size = batch_size
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, a=None, b=None):
        """Validate the cost matrices and marginals; solve nothing.

        Parameters
        ----------
        X : array-like of shape (k, n, m)
            The cost matrices, one per sample.
        y : None
            Ignored.
        a : array-like of shape (k, n), default=None
            Per-sample source weights.
        b : array-like of shape (k, m), default=None
            Per-sample target weights.

        Returns
        -------
        self : BatchEMDTransformer
            The validated transformer.
        """
        self._fit(X, a, b)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, a=None, b=None):
        """Validate, then transform ``X``, checking the input only once.

        Parameters
        ----------
        X : array-like of shape (k, n, m)
            The cost matrices, one per sample.
        y : None
            Ignored.
        a : array-like of shape (k, n), default=None
            Per-sample source weights.
        b : array-like of shape (k, m), default=None
            Per-sample target weights.

        Returns
        -------
        features : ndarray of shape (k, 1) or (k, n * m), or csr_array
            The distances or the flattened plans, as ``transform``.
        """
        return self._solve(*self._fit(X, a, b))

    def transform(self, X, a=None, b=None):
        """Return the EMD value or the flattened optimal plan of every sample.

        Parameters
        ----------
        X : array-like of shape (k, n, m)
            The cost matrices, one per sample.
        a : array-like of shape (k, n), default=None
            Per-sample source weights.
        b : array-like of shape (k, m), default=None
            Per-sample target weights.

        Returns
        -------
        features : ndarray of shape (k, 1) or (k, n * m), or csr_array
            The distances (``output="distance"``) or the plans
            (``output="plan"``), sparse with ``sparse_output=True``.
        """
        self._validate_params()
        return self._solve(*self._problems(X, a, b, reset=False))

    def _fit(self, X, a, b):
        options, batch = self._problems(X, a, b, reset=True)
        self.cost_shape_ = batch.costs.shape[1:]
        return options, batch

    def _problems(self, X, a, b, reset):
        """Validate the options and the problems; return both."""
        options = SolverOptions.from_params(
            self.get_params(deep=False), return_plan=self._plan_format()
        )
        X = self._validate_costs(X, reset=reset)
        equal_mass = options.spec.needs_equal_mass
        batch = check_batch(X, *self._marginals(a, b), equal_mass=equal_mass, name="X")
        check_problems(batch, options)
        return options, batch

    def _validate_costs(self, X, reset):
        # Finiteness is checked by check_batch, which names the bad sample.
        X = validate_data(
            self,
            X,
            reset=reset,
            allow_nd=True,
            dtype="numeric",
            ensure_all_finite=False,
        )
        if X.ndim != 3:
            raise ValueError(
                f"X must be a 3-D array of shape (k, n, m), one cost matrix per "
                f"sample; got shape {X.shape}."
            )
        fitted_shape = None if reset else getattr(self, "cost_shape_", None)
        if fitted_shape is not None and X.shape[1:] != fitted_shape:
            raise ValueError(
                f"X has cost matrices of shape {X.shape[1:]}, but "
                f"{type(self).__name__} was fitted on shape {fitted_shape}."
            )
        return X

    def _marginals(self, a, b):
        pairs = (("a", self.a, a), ("b", self.b, b))
        for name, shared, per_sample in pairs:
            if shared is not None and np.ndim(shared) != 1:
                raise ValueError(
                    f"The constructor's {name} must be 1-D (shared by every "
                    f"sample); got shape {np.shape(shared)}. Pass per-sample "
                    f"weights to fit/transform as {name}=."
                )
            if shared is not None and per_sample is not None:
                raise ValueError(
                    f"{name} was given both to the constructor and to this "
                    "method; give it once."
                )
        return [
            shared if per_sample is None else per_sample
            for _, shared, per_sample in pairs
        ]

    def _solve(self, options, batch):
        result = solve_batch(batch, options)
        if self.output == "distance":
            return result.distance[:, None]
        if self.sparse_output:
            return result.plan
        return result.plan.reshape(len(batch), -1)

    def _plan_format(self):
        if self.output == "distance":
            return False
        return "sparse" if self.sparse_output else "dense"

    def get_feature_names_out(self, input_features=None):
        """Return the output feature names.

        Parameters
        ----------
        input_features : None
            Ignored: the input is 3-D and has no feature names.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``["distance"]``, or ``plan_i_j`` for every plan entry, row-major.

        Examples
        --------
        >>> import numpy as np
        >>> from skemd import BatchEMDTransformer
        >>> BatchEMDTransformer().get_feature_names_out()
        array(['distance'], dtype=object)
        >>> t = BatchEMDTransformer(output="plan").fit(np.ones((1, 2, 2)))
        >>> t.get_feature_names_out()
        array(['plan_0_0', 'plan_0_1', 'plan_1_0', 'plan_1_1'], dtype=object)
        """
        if self.output == "distance":
            return np.asarray(["distance"], dtype=object)
        check_is_fitted(self, "cost_shape_")
        n, m = self.cost_shape_
        return np.asarray(
            [f"plan_{i}_{j}" for i in range(n) for j in range(m)], dtype=object
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags
