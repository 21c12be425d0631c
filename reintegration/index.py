"""The reintegration sustainability index (RSS.md, "Scores"), as a scikit-learn-style estimator.

The estimator reads coded item values by column name (column order never matters) and is
vectorised over the whole frame. Coded values are float64 in [0, 1], ``NaN`` for *missing*
and :data:`NOT_APPLICABLE` for an item answered not applicable.

Comparisons follow RSS.md exactly: every score is first rounded to 10 decimals (``x~``, which
absorbs binary noise such as 0.34374999999999994), thresholds, the coverage rule and ties
compare ``x~``, and reported figures are ``x~`` rounded to 4 decimals, halves away from zero
(:func:`report_figures`). So a composite of 0.65995 is reported ``0.6600`` yet its level is
*medium*: the level is decided before rounding for display.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from reintegration.errors import IndexParameterError
from reintegration.estimator import EstimatorMixin
from reintegration.questionnaire import load_questionnaire

if TYPE_CHECKING:
    import pandas as pd

NOT_APPLICABLE = -1.0
"""Coded value of a not-applicable answer: neither counts for nor against coverage."""

LEVELS = ("low", "medium", "high")
COMPARISON_DECIMALS = 10
REPORTED_DECIMALS = 4


def comparable(values: np.ndarray) -> np.ndarray:
    """``x~``: values rounded to 10 decimals, the form every threshold compares."""
    return np.round(values, COMPARISON_DECIMALS)


def report_figures(values: np.ndarray) -> np.ndarray:
    """Reported figures in ten-thousandths (int64; -1 where missing), halves away from zero.

    Examples
    --------
    >>> report_figures(np.array([0.34375, 17 / 32, 0.65995, np.nan])).tolist()
    [3438, 5313, 6600, -1]
    """
    x = comparable(np.asarray(values, dtype=np.float64))
    # Scaling can turn an exact decimal half into ...4999999; rounding the scaled value to six
    # decimals first restores it, so the half rounds up as a spreadsheet does (all x >= 0).
    scaled = np.round(x * 10**REPORTED_DECIMALS, 6)
    out = np.floor(scaled + 0.5)
    return np.where(np.isnan(out), -1, out).astype(np.int64)


class ReintegrationIndex(EstimatorMixin):
    """Dimension scores, coverage, composite, level, weakest dimension and sustainability.

    Every parameter left as ``None`` takes the value of the questionnaire spec (index v1:
    equal weights, provisional thresholds); ``fit`` resolves and checks them.

    Parameters
    ----------
    item_weights : mapping of dimension to mapping of item id to weight, optional
        The items of each dimension and their non-negative weights. Dimension order breaks
        ties for the weakest dimension.
    dimension_weights : mapping of dimension to weight, optional
        Non-negative, summing to 1.
    min_coverage : float, optional
        Below this coverage a dimension score is missing.
    medium_from, high_from : float, optional
        Level cut-offs: low below ``medium_from``, high from ``high_from``.
    sustainable_from : float, optional
        Smallest composite that can be sustainable.
    sustainable_dimension_floor : float, optional
        Smallest dimension score a sustainable record may have.
    label : str, optional
        The index version label every output carries (``rss-v1-provisional``).

    Attributes
    ----------
    item_weights_, dimension_weights_, thresholds_, label_, dimensions_ :
        The resolved parameters.

    Examples
    --------
    >>> import pandas as pd
    >>> index = ReintegrationIndex().fit()
    >>> q = load_questionnaire()
    >>> best = {i.id: [1.0] for i in q.items}
    >>> out = index.transform(pd.DataFrame(best))
    >>> float(out.loc[0, "composite"]), out.loc[0, "level"], bool(out.loc[0, "sustainable"])
    (1.0, 'high', True)
    """

    def __init__(
        self,
        *,
        item_weights: Mapping[str, Mapping[str, float]] | None = None,
        dimension_weights: Mapping[str, float] | None = None,
        min_coverage: float | None = None,
        medium_from: float | None = None,
        high_from: float | None = None,
        sustainable_from: float | None = None,
        sustainable_dimension_floor: float | None = None,
        label: str | None = None,
    ) -> None:
        self.item_weights = item_weights
        self.dimension_weights = dimension_weights
        self.min_coverage = min_coverage
        self.medium_from = medium_from
        self.high_from = high_from
        self.sustainable_from = sustainable_from
        self.sustainable_dimension_floor = sustainable_dimension_floor
        self.label = label

    def fit(self, X: Any = None, y: Any = None) -> Self:
        """Resolve and check the parameters; index v1 learns nothing from ``X``.

        Raises
        ------
        IndexParameterError
            Negative weights, a dimension without positive weight, dimension weights that do
            not sum to 1, or thresholds outside [0, 1].
        """
        spec = load_questionnaire().index
        item_weights = self.item_weights or load_questionnaire().item_weights()
        dims = tuple(item_weights)
        dim_weights = dict(self.dimension_weights or spec.dimension_weights)
        if set(dim_weights) != set(dims):
            raise IndexParameterError(
                f"dimension weights name {sorted(dim_weights)} but the items are grouped in "
                f"{sorted(dims)}"
            )
        if any(w < 0 for w in dim_weights.values()) or not np.isclose(
            sum(dim_weights.values()), 1.0, rtol=0, atol=1e-9
        ):
            raise IndexParameterError("dimension weights must be non-negative and sum to 1")
        weights: dict[str, dict[str, float]] = {}
        for dim, items in item_weights.items():
            if not items or any(w < 0 for w in items.values()):
                raise IndexParameterError(f"dimension {dim}: item weights must be non-negative")
            if sum(items.values()) <= 0:
                raise IndexParameterError(f"dimension {dim}: no item has a positive weight")
            weights[dim] = {str(k): float(v) for k, v in items.items()}
        thresholds = {
            name: float(spec_value if value is None else value)
            for name, value, spec_value in (
                ("min_coverage", self.min_coverage, spec.min_coverage),
                ("medium_from", self.medium_from, spec.medium_from),
                ("high_from", self.high_from, spec.high_from),
                ("sustainable_from", self.sustainable_from, spec.sustainable_from),
                (
                    "sustainable_dimension_floor",
                    self.sustainable_dimension_floor,
                    spec.sustainable_dimension_floor,
                ),
            )
        }
        for name, value in thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise IndexParameterError(f"{name} = {value} is outside [0, 1]")
        if thresholds["medium_from"] > thresholds["high_from"]:
            raise IndexParameterError("medium_from must not exceed high_from")
        self.dimensions_ = dims
        self.item_weights_ = weights
        self.dimension_weights_ = {d: float(dim_weights[d]) for d in dims}
        self.thresholds_ = thresholds
        self.label_ = self.label or spec.label
        return self

    @property
    def output_columns(self) -> tuple[str, ...]:
        dims = self.dimensions_
        return (
            *dims,
            "composite",
            *(f"coverage_{d}" for d in dims),
            "level",
            "weakest_dimension",
            "sustainable",
        )

    def score_arrays(
        self, columns: Mapping[str, Any], n_rows: int | None = None
    ) -> dict[str, np.ndarray]:
        """Score coded item columns given by name; the vectorised core of :meth:`transform`.

        Parameters
        ----------
        columns : mapping of item id to array-like of float
            Coded values; an absent item is missing for every row.
        n_rows : int, optional
            Number of rows, needed only when no item column is present.

        Returns
        -------
        dict of str to ndarray
            Dimension scores, ``composite`` and ``coverage_<dimension>`` as float64 ``x~`` (NaN
            where missing); ``level`` (int8 index into :data:`LEVELS`, -1 missing);
            ``weakest_dimension`` (int8 index into ``dimensions_``, -1 missing);
            ``sustainable`` (int8: 1, 0, or -1 missing).
        """
        if not hasattr(self, "item_weights_"):
            raise IndexParameterError("this index is not fitted yet: call fit() first")
        n = n_rows
        for items in self.item_weights_.values():
            for item in items:
                if item in columns:
                    n = len(columns[item])
                    break
        if n is None:
            raise IndexParameterError("no item column and no row count: nothing to score")
        t = self.thresholds_
        out: dict[str, np.ndarray] = {}
        scores = []
        for dim, items in self.item_weights_.items():
            weighted = np.zeros(n)
            observed_w = np.zeros(n)
            applicable_w = np.full(n, float(sum(items.values())))
            for item, w in items.items():
                if item not in columns:  # an absent column is missing: it counts against coverage
                    continue
                x = np.asarray(columns[item], dtype=np.float64)
                # NaN (missing) and NOT_APPLICABLE (-1) both fail ``x >= 0`` and both become 0
                # under fmax, so three passes over the column do all the work.
                weighted += w * np.fmax(x, 0.0)
                observed_w += w * (x >= 0.0)
                applicable_w -= w * (x == NOT_APPLICABLE)
            with np.errstate(invalid="ignore", divide="ignore"):
                coverage = comparable(observed_w / applicable_w)
                score = comparable(weighted / observed_w)
            # Coverage is undefined when every item is not applicable: the score is missing then.
            score = np.where(np.isnan(coverage) | (coverage < t["min_coverage"]), np.nan, score)
            out[dim] = score
            out[f"coverage_{dim}"] = coverage
            scores.append(score)
        stacked = np.column_stack(scores)
        dim_w = np.array([self.dimension_weights_[d] for d in self.dimensions_])
        complete = ~np.isnan(stacked).any(axis=1)
        composite = comparable(np.where(complete, np.nan_to_num(stacked) @ dim_w, np.nan))
        out["composite"] = composite
        level = np.full(n, -1, dtype=np.int8)
        level[complete] = 0
        level[complete & (composite >= t["medium_from"])] = 1
        level[complete & (composite >= t["high_from"])] = 2
        out["level"] = level
        weakest = np.where(complete, np.argmin(np.nan_to_num(stacked, nan=np.inf), axis=1), -1)
        out["weakest_dimension"] = weakest.astype(np.int8)
        sustainable = (composite >= t["sustainable_from"]) & (
            stacked >= t["sustainable_dimension_floor"]
        ).all(axis=1)
        out["sustainable"] = np.where(complete, sustainable, -1).astype(np.int8)
        return out

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Score a frame of coded items; returns one row per input row, same index.

        Figures are ``x~`` floats (NaN missing); ``level`` and ``weakest_dimension`` are
        categoricals; ``sustainable`` is a nullable boolean.
        """
        import pandas as pd

        raw = self.score_arrays({c: X[c].to_numpy() for c in X.columns}, n_rows=len(X))
        frame = {}
        for name in self.output_columns:
            values = raw[name]
            if name == "level":
                frame[name] = pd.Categorical.from_codes(values, categories=list(LEVELS))
            elif name == "weakest_dimension":
                frame[name] = pd.Categorical.from_codes(values, categories=list(self.dimensions_))
            elif name == "sustainable":
                flags = pd.array(values == 1, dtype="boolean")
                flags[values < 0] = pd.NA
                frame[name] = flags
            else:
                frame[name] = values
        return pd.DataFrame(frame, index=X.index)

    def fit_transform(self, X: pd.DataFrame, y: Any = None) -> pd.DataFrame:
        """``fit`` then ``transform``."""
        return self.fit(X, y).transform(X)
