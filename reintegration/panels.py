"""Panels: the time axes of trajectories, balanced panels, retention and the stages an answer
mixes (``docs/methods.md``, "Panels and bands").

Pure functions over the analytics frame (one row per current submission, sorted by returnee
then round, with ``rkey``, ``round``, ``months_band``, ``band_keep``, ``composite`` and
``record_key``); :class:`reintegration.analytics.Analytics` calls them. Every count they
publish goes through :mod:`reintegration.disclosure`: exact counts below ``min_cell`` are
withheld (with a complement where they add up to a published total), protected ones are
cell-key perturbed first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from reintegration.aggregate import TOTAL, breakdown
from reintegration.disclosure import OTHER_LABEL, Protection, perturb_counts
from reintegration.errors import QueryError

AXES = ("round", "months", "cohort")
"""Time axes of trajectories; survey round is the default (DESIGN.md)."""
AXIS_COLUMNS = {"round": "round", "months": "months_band", "cohort": "cohort"}
KEY_MODULUS = 2**31


def trajectory_groups(axis: str, by: Sequence[str], staged: bool) -> tuple[list[str], str | None]:
    """The groupings of a trajectory along ``axis`` and the column whose values are its points.

    The cohort axis compares return cohorts at the same months since return: it breaks out by
    months band too, unless the answer is already at one round or band (``staged``), when it
    compares cohorts at that stage alone.

    Returns
    -------
    groups : list of str
        The axis column first, then the rest of ``by``.
    point : str or None
        The column a followed returnee must be seen at every value of (None: one stage).

    Raises
    ------
    QueryError
        An unknown axis, or assistance among ``by`` (a returnee may count in several types).

    Examples
    --------
    >>> trajectory_groups("round", ["sex"], False)
    (['round', 'sex'], 'round')
    >>> trajectory_groups("cohort", [], False)
    (['cohort', 'months_band'], 'months_band')
    >>> trajectory_groups("cohort", [], True)
    (['cohort'], None)
    """
    if axis not in AXES:
        raise QueryError(f"axis must be one of {', '.join(AXES)}, not {axis!r}")
    if "assistance" in by:
        raise QueryError(
            "trajectories cannot break out by assistance: ask /aggregates?by=assistance, "
            "with at_round or at_band for one stage"
        )
    first = AXIS_COLUMNS[axis]
    groups = [first]
    point: str | None = first
    if axis == "cohort":
        point = None if staged else "months_band"
        if not staged:
            groups.append("months_band")
    groups += [b for b in by if b not in groups]
    return groups, point


def balanced(frame: pd.DataFrame, mask: np.ndarray, point: str | None) -> np.ndarray:
    """``mask`` narrowed to a balanced panel: the returnees scored at every point shown.

    The points are the values of ``point`` (a round or a months band) at which anyone in
    ``mask`` is scored; a returnee stays when they have a scored survey at each of them, and
    only their surveys at those points stay. Each point then shows the same returnees, so a
    change along the axis is a change in the same people.

    Examples
    --------
    >>> frame = pd.DataFrame({"rkey": [0, 0, 1, 2, 2], "round": [1, 2, 1, 1, 2],
    ...                       "composite": [0.1, 0.2, 0.3, 0.4, np.nan]})
    >>> balanced(frame, np.ones(5, bool), "round").tolist()
    [True, True, False, False, False]
    """
    if point is None or not mask.any():
        return mask
    values = frame[point].to_numpy()
    scored = mask & frame["composite"].notna().to_numpy()
    seen = pd.DataFrame({"rkey": frame["rkey"].to_numpy()[scored], "point": values[scored]})
    points = pd.unique(seen["point"])
    counts = seen.groupby("rkey")["point"].nunique()
    complete = counts.index[counts == len(points)]
    at_points = pd.Series(values).isin(points).to_numpy()
    return mask & frame["rkey"].isin(complete).to_numpy() & at_points


def retention(
    frame: pd.DataFrame, mask: np.ndarray, *, min_cell: int, protection: Protection | None
) -> list[dict[str, Any]]:
    """Per survey round: the returnees of round 1 surveyed in it, and their share of round 1.

    A returnee counts at round k when they have a survey (scored or not) at round 1 and at
    round k among ``mask``; returnees first seen after round 1 are not counted (retention is
    of the round-1 sample). Exact counts under ``min_cell`` (but not zero) are withheld;
    protected ones are perturbed by the cell-key method (the key of the returnees' surveys
    at that round), withheld under ``min_cell``, and the percentage is computed from the
    perturbed counts.

    Returns
    -------
    list of dict
        ``round``, ``returnees`` (None when withheld), ``percent_of_round_1`` (None when
        either count is withheld or round 1 is empty), ``suppressed``.
    """
    rows = frame.loc[mask, ["rkey", "round", "record_key"]].drop_duplicates(["rkey", "round"])
    first = rows.loc[rows["round"] == 1, "rkey"].unique()
    rows = rows[rows["rkey"].isin(first)]
    per_round = rows.groupby("round").agg(n=("rkey", "size"), key=("record_key", "sum"))
    if per_round.empty:
        return []
    counts = per_round["n"].to_numpy(np.int64)
    if protection is not None:
        keys = (per_round["key"].to_numpy(np.int64) % KEY_MODULUS).astype(np.int64)
        counts = perturb_counts(counts, keys, protection)
    shown = [None if 0 < n < min_cell else int(n) for n in counts]
    base = shown[0] if per_round.index[0] == 1 else None
    return [
        {
            "round": int(r),
            "returnees": n,
            "percent_of_round_1": (None if n is None or not base else 100.0 * n / base),
            "suppressed": n is None,
        }
        for r, n in zip(per_round.index, shown, strict=True)
    ]


def stages(
    records: pd.DataFrame, *, min_cell: int, protection: Protection | None
) -> dict[str, list[dict[str, Any]]]:
    """Which follow-up times an answer's records mix: their returnees per round and per band.

    Each list is a breakdown of the same records (so it adds up to the answer's total) and
    goes through the same disclosure step as the answer: exact counts under ``min_cell`` are
    withheld with a complement, protected ones perturbed and the small ones gathered into one
    row "other groups: fewer than 5 each".

    Returns
    -------
    dict
        ``rounds`` and ``bands``: lists of ``{"value", "returnees", "suppressed", "other",
        "label"}`` (``value`` None on the gathered row).
    """
    return {
        "rounds": _counts(records, "round", min_cell, protection),
        "bands": _counts(records, "months_band", min_cell, protection),
    }


def _counts(
    records: pd.DataFrame, column: str, min_cell: int, protection: Protection | None
) -> list[dict[str, Any]]:
    scored = records[records["composite"].notna()]
    # Counts only: one figure is enough for publish's summaries.
    table = breakdown(
        scored, [column], figures=["composite"], min_cell=min_cell, protection=protection
    )
    return stage_rows(table, column, min_cell)


def stage_rows(table: Any, column: str, min_cell: int) -> list[dict[str, Any]]:
    """The published breakdown of an answer's scored records by ``column`` (``round`` or
    ``months_band``) as :func:`stages` lists it; ``table`` is published figures, as a
    DataFrame or as columns (:func:`reintegration.disclosure.publish_table`)."""
    out = []
    rows = len(table["returnees"]) - 1  # the last is the total
    others = np.asarray(table["other"])[:rows] if "other" in table else [False] * rows
    values = np.asarray(table[column])[:rows]
    counts = np.asarray(table["returnees"])[:rows]
    suppressed = np.asarray(table["suppressed"])[:rows]
    for other, value, n, hidden in zip(others, values, counts, suppressed, strict=True):
        other = bool(other)
        if not other and not pd.isna(value) and value != TOTAL and n == 0:
            continue  # an empty category, not a stage the answer mixes
        out.append(
            {
                "value": None if other or pd.isna(value) else str(value),
                "returnees": None if pd.isna(n) else int(n),
                "suppressed": bool(hidden),
                "other": other,
                "label": OTHER_LABEL.format(min_cell=min_cell) if other else None,
            }
        )
    return out
