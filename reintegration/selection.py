"""One question's records, selected once and shared by everything its answer computes.

An answer of :class:`reintegration.analytics.Analytics` asks for the same records several
times: the aggregates, the stages they mix (:func:`reintegration.panels.stages`) and, with the
flagged enumerators left out, what that changes. A :class:`Selection` holds what the filter
keeps and each returnee's latest record among it as positions in the frame (index arrays),
and hands out only the columns a step reads: no ``frame.iloc`` copy of every column, so
questions in flight at once hold a few megabytes each rather than a copy of the frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

# What reintegration.summaries.summarise reads besides the groupings (those present are taken).
SUMMARY_COLUMNS = (
    "economic",
    "social",
    "psychosocial",
    "composite",
    "sustainable",
    "level",
    "record_key",
    "enumerator_id",
    "weight",
)
# What reintegration.panels.stages reads.
STAGE_COLUMNS = ("round", "months_band", *SUMMARY_COLUMNS)


class Selection:
    """The rows of one question in one frame.

    Parameters
    ----------
    frame : DataFrame
        The analytics frame (``Analytics.frame``), sorted by returnee then round.
    mask : ndarray of bool
        The rows the filter keeps (at its stage, if any).
    latest : ndarray of int
        The positions of the records counted (:func:`latest_rows` of the kept rows), ascending.
    """

    def __init__(self, frame: pd.DataFrame, mask: np.ndarray, latest: np.ndarray) -> None:
        self.frame = frame
        self.mask = mask
        self.latest = latest

    def records(self, columns: Iterable[str] | None = None) -> pd.DataFrame:
        """The counted records: every column (a copy, indexed as in the frame), or only
        ``columns`` that the frame has (indexed from 0), in the frame's column order.

        Examples
        --------
        >>> frame = pd.DataFrame({"rkey": [0, 0, 1], "composite": [0.1, 0.2, np.nan]})
        >>> Selection(frame, np.ones(3, bool), np.array([1, 2])).records(["composite"])
           composite
        0        0.2
        1        NaN
        """
        if columns is None:
            return self.frame.iloc[self.latest]
        wanted = set(columns)
        data = {
            name: self.frame[name].array.take(self.latest)
            for name in self.frame.columns
            if name in wanted
        }
        return pd.DataFrame(data, copy=False)


def latest_rows(frame: pd.DataFrame, rows: np.ndarray, within: Sequence[str]) -> np.ndarray:
    """Each returnee's latest scored row among ``rows`` (per ``within`` group), or their latest
    row when none is scored; per months band, the scored row nearest the band's scheduled
    month instead (of two as near, the later: ``reintegration.followup.nearest_first``).

    ``rows`` are ascending positions in ``frame``; so is the result. "Latest" is the frame's
    order (returnee, then round). When the rows of each group are adjacent (always without
    ``within`` or by round alone, the frame being sorted by returnee then round) the groups are
    runs, read in one pass; otherwise a stable sort on (group, scored) finds the same rows.

    Examples
    --------
    >>> frame = pd.DataFrame({"rkey": [0, 0, 0, 1], "round": [1, 2, 3, 1],
    ...                       "composite": [0.1, 0.2, np.nan, np.nan]})
    >>> latest_rows(frame, np.arange(4), []).tolist()
    [1, 3]
    >>> latest_rows(frame, np.arange(4), ["round"]).tolist()
    [0, 1, 2, 3]
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return rows
    scored = ~np.isnan(frame["composite"].to_numpy(np.float64)[rows])
    rkey = frame["rkey"].to_numpy()[rows]
    if list(within) in ([], ["round"]):
        same = rkey[1:] == rkey[:-1]
        ordered = (rkey[1:] > rkey[:-1]) | same
        if within:
            rounds = frame["round"].to_numpy()[rows]
            ordered = (rkey[1:] > rkey[:-1]) | (same & (rounds[1:] >= rounds[:-1]))
            same &= rounds[1:] == rounds[:-1]
        if ordered.all():
            starts = np.flatnonzero(np.r_[True, ~same])
            ends = np.r_[starts[1:], len(rows)] - 1
            marked = np.where(scored, np.arange(len(rows)), -1)
            best = np.maximum.reduceat(marked, starts)
            return rows[np.where(best >= 0, best, ends)]
    sub = pd.DataFrame({name: frame[name].array.take(rows) for name in ("rkey", *within)})
    if within:
        group = sub.groupby(["rkey", *within], observed=True, sort=False).ngroup().to_numpy()
    else:
        group = rkey
    # lexsort is stable, so the frame's order survives inside each (group, scored): the last
    # row is the group's latest scored row, or its latest row when it has none.
    if "months_band" in within and "band_keep" in frame:
        keep = frame["band_keep"].to_numpy()[rows]
        order = np.lexsort((keep, scored, group))
    else:
        order = np.lexsort((scored, group))
    grouped = group[order]
    last = np.r_[grouped[1:] != grouped[:-1], True]
    return rows[np.sort(order[last])]


def isin(column: pd.Series, wanted: Iterable[object]) -> np.ndarray:
    """``column.isin(wanted)`` as an array; a categorical through its codes (one lookup per
    category, not per row)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        chosen = column.cat.categories.isin(list(wanted))
        return np.append(chosen, False)[column.cat.codes.to_numpy()]
    return column.isin(list(wanted)).to_numpy()
