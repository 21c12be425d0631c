"""Aggregates of scored records, with the privacy rules of DESIGN.md.

Aggregates count distinct returnees: by default each returnee's latest scored submission.
A cell with fewer than ``min_cell`` returnees is suppressed, and so is the next smallest cell
when one suppressed cell could otherwise be recovered from the total; suppression is flagged,
never a silent zero, and a true zero stays zero. Means come with n and a 95% interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reintegration.questionnaire import Questionnaire

TOTAL = "all"
Z_95 = 1.959963984540054


def add_groups(frame: pd.DataFrame, questionnaire: Questionnaire) -> pd.DataFrame:
    """Add ``age_group`` (child below the spec's age, else adult) without mutating ``frame``."""
    age = pd.to_numeric(frame["age_at_return"], errors="coerce")
    group = np.where(age < questionnaire.child_age_below, "child", "adult")
    return frame.assign(age_group=pd.Series(group, index=frame.index).where(age.notna()))


def latest_per_returnee(
    frame: pd.DataFrame, *, key: str = "returnee_key", order: str = "interview_date"
) -> pd.DataFrame:
    """Each returnee's latest scored submission, or their latest one when none is scored.

    Returns
    -------
    DataFrame
        One row per returnee; ``composite`` is missing for returnees with no scored record.
    """
    ranked = frame.assign(_scored=frame["composite"].notna())
    ranked = ranked.sort_values(["_scored", order], kind="stable")
    return ranked.groupby(key, sort=False).tail(1).drop(columns="_scored")


def _interval(values: pd.Series) -> tuple[float, float, float, float]:
    n = values.count()
    if n == 0:
        return (np.nan, np.nan, np.nan, np.nan)
    mean = float(values.mean())
    sd = float(values.std(ddof=1)) if n > 1 else np.nan
    half = Z_95 * sd / np.sqrt(n) if n > 1 else np.nan
    return mean, sd, max(0.0, mean - half), min(1.0, mean + half)


def breakdown(
    records: pd.DataFrame,
    by: Sequence[str],
    *,
    figures: Sequence[str],
    min_cell: int = 5,
) -> pd.DataFrame:
    """Per group of ``by``: returnees, unscored, mean, sd and 95% interval of each figure, share
    sustainable; then a total row. Cells below ``min_cell`` are suppressed (values NaN,
    ``suppressed`` True), with complementary suppression so no cell can be recovered.

    Parameters
    ----------
    records : DataFrame
        One row per returnee (see :func:`latest_per_returnee`), with the ``by`` columns, the
        figures, ``composite`` and ``sustainable``.
    by : sequence of str
    figures : sequence of str
        Score columns to summarise.
    min_cell : int
        Smallest number of returnees a cell may show.

    Returns
    -------
    DataFrame
    """
    rows = []
    groups = records.groupby(list(by), dropna=False, sort=True, observed=True)
    for name, group in [*groups, ((TOTAL,) * len(by), records)]:
        name = name if isinstance(name, tuple) else (name,)
        scored = group[group["composite"].notna()]
        row: dict[str, object] = dict(zip(by, name, strict=True))
        row["returnees"] = len(scored)
        row["unscored"] = int(group["composite"].isna().sum())
        for figure in figures:
            mean, sd, low, high = _interval(scored[figure])
            row[f"{figure}_mean"], row[f"{figure}_sd"] = mean, sd
            row[f"{figure}_low"], row[f"{figure}_high"] = low, high
        sustainable = scored["sustainable"].astype(float)
        row["share_sustainable"] = float(sustainable.mean()) if len(scored) else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    return suppress(table, min_cell=min_cell)


def suppress(table: pd.DataFrame, *, min_cell: int) -> pd.DataFrame:
    """Suppress small cells and their complements; the last row is the total.

    A cell is small when it has between 1 and ``min_cell - 1`` returnees (zero is a true zero).
    When exactly one group cell is suppressed, the next smallest non-zero cell is suppressed
    too, since the total minus the others would reveal it. Unscored counts follow the same rule.
    """
    out = table.copy()
    cells = out.index[:-1]
    small = (out.loc[cells, "returnees"] > 0) & (out.loc[cells, "returnees"] < min_cell)
    total = out["returnees"].iloc[-1]
    if 0 < total < min_cell:  # a small total hides every cell and itself
        small[:] = out.loc[cells, "returnees"] > 0
    if small.sum() == 1:
        candidates = out.loc[cells][~small & (out.loc[cells, "returnees"] > 0)]
        if len(candidates):
            small.loc[candidates["returnees"].idxmin()] = True
    suppressed = pd.Series(False, index=out.index)
    suppressed.loc[cells] = small
    suppressed.iloc[-1] = bool(0 < total < min_cell)
    value_columns = [c for c in out.columns if c.endswith(("_mean", "_sd", "_low", "_high"))]
    value_columns += ["share_sustainable", "returnees"]
    out["suppressed"] = suppressed
    out = out.astype({"returnees": "float64", "unscored": "float64"})
    out.loc[suppressed, value_columns] = np.nan
    small_unscored = (out["unscored"] > 0) & (out["unscored"] < min_cell)
    small_unscored_cells = small_unscored.loc[cells]
    if small_unscored_cells.sum() == 1:
        others = out.loc[cells][~small_unscored_cells & (out.loc[cells, "unscored"] > 0)]
        if len(others):
            small_unscored.loc[others["unscored"].idxmin()] = True
    out["unscored_suppressed"] = small_unscored | suppressed
    out.loc[out["unscored_suppressed"], "unscored"] = np.nan
    return out
