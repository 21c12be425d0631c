"""Evaluation overall and by subgroup, for both registered models.

Subgroups are sex, child or adult, return type, and their intersections. For the risk model
each group gets n, positives, ROC AUC, average precision and Brier score through fairlearn's
``MetricFrame``; a group with fewer than ``min_group`` returnees, or with only one outcome,
says "insufficient data" instead of a number. For an index version each group gets how the
mean composite and the share sustainable move against the champion index. These are the exact
figures, kept in memory (the promotion gate decides on them); what is stored or shown of them
passes :mod:`models.disclosure_models` first.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from reintegration.index import ReintegrationIndex
from reintegration.risk_features import GROUPS

INSUFFICIENT = "insufficient data"
OVERALL = "overall"
NOT_RECORDED = "not recorded"
CALIBRATION_BINS = 10


def group_sets(groups: Sequence[str] = GROUPS) -> list[tuple[str, ...]]:
    """Each subgroup column alone, then every intersection of two or more."""
    return [combo for k in range(1, len(groups) + 1) for combo in itertools.combinations(groups, k)]


def group_name(columns: Sequence[str], values: Sequence[Any]) -> str:
    """``sex=female & return_type=forced``."""
    return " & ".join(f"{c}={v}" for c, v in zip(columns, values, strict=True))


def metric_key(metric: str, group: str) -> str:
    """An MLflow metric name for a group's metric: ``roc_auc/sex/female/return_type/forced``."""
    if group == OVERALL:
        return metric
    parts = [p.replace("=", "/") for p in group.split(" & ")]
    return "/".join([metric, *parts]).replace(" ", "_")


def _safe(metric: Any) -> Any:
    def score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        if len(np.unique(y_true)) < 2:
            return float("nan")
        return float(metric(y_true, y_pred))

    return score


def risk_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    """ROC AUC, average precision and Brier score (None where undefined), n and positives."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    both = len(np.unique(y)) == 2
    return {
        "n": int(len(y)),
        "positives": int(np.sum(y)),
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "average_precision": float(average_precision_score(y, p)) if both else None,
        "brier": float(brier_score_loss(y, p)) if len(y) else None,
    }


def _labels(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return frame[list(columns)].astype(object).where(frame[list(columns)].notna(), NOT_RECORDED)


def risk_subgroups(
    groups: pd.DataFrame, y: np.ndarray, p: np.ndarray, *, min_group: int
) -> list[dict[str, Any]]:
    """Risk metrics per subgroup and intersection, with fairlearn's MetricFrame.

    Parameters
    ----------
    groups : DataFrame
        The subgroup columns (``sex``, ``age_group``, ``return_type``) of the evaluated rows.
    y, p : ndarray
        Outcomes (1 = not sustainable) and predicted probabilities.
    min_group : int
        Smallest group whose metrics are reported (and count for promotion).

    Returns
    -------
    list of dict
        One per group: group (name), n, positives, sufficient (bool), and roc_auc,
        average_precision, brier (None when insufficient).
    """
    from fairlearn.metrics import MetricFrame, count
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    metrics = {
        "n": count,
        "positives": lambda yt, yp: float(np.sum(yt)),
        "roc_auc": _safe(roc_auc_score),
        "average_precision": _safe(average_precision_score),
        "brier": lambda yt, yp: float(brier_score_loss(yt, yp)),
    }
    rows: list[dict[str, Any]] = []
    for columns in group_sets():
        frame = MetricFrame(
            metrics=metrics,
            y_true=np.asarray(y),
            y_pred=np.asarray(p),
            sensitive_features=_labels(groups, columns),
        )
        by_group = frame.by_group.reset_index()
        for _, row in by_group.iterrows():
            if pd.isna(row["n"]) or int(row["n"]) == 0:
                continue  # an intersection nobody belongs to
            n = int(row["n"])
            sufficient = n >= min_group and not np.isnan(row["roc_auc"])
            rows.append(
                {
                    "group": group_name(columns, [row[c] for c in columns]),
                    "n": n,
                    "positives": int(row["positives"]),
                    "sufficient": bool(sufficient),
                    **{
                        m: (float(row[m]) if sufficient else None)
                        for m in ("roc_auc", "average_precision", "brier")
                    },
                }
            )
    return rows


def calibration_table(
    y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS
) -> list[dict[str, Any]]:
    """Predicted against observed risk in equal-width bins of the predicted probability."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    table = []
    for k in range(bins):
        inside = which == k
        n = int(inside.sum())
        table.append(
            {
                "bin_low": float(edges[k]),
                "bin_high": float(edges[k + 1]),
                "n": n,
                "mean_predicted": float(p[inside].mean()) if n else None,
                "observed": float(np.mean(y[inside])) if n else None,
            }
        )
    return table


def _shift_row(group: str, champion: pd.DataFrame, challenger: pd.DataFrame) -> dict[str, Any]:
    scored = champion["composite"].notna() & challenger["composite"].notna()
    a, b = champion[scored], challenger[scored]
    n = int(scored.sum())

    def share(frame: pd.DataFrame) -> float | None:
        return float(frame["sustainable"].astype(float).mean()) if n else None

    mean_a = float(a["composite"].mean()) if n else None
    mean_b = float(b["composite"].mean()) if n else None
    share_a, share_b = share(a), share(b)
    return {
        "group": group,
        "n": n,
        "composite_champion": mean_a,
        "composite_challenger": mean_b,
        "composite_change": None if mean_a is None or mean_b is None else mean_b - mean_a,
        "sustainable_champion": share_a,
        "sustainable_challenger": share_b,
        "sustainable_change": None if share_a is None or share_b is None else share_b - share_a,
    }


def index_shift(
    records: pd.DataFrame,
    champion: ReintegrationIndex,
    challenger: ReintegrationIndex,
) -> list[dict[str, Any]]:
    """How the mean composite and the share sustainable move from one index to another.

    Parameters
    ----------
    records : DataFrame
        One record per returnee (their latest interview) with coded items and the subgroup
        columns.
    champion, challenger : ReintegrationIndex

    Returns
    -------
    list of dict
        Overall first, then every subgroup and intersection: group, n, composite_champion,
        composite_challenger, composite_change, sustainable_champion, sustainable_challenger,
        sustainable_change. Exact, small groups included: publish them only through
        :func:`models.disclosure_models.publish_shift`.
    """
    items = records.drop(columns=[c for c in GROUPS if c in records.columns])
    a = champion.transform(items)
    b = challenger.transform(items)
    rows = [_shift_row(OVERALL, a, b)]
    for columns in group_sets():
        labels = _labels(records, columns)
        for values, part in labels.groupby(list(columns), sort=True):
            values = values if isinstance(values, tuple) else (values,)
            rows.append(
                _shift_row(group_name(columns, values), a.loc[part.index], b.loc[part.index])
            )
    return rows


def correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation over the rows where both are known (None with fewer than 3)."""
    both = ~(np.isnan(a) | np.isnan(b))
    if both.sum() < 3 or np.std(a[both]) == 0 or np.std(b[both]) == 0:
        return None
    return float(np.corrcoef(a[both], b[both])[0, 1])
