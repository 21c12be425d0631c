"""Per-cell summaries precomputed per data version: answers without a pass over the records.

Every column :func:`reintegration.summaries.summarise` gives the disclosure step is a sum
(counts, record-key sums modulo ``2**31``, sums, sums of squares, the per-(cell, enumerator)
sums the cluster terms square) or a maximum. So the summaries of each returnee's latest record,
summed per (sex, age group, return type, country, round, months band, enumerator) once per
frame, give any cell of those columns by adding a few thousand rows. Sex, age group, return
type and country are the returnee's own, so filtering on them keeps or drops whole returnees
and never changes which record is a returnee's latest: questions with no date window, no round
or stage filter and no enumerator left out are answered exactly from the cube
(:meth:`Cube.answers`). The others come from the records (:mod:`reintegration.selection`).

What differs from :func:`summarise` on the same records is the order of floating-point
additions (sums of partial sums), and the exact figures' sd, here in one pass,
``√((Σy² − (Σy)²/n)/(n − 1))``, there in two: both within about 1e-12 relative for scores in
``[0, 1]``. Counts, key sums, maxima and the cells are the same exactly
(``tests/test_cube.py``).
"""

from __future__ import annotations

import calendar
import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from reintegration import kernels
from reintegration.summaries import KEY_MODULUS, LEVELS, TOTAL, group_codes

FIGURES = ("economic", "social", "psychosocial", "composite")
RETURNEE = ("sex", "age_group", "return_type", "country")
DIMENSIONS = (*RETURNEE, "round", "months_band", "enumerator_id")
GROUPINGS = (*RETURNEE, "round")
FLAGS = ("returnees", "unscored", "sustainable", *(f"level_{x}" for x in LEVELS))
HISTOGRAM_BINS = 10
EDGES = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
# The cube's summed columns, as two float64 matrices (one row per cube row, its columns
# side by side: an answer reads a row's few cache lines at once). ``values``: counts ``n_``,
# sums ``s_``, sums of squares ``q_``, maxima ``t_`` and record-key sums ``k_`` (each modulo
# 2**31: a float64 holds it exactly, and the kernel sums them as integers); ``histogram``:
# the overview's counts ``h_`` and key sums ``hk_`` per bin.
VALUES = (
    *(f"n_{x}" for x in (*FLAGS, *FIGURES)),
    *(f"{kind}_{f}" for f in FIGURES for kind in ("s", "q", "t")),
    *(f"k_{x}" for x in (*FLAGS, *FIGURES)),
)
SUMS = VALUES.index(f"k_{FLAGS[0]}")  # the sums before the key sums
BINS = (*(f"h_{i}" for i in range(HISTOGRAM_BINS)), *(f"hk_{i}" for i in range(HISTOGRAM_BINS)))
VALUE = {name: i for i, name in enumerate(VALUES)}
COLUMN = {
    **{name: ("values", i) for i, name in enumerate(VALUES)},
    **{name: ("histogram", i) for i, name in enumerate(BINS)},
}


RETURNEE_FILTERS = (
    ("countries", "country"),
    ("sex", "sex"),
    ("age_group", "age_group"),
    ("return_type", "return_type"),
)
EPOCH = date(1970, 1, 1)
# Selections of cube rows kept per cube (per filters): the parts of one answer (its
# aggregates, stages, overview) share one, with the columns it took. Each holds up to tens of
# megabytes on a month cube at a million interviews: enough for the answers computed at once
# (reintegration.analytics.COMPUTING_AT_ONCE), two each (all rows, and those scored).
KEPT = 8

NONE_BEFORE = -(10**6)  # no earlier scored survey: a month index before any date
NONE_AFTER = 10**6  # no later (scored) survey: a month index beyond any date


def answers(
    filters: Any, within: Sequence[str], *, months: bool = False, rounds: bool = False
) -> bool:
    """Whether a cube answers a question with ``filters`` counting records per ``within``:
    only returnee filters (countries, sex, age group, return type), latest per returnee or
    per round. By round, a round filter too: it keeps or drops whole returnee-rounds, so it
    never changes which record of a returnee-round is the latest.

    Examples
    --------
    >>> from reintegration.analytics import Filters
    >>> answers(Filters(sex=frozenset({"f"})), ["round"]), answers(Filters(rounds={1}), [])
    (True, False)
    >>> answers(Filters(rounds={1}), ["round"])
    True

    With ``months`` (a month cube), date windows too: whole months from the cube alone, a
    window that cuts a month with the frame's records of its edges (:meth:`Cube.cells`):

    >>> whole = Filters(date_from=date(2025, 2, 1), date_to=date(2025, 3, 31))
    >>> answers(whole, [], months=True), answers(whole, []), answers(
    ...     Filters(date_from=date(2025, 2, 2)), [], months=True)
    (True, False, True)

    With ``rounds`` (a round cube), a round filter on the latest record per returnee, without
    dates:

    >>> answers(Filters(rounds={1, 3}), [], rounds=True), answers(
    ...     Filters(rounds={1}, date_to=date(2025, 3, 31)), [], rounds=True)
    (True, False)
    """
    dated = months or (filters.date_from is None and filters.date_to is None)
    if rounds:
        by_round = list(within) == [] and filters.rounds is not None and not months
    else:
        by_round = filters.rounds is None or list(within) == ["round"]
    return (
        dated
        and by_round
        and filters.at_round is None
        and filters.at_band is None
        and not filters.exclude_flagged_enumerators
        and list(within) in ([], ["round"])
    )


