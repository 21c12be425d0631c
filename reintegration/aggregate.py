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
LEVELS = ("low", "medium", "high")
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


def _figures_of(frame: pd.DataFrame, figures: Sequence[str], keys: list[str]) -> pd.DataFrame:
    scored = frame[frame["composite"].notna()]
    extra = {"sustainable": scored["sustainable"].astype("float64")}
    if "level" in scored:
        for level in LEVELS:
            extra[f"level_{level}"] = (scored["level"] == level).astype("float64")
    values = scored[[*keys, *figures]].assign(**extra)
    columns = [*figures, *extra]
    if keys:
        grouped = values.groupby(keys, dropna=False, sort=True, observed=True)[columns]
        mean, sd, count = grouped.mean(), grouped.std(ddof=1), grouped.count()
    else:
        mean = values[columns].mean().to_frame().T
        sd = values[columns].std(ddof=1).to_frame().T
        count = values[columns].count().to_frame().T
    out = pd.DataFrame(index=mean.index)
    out["returnees"] = count["sustainable"] if len(count) else 0
    for figure in figures:
        n = count[figure]
        half = Z_95 * sd[figure] / np.sqrt(n.where(n > 1))
        out[f"{figure}_mean"] = mean[figure]
        out[f"{figure}_sd"] = sd[figure].where(n > 1)
        out[f"{figure}_low"] = (mean[figure] - half).clip(lower=0.0)
        out[f"{figure}_high"] = (mean[figure] + half).clip(upper=1.0)
    out["share_sustainable"] = mean["sustainable"]
    for level in LEVELS:
        if f"level_{level}" in mean:
            out[f"share_{level}"] = mean[f"level_{level}"]
    return out


def breakdown(
    records: pd.DataFrame,
    by: Sequence[str],
    *,
    figures: Sequence[str],
    min_cell: int = 5,
) -> pd.DataFrame:
    """Per group of ``by``: returnees, unscored, mean, sd and 95% interval of each figure, share
    sustainable (and per level when ``records`` has ``level``); then a total row. Cells below
    ``min_cell`` are suppressed (values NaN, ``suppressed`` True), with complementary
    suppression so no cell can be recovered.

    Vectorised: one group-by per call, whatever the number of records.

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
        The ``by`` columns, ``returnees``, ``unscored``, ``{figure}_mean/_sd/_low/_high``,
        ``share_sustainable`` (``share_low/_medium/_high``), ``suppressed`` and
        ``unscored_suppressed``; the last row is the total, its ``by`` values ``"all"``.
    """
    keys = list(by)
    unscored_flags = records["composite"].isna()
    if keys:
        unscored = unscored_flags.groupby(
            [records[k] for k in keys], dropna=False, sort=True, observed=True
        ).sum()
        cells = _figures_of(records, figures, keys).reindex(unscored.index)
        cells["returnees"] = cells["returnees"].fillna(0)
        cells["unscored"] = unscored
        cells = cells.reset_index()
        if len(keys) == 1 and keys[0] not in cells:  # a single unnamed level
            cells = cells.rename(columns={"index": keys[0]})
    else:
        cells = pd.DataFrame(columns=["returnees"])
    total = _figures_of(records, figures, []).reset_index(drop=True)
    total["unscored"] = int(unscored_flags.sum())
    for key in keys:
        total[key] = TOTAL
    table = pd.concat([cells, total], ignore_index=True) if len(cells) else total
    ordered = [*keys, "returnees", "unscored"]
    table = table[ordered + [c for c in table.columns if c not in ordered]]
    table = table.astype({"returnees": "int64", "unscored": "int64"})
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
    value_columns = [
        c
        for c in out.columns
        if c.endswith(("_mean", "_sd", "_low", "_high")) or c.startswith("share_")
    ] + ["returnees"]
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
