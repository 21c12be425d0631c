"""What a risk model's card says about it: against the baseline rule, by group, over time.

Every figure is computed on returnees the model never saw (the held-out returnees of the split
fixed by each returnee's key, or the later return cohorts of the temporal validation):

- **Against the baseline rule.** The rule ranks returnees by ``1 - composite`` of their first
  survey (under the index that defines the outcome). The candidate's ROC AUC and the rule's are
  computed on the same held-out returnees (those whose first survey has a composite), and their
  difference gets a paired bootstrap 95% interval (:mod:`models.bootstrap`). The candidate
  *beats the baseline* only when the interval's lower bound is above 0.
- **Prevalence beside average precision**: average precision of a random ranking equals the
  prevalence, so the two are shown together.
- **Calibration by group**: observed share not sustainable against the mean predicted risk,
  per subgroup of at least ``min_group`` held-out returnees.
- **Risk bands**: the analyst's absolute thresholds (``REINTEGRATION_RISK_BANDS``), with each
  band's size, mean predicted risk and observed share.
- **Temporal validation**: the same pipeline trained on the earlier return cohorts (whole months
  of return, the earliest three quarters of the returnees) and tested on the later ones, with the
  baseline rule's AUC on those later returnees beside it.

These are exact figures, kept in memory; what is stored or shown passes
:mod:`models.disclosure_models`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from models.bootstrap import BOOTSTRAP, paired_auc_difference
from models.evaluation import (
    OVERALL,
    _labels,
    calibration_table,
    group_name,
    group_sets,
    risk_metrics,
    risk_subgroups,
)
from reintegration.index import ReintegrationIndex
from reintegration.risk_features import GROUPS

if TYPE_CHECKING:
    from models.estimators import RiskModel
    from models.risk_training import RiskData

BASELINE_RULE = "1 - first-survey composite"
"""The baseline every risk model must beat (recorded with each run as the ``baseline``)."""
TEMPORAL_TRAIN_SHARE = 0.75
"""Share of the returnees, earliest returns first, the temporal validation trains on."""
MIN_TEMPORAL_TEST = 50
"""Fewest later returnees (with both outcomes) a temporal validation is reported on."""


def baseline_risk(X: pd.DataFrame, index: ReintegrationIndex) -> np.ndarray:
    """The baseline rule's risk: 1 - the first survey's composite (NaN where it has none)."""
    items = [i for items in index.item_weights_.values() for i in items]
    scores = index.score_arrays({i: X[i].to_numpy() for i in items if i in X}, n_rows=len(X))
    return np.asarray(1.0 - scores["composite"], dtype=np.float64)


def versus_baseline(
    y: np.ndarray, p: np.ndarray, rule: np.ndarray, *, replicates: int = BOOTSTRAP
) -> dict[str, Any]:
    """The candidate against the baseline rule on the returnees the rule can rank.

    Parameters
    ----------
    y : ndarray
        Held-out outcomes (1 = not sustainable).
    p : ndarray
        The candidate's predicted risks.
    rule : ndarray
        The baseline rule's risks, 1 - first-survey composite (NaN where there is none).
    replicates : int
        Bootstrap replicates.

    Returns
    -------
    dict
        n (returnees compared), without_composite (held-out returnees left out), model_auc,
        baseline_auc, difference (model - baseline), low, high (paired bootstrap 95%
        interval), replicates, beats (low > 0); AUCs None when an outcome is missing.
    """
    known = ~np.isnan(rule)
    y_k = np.asarray(y)[known]
    out: dict[str, Any] = {
        "n": int(known.sum()),
        "without_composite": int((~known).sum()),
        "replicates": replicates,
        "model_auc": None,
        "baseline_auc": None,
        "difference": None,
        "low": None,
        "high": None,
        "beats": False,
    }
    if len(np.unique(y_k)) < 2:
        return out
    found = paired_auc_difference(y_k, p[known], rule[known], replicates=replicates)
    out.update(
        model_auc=found.first,
        baseline_auc=found.second,
        difference=found.difference,
        low=found.low,
        high=found.high,
        beats=bool(found.low > 0),
    )
    return out


def _calibration_row(group: str, y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    return {
        "group": group,
        "n": int(len(y)),
        "mean_predicted": float(np.mean(p)) if len(y) else None,
        "observed": float(np.mean(y)) if len(y) else None,
    }


def calibration_by_group(
    groups: pd.DataFrame, y: np.ndarray, p: np.ndarray, *, min_group: int
) -> list[dict[str, Any]]:
    """Observed share against mean predicted risk, overall and per subgroup of ``min_group``+.

    Groups under ``min_group`` are computed but not returned (not named anywhere).
    """
    rows = [_calibration_row(OVERALL, y, p)]
    frame = groups.reset_index(drop=True)
    for columns in group_sets():
        for values, part in _labels(frame, columns).groupby(list(columns), sort=True):
            if len(part) < min_group:
                continue
            values = values if isinstance(values, tuple) else (values,)
            at = part.index.to_numpy()
            rows.append(_calibration_row(group_name(columns, values), y[at], p[at]))
    return rows


def band_rates(y: np.ndarray, p: np.ndarray, bands: tuple[float, float]) -> list[dict[str, Any]]:
    """Size, mean predicted risk and observed share of each band (low, medium, high)."""
    cut = np.searchsorted(np.asarray(bands), p, side="right")
    return [
        _calibration_row(name, y[cut == k], p[cut == k])
        for k, name in enumerate(("low", "medium", "high"))
    ]


def evaluate(
    model: RiskModel,
    data: RiskData,
    index: ReintegrationIndex,
    *,
    min_group: int,
    bands: tuple[float, float],
    replicates: int = BOOTSTRAP,
) -> dict[str, Any]:
    """Held-out metrics of the model and the baseline rule, by subgroup, calibration, bands.

    Parameters
    ----------
    model : RiskModel
        Fitted on the training returnees of ``data``.
    data : RiskData
        The returnees, split by key; evaluated on ``data.test``.
    index : ReintegrationIndex
        The index that defines the outcome (its composite is the baseline rule's).
    min_group : int
        Smallest group reported by subgroup and in calibration by group.
    bands : tuple of float
        Risk from which a returnee is medium, and high (``REINTEGRATION_RISK_BANDS``).
    replicates : int
        Of the paired bootstrap against the baseline rule.

    Returns
    -------
    dict
        model, baseline (ROC AUC, average precision, Brier, n, positives, prevalence),
        versus_baseline (:func:`versus_baseline`), subgroups, calibration (bins),
        calibration_by_group, band_rates, bands, exclusions (of ``data``).
    """
    X, y = data.X[data.test], data.y[data.test]
    p = model.risk(X)
    rule = baseline_risk(X, index)
    known = ~np.isnan(rule)
    groups = data.frame.loc[data.test, list(GROUPS)]
    model_metrics = risk_metrics(y, p)
    model_metrics["prevalence"] = float(np.mean(y)) if len(y) else None
    rule_metrics = risk_metrics(y[known], rule[known])
    rule_metrics["brier"] = None  # 1 - composite ranks; it is not a probability
    rule_metrics["prevalence"] = float(np.mean(y[known])) if known.any() else None
    return {
        "model": model_metrics,
        "baseline": rule_metrics,
        "versus_baseline": versus_baseline(y, p, rule, replicates=replicates),
        "subgroups": risk_subgroups(groups, y, p, min_group=min_group),
        "calibration": calibration_table(y, p),
        "calibration_by_group": calibration_by_group(groups, y, p, min_group=min_group),
        "band_rates": band_rates(y, p, bands),
        "bands": {"medium_from": bands[0], "high_from": bands[1]},
        "exclusions": dict(data.exclusions),
    }


def temporal_split(return_dates: pd.Series) -> tuple[np.ndarray, str] | None:
    """Training rows (returned before the cutoff month) and the cutoff, or None.

    The cutoff is the first month of return after the month that holds the returnee at three
    quarters of the way (earliest first), so at most a quarter are tested on and whole monthly
    cohorts fall on one side (the last month when it holds that returnee).
    """
    months = pd.to_datetime(return_dates).dt.to_period("M")
    if months.isna().all():
        return None
    ordered = months.dropna().sort_values()
    reached = ordered.iloc[min(int(len(ordered) * TEMPORAL_TRAIN_SHARE), len(ordered) - 1)]
    later = ordered[ordered > reached]
    cutoff = later.iloc[0] if len(later) else reached
    train = (months < cutoff).to_numpy()
    test = (months >= cutoff).to_numpy()
    if train.sum() == 0 or test.sum() == 0:
        return None
    return train, str(cutoff)


def temporal_validation(
    data: RiskData, index: ReintegrationIndex, fit_model: Any, *, random_split_auc: float | None
) -> dict[str, Any]:
    """Train on earlier return cohorts, test on later ones; the random split's AUC beside.

    Parameters
    ----------
    data : RiskData
        Every returnee with a first survey and an outcome (``return_date`` among its columns).
    index : ReintegrationIndex
        The outcome index (for the baseline rule).
    fit_model : callable
        ``fit_model(X, y)`` returns a fitted :class:`~models.estimators.RiskModel`.
    random_split_auc : float or None
        The held-out AUC of the random (key-fixed) split, reported beside.

    Returns
    -------
    dict
        cutoff (first month of the later cohorts), n_train, n_test, model_auc, baseline_auc,
        random_split_auc; or ``skipped`` saying why it could not be done.
    """
    split = temporal_split(data.frame["return_date"])
    out: dict[str, Any] = {"random_split_auc": random_split_auc}
    if split is None:
        return {**out, "skipped": "the returnees' return dates do not span two cohorts"}
    train, cutoff = split
    test = ~train & data.frame["return_date"].notna().to_numpy()
    y_train, y_test = data.y[train], data.y[test]
    if len(np.unique(y_train)) < 2 or len(np.unique(y_test)) < 2 or test.sum() < MIN_TEMPORAL_TEST:
        return {
            **out,
            "cutoff": cutoff,
            "skipped": f"fewer than {MIN_TEMPORAL_TEST} later returnees, or only one outcome "
            "on a side",
        }
    X = data.X
    model = fit_model(X[train], y_train)
    p = model.risk(X[test])
    rule = baseline_risk(X[test], index)
    known = ~np.isnan(rule)
    return {
        **out,
        "cutoff": cutoff,
        "n_train": int(train.sum()),
        "n_test": int(test.sum()),
        "model_auc": risk_metrics(y_test, p)["roc_auc"],
        "baseline_auc": risk_metrics(y_test[known], rule[known])["roc_auc"],
    }
