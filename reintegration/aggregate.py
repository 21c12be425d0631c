"""Aggregates of scored records, with the privacy rules of DESIGN.md.

Aggregates count distinct returnees: by default each returnee's latest scored submission.
:func:`summarise` computes per-cell summaries (counts with their record-key sums, and per figure
n, sum, sum of squares, largest value and sd) in one group-by; what may be published of them is
decided by :func:`reintegration.disclosure.publish`. Exact figures: a cell with fewer than
``min_cell`` returnees is suppressed, and so is the next smallest cell when one suppressed cell
could otherwise be recovered from the total; suppression is flagged, never a silent zero, and a
true zero stays zero. Protected figures: see :mod:`reintegration.disclosure`. Means come with n
and a 95% interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from reintegration.disclosure import (
    KEY_MODULUS,
    LEVELS,
    Z_95,
    Protection,
    publish,
    suppress,
)
from reintegration.questionnaire import Questionnaire

__all__ = [
    "LEVELS",
    "TOTAL",
    "Z_95",
    "add_groups",
    "breakdown",
    "latest_per_returnee",
    "summarise",
    "suppress",
]

TOTAL = "all"


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


def summarise(
    records: pd.DataFrame, by: Sequence[str], figures: Sequence[str], *, keyed: bool = True
) -> pd.DataFrame:
    """Per group of ``by``, then in total, the summaries :func:`publish` takes; vectorised.

    A record counts as a returnee when its ``composite`` is known, else as unscored; its
    figures, ``sustainable`` and ``level`` count only when it is scored.

    Parameters
    ----------
    records : DataFrame
        One row per returnee, with the ``by`` columns, the figures, ``composite`` and
        ``sustainable`` (1/0 or booleans), optionally ``level`` and ``record_key`` (integers in
        ``[0, 2**31)``; without it the summaries have no ``_key`` columns).
    by : sequence of str
    figures : sequence of str
    keyed : bool, default True
        Sum the records' keys (what protected figures need); false skips that work.

    Returns
    -------
    DataFrame
        One row per observed group (sorted; missing group values form their own group), then
        the total row, its ``by`` values ``"all"``. Columns: the ``by`` columns, ``returnees``,
        ``unscored``, ``sustainable``, ``level_low/_medium/_high`` (when ``records`` has
        ``level``), each with ``_key`` (the sum of the counted records' keys mod ``2**31``; left
        out when ``keyed`` is false, as exact figures need no key), and
        per figure ``_n``, ``_key``, ``_sum``, ``_sumsq``, ``_top`` (largest absolute value) and
        ``_sd`` (sample sd, missing below two values).

    Examples
    --------
    >>> frame = pd.DataFrame({"sex": ["f", "f", "m"], "composite": [0.2, 0.4, np.nan],
    ...                       "sustainable": [1, 0, np.nan], "record_key": [5, 7, 11]})
    >>> cells = summarise(frame, ["sex"], ["composite"])
    >>> cells[["sex", "returnees", "returnees_key", "unscored", "composite_sum"]].to_dict("list")
    {'sex': ['f', 'm', 'all'], 'returnees': [2, 0, 2], 'returnees_key': [12, 0, 12], \
'unscored': [0, 1, 1], 'composite_sum': [0.6000000000000001, 0.0, 0.6000000000000001]}
    """
    keys = list(by)
    counts, values = _indicators(records, figures, keyed=keyed)
    scored = records["composite"].notna().to_numpy()
    # Figures are summarised over the scored rows alone, as a plain group-by of them would.
    values = values[scored]
    sums = values[[f"{f}_sum" for f in figures] + [f"{f}_sumsq" for f in figures]]
    tops = values[[f"{f}_top" for f in figures]]
    masked = values[[f"{f}_sd" for f in figures]]
    if keys:
        cells = _grouped(records, keys, counts, scored, [sums, tops, masked])
    else:
        cells = pd.DataFrame()
    total = pd.concat([counts.sum(), sums.sum(), tops.max(), masked.std(ddof=1)])
    total_row = total.to_frame().T.assign(**dict.fromkeys(keys, TOTAL))
    table = pd.concat([cells, total_row], ignore_index=True) if len(cells) else total_row
    return _ordered(table, keys, counts.columns, figures)


def _grouped(
    records: pd.DataFrame,
    keys: list[str],
    counts: pd.DataFrame,
    scored: np.ndarray,
    parts: list[pd.DataFrame],
) -> pd.DataFrame:
    """The counts per group of every record, beside the figures' parts per group of the
    scored ones (sums, largest values, sds; sums of a group without scores are zero)."""
    options: dict[str, Any] = {"dropna": False, "sort": True, "observed": True}
    sums, tops, masked = parts
    per_group = counts.groupby([records[k] for k in keys], **options).sum()
    scored_groups = [records[k][scored] for k in keys]
    figures = pd.concat(
        [
            sums.groupby(scored_groups, **options).sum(),
            tops.groupby(scored_groups, **options).max(),
            masked.groupby(scored_groups, **options).std(ddof=1),
        ],
        axis=1,
    ).reindex(per_group.index)
    figures[sums.columns] = figures[sums.columns].fillna(0.0)
    cells = pd.concat([per_group, figures], axis=1).reset_index()
    if len(keys) == 1 and keys[0] not in cells:  # a single unnamed level
        cells = cells.rename(columns={"index": keys[0]})
    return cells


def _indicators(
    records: pd.DataFrame, figures: Sequence[str], *, keyed: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per record: 0/1 counts (and their keys when ``keyed``), and per figure its masked
    values."""
    scored = records["composite"].notna().to_numpy()
    flags = {
        "returnees": scored,
        "unscored": ~scored,
        "sustainable": scored & (records["sustainable"].astype("float64").to_numpy() == 1.0),
    }
    if "level" in records:
        for level in LEVELS:
            flags[f"level_{level}"] = scored & (records["level"] == level).to_numpy()
    record_key = (
        records["record_key"].to_numpy(np.int64) if keyed and "record_key" in records else None
    )
    counts: dict[str, np.ndarray] = {}
    values: dict[str, np.ndarray] = {}
    for name, flag in flags.items():
        counts[name] = flag.astype(np.int64)
    for figure in figures:
        value = records[figure].to_numpy(np.float64)
        counted = scored & ~np.isnan(value)
        counts[f"{figure}_n"] = counted.astype(np.int64)
        flags[f"{figure}"] = counted
        values[f"{figure}_sum"] = np.where(counted, value, np.nan)
        values[f"{figure}_sumsq"] = np.where(counted, value * value, np.nan)
        values[f"{figure}_top"] = np.where(counted, np.abs(value), np.nan)
        values[f"{figure}_sd"] = np.where(counted, value, np.nan)
    if record_key is not None:
        for name, flag in flags.items():
            counts[f"{name}_key"] = np.where(flag, record_key, 0)
    index = records.index
    return pd.DataFrame(counts, index=index), pd.DataFrame(values, index=index)