def usable(frame: pd.DataFrame) -> bool:
    """Whether a cube can stand for ``frame``'s records: record keys and enumerators known as
    columns, and no weights (weighted summaries depend on whether every selected record has
    one, which is not a sum)."""
    if "record_key" not in frame or "enumerator_id" not in frame or "level" not in frame:
        return False
    if not all(isinstance(frame[d].dtype, pd.CategoricalDtype) for d in (*RETURNEE, "level")):
        return False
    if list(frame["level"].cat.categories) != list(LEVELS):
        return False
    if "weight" in frame:
        weights = frame["weight"].to_numpy(np.float64)
        if (np.isfinite(weights) & (weights > 0)).any():
            return False
    return True


def day_dimensions(frame: pd.DataFrame, within: Sequence[str]) -> dict[str, np.ndarray] | None:
    """Per row of ``frame``, what decides whether it is a counted record of a window of days
    ``[A, B]`` (day numbers since 1970-01-01): its interview day ``day``; ``after``, the day
    of the next scored survey of its returnee (and round, with ``within=("round",)``) for a
    scored row, of the next survey for an unscored one (:data:`NONE_AFTER` without one);
    ``before``, for an unscored row the day of the previous scored survey
    (:data:`NONE_BEFORE` without one, and for every scored row). A row counts exactly when
    ``A <= day <= B``, ``after > B`` and ``before < A``: it is then the latest scored survey
    in the window, or the latest survey of a returnee with none scored in it (two surveys on
    one day: the later in the frame's order counts, as :func:`latest_rows` takes it).

    None when interview dates go back within a returnee in the frame's order (the latest is
    the frame's last, which the rule needs to be the latest in time too).

    Examples
    --------
    >>> frame = pd.DataFrame({"rkey": [0, 0, 0], "interview_day": [10, 40, 70],
    ...                       "composite": [0.1, np.nan, 0.3]})
    >>> {k: v.tolist() for k, v in day_dimensions(frame, []).items()}
    {'day': [10, 40, 70], 'after': [70, 70, 1000000], 'before': [-1000000, 10, -1000000]}
    """
    n = len(frame)
    if n == 0:  # nothing to count: the rows answer at once
        return None
    days = frame["interview_day"].to_numpy(np.int64)
    rkey = frame["rkey"].to_numpy()
    new = np.r_[True, rkey[1:] != rkey[:-1]]
    if within:
        rounds = frame["round"].to_numpy()
        new[1:] |= rounds[1:] != rounds[:-1]
    if not ((days[1:] >= days[:-1]) | new[1:]).all():
        return None
    group = np.cumsum(new) - 1
    scored = ~np.isnan(frame["composite"].to_numpy(np.float64))
    index = np.arange(n)
    # The nearest scored row after each row (anywhere), then kept only within its group.
    at_or_after = np.minimum.accumulate(np.where(scored, index, n)[::-1])[::-1]
    next_scored = np.r_[at_or_after[1:], n]
    next_scored_day = np.full(n, NONE_AFTER, dtype=np.int64)
    same = next_scored < n
    same[same] = group[next_scored[same]] == group[same]
    next_scored_day[same] = days[next_scored[same]]
    next_day = np.full(n, NONE_AFTER, dtype=np.int64)
    follows = np.r_[~new[1:], False]
    next_day[follows] = days[1:][follows[:-1]]
    at_or_before = np.maximum.accumulate(np.where(scored, index, -1))
    previous = np.r_[-1, at_or_before[:-1]]
    before = np.full(n, NONE_BEFORE, dtype=np.int64)
    known = previous >= 0
    known[known] = group[previous[known]] == group[known]
    known &= ~scored
    before[known] = days[previous[known]]
    after = np.where(scored, next_scored_day, next_day)
    return {"day": days, "after": after, "before": before}


def month_dimensions(
    frame: pd.DataFrame, within: Sequence[str], days: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray] | None:
    """:func:`day_dimensions` (or ``days``, given) in months (``month``, ``after`` and
    ``before``, the sentinels kept): a row counts in a window of whole months ``[A, B]``
    (month numbers) exactly when ``A <= month <= B``, ``after > B`` and ``before < A``.
    None when there are no day dimensions."""
    if days is None:
        days = day_dimensions(frame, within)
    if days is None:
        return None
    return {
        "month": _months_of(days["day"]),
        "after": _months_of(days["after"]),
        "before": _months_of(days["before"]),
    }


def _months_of(days: np.ndarray) -> np.ndarray:
    """Day numbers as month numbers (months since January 1970), the sentinels kept."""
    sentinel = (days >= NONE_AFTER) | (days <= NONE_BEFORE)
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return np.where(sentinel, days, months)


