"""``DistanceKernel``, and the bandwidth rule of both EMD kernels.

This module owns :class:`DistanceKernel` (precomputed distances to a kernel,
for grid searches) and what it shares with
:class:`~skemd.PairwiseEMDTransformer`: the constraints of ``gamma`` and
``gamma_scale``, and :func:`fitted_gamma`, which fixes ``gamma_`` at fit.
"""

from numbers import Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    OneToOneFeatureMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

#: The parameter constraints of ``gamma`` and ``gamma_scale`` in both kernels.
GAMMA_CONSTRAINTS = {
    "gamma": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
    "gamma_scale": [Interval(Real, 0, None, closed="neither")],
}


def fitted_gamma(gamma, gamma_scale, distances):
    """Return the bandwidth a kernel fixes at fit: ``gamma``, or scale / median.

    Parameters
    ----------
    gamma : float or "auto"
        A bandwidth, returned as it is, or "auto": ``gamma_scale / median`` of
        the off-diagonal training distances (``gamma_scale`` when that median
        is 0, as for a single training sample).
    gamma_scale : float
        The multiple of ``1 / median`` that "auto" returns; ignored otherwise.
    distances : callable
        Returns the (n, n) distances between the training samples; called
        only for "auto".

    Returns
    -------
    gamma_ : float
        The bandwidth.

    Raises
    ------
    ValueError
        If "auto" is given distances that are not a square matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd._distance_kernel import fitted_gamma
    >>> D = np.array([[0.0, 1.0, 4.0], [1.0, 0.0, 2.0], [4.0, 2.0, 0.0]])
    >>> fitted_gamma("auto", 3.0, lambda: D)  # median(1, 1, 2, 2, 4, 4) = 2
    1.5
    >>> fitted_gamma(0.1, 3.0, lambda: D)
    0.1
    """
    if gamma != "auto":
        return float(gamma)
    D = distances()
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(
            'gamma="auto" takes the median distance between the training '
            "samples, from the square (n, n) matrix of their distances to each "
            f"other; got a matrix of shape {D.shape}. Fit on the training "
            "samples' own distances, or give gamma a number."
        )
    median = np.median(D[~np.eye(len(D), dtype=bool)]) if len(D) > 1 else 0.0
    return float(gamma_scale / median if median > 0 else gamma_scale)


class DistanceKernel(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Map precomputed distances ``D`` to the kernel ``exp(-gamma_ * D)``.

    Compute EMD distances once, then grid-search only ``gamma_scale`` or
    ``gamma`` (and the model's own parameters). The transformer is tagged
    ``pairwise``, so cross-validation slices a precomputed (n, n) ``D`` into
    (train, train) and (test, train) blocks, as it does for
    ``SVC(kernel="precomputed")``: ``fit`` sees the training samples'
    distances to each other, and fixes the bandwidth ``gamma_`` from them;
    ``transform`` maps the (n_new, n_fit) distances of new samples to the
    training samples with that ``gamma_``.

    Parameters
    ----------
    gamma : float or "auto", default="auto"
        Kernel bandwidth, > 0. "auto" is ``gamma_scale / median`` of the
        off-diagonal entries of the (n, n) matrix passed to ``fit``
        (``gamma_scale`` when that median is 0), as for
        :class:`PairwiseEMDTransformer`.
    gamma_scale : float, default=1.0
        Used only with ``gamma="auto"``, > 0: the bandwidth in units of
        ``1 / median`` training distance. Grid-searching it searches the same
        relative bandwidths whatever the scale of the distances. Ignored when
        ``gamma`` is a number, as ``SVC`` ignores ``degree`` for kernels other
        than "poly".

    Attributes
    ----------
    gamma_ : float
        The bandwidth used, fixed at fit.
    n_features_in_ : int
        The number of training samples, n_fit: the columns of ``D``.
    feature_names_in_ : ndarray of shape (n_fit,)
        The columns' names, when ``D`` is a DataFrame with string column names.

    See Also
    --------
    PairwiseEMDTransformer : EMD distances, or this kernel of them, from samples.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd import DistanceKernel
    >>> D = np.array([[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]])
    >>> kernel = DistanceKernel(gamma_scale=0.5).fit(D)
    >>> kernel.gamma_  # 0.5 / median(1, 1, 2, 2, 3, 3)
    0.25
    >>> kernel.transform([[2.0, 2.0, 2.0]])  # a new sample's distances
    array([[0.60653066, 0.60653066, 0.60653066]])
    >>> D = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> DistanceKernel(gamma=np.log(2)).fit_transform(D)
    array([[1. , 0.5],
           [0.5, 1. ]])

    Column ``j`` of the kernel belongs to training sample ``j``, as column
    ``j`` of ``D`` does, so feature names pass through and ``set_output``
    works:

    >>> import pandas as pd
    >>> D = pd.DataFrame(D, columns=["to_a", "to_b"])
    >>> K = DistanceKernel().set_output(transform="pandas").fit_transform(D)
    >>> K.columns.tolist()
    ['to_a', 'to_b']
    """

    _parameter_constraints: dict = {**GAMMA_CONSTRAINTS}

    def __init__(self, gamma="auto", gamma_scale=1.0):
        self.gamma = gamma
        self.gamma_scale = gamma_scale

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the training distances and fix the bandwidth ``gamma_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_samples)
            Non-negative distances between the training samples. Any
            (n_samples, n_fit) matrix is accepted when ``gamma`` is a number.
        y : None
            Ignored.

        Returns
        -------
        self : DistanceKernel
            The fitted transformer.
        """
        X = self._check_distances(X, reset=True)
        self.gamma_ = fitted_gamma(self.gamma, self.gamma_scale, lambda: X)
        return self

    def transform(self, X):
        """Return ``exp(-gamma_ * X)``.

        Parameters
        ----------
        X : array-like of shape (n_new, n_fit)
            Non-negative distances from new samples to the training samples.

        Returns
        -------
        K : ndarray of shape (n_new, n_fit)
            The kernel values.
        """
        check_is_fitted(self)
        return np.exp(-self.gamma_ * self._check_distances(X, reset=False))

    def _check_distances(self, X, reset):
        X = validate_data(self, X, reset=reset, dtype=np.float64)
        if (X < 0).any():
            raise ValueError(
                f"Negative values in data passed to {type(self).__name__}: "
                "distances must be non-negative."
            )
        return X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = True
        tags.input_tags.positive_only = True
        return tags
