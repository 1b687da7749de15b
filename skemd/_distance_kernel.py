"""``DistanceKernel``: precomputed distances to a kernel, for grid searches."""

from numbers import Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    OneToOneFeatureMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import validate_data


class DistanceKernel(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Map precomputed distances ``D`` to the kernel ``exp(-gamma * D)``.

    Compute EMD distances once, then grid-search only ``gamma`` (and the
    model's own parameters). The transformer is tagged ``pairwise``, so
    cross-validation slices a precomputed (n, n) ``D`` into (train, train)
    and (test, train) blocks, as it does for ``SVC(kernel="precomputed")``.

    Parameters
    ----------
    gamma : float, default=1.0
        Bandwidth, > 0.

    Examples
    --------
    >>> import numpy as np
    >>> from skemd import DistanceKernel
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

    _parameter_constraints: dict = {
        "gamma": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, gamma=1.0):
        self.gamma = gamma

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the distances; learn nothing.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_fit)
            Non-negative distances.
        y : None
            Ignored.

        Returns
        -------
        self : DistanceKernel
            The validated transformer.
        """
        self._check_distances(X, reset=True)
        return self

    def transform(self, X):
        """Return ``exp(-gamma * X)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_fit)
            Non-negative distances.

        Returns
        -------
        K : ndarray of shape (n_samples, n_fit)
            The kernel values.
        """
        return np.exp(-self.gamma * self._check_distances(X, reset=False))

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
        tags.requires_fit = False
        return tags