def _ordered(
    table: pd.DataFrame, keys: list[str], counts: pd.Index, figures: Sequence[str]
) -> pd.DataFrame:
    """Group columns, counts (int64) and their keys (mod 2**31), then each figure's parts."""
    count_columns = [c for c in counts if not c.endswith("_n") and not c.endswith("_key")]
    key_columns = [c for c in counts if c.endswith("_key")]
    parts = ("_n", "_key", "_sum", "_sumsq", "_top", "_sd")
    figure_columns = [f"{f}{p}" for f in figures for p in parts if f"{f}{p}" in table]
    order = [
        *keys,
        *count_columns,
        *(c for c in key_columns if c.removesuffix("_key") in count_columns),
        *figure_columns,
    ]
    out = table[order].copy()
    integers = [*count_columns, *(f"{f}_n" for f in figures), *key_columns]
    out = out.astype(dict.fromkeys(integers, "int64"))
    for column in key_columns:
        out[column] = out[column] % KEY_MODULUS
    floats = [c for c in figure_columns if not c.endswith(("_n", "_key"))]
    return out.astype(dict.fromkeys(floats, "float64"))


def breakdown(
    records: pd.DataFrame,
    by: Sequence[str],
    *,
    figures: Sequence[str],
    min_cell: int = 5,
    protection: Protection | None = None,
) -> pd.DataFrame:
    """Per group of ``by``: returnees, unscored, mean, sd and 95% interval of each figure, share
    sustainable (and per level when ``records`` has ``level``); then a total row.

    ``publish(summarise(records, by, figures), ...)``: exact figures by default (cells below
    ``min_cell`` suppressed, values NaN and ``suppressed`` True, with complementary
    suppression so no cell can be recovered), protected ones when ``protection`` is given.
    Vectorised: one group-by per call, whatever the number of records.

    Parameters
    ----------
    records : DataFrame
        One row per returnee (see :func:`latest_per_returnee`), with the ``by`` columns, the
        figures, ``composite`` and ``sustainable`` (and ``record_key`` for protected figures).
    by : sequence of str
    figures : sequence of str
        Score columns to summarise.
    min_cell : int
        Smallest number of returnees a cell may show.
    protection : Protection, optional
        The parameters of protected figures; None for exact ones.

    Returns
    -------
    DataFrame
        See :func:`reintegration.disclosure.publish`; the last row is the total, its ``by``
        values ``"all"``.

    Raises
    ------
    ConfigurationError
        Protection asked of records without ``record_key``.
    """
    if protection is not None and "record_key" not in records:
        from reintegration.errors import ConfigurationError

        raise ConfigurationError(
            "Protected figures need each record's key (column record_key), and these records "
            "have none."
        )
    cells = summarise(records, by, figures, keyed=protection is not None)
    return publish(cells, figures=figures, min_cell=min_cell, protection=protection)
