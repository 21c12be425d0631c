"""The learned model's building blocks, as scikit-learn estimators.

:class:`DimensionScores` adds the index's dimension scores to the first survey's items inside
the risk pipeline, so the model is a function of what is known at the first survey and scores
them with the weights it was trained with, whatever index is champion later.
:class:`RiskModel` is what the registry holds: the calibrated classifier and the risk bands.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from reintegration.index import ReintegrationIndex

BANDS = ("low", "medium", "high")
TRUSTED_TYPES = [
    "models.estimators.DimensionScores",
    "models.estimators.RiskModel",
    "reintegration.index.ReintegrationIndex",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]
"""Types that skops does not trust by default and that our own serialised models contain.

The registry only holds models this platform trained itself (loading any model file can run
code); the two scikit-learn types are those of calibrated gradient boosting."""


class DimensionScores(TransformerMixin, BaseEstimator):
    """Add dimension scores and the composite, computed from the item columns.

    Parameters
    ----------
    item_weights, dimension_weights : mapping, optional
        As for :class:`~reintegration.index.ReintegrationIndex` (the spec's when None).
    """

    def __init__(
        self,
        item_weights: Mapping[str, Mapping[str, float]] | None = None,
        dimension_weights: Mapping[str, float] | None = None,
    ) -> None:
        self.item_weights = item_weights
        self.dimension_weights = dimension_weights

    def fit(self, X: pd.DataFrame, y: Any = None) -> Self:
        """Resolve the index (nothing is learned from ``X``)."""
        self.index_ = ReintegrationIndex(
            item_weights=self.item_weights, dimension_weights=self.dimension_weights
        ).fit()
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return ``X`` with the dimension scores and the composite appended (a new frame)."""
        check_is_fitted(self, "index_")
        scores = self.index_.score_arrays({c: X[c].to_numpy() for c in X.columns}, len(X))
        added = {name: scores[name] for name in (*self.index_.dimensions_, "composite")}
        return X.assign(**added)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "index_")
        names = [*self.feature_names_in_, *self.index_.dimensions_, "composite"]
        return np.asarray(names, dtype=object)


class RiskModel(ClassifierMixin, BaseEstimator):
    """The early-warning classifier with its risk bands.

    Parameters
    ----------
    estimator : classifier
        Fitted by :meth:`fit` (a clone of it); predicts whether a returnee will not be
        sustainable at the follow-up (class 1).
    medium_from, high_from : float
        Probability from which a risk is medium, and high.
    """

    def __init__(
        self, estimator: Any = None, medium_from: float = 1 / 3, high_from: float = 2 / 3
    ) -> None:
        self.estimator = estimator
        self.medium_from = medium_from
        self.high_from = high_from

    def fit(self, X: pd.DataFrame, y: Any) -> Self:
        """Fit a clone of the estimator."""
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities of (sustainable, not sustainable) at the follow-up."""
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.predict_proba(X))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 where not being sustainable is the likelier outcome."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def risk(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of not being sustainable at the follow-up."""
        return self.predict_proba(X)[:, 1]

    def bands(self, probabilities: np.ndarray) -> list[str]:
        """``low``, ``medium`` or ``high`` for each probability."""
        cut = np.searchsorted([self.medium_from, self.high_from], probabilities, side="right")
        return [BANDS[k] for k in cut.tolist()]
