"""The aggregate queries behind the API and the dashboards, fast on a million stored scores.

A group-by over a million rows costs SQLite about 160 ms, too slow for 32 dashboard users at
once. So :class:`Analytics` loads, per index version, one compact in-memory frame of the
current submissions with their scores (about 100 MB per million rows), sorted by returnee and
interview date, and answers every aggregate from it with NumPy and one pandas group-by; answers
are cached too. Both caches are keyed on the store's data version (see
``reintegration.store.data_version``), which every completed batch, erasure, rescoring and
promotion bumps in its own transaction: an answer is never older than the last write, and a
request that finds the data unchanged costs one indexed read of one row.

Privacy rules (DESIGN.md): aggregates count distinct returnees, each returnee's latest scored
submission in the filter window (breaking out by round or by months band counts each returnee
once per round or band, and the total row is then the sum of its cells); small cells and their
complements are suppressed by :func:`reintegration.aggregate.breakdown`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from reintegration.aggregate import LEVELS, TOTAL, breakdown, suppress
from reintegration.errors import QueryError
from reintegration.panel_frame import FIGURES, read_assistance, read_base, read_scores
from reintegration.questionnaire import load_questionnaire
from reintegration.store.data_version import read_data_version
from reintegration.store.engine import for_reading
from reintegration.store.schema import score

GROUPS = ("sex", "age_group", "return_type", "country", "round", "months_band", "cohort")
BY_ASSISTANCE = "assistance"
MONTH_BANDS = ((0.0, 3.0, "0-3"), (3.0, 6.0, "3-6"), (6.0, 12.0, "6-12"), (12.0, 18.0, "12-18"))
LAST_BAND = "18+"
HISTOGRAM_BINS = 10
ANSWER_CACHE = 512


@dataclass(frozen=True)
class Filters:
    """What an aggregate covers; None means no restriction.

    ``countries`` must already be intersected with the caller's scope. Dates filter the
    interview date, both ends included.
    """

    countries: frozenset[str] | None = None
    date_from: date | None = None
    date_to: date | None = None
    rounds: frozenset[int] | None = None
    sex: frozenset[str] | None = None
    age_group: frozenset[str] | None = None
    return_type: frozenset[str] | None = None


def months_band(months: np.ndarray) -> np.ndarray:
    """The band of DESIGN.md's time bands for each months-since-return value.

    Examples
    --------
    >>> months_band(np.array([0.0, 2.99, 3.0, 11.9, 12.0, 18.0, 40.0])).tolist()
    ['0-3', '0-3', '3-6', '6-12', '12-18', '18+', '18+']
    """
    conditions = [(months >= low) & (months < high) for low, high, _ in MONTH_BANDS]
    return np.select(conditions, [label for *_, label in MONTH_BANDS], default=LAST_BAND)


def _cohort(return_days: pd.Series) -> np.ndarray:
    dates = pd.to_datetime(return_days.to_numpy(), unit="D")
    return np.asarray(dates.year.astype(str) + "Q" + dates.quarter.astype(str), dtype=object)


class Analytics:
    """Aggregates, trajectories and the overview, from a cached in-memory frame.

    One object per process, shared by threads. ``engine`` is the app's store.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    min_cell : int, default 5
        Smallest number of distinct returnees a cell may show (``REINTEGRATION_MIN_CELL``).
    """

    def __init__(self, engine: sa.Engine, *, min_cell: int = 5) -> None:
        self.engine = engine
        self.min_cell = min_cell
        self._reader = for_reading(engine)
        self._lock = threading.Lock()
        self._frames: dict[tuple[Any, ...], Any] = {}
        self._loading: dict[tuple[Any, ...], threading.Lock] = {}
        self._answers: OrderedDict[Hashable, Any] = OrderedDict()
        questionnaire = load_questionnaire()
        self._child_below = questionnaire.child_age_below

    # -- the data version and the cached frames ---------------------------------------------

    def data_version(self) -> int:
        """The store's data version (one indexed read)."""
        with self._reader.connect() as conn:
            return read_data_version(conn)

    def index_versions(self) -> list[str]:
        """The index labels that have stored scores, oldest label first."""
        return self._cached(
            ("versions",),
            lambda: self._read_versions(),
        )

    def _read_versions(self) -> list[str]:
        with self._reader.connect() as conn:
            labels = conn.execute(sa.select(score.c.index_version).distinct()).scalars().all()
        return sorted(labels)

    def _cached(self, key: tuple[Hashable, ...], compute: Callable[[], Any]) -> Any:
        full = (self.data_version(), *key)
        with self._lock:
            if full in self._answers:
                self._answers.move_to_end(full)
                return self._answers[full]
        value = compute()
        with self._lock:
            self._answers[full] = value
            while len(self._answers) > ANSWER_CACHE:
                self._answers.popitem(last=False)
        return value

    def frame(self, index_version: str) -> pd.DataFrame:
        """The current submissions with their ``index_version`` scores, one row each.

        Sorted by returnee, then round; ``rkey`` numbers the returnees. Scores are missing
        where this version has not scored a submission. Built once per data version: the
        submissions once, then each index version's scores beside them.
        """
        version = self.data_version()
        base = self._once((version, "base"), self._read_base)
        return self._once(
            (version, "scores", index_version), lambda: self._with_scores(base, index_version)
        )

    def _assistance_of(self, frame: pd.DataFrame) -> pd.Series:
        version = self.data_version()
        texts = self._once((version, "assistance"), self._read_assistance)
        found = texts.reindex(frame["id"].to_numpy()).fillna("").to_numpy()
        return pd.Series(found, index=frame.index, dtype=object)

    def _once(self, key: tuple[Any, ...], load: Callable[[], Any]) -> Any:
        """``load()`` once per key, however many threads ask at the same time."""
        with self._lock:
            if key in self._frames:
                return self._frames[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one thread loads, the others wait for it
            with self._lock:
                if key in self._frames:
                    return self._frames[key]
            value = load()
            with self._lock:
                # Older data versions are dropped: only the newest data is asked for again.
                newest = key[0]
                self._frames = {k: v for k, v in self._frames.items() if k[0] >= newest}
                self._frames[key] = value
                self._loading.pop(key, None)
        return value

    def _read_base(self) -> pd.DataFrame:
        with self._reader.connect() as conn:
            base = read_base(conn, self._child_below)
        bands = pd.Categorical(
            months_band(base["months_since_return"].to_numpy()),
            [*(b[2] for b in MONTH_BANDS), LAST_BAND],
        )
        return base.assign(months_band=bands, cohort=pd.Categorical(_cohort(base["return_day"])))

    def _with_scores(self, base: pd.DataFrame, index_version: str) -> pd.DataFrame:
        with self._reader.connect() as conn:
            scores = read_scores(conn, base["id"].to_numpy(), index_version)
        return pd.concat([base, scores.set_axis(base.index)], axis=1)

    def _read_assistance(self) -> pd.Series:
        with self._reader.connect() as conn:
            return read_assistance(conn)

    # -- selection ------------------------------------------------------------------------------

    def _mask(self, frame: pd.DataFrame, filters: Filters) -> np.ndarray:
        mask = np.ones(len(frame), dtype=bool)
        if filters.date_from is not None:
            mask &= frame["interview_day"].to_numpy() >= _day(filters.date_from)
        if filters.date_to is not None:
            mask &= frame["interview_day"].to_numpy() <= _day(filters.date_to)
        if filters.rounds is not None:
            mask &= frame["round"].isin(filters.rounds).to_numpy()
        for column in ("countries", "sex", "age_group", "return_type"):
            wanted = getattr(filters, column)
            if wanted is not None:
                name = "country" if column == "countries" else column
                mask &= frame[name].isin(wanted).to_numpy()
        return mask

    def _latest(self, frame: pd.DataFrame, rows: np.ndarray, within: Sequence[str]) -> pd.DataFrame:
        """Each returnee's latest scored row among ``rows`` (per ``within`` group), or their
        latest row when none is scored (then it counts as unscored)."""
        sub = frame.iloc[rows]
        if within:
            group = sub.groupby(["rkey", *within], observed=True, sort=False).ngroup().to_numpy()
        else:
            group = sub["rkey"].to_numpy()
        scored = sub["composite"].notna().to_numpy()
        # lexsort is stable, so date order survives inside each (group, scored): the last row is
        # its latest scored row, or its latest row when it has none.
        order = np.lexsort((scored, group))
        ordered = group[order]
        last = np.r_[ordered[1:] != ordered[:-1], True] if len(ordered) else np.zeros(0, bool)
        return sub.iloc[np.sort(order[last])]

    def _records(self, filters: Filters, index_version: str, within: Sequence[str]) -> pd.DataFrame:
        frame = self.frame(index_version)
        rows = np.flatnonzero(self._mask(frame, filters))
        return self._latest(frame, rows, within)

    # -- the queries -------------------------------------------------------------------------------

    def aggregates(self, by: Sequence[str], filters: Filters, index_version: str) -> pd.DataFrame:
        """Scores per group of ``by`` (see the module docstring for the counting rule).

        Parameters
        ----------
        by : sequence of str
            Names from :data:`GROUPS`, or ``["assistance"]`` alone.
        filters : Filters
        index_version : str
            The index label whose scores to show.

        Returns
        -------
        DataFrame
            See :func:`reintegration.aggregate.breakdown`; the last row is the total.

        Raises
        ------
        QueryError
            An unknown or repeated grouping.
        """
        by = _check_by(by)
        if by == [BY_ASSISTANCE]:
            return self.assistance(filters, index_version)
        return self._cached(
            ("aggregates", tuple(by), filters, index_version),
            lambda: self._breakdown(by, filters, index_version, within=_within(by)),
        )

    def _breakdown(
        self, by: list[str], filters: Filters, index_version: str, *, within: Sequence[str]
    ) -> pd.DataFrame:
        records = self._records(filters, index_version, within)
        table = breakdown(records, by, figures=FIGURES, min_cell=self.min_cell)
        return _plain(table, by)

    def trajectories(
        self,
        by: Sequence[str],
        filters: Filters,
        index_version: str,
        *,
        axis: Literal["months", "cohort"] = "months",
        follow: bool = False,
    ) -> pd.DataFrame:
        """Scores by months since return (or by return cohort), per group of ``by``.

        ``follow`` keeps only a balanced panel: the returnees scored in every survey round up
        to the last round in the filter window, so that a change between bands is a change in
        the same people, not in who was still reached.

        Returns
        -------
        DataFrame
            As :meth:`aggregates`, with ``months_band`` or ``cohort`` as the first grouping.
        """
        by = _check_by(by)
        first = "months_band" if axis == "months" else "cohort"
        if axis not in ("months", "cohort"):
            raise QueryError(f"axis must be months or cohort, not {axis!r}")
        groups = [first, *(b for b in by if b != first)]
        return self._cached(
            ("trajectories", tuple(groups), filters, index_version, follow),
            lambda: self._trajectory(groups, filters, index_version, follow),
        )

    def _trajectory(
        self, groups: list[str], filters: Filters, index_version: str, follow: bool
    ) -> pd.DataFrame:
        frame = self.frame(index_version)
        mask = self._mask(frame, filters)
        if follow:
            mask &= _balanced_panel(frame, mask)
        records = self._latest(frame, np.flatnonzero(mask), _within(groups))
        table = breakdown(records, groups, figures=FIGURES, min_cell=self.min_cell)
        return _plain(table, groups)

    def assistance(self, filters: Filters, index_version: str) -> pd.DataFrame:
        """Scores by type of assistance received (a returnee counts in each type they had).

        Association, not effect: returnees are not assigned assistance at random. The total
        row is every returnee; ``none`` is those with no assistance recorded.
        """
        return self._cached(
            ("assistance", filters, index_version),
            lambda: self._assistance(filters, index_version),
        )

    def _assistance(self, filters: Filters, index_version: str) -> pd.DataFrame:
        records = self._records(filters, index_version, ())
        codes = self._assistance_of(records).str.split()
        exploded = records.assign(assistance=codes.map(lambda c: c or ["none"])).explode(
            "assistance"
        )
        # The groups overlap, so each is summarised alone (min_cell=1: nothing hidden yet), then
        # the suppression rule runs once over them all with every returnee as the total.
        parts = [
            breakdown(group, [], figures=FIGURES, min_cell=1).assign(assistance=code)
            for code, group in exploded.groupby("assistance", sort=True)
        ]
        total = breakdown(records, [], figures=FIGURES, min_cell=1).assign(assistance=TOTAL)
        table = pd.concat([*parts, total], ignore_index=True)
        table = table.drop(columns=["suppressed", "unscored_suppressed"])
        table = suppress(table, min_cell=self.min_cell)
        first = [BY_ASSISTANCE, *(c for c in table.columns if c != BY_ASSISTANCE)]
        return _plain(table[first], [BY_ASSISTANCE])

    def overview(self, filters: Filters, index_version: str) -> dict[str, Any]:
        """The headline figures: returnees, surveys, means with intervals, shares, histogram."""
        return self._cached(
            ("overview", filters, index_version), lambda: self._overview(filters, index_version)
        )

    def _overview(self, filters: Filters, index_version: str) -> dict[str, Any]:
        frame = self.frame(index_version)
        mask = self._mask(frame, filters)
        records = self._latest(frame, np.flatnonzero(mask), ())
        total = breakdown(records, [], figures=FIGURES, min_cell=self.min_cell).iloc[-1]
        suppressed = bool(total["suppressed"])
        surveys = int(mask.sum())
        scored = records["composite"].dropna().to_numpy()
        counts, edges = np.histogram(scored, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
        bins = pd.DataFrame({"returnees": counts, "unscored": 0})
        bins = suppress(
            pd.concat(
                [bins, pd.DataFrame({"returnees": [len(scored)], "unscored": [0]})],
                ignore_index=True,
            ),
            min_cell=self.min_cell,
        )
        histogram = [
            {
                "bin_low": float(edges[i]),
                "bin_high": float(edges[i + 1]),
                "count": None if bins["suppressed"].iloc[i] else int(counts[i]),
            }
            for i in range(HISTOGRAM_BINS)
        ]
        return {
            "index_version": index_version,
            "returnees": _count(total["returnees"]),
            "surveys": None if 0 < surveys < self.min_cell else surveys,
            "unscored": _count(total["unscored"]),
            "suppressed": suppressed,
            "means": {
                f: {k: _number(total[f"{f}_{k}"]) for k in ("mean", "low", "high")} for f in FIGURES
            },
            "share_sustainable": _number(total["share_sustainable"]),
            "levels": {level: _number(total.get(f"share_{level}")) for level in LEVELS},
            "histogram": histogram,
        }


# -- helpers ----------------------------------------------------------------------------------


def _check_by(by: Sequence[str]) -> list[str]:
    names = [b.strip() for b in by if b.strip()]
    if len(set(names)) != len(names):
        raise QueryError(f"a grouping is repeated in by={','.join(names)}")
    known = (*GROUPS, BY_ASSISTANCE)
    for name in names:
        if name not in known:
            raise QueryError(f"cannot group by {name!r}: use {', '.join(known)}")
    if BY_ASSISTANCE in names and len(names) > 1:
        raise QueryError("assistance cannot be combined with other groupings")
    return names


def _within(by: Sequence[str]) -> list[str]:
    # A returnee counts once per round or months band when the answer breaks out by it.
    return [b for b in by if b in ("round", "months_band")]


def _balanced_panel(frame: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    """Rows of returnees scored in every round from 1 to the last round in the window."""
    if not mask.any():
        return mask
    rows = frame[mask & frame["composite"].notna().to_numpy()]
    last = int(frame["round"].to_numpy()[mask].max())
    rounds = rows.groupby("rkey")["round"].nunique()
    complete = rounds.index[rounds >= last]
    return frame["rkey"].isin(complete).to_numpy()


def _plain(table: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Group values as text (so the total's "all" sits beside them) in the given order."""
    out = table.copy()
    for key in by:
        out[key] = out[key].map(lambda v: TOTAL if v == TOTAL else (None if pd.isna(v) else str(v)))
    return out.reset_index(drop=True)


def _day(value: date) -> int:
    return int(np.datetime64(value, "D").astype(np.int64))


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _count(value: Any) -> int | None:
    return None if pd.isna(value) else int(value)