def round_dimensions(frame: pd.DataFrame) -> dict[str, np.ndarray] | None:
    """Per row of ``frame``, what decides whether it is a returnee's counted (latest) record
    when only the rounds in a set ``R`` are kept: ``blockers``, a bit per round (bit ``i`` for
    the ``i``-th of the frame's rounds in ascending order), set for each round whose presence
    in ``R`` would make another of the returnee's rows count instead. For a scored row, the
    rounds of the returnee's later scored rows; for an unscored row, the rounds of every later
    row and of every earlier scored row. A row counts exactly when its round is in ``R`` and
    ``blockers & bits(R) == 0``: it is then the latest scored row among ``R``, or the latest
    row of a returnee with none scored among ``R`` (:func:`reintegration.selection.latest_rows`).

    None when the frame is not sorted by returnee (the rule reads a returnee's rows as a run)
    or has more than 62 rounds (a bit each in an int64).

    Examples
    --------
    >>> frame = pd.DataFrame({"rkey": [0, 0, 0, 1], "round": [1, 2, 3, 1],
    ...                       "composite": [0.1, np.nan, 0.3, 0.5]})
    >>> round_dimensions(frame)["blockers"].tolist()
    [4, 5, 0, 0]
    """
    n = len(frame)
    rkey = frame["rkey"].to_numpy()
    if n == 0 or not (rkey[1:] >= rkey[:-1]).all():
        return None
    rounds = np.asarray(frame["round"].to_numpy())
    values, bit = np.unique(rounds, return_inverse=True)
    if len(values) > 62:
        return None
    bit = bit.reshape(-1)
    scored = ~np.isnan(frame["composite"].to_numpy(np.float64))
    new = np.r_[True, rkey[1:] != rkey[:-1]]
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    ends = np.r_[starts[1:], n] - 1
    blockers = np.zeros(n, dtype=np.int64)
    for b in range(len(values)):
        here = bit == b
        for flag, rows in ((here, ~scored), (here & scored, scored)):
            upto = np.cumsum(flag)  # this bit's rows up to each row, inclusive
            later = upto[ends][group] - upto > 0
            blockers[rows & later] |= 1 << b
        scored_here = here & scored
        upto = np.cumsum(scored_here)
        before = upto - scored_here - (upto[starts] - scored_here[starts])[group] > 0
        blockers[~scored & before] |= 1 << b
    return {"blockers": blockers, "values": values}


class Cube:
    """The summed summaries of a frame's latest records per returnee (``within=()``) or per
    returnee and round (``within=("round",)``); with ``months``, of every row, per the
    months that decide when it is counted (:func:`month_dimensions`), for whole-month date
    windows.

    Parameters
    ----------
    frame : DataFrame
        The analytics frame (``Analytics.frame``).
    rows : ndarray of int
        The positions of the records counted with no filter (``selection.latest_rows``), or
        with ``months`` every row.
    months : dict of str to ndarray, optional
        :func:`month_dimensions` of the frame (per row of it).
    days : dict of str to ndarray, optional
        With ``months``, :func:`day_dimensions` of the frame, kept (as int32) so that date
        windows that cut a month answer too: the cube's rows for the months inside, and the
        frame's own rows for the edges (:meth:`cells`).
    rounds : dict of str to ndarray, optional
        :func:`round_dimensions` of the frame (``rows`` then every row): a round cube, for
        round filters on the latest record per returnee.
    surveys : bool, default False
        Also sum every row (not only the latest) per returnee attributes and round (and
        interview month), for the overview's number of surveys.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        rows: np.ndarray,
        *,
        months: dict[str, np.ndarray] | None = None,
        rounds: dict[str, np.ndarray] | None = None,
        days: dict[str, np.ndarray] | None = None,
        surveys: bool = False,
    ) -> None:
        self.frame = frame
        self.months = months is not None
        self.days: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if months is not None and days is not None:
            day, after, before = (days[k].astype(np.int32) for k in ("day", "after", "before"))
            self.days = (day, after, before)
        self._kept: OrderedDict[Any, _Table] = OrderedDict()
        self._kept_lock = threading.Lock()
        # The rounds a blocker bit stands for (bit i: the i-th), in a round cube.
        self.round_values = None if rounds is None else rounds["values"]
        latest = rows
        take: dict[str, Any] = {d: frame[d].array.take(latest) for d in DIMENSIONS}
        if months is not None:
            take.update({name: values[latest] for name, values in months.items()})
        if rounds is not None:
            take["blockers"] = rounds["blockers"][latest]
        grouping = _Grouping(take)
        del take
        scored = ~np.isnan(frame["composite"].to_numpy(np.float64)[latest])
        key = frame["record_key"].to_numpy(np.int64)[latest]
        level = frame["level"].cat.codes.to_numpy()[latest]
        flags = {
            "returnees": scored,
            "unscored": ~scored,
            "sustainable": scored & (frame["sustainable"].to_numpy(np.float64)[latest] == 1.0),
            **{f"level_{x}": scored & (level == i) for i, x in enumerate(LEVELS)},
        }
        # Each column summed as soon as it is computed, into the cube's two matrices: the
        # build holds a few arrays of the records at a time, not a table of every column.
        values = np.zeros((grouping.size, len(VALUES)))
        bins = np.zeros((grouping.size, len(BINS)))
        for name, flag in flags.items():
            values[:, VALUE[f"n_{name}"]] = grouping.count(flag)
            values[:, VALUE[f"k_{name}"]] = grouping.count(flag, key) % KEY_MODULUS
        composite = frame["composite"].to_numpy(np.float64)[latest]
        self.in_range = bool(((composite[scored] >= 0) & (composite[scored] <= 1)).all())
        for f in FIGURES:
            value = frame[f].to_numpy(np.float64)[latest]
            counted = scored & ~np.isnan(value)
            y = np.where(counted, value, 0.0)
            values[:, VALUE[f"n_{f}"]] = grouping.count(counted)
            values[:, VALUE[f"k_{f}"]] = grouping.count(counted, key) % KEY_MODULUS
            values[:, VALUE[f"s_{f}"]] = grouping.total(y)
            values[:, VALUE[f"q_{f}"]] = grouping.total(y * y)
            values[:, VALUE[f"t_{f}"]] = grouping.largest(np.abs(y))
        where = np.clip(np.searchsorted(EDGES, composite, side="right") - 1, 0, HISTOGRAM_BINS - 1)
        for i in range(HISTOGRAM_BINS):
            hit = scored & (where == i)
            bins[:, i] = grouping.count(hit)
            bins[:, HISTOGRAM_BINS + i] = grouping.count(hit, key) % KEY_MODULUS
        # Each enumerator's rows together (those without one first): the order
        # kernels.cell_sums needs, kept by every selection of rows in ascending positions.
        columns = grouping.columns()
        order = kernels.cluster_order(np.asarray(columns["enumerator_id"].codes, np.int64))
        columns = {name: column[order] for name, column in columns.items()}
        columns["values"], columns["histogram"] = values[order], bins[order]
        del values, bins
        self.rows = _Table(columns)
        self.surveys: _Table | None = None
        if surveys:
            every = _Grouping(
                {
                    **{d: frame[d].array for d in RETURNEE},
                    **({"month": months["month"]} if months is not None else {}),
                    "round": frame["round"].array,
                }
            )
            everyone = np.ones(len(frame), dtype=bool)
            self.surveys = _Table(
                {
                    **every.columns(),
                    "n_rows": every.count(everyone),
                    "k_rows": every.count(everyone, frame["record_key"].to_numpy(np.int64)),
                }
            )

    def cells(self, by: Sequence[str], filters: Any, **options: Any) -> pd.DataFrame:
        """:meth:`columns` as a DataFrame: what :func:`reintegration.summaries.summarise`
        gives on the records."""
        return pd.DataFrame(self.columns(by, filters, **options))

    def columns(
        self,
        by: Sequence[str],
        filters: Any,
        *,
        keyed: bool,
        figures: Sequence[str] = FIGURES,
        scored_only: bool = False,
    ) -> dict[str, np.ndarray]:
        """:func:`reintegration.summaries.summarise` of the records ``filters`` keeps, per group
        of ``by`` (names of :data:`GROUPINGS`, or ``months_band``), from the cube, as arrays
        by name (what :func:`reintegration.disclosure.publish_columns` takes).
        ``scored_only``: of the scored records alone (groups without one left out)."""
        by = list(by)
        rows = self._counted(filters, scored_only)
        codes, groups, count = _cells(by, rows)
        clusters = np.asarray(rows["enumerator_id"].codes, dtype=np.int64)
        positions = rows.positions()
        positions = (
            np.arange(len(rows)) if isinstance(positions, slice) else positions.astype(np.int64)
        )
        if not rows.grouped:  # each enumerator's rows together, as the kernel needs them
            order = kernels.cluster_order(clusters)
            positions, codes, clusters = positions[order], codes[order], clusters[order]
        spec = _spec(tuple(figures))
        found = kernels.cell_sums(
            rows.matrix("values"), positions, codes, clusters, count, *spec.arrays
        )
        sums = _Sums(spec, found)
        return _table(sums, by, groups, count, figures, keyed=keyed, scored_only=scored_only)

    def histogram(self, filters: Any) -> tuple[np.ndarray, np.ndarray]:
        """The scored latest composites per histogram bin (``np.histogram``'s ten bins over
        ``[0, 1]``) of the records ``filters`` keeps, and each bin's key sum modulo ``2**31``."""
        rows = self._counted(filters, False)
        sums = rows.block("histogram").astype(np.int64).sum(axis=0)
        return sums[:HISTOGRAM_BINS], sums[HISTOGRAM_BINS:] % KEY_MODULUS

    def survey_count(self, filters: Any) -> tuple[int, int]:
        """Every row (survey) ``filters`` keeps, and their key sum modulo ``2**31``."""
        if self.surveys is None:
            raise ValueError("this cube was built without the surveys")
        rows = self.surveys.where(_kept(self.surveys, filters, self.round_values))
        count, key = int(rows["n_rows"].sum()), int(rows["k_rows"].sum())
        if self.months and _cut(filters):
            edge = self._edge_surveys(filters)
            count += len(edge)
            key += int(self.frame["record_key"].to_numpy(np.int64)[edge].sum())
        return count, key % KEY_MODULUS

    def _counted(self, filters: Any, scored_only: bool) -> _Table:
        """The cube rows ``filters`` keeps (``scored_only``: those with a scored record), and
        with a window that cuts a month, the summaries of the edge records
        (:meth:`_edge_records`) after them. Kept for the next :data:`KEPT` questions, so
        that the parts of an answer (aggregates, stages, overview) select and take each
        column once."""
        key = (filters, scored_only)
        with self._kept_lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                return found
        if scored_only:
            rows = self._counted(filters, False)
            found = rows.where(rows["n_returnees"] > 0)
        else:
            found = self.rows.where(_kept(self.rows, filters, self.round_values))
            if self.months and _cut(filters):
                found = _joined(found, Cube(self.frame, self._edge_records(filters)).rows)
        with self._kept_lock:
            self._kept[key] = found
            while len(self._kept) > KEPT:
                self._kept.popitem(last=False)
        return found

    def _days(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.days is None:
            raise ValueError("a date window that cuts a month, on a month cube without days")
        return self.days

    def _edge_records(self, filters: Any) -> np.ndarray:
        """The frame's records (positions) counted in ``filters``' window of days that the
        month cube cannot decide (:func:`_kept` leaves them out): those interviewed in a
        month the window cuts, or whose next (scored) survey falls in the cut last month
        or previous scored one in the cut first month. Each is decided by the day rule of
        :func:`day_dimensions`, then by ``filters``' returnee (and round) filters."""
        day, after, before = self._days()
        start, end = _window(filters)
        counted = (day >= start) & (day <= end) & (after > end) & (before < start)
        edge = _in_cut_months(day, filters)
        edge |= _in_cut_months(before, filters, last=False)
        edge |= _in_cut_months(after, filters, first=False)
        rows = np.flatnonzero(counted & edge)
        return rows[_returnee_kept(self.frame, rows, filters)]

    def _edge_surveys(self, filters: Any) -> np.ndarray:
        """The frame's rows (surveys) in ``filters``' window interviewed in a month it cuts,
        with its returnee (and round) filters."""
        day = self._days()[0]
        start, end = _window(filters)
        rows = np.flatnonzero(_in_cut_months(day, filters) & (day >= start) & (day <= end))
        return rows[_returnee_kept(self.frame, rows, filters)]


class _Grouping:
    """The distinct combinations of some dimensions (per record) and sums over each."""

    def __init__(self, dims: dict[str, Any]) -> None:
        codes = np.zeros(len(next(iter(dims.values()))), dtype=np.int64)
        sizes, self.levels = [], {}
        for name, values in dims.items():
            if isinstance(values.dtype, pd.CategoricalDtype):
                level = np.asarray(values.codes, dtype=np.int64)
                level = np.where(level < 0, len(values.categories), level)
                size = len(values.categories) + 1
                self.levels[name] = values.categories
            else:
                uniques, level = np.unique(np.asarray(values), return_inverse=True)
                size = len(uniques)
                self.levels[name] = uniques
            codes = codes * size + level.reshape(-1)
            sizes.append(size)
        if float(np.prod(sizes, dtype=np.float64)) >= 2**62:
            raise ValueError("too many combinations of the cube's dimensions")
        observed, inverse = np.unique(codes, return_inverse=True)
        self.inverse = inverse.reshape(-1)
        self.size = len(observed)
        self.positions = dict(zip(dims, np.unravel_index(observed, sizes), strict=True))

    def columns(self) -> dict[str, Any]:
        """The dimensions of each combination (categoricals as the records have them)."""
        out: dict[str, Any] = {}
        for name, at in self.positions.items():
            level = self.levels[name]
            if isinstance(level, pd.Index):
                codes = np.where(at == len(level), -1, at)
                out[name] = pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(level))
            else:
                out[name] = level[at]
        return out

    def count(self, flag: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """The flagged records per combination, or the sum of their ``values`` (integers
        below 2**31, summed in two halves so that each float64 sum is exact)."""
        if values is None:
            return np.bincount(self.inverse, flag, self.size).astype(np.int64)
        kept = np.where(flag, values, 0)
        high = np.bincount(self.inverse, kept >> 16, self.size).astype(np.int64)
        low = np.bincount(self.inverse, kept & 0xFFFF, self.size).astype(np.int64)
        return high * 65536 + low

    def total(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.inverse, values, self.size)

    def largest(self, values: np.ndarray) -> np.ndarray:
        out = np.zeros(self.size)
        np.maximum.at(out, self.inverse, values)
        return out


def _month_end(day: Any) -> bool:
    return bool(day.day == calendar.monthrange(day.year, day.month)[1])


def _month_last_day(day: Any) -> Any:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _day(day: Any) -> int:
    return (day - EPOCH).days


def _cut_ends(filters: Any) -> tuple[bool, bool]:
    """Whether ``filters``' date window cuts its first month (starts after its first day)
    and its last (ends before its last day)."""
    start, end = filters.date_from, filters.date_to
    return start is not None and start.day != 1, end is not None and not _month_end(end)


def _cut(filters: Any) -> bool:
    """Whether ``filters``' date window cuts a month."""
    return any(_cut_ends(filters))


def _window(filters: Any) -> tuple[int, int]:
    """The window's first and last day (day numbers; open ends beyond any date)."""
    start = NONE_BEFORE + 1 if filters.date_from is None else _day(filters.date_from)
    end = NONE_AFTER - 1 if filters.date_to is None else _day(filters.date_to)
    return start, end


def _in_cut_months(
    days: np.ndarray, filters: Any, *, first: bool = True, last: bool = True
) -> np.ndarray:
    """Which ``days`` fall in the first month the window cuts (with ``first``) or in the
    last (with ``last``)."""
    start_cut, end_cut = _cut_ends(filters)
    found = np.zeros(len(days), dtype=bool)
    if first and start_cut:
        month = filters.date_from
        found |= (days >= _day(month.replace(day=1))) & (days <= _day(_month_last_day(month)))
    if last and end_cut:
        month = filters.date_to
        found |= (days >= _day(month.replace(day=1))) & (days <= _day(_month_last_day(month)))
    return found


def _returnee_kept(frame: pd.DataFrame, rows: np.ndarray, filters: Any) -> np.ndarray:
    """Which of the frame's ``rows`` ``filters``' returnee filters (countries, sex, age
    group, return type) and round filter keep."""
    keep = np.ones(len(rows), dtype=bool)
    for field, column in (*RETURNEE_FILTERS, ("rounds", "round")):
        wanted = getattr(filters, field)
        if wanted is not None:
            keep &= _isin(frame[column].array.take(rows), wanted)
    return keep


def _joined(first: _Table, second: _Table) -> _Table:
    """The rows of two tables of cube rows, one after the other, in the columns both have
    (categoricals of one frame share their categories)."""
    columns: dict[str, Any] = {}
    for name in first._columns:
        if name not in second:
            continue
        a, b = first[name], second[name]
        if isinstance(a, pd.Categorical):
            codes = np.concatenate([np.asarray(a.codes), np.asarray(b.codes)])
            columns[name] = pd.Categorical.from_codes(codes, dtype=a.dtype)
        else:
            columns[name] = np.concatenate([np.asarray(a), np.asarray(b)])
    return _Table(columns, grouped=False)


def _month(day: Any) -> int:
    return (day.year - 1970) * 12 + day.month - 1


class _Table:
    """Columns of equal length (arrays, categoricals for the dimensions, and the ``values``
    and ``histogram`` matrices whose columns are read by their names in :data:`COLUMN`), and
    the rows kept (positions, ascending), each column taken once when first read.
    ``grouped``: each enumerator's rows together (a cube's rows, and any rows of them kept in
    order); two tables joined are not."""

    def __init__(
        self, columns: dict[str, Any], kept: np.ndarray | None = None, *, grouped: bool = True
    ) -> None:
        self._columns = columns
        self._kept = kept
        self._taken: dict[str, Any] = {}
        self.grouped = grouped

    def __len__(self) -> int:
        if self._kept is not None:
            return len(self._kept)
        return len(next(iter(self._columns.values())))

    def __contains__(self, name: object) -> bool:
        return name in self._columns or name in COLUMN

    def __getitem__(self, name: str) -> Any:
        found = self._taken.get(name)
        if found is None:
            if name in COLUMN:
                matrix, at = COLUMN[name]
                found = self._columns[matrix][self.positions(), at]
            elif self._kept is None:
                return self._columns[name]
            else:
                found = self._columns[name][self._kept]
            self._taken[name] = found
        return found

    def positions(self) -> Any:
        """The rows kept, as positions in the columns (a slice of all of them)."""
        return slice(None) if self._kept is None else self._kept

    def block(self, matrix: str) -> np.ndarray:
        """The kept rows of the ``values`` or ``histogram`` matrix."""
        found: np.ndarray = self._columns[matrix][self.positions()]
        return found

    def matrix(self, name: str) -> np.ndarray:
        """The ``values`` or ``histogram`` matrix, whole (its rows at :meth:`positions`)."""
        found: np.ndarray = self._columns[name]
        return found

    def where(self, keep: np.ndarray) -> _Table:
        """The rows ``keep`` keeps (a mask of this table's rows)."""
        positions = np.flatnonzero(keep)
        return _Table(
            self._columns,
            positions if self._kept is None else self._kept[positions],
            grouped=self.grouped,
        )


def _kept(rows: _Table, filters: Any, round_values: np.ndarray | None = None) -> np.ndarray:
    keep = np.ones(len(rows), dtype=bool)
    if filters.rounds is not None:
        if "round" not in rows:
            raise ValueError("a round filter on a cube without rounds")
        keep &= _isin(rows["round"], filters.rounds)
    if "blockers" in rows:  # a round cube: no filter keeps every round
        assert round_values is not None
        wanted = round_values if filters.rounds is None else list(filters.rounds)
        bits = np.flatnonzero(np.isin(round_values, list(wanted)))
        keep &= (rows["blockers"] & int(sum(1 << int(b) for b in bits))) == 0
    if "month" in rows:
        first = NONE_BEFORE + 1 if filters.date_from is None else _month(filters.date_from)
        last = NONE_AFTER - 1 if filters.date_to is None else _month(filters.date_to)
        month = rows["month"]
        # A month the window cuts is left to the edge records (Cube._edge_records), and so is
        # a row whose next or previous survey falls in one (its "after > last" and "before
        # < first" below leave it out).
        start_cut, end_cut = _cut_ends(filters)
        keep &= (month >= first + start_cut) & (month <= last - end_cut)
        if "after" in rows:
            keep &= rows["after"] > last
            keep &= rows["before"] < first
    for field, column in RETURNEE_FILTERS:
        wanted = getattr(filters, field)
        if wanted is not None:
            keep &= _isin(rows[column], wanted)
    return keep


def _isin(values: Any, wanted: Any) -> np.ndarray:
    """Which of a cube column's values are ``wanted`` (a categorical through its codes)."""
    if isinstance(values, pd.Categorical):
        return np.append(values.categories.isin(list(wanted)), False)[values.codes]
    return np.isin(np.asarray(values), list(wanted))


def _cells(by: list[str], rows: Any) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """Each row's cell among the observed groups of ``by`` (columns of ``rows``), the
    groups' values, and their number."""
    if not by:
        return np.zeros(len(rows), dtype=np.int64), {}, 1
    codes, groups = group_codes({b: rows[b] for b in by}, by)
    return np.asarray(codes, dtype=np.int64), groups, len(groups[by[0]])


def record_columns(
    frame: pd.DataFrame,
    rows: np.ndarray,
    by: Sequence[str],
    *,
    keyed: bool,
    figures: Sequence[str] = FIGURES,
    scored_only: bool = False,
) -> dict[str, np.ndarray]:
    """:func:`reintegration.summaries.summarise` of the frame's records at ``rows`` (of a
    frame the cube can stand for, :func:`usable`), per group of ``by``, as :meth:`Cube.columns`
    gives it: each record summed as a cube row of its own (:func:`kernels.record_sums`), in
    one pass without the GIL. ``scored_only``: of the scored records alone."""
    by = list(by)
    rows = np.asarray(rows, dtype=np.int64)
    if scored_only:
        rows = rows[~np.isnan(frame["composite"].to_numpy(np.float64)[rows])]
    taken = {b: frame[b].array.take(rows) for b in by}
    codes, groups, count = _cells(by, taken if by else rows)
    clusters = np.asarray(frame["enumerator_id"].cat.codes.to_numpy()[rows], dtype=np.int64)
    columns = (
        *(frame[f].to_numpy(np.float64) for f in FIGURES),
        frame["sustainable"].to_numpy(np.float64),
        np.asarray(frame["level"].cat.codes.to_numpy(), dtype=np.int8),
        frame["record_key"].to_numpy(np.int64),
    )
    spec = _spec(tuple(figures))
    sums = _Sums(spec, kernels.record_sums(columns, rows, codes, clusters, count, *spec.arrays))
    return _table(sums, by, groups, count, figures, keyed=keyed, scored_only=scored_only)


def _table(
    sums: _Sums,
    by: list[str],
    groups: dict[str, np.ndarray],
    count: int,
    figures: Sequence[str],
    *,
    keyed: bool,
    scored_only: bool,
) -> dict[str, np.ndarray]:
    """The columns :func:`reintegration.summaries.summarise` gives, from ``sums``: the
    groups then the total, or the total alone without ``by``."""
    table: dict[str, Any] = {k: np.append(v, TOTAL).astype(object) for k, v in groups.items()}
    for name in FLAGS:
        if scored_only and name == "unscored":
            table[name] = np.zeros(count + 1, dtype=np.int64)
            if keyed:
                table[f"{name}_key"] = np.zeros(count + 1, dtype=np.int64)
            continue
        table[name] = sums.count(f"n_{name}")
        if keyed:
            table[f"{name}_key"] = sums.key(f"k_{name}")
    table["returnees_clusters"] = sums.clusters("n_returnees")
    table["returnees_qww"] = sums.cross("n_returnees", "n_returnees", "n_returnees")
    for name in FLAGS[2:]:
        table[f"{name}_qyy"] = sums.cross(f"n_{name}", f"n_{name}", f"n_{name}")
        table[f"{name}_qyw"] = sums.cross(f"n_{name}", "n_returnees", f"n_{name}")
    for f in figures:
        table[f"{f}_n"] = sums.count(f"n_{f}")
        if keyed:
            table[f"{f}_key"] = sums.key(f"k_{f}")
        table[f"{f}_sum"] = sums.total(f"s_{f}")
        table[f"{f}_sumsq"] = sums.total(f"q_{f}")
        table[f"{f}_clusters"] = sums.clusters(f"n_{f}")
        table[f"{f}_qyy"] = sums.cross(f"s_{f}", f"s_{f}", f"q_{f}")
        table[f"{f}_qyw"] = sums.cross(f"s_{f}", f"n_{f}", f"s_{f}")
        table[f"{f}_qww"] = sums.cross(f"n_{f}", f"n_{f}", f"n_{f}")
        if keyed:
            table[f"{f}_top"] = sums.largest(f"t_{f}", table[f"{f}_n"])
        else:
            table[f"{f}_sd"] = _sd(table[f"{f}_n"], table[f"{f}_sum"], table[f"{f}_sumsq"])
    return table if by else {name: values[-1:] for name, values in table.items()}


class _Spec:
    """What :func:`_table` needs of the kernels (:mod:`reintegration.kernels`) besides the
    sums of every column: the columns summed per (cell, enumerator), the cross terms (pairs
    of them) and the columns whose clusters are counted; ``arrays``: as the kernels take
    them."""

    def __init__(self, figures: tuple[str, ...]) -> None:
        self.paired = ["n_returnees", *(f"n_{name}" for name in FLAGS[2:])]
        self.terms = [("n_returnees", "n_returnees")]
        for name in FLAGS[2:]:
            self.terms += [(f"n_{name}", f"n_{name}"), (f"n_{name}", "n_returnees")]
        self.counted = ["n_returnees"]
        for f in figures:
            self.paired += [f"n_{f}", f"s_{f}"]
            self.terms += [(f"s_{f}", f"s_{f}"), (f"s_{f}", f"n_{f}"), (f"n_{f}", f"n_{f}")]
            self.counted.append(f"n_{f}")
        self.arrays = (
            np.array([VALUE[name] for name in self.paired], dtype=np.int64),
            np.array(
                [[self.paired.index(a), self.paired.index(b)] for a, b in self.terms],
                dtype=np.int64,
            ),
            np.array([self.paired.index(name) for name in self.counted], dtype=np.int64),
        )


@functools.lru_cache(maxsize=32)
def _spec(figures: tuple[str, ...]) -> _Spec:
    return _Spec(figures)


class _Sums:
    """Per cell (then in total) sums of cube rows or records, and the terms of the clusters
    (enumerators) they fall in, from one pass of a kernel over them (its result, ``found``).
    A row without an enumerator holds records that are each a cluster of their own: their
    terms are sums of their own (``alone``)."""

    def __init__(self, spec: _Spec, found: tuple[np.ndarray, ...]) -> None:
        sums, key_sums, alone, cross, clusters_per_cell, maxima, total_cross, total_clusters = found
        self.sums, self.alone, self.key_sums = sums, alone, key_sums
        self.maxima = maxima
        self.cross_of = {term: cross[:, t] for t, term in enumerate(spec.terms)}
        self.total_cross = {term: total_cross[t] for t, term in enumerate(spec.terms)}
        self.clusters_of = {name: clusters_per_cell[:, k] for k, name in enumerate(spec.counted)}
        self.total_clusters = {name: total_clusters[k] for k, name in enumerate(spec.counted)}

    def count(self, name: str) -> np.ndarray:
        per_cell = self.sums[:, VALUE[name]].astype(np.int64)
        return np.append(per_cell, per_cell.sum())

    def key(self, name: str) -> np.ndarray:
        sums = self.key_sums[:, VALUE[name] - SUMS]
        return np.append(sums % KEY_MODULUS, int(sums.sum() % KEY_MODULUS)).astype(np.int64)

    def total(self, name: str) -> np.ndarray:
        per_cell = self.sums[:, VALUE[name]]
        return np.append(per_cell, per_cell.sum())

    def clusters(self, name: str) -> np.ndarray:
        """The clusters with a counted record (``name`` > 0), and each record alone."""
        alone = self.alone[:, VALUE[name]]
        cells = alone + self.clusters_of[name]
        total = float(alone.sum()) + float(self.total_clusters[name])
        return np.append(cells, total).astype(np.int64)

    def cross(self, s: str, w: str, alone: str) -> np.ndarray:
        """``Σ_c S_c W_c`` per cell and in total, the records alone adding ``alone``'s sum
        (their own ``y·w``: ``y²``, ``y`` or ``1`` as the caller names it)."""
        own = self.alone[:, VALUE[alone]]
        cells = own + self.cross_of[(s, w)]
        total = float(own.sum()) + float(self.total_cross[(s, w)])
        return np.append(cells, total)

    def largest(self, name: str, n: np.ndarray) -> np.ndarray:
        per_cell = self.maxima[:, FIGURES.index(name[2:])]
        out = np.append(per_cell, per_cell.max(initial=0.0))
        return np.where(n > 0, out, np.nan)


def _sd(n: np.ndarray, sums: np.ndarray, squares: np.ndarray) -> np.ndarray:
    """The sample sd from n, Σy and Σy² (one pass), missing below two values."""
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.maximum(squares - sums * sums / n, 0.0)
        return np.where(n > 1, np.sqrt(spread / (n - 1)), np.nan)
