"""The base of the estimators that compare samples: fitting and checking them.

:class:`SampleEstimator` owns what :class:`~skemd.PairwiseEMDTransformer` and
:class:`~skemd.EMDNeighborsTransformer` share: validating histograms or point
clouds (and the clouds' weights, per-sample metadata) as scikit-learn does,
keeping the training samples and their ground space, building the solver
options from the parameters, and the tags and output feature names of a
transformer whose features are the training samples.
"""

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils.validation import validate_data

from ._ground import Samples, ground_space
from ._options import SolverOptions
from ._pair_cache import store_path
from ._samples import check_samples, cloud_list


class SampleEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Fits samples: ``X_fit_``, ``weights_fit_``, ``space_``, ``n_features_in_``.

    A subclass has the parameters ``metric``, ``support``, ``ground_cost``,
    ``memory`` and those of :class:`~skemd._options.SolverOptions`.
    """

    def _fit(self, X, weights):
        self._options()  # fails early on options that do not fit together
        store_path(self.memory)  # and on a memory that cannot hold the cache
        samples = self._validate_samples(X, weights, reset=True)
        self.space_ = ground_space(samples, self.support, self.ground_cost, self.metric)
        self.X_fit_, self.weights_fit_ = samples.data, samples.weights
        return samples

    def _fitted(self):
        return Samples(self.X_fit_, self.weights_fit_)

    def _options(self, **overrides):
        return SolverOptions.from_params(self.get_params(deep=False), **overrides)

    def _validate_samples(self, X, weights, reset):
        """Histograms through scikit-learn's checks; clouds of any sizes too."""
        name = type(self).__name__
        fitted = None if reset else self._fitted()
        histograms = cloud_list(X) is None and getattr(X, "ndim", 2) == 2
        if histograms and (reset or fitted.histograms):
            # Non-finite values are named by check_samples.
            X = validate_data(
                self, X, reset=reset, dtype=np.float64, ensure_all_finite=False
            )
        samples = check_samples(
            X, weights, like=fitted, against=f"{name} was fitted on", whom=name
        )
        if reset and not samples.histograms:
            self.n_features_in_ = samples.data[0].shape[1]
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        return samples

    @property
    def _n_features_out(self):
        return len(self.X_fit_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags
