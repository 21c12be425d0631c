"""The aggregate queries behind the API and the dashboards, fast on a million stored scores.

A group-by over a million rows costs SQLite about 160 ms, too slow for 32 dashboard users at
once. So :class:`Analytics` loads, per index version, one compact in-memory frame of the
current submissions with their scores (about 100 MB per million rows), sorted by returnee and
interview date, and answers every aggregate from it with NumPy and one pandas group-by; answers
are cached too. Both caches are keyed on the store's data version (see
``reintegration.store.data_version``), which every completed batch, erasure, rescoring and
promotion bumps in its own transaction; a request that finds the data unchanged costs one
indexed read of one row. A stored batch or erasure is applied to the frame in place, at once;
anything else reloads it in the background while answers come from the previous frame, whose
version :meth:`Analytics.data_version` reports (:mod:`reintegration.frame_cache`).

Privacy rules (DESIGN.md): aggregates count distinct returnees, each returnee's latest scored
submission in the filter window (breaking out by round or by months band counts each returnee
once per round or band, and the total row is then the sum of its cells). Every query gives
exact figures (small cells and their complements suppressed) or, with ``protected=True``,
protected ones (:mod:`reintegration.disclosure`: cell-key perturbation, hidden groups gathered
into one row, date filters widened to whole months, histogram bins merged);
:func:`protected_for` says which a caller gets.
"""

from __future__ import annotations

import calendar
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from reintegration import cube as cubes
from reintegration.aggregate import LEVELS, TOTAL, breakdown, summarise
from reintegration.assistance import COLUMNS as ASSOCIATION_COLUMNS
from reintegration.assistance import REFERENCE as NO_ASSISTANCE
from reintegration.assistance import (
    SHARE,
    associations,
    perturbed_adjusted,
    raw_from_published,
    rounded,
)
from reintegration.disclosure import (
    Protection,
    merge_bins,
    perturb_counts,
    publish,
    publish_columns,
    publish_table,
    suppress,
)
from reintegration.errors import ConfigurationError, QueryError
from reintegration.followup import months_band as months_band  # re-exported
from reintegration.frame_cache import FrameCache
from reintegration.interviewer import flagged_enumerators
from reintegration.panel_frame import FIGURES, read_base
from reintegration.panels import balanced, retention, stage_rows, stages, trajectory_groups
from reintegration.policy import User
from reintegration.questionnaire import load_questionnaire
from reintegration.roles import Capability, allowed
from reintegration.selection import STAGE_COLUMNS, SUMMARY_COLUMNS, Selection, isin, latest_rows
from reintegration.store.engine import for_reading
from reintegration.store.schema import score

log = logging.getLogger(__name__)

GROUPS = ("sex", "age_group", "return_type", "country", "round", "months_band", "cohort")
BY_ASSISTANCE = "assistance"
ASSOCIATION_DECIMALS = 2  # protected answers round every association figure
NOT_COMPARED = (
    "not compared: fewer than {min_cell} returnees with a {figure} score received it, or "
    "received none"
)
HISTOGRAM_BINS = 10
ANSWER_CACHE = 512
# Selections kept (a mask and an index array each, ~4 MB at a million rows): enough for the
# questions computed at once (COMPUTING_AT_ONCE) to share theirs between the parts of their
# answers.
SELECTIONS_KEPT = 8
# New answers computed at once in a process; other questions wait their turn. Each answer
# holds the GIL for much of its time and walks through tens of megabytes: measured at 1M
# interviews on 2 cores, 16 at once answered 17 questions/s, 2 at once 30 (benchmarks/
# api_bench.py --mixed; docs/analytics-engine.md).
COMPUTING_AT_ONCE = max(1, min(4, os.cpu_count() or 1))
# A frame this small has its cube built by the request that first needs it (milliseconds);
# a larger one in a background thread, answers coming from the records until it is ready.
CUBE_IN_REQUEST_ROWS = 200_000


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
    # Leave out every interview of the enumerators reintegration.quality flags (see
    # reintegration.interviewer and Analytics.enumerator_exclusion for what that changes).
    exclude_flagged_enumerators: bool = False
    # A comparable stage (docs/methods.md, "Panels and bands"): only surveys of this round, or
    # of this months band (its label), one per returnee, instead of the latest in the window.
    at_round: int | None = None
    at_band: str | None = None


def protected_for(caller: User, asked: bool) -> bool:
    """Whether ``caller`` gets protected figures: always for a role without row access (a
    manager), else when asked (DESIGN.md, "Privacy rules").

    Examples
    --------
    >>> from reintegration.roles import Role
    >>> protected_for(User("m", Role.MANAGER, None), False)
    True
    >>> protected_for(User("a", Role.ANALYST, None), False)
    False
    """
    return asked or not allowed(caller.role, Capability.ROW_LEVEL)


def widened(filters: Filters) -> Filters:
    """``filters`` with the dates widened to whole months, as protected figures use them.

    Examples
    --------
    >>> widened(Filters(date_from=date(2025, 6, 2), date_to=date(2024, 2, 3)))
    Filters(countries=None, date_from=datetime.date(2025, 6, 1), \
date_to=datetime.date(2024, 2, 29), rounds=None, sex=None, age_group=None, return_type=None, \
exclude_flagged_enumerators=False, at_round=None, at_band=None)
    """
    start, end = filters.date_from, filters.date_to
    if start is not None:
        start = start.replace(day=1)
    if end is not None:
        end = end.replace(day=calendar.monthrange(end.year, end.month)[1])
    return replace(filters, date_from=start, date_to=end)


class Analytics:
    """Aggregates, trajectories and the overview, from a cached in-memory frame.

    One object per process, shared by threads. ``engine`` is the app's store.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    min_cell : int, default 5
        Smallest number of distinct returnees a cell may show (``REINTEGRATION_MIN_CELL``).
    protection : Protection, optional
        The parameters of protected figures (``reintegration.settings.protection``); default
        :class:`~reintegration.disclosure.Protection`'s defaults.
    """

    def __init__(
        self, engine: sa.Engine, *, min_cell: int = 5, protection: Protection | None = None
    ) -> None:
        self.engine = engine
        self.min_cell = min_cell
        self.protection = protection if protection is not None else Protection()
        self._reader = for_reading(engine)
        self._lock = threading.Lock()
        self._frames: dict[tuple[Any, ...], Any] = {}
        self._loading: dict[tuple[Any, ...], threading.Lock] = {}
        self._answers: OrderedDict[Hashable, Any] = OrderedDict()
        self._selections: OrderedDict[Hashable, Selection] = OrderedDict()
        # Per (index version, within, kind: latest, months or rounds): the frame a cube is of
        # and the cube (None: the frame cannot have one), and the frames whose cube is being
        # built.
        self._cubes: dict[tuple[str, tuple[str, ...], str], tuple[pd.DataFrame, Any]] = {}
        self._building: dict[tuple[str, tuple[str, ...], str], pd.DataFrame] = {}
        self._build_lock = threading.Lock()  # one cube built at a time: memory, and the CPU
        self._places = threading.BoundedSemaphore(COMPUTING_AT_ONCE)
        self._usability: tuple[weakref.ref[pd.DataFrame], bool] | None = None
        self._computing = threading.local()
        questionnaire = load_questionnaire()
        self._child_below = questionnaire.child_age_below
        # read_base looked up when called, so that a test can stand in for it.
        self._frames_cache = FrameCache(
            self._reader, self._child_below, lambda conn, child: read_base(conn, child)
        )

    # -- the data version and the cached frames ---------------------------------------------

    def data_version(self) -> int:
        """The data version the answers reflect: the store's, once the frames caught up with
        it (:class:`~reintegration.frame_cache.FrameCache`: a stored batch or erasure is
        applied at once; while a full reload runs, the version of the previous frames)."""
        return self._frames_cache.version()

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
        with self.pinned() as version:  # one frame for the whole answer
            full = (version, *key)
            with self._lock:
                if full in self._answers:
                    self._answers.move_to_end(full)
                    return self._answers[full]
            with self._turn():
                value = compute()
        with self._lock:
            self._answers[full] = value
            while len(self._answers) > ANSWER_CACHE:
                self._answers.popitem(last=False)
        return value

    @contextmanager
    def pinned(self) -> Iterator[int]:
        """While inside, this thread's answers come from one frame, brought up to date once
        on entering (every part of a response from the same data, for one read of the
        store's version); gives its data version (see
        :meth:`reintegration.frame_cache.FrameCache.pinned`)."""
        with self._frames_cache.pinned() as version:
            yield version

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """Wait for one of :data:`COMPUTING_AT_ONCE` places to compute a new answer (nested
        calls of one thread hold the place they have)."""
        depth = getattr(self._computing, "depth", 0)
        if depth:
            self._computing.depth = depth + 1
            try:
                yield
            finally:
                self._computing.depth = depth
            return
        with self._places:
            self._computing.depth = 1
            try:
                yield
            finally:
                self._computing.depth = 0

    def frame(self, index_version: str) -> pd.DataFrame:
        """The current submissions with their ``index_version`` scores, one row each.

        Sorted by returnee, then round; ``rkey`` numbers the returnees. Scores are missing
        where this version has not scored a submission. Read once, then kept up to date by
        applying each stored batch and erasure (:mod:`reintegration.frame_cache`).
        """
        return self._frames_cache.frame(index_version)

    def _assistance_of(self, frame: pd.DataFrame) -> pd.Series:
        texts = self._frames_cache.assistance()
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

    # -- selection ------------------------------------------------------------------------------

    def _mask(self, frame: pd.DataFrame, filters: Filters) -> np.ndarray:
        mask = np.ones(len(frame), dtype=bool)
        if filters.date_from is not None:
            mask &= frame["interview_day"].to_numpy() >= _day(filters.date_from)
        if filters.date_to is not None:
            mask &= frame["interview_day"].to_numpy() <= _day(filters.date_to)
        if filters.rounds is not None:
            mask &= isin(frame["round"], filters.rounds)
        for column in ("countries", "sex", "age_group", "return_type"):
            wanted = getattr(filters, column)
            if wanted is not None:
                name = "country" if column == "countries" else column
                mask &= isin(frame[name], wanted)
        if filters.exclude_flagged_enumerators:
            mask &= ~self._flagged_rows(frame)
        return mask

    def _latest(self, frame: pd.DataFrame, rows: np.ndarray, within: Sequence[str]) -> pd.DataFrame:
        """Each returnee's latest scored row among ``rows`` (per ``within`` group), or their
        latest row when none is scored (then it counts as unscored). Per months band, the
        scored row nearest the band's scheduled month instead (of two as near, the later):
        ``reintegration.followup.nearest_first``."""
        return frame.iloc[latest_rows(frame, rows, within)]

    def selection(self, filters: Filters, index_version: str, within: Sequence[str]) -> Selection:
        """The rows of ``filters`` and the records counted (per ``within`` group), kept per
        (frame, filters, within) so that every part of an answer shares one selection."""
        frame = self.frame(index_version)
        staged = tuple(_staged_within(filters, within))
        key = (index_version, filters, staged)
        with self._lock:
            found = self._selections.get(key)
            if found is not None and found.frame is frame:
                self._selections.move_to_end(key)
                return found
        mask = self._selected(frame, filters)
        found = Selection(frame, mask, latest_rows(frame, np.flatnonzero(mask), staged))
        with self._lock:
            self._selections[key] = found
            self._selections.move_to_end(key)
            while len(self._selections) > SELECTIONS_KEPT:
                self._selections.popitem(last=False)
        return found

    def cube(
        self,
        index_version: str,
        within: Sequence[str] = (),
        *,
        months: bool = False,
        rounds: bool = False,
        wait: bool = False,
    ) -> cubes.Cube | None:
        """The summed summaries of the current frame's latest records (per ``within``: none
        or ``["round"]``; with ``months``, of every record per the months that decide when
        it counts, for windows of whole months; with ``rounds``, of every record per the
        rounds that decide when it counts, for round filters), or None while they are being
        built or when the frame cannot have them (see :func:`reintegration.cube.usable`,
        :func:`reintegration.cube.month_dimensions` and
        :func:`reintegration.cube.round_dimensions`). Built once per frame: in the asking
        thread for a small frame (or with ``wait``), else in the background."""
        frame = self.frame(index_version)
        kind = "months" if months else "rounds" if rounds else "latest"
        key = (index_version, tuple(within), kind)
        with self._lock:
            found = self._cubes.get(key)
            if found is not None and found[0] is frame:
                return found[1]
            background = len(frame) >= CUBE_IN_REQUEST_ROWS and not wait
            if self._building.get(key) is frame:
                if background:
                    return None
            elif background:
                # This cube first, then the frame's other cubes: the next questions need them.
                keys = [key, *(k for k in _cube_keys(index_version) if k != key)]
                keys = [k for k in keys if self._building.get(k) is not frame]
                for k in keys:
                    self._building[k] = frame
                threading.Thread(
                    target=self._build_cubes, args=(keys, frame), name="analytics-cube", daemon=True
                ).start()
                return None
        return self._build_cube(key, frame)

    def _build_cubes(self, keys: list[tuple[str, tuple[str, ...], str]], frame: Any) -> None:
        for key in keys:
            self._build_cube(key, frame)

    def _build_cube(
        self, key: tuple[str, tuple[str, ...], str], frame: pd.DataFrame
    ) -> cubes.Cube | None:
        built = None
        _, within, kind = key
        with self._build_lock:
            with self._lock:
                current = self._cubes.get(key)
            if current is not None and current[0] is frame:
                return current[1]
            if self._frames_cache.frame(key[0]) is not frame:
                built = None  # the frame changed while this build waited: not worth building
            else:
                built = self._new_cube(frame, within, kind)
        with self._lock:
            current = self._cubes.get(key)
            if current is not None and current[0] is frame:
                built = current[1]  # another thread was first: one cube per frame
            elif built is not None or current is None:
                self._cubes[key] = (frame, built)
            if self._building.get(key) is frame:
                del self._building[key]
        return built

    def _new_cube(
        self, frame: pd.DataFrame, within: tuple[str, ...], kind: str
    ) -> cubes.Cube | None:
        built = None
        clock = time.perf_counter()
        every = np.arange(len(frame))
        try:
            if not cubes.usable(frame):
                pass
            elif kind == "latest":
                latest = latest_rows(frame, every, within)
                built = cubes.Cube(frame, latest, surveys=True)
            elif kind == "months":
                if (days := cubes.day_dimensions(frame, within)) is not None:
                    months = cubes.month_dimensions(frame, within, days)
                    built = cubes.Cube(frame, every, months=months, days=days, surveys=True)
            elif (dimensions := cubes.round_dimensions(frame)) is not None:
                built = cubes.Cube(frame, every, rounds=dimensions, surveys=True)
        except Exception:  # answers come from the records instead
            log.exception("building the analytics cube failed")
        log.info(
            "analytics cube (within %s, %s): %s in %.1f s",
            within,
            kind,
            "none" if built is None else f"{len(built.rows)} rows",
            time.perf_counter() - clock,
        )
        return built

    def _cube_for(
        self, filters: Filters, index_version: str, within: Sequence[str], by: Sequence[str] = ()
    ) -> cubes.Cube | None:
        """The cube that answers this question exactly, if there is one ready: the cube of
        the latest records without a date window, the month cube with dates (whole months
        from its rows, a month the window cuts from the frame's records of it), the
        round cube with a round filter (latest per returnee, no dates), the by-round cubes
        with a filter of one round."""
        if not set(by) <= set(cubes.GROUPINGS):
            return None
        if not within and filters.rounds is not None and len(filters.rounds) == 1:
            # Among one round, each returnee's latest record is their latest of that round:
            # the by-round cubes answer it, dates or not (their cells summed over the round).
            if cubes.answers(filters, ["round"]):
                return self.cube(index_version, ["round"])
            if cubes.answers(filters, ["round"], months=True):
                return self.cube(index_version, ["round"], months=True)
        if cubes.answers(filters, within):
            return self.cube(index_version, within)
        if cubes.answers(filters, within, months=True):
            return self.cube(index_version, within, months=True)
        if cubes.answers(filters, within, rounds=True):
            return self.cube(index_version, within, rounds=True)
        return None

    def _records(self, filters: Filters, index_version: str, within: Sequence[str]) -> pd.DataFrame:
        return self.selection(filters, index_version, within).records()

    def _selected(self, frame: pd.DataFrame, filters: Filters) -> np.ndarray:
        """The rows of ``filters``, narrowed to its stage (``at_round`` or ``at_band``)."""
        mask = self._mask(frame, filters)
        if filters.at_round is not None:
            mask &= frame["round"].to_numpy() == filters.at_round
        if filters.at_band is not None:
            mask &= (frame["months_band"] == filters.at_band).to_numpy()
        return mask

    def stages(
        self, by: Sequence[str], filters: Filters, index_version: str, *, protected: bool = False
    ) -> dict[str, list[dict[str, Any]]]:
        """Which follow-up times the answer to ``aggregates(by, filters)`` mixes: its scored
        returnees per survey round and per months band (:func:`reintegration.panels.stages`),
        through the same disclosure step as the answer. ``protected`` as in :meth:`aggregates`.
        """
        by = _check_by(by)
        within = [] if by == [BY_ASSISTANCE] else _within(by)
        filters = widened(filters) if protected else filters

        def compute() -> dict[str, list[dict[str, Any]]]:
            protection = self._protection(protected, index_version)
            cube = self._cube_for(filters, index_version, within)
            keyed = protection is not None
            columns = (("rounds", "round"), ("bands", "months_band"))
            if cube is not None:
                return {
                    name: self._stage_list(
                        cube.columns(
                            [column], filters, keyed=keyed, figures=["composite"], scored_only=True
                        ),
                        column,
                        protection,
                    )
                    for name, column in columns
                }
            selection = self.selection(filters, index_version, within)
            if self._usable(selection.frame):  # each record summed as a cube row, compiled
                return {
                    name: self._stage_list(
                        cubes.record_columns(
                            selection.frame,
                            selection.latest,
                            [column],
                            keyed=keyed,
                            figures=["composite"],
                            scored_only=True,
                        ),
                        column,
                        protection,
                    )
                    for name, column in columns
                }
            records = selection.records(STAGE_COLUMNS)
            return stages(records, min_cell=self.min_cell, protection=protection)

        return self._cached(("stages", tuple(within), filters, index_version, protected), compute)

    def retention(
        self, filters: Filters, index_version: str, *, protected: bool = False
    ) -> list[dict[str, Any]]:
        """Per survey round, the round-1 returnees surveyed in it, n and % of round 1
        (:func:`reintegration.panels.retention`). Every round counts, whatever ``filters``
        says of rounds or stage; the other filters hold. ``protected`` as in
        :meth:`aggregates`."""
        filters = replace(
            widened(filters) if protected else filters, rounds=None, at_round=None, at_band=None
        )

        def compute() -> list[dict[str, Any]]:
            protection = self._protection(protected, index_version)
            frame = self.frame(index_version)
            mask = self._mask(frame, filters)
            return retention(frame, mask, min_cell=self.min_cell, protection=protection)

        return self._cached(("retention", filters, index_version, protected), compute)

    def _protection(self, protected: bool, index_version: str) -> Protection | None:
        """The parameters of protected figures, or None for exact ones.

        Raises
        ------
        ConfigurationError
            Protected figures asked of a store whose interviews have no record keys.
        """
        if not protected:
            return None
        if "record_key" not in self.frame(index_version):
            raise ConfigurationError(
                "Protected figures need the record key of every stored interview, and this "
                "store's interviews have none: upgrade the store (reintegration db upgrade)."
            )
        return self.protection

    # -- the queries -------------------------------------------------------------------------------

    def aggregates(
        self, by: Sequence[str], filters: Filters, index_version: str, *, protected: bool = False
    ) -> pd.DataFrame:
        """Scores per group of ``by`` (see the module docstring for the counting rule).

        Parameters
        ----------
        by : sequence of str
            Names from :data:`GROUPS`, or ``["assistance"]`` alone.
        filters : Filters
        index_version : str
            The index label whose scores to show.
        protected : bool, default False
            Protected figures (dates widened to whole months, see :func:`widened`) instead of
            exact ones.

        Returns
        -------
        DataFrame
            See :func:`reintegration.aggregate.breakdown`, with ``other`` (True on the row of
            the gathered groups of protected figures); the last row is the total.

        Raises
        ------
        QueryError
            An unknown or repeated grouping.
        ConfigurationError
            Protected figures asked of a store without record keys.
        """
        by = _check_by(by)
        if by == [BY_ASSISTANCE]:
            return self.assistance(filters, index_version, protected=protected)
        filters = widened(filters) if protected else filters
        return self._cached(
            ("aggregates", tuple(by), filters, index_version, protected),
            lambda: self._breakdown(by, filters, index_version, protected, within=_within(by)),
        )

    def _breakdown(
        self,
        by: list[str],
        filters: Filters,
        index_version: str,
        protected: bool,
        *,
        within: Sequence[str],
    ) -> pd.DataFrame:
        protection = self._protection(protected, index_version)
        cube = self._cube_for(filters, index_version, within, by)
        if cube is not None:
            cells = cube.columns(by, filters, keyed=protection is not None)
            table = publish_columns(
                cells, groups=by, figures=FIGURES, min_cell=self.min_cell, protection=protection
            )
            return _plain(table, by)
        selection = self.selection(filters, index_version, within)
        if self._usable(selection.frame):  # each record summed as a cube row, compiled
            cells = cubes.record_columns(
                selection.frame, selection.latest, by, keyed=protection is not None
            )
            table = publish_columns(
                cells, groups=by, figures=FIGURES, min_cell=self.min_cell, protection=protection
            )
            return _plain(table, by)
        records = selection.records([*by, *SUMMARY_COLUMNS])
        table = breakdown(
            records, by, figures=FIGURES, min_cell=self.min_cell, protection=protection
        )
        return _plain(table, by)

    def _usable(self, frame: pd.DataFrame) -> bool:
        """:func:`reintegration.cube.usable`, once per frame."""
        with self._lock:
            known = self._usability
        if known is not None and known[0]() is frame:
            return known[1]
        found = cubes.usable(frame)
        with self._lock:
            self._usability = (weakref.ref(frame), found)
        return found

    def _stage_list(
        self, cells: dict[str, np.ndarray], column: str, protection: Protection | None
    ) -> list[dict[str, Any]]:
        """:func:`reintegration.panels.stages`' list for ``column`` from the summaries of an
        answer's scored records per ``column`` (a cube's or the records' own)."""
        table = publish_table(
            cells,
            groups=[column],
            figures=["composite"],
            min_cell=self.min_cell,
            protection=protection,
        )
        return stage_rows(table, column, self.min_cell)

    def trajectories(
        self,
        by: Sequence[str],
        filters: Filters,
        index_version: str,
        *,
        axis: Literal["round", "months", "cohort"] = "round",
        follow: bool = False,
        protected: bool = False,
    ) -> pd.DataFrame:
        """Scores by survey round (the default), months band or return cohort, per group of
        ``by``; a returnee counts once per point (round or band).

        The cohort axis compares cohorts at the same months since return: it breaks out by
        months band as well, unless ``filters`` asks for one round or band
        (:func:`reintegration.panels.trajectory_groups`). ``follow`` keeps a balanced panel:
        the returnees scored at every point shown (every round, or every band, in the window),
        so each point has the same returnees and a change is a change in the same people
        (:func:`reintegration.panels.balanced`). ``protected`` as in :meth:`aggregates`.

        Returns
        -------
        DataFrame
            As :meth:`aggregates`, with ``round``, ``months_band`` or ``cohort`` (then
            ``months_band``) as the first groupings.

        Raises
        ------
        QueryError
            An unknown axis or grouping.
        """
        by = _check_by(by)
        staged = filters.at_round is not None or filters.at_band is not None
        groups, point = trajectory_groups(axis, by, staged)
        filters = widened(filters) if protected else filters
        return self._cached(
            ("trajectories", tuple(groups), filters, index_version, follow, protected),
            lambda: self._trajectory(groups, point, filters, index_version, follow, protected),
        )

    def _trajectory(
        self,
        groups: list[str],
        point: str | None,
        filters: Filters,
        index_version: str,
        follow: bool,
        protected: bool,
    ) -> pd.DataFrame:
        protection = self._protection(protected, index_version)
        frame = self.frame(index_version)
        mask = self._selected(frame, filters)
        if follow:
            mask = balanced(frame, mask, point)
        latest = latest_rows(frame, np.flatnonzero(mask), _staged_within(filters, groups))
        records = Selection(frame, mask, latest).records([*groups, *SUMMARY_COLUMNS])
        table = breakdown(
            records, groups, figures=FIGURES, min_cell=self.min_cell, protection=protection
        )
        return _plain(table, groups)

    def assistance(
        self, filters: Filters, index_version: str, *, protected: bool = False
    ) -> pd.DataFrame:
        """Scores by type of assistance received (a returnee counts in each type they had).

        Association, not effect: returnees are not assigned assistance at random. The total
        row is every returnee; ``none`` is those with no assistance recorded. ``protected`` as
        in :meth:`aggregates`.
        """
        filters = widened(filters) if protected else filters
        return self._cached(
            ("assistance", filters, index_version, protected),
            lambda: self._assistance(filters, index_version, protected),
        )

    def _assistance(self, filters: Filters, index_version: str, protected: bool) -> pd.DataFrame:
        protection = self._protection(protected, index_version)
        records = self._records(filters, index_version, ())
        codes = self._assistance_of(records).str.split()
        exploded = records.assign(assistance=codes.map(lambda c: c or ["none"])).explode(
            "assistance"
        )
        # The groups overlap, so each is summarised alone, then published at once with every
        # returnee as the total.
        keyed = protection is not None
        parts = [
            summarise(group, [], FIGURES, keyed=keyed).assign(assistance=code)
            for code, group in exploded.groupby("assistance", sort=True)
        ]
        total = summarise(records, [], FIGURES, keyed=keyed).assign(assistance=TOTAL)
        cells = pd.concat([*parts, total], ignore_index=True)
        cells = cells[[BY_ASSISTANCE, *(c for c in cells.columns if c != BY_ASSISTANCE)]]
        table = publish(cells, figures=FIGURES, min_cell=self.min_cell, protection=protection)
        return _plain(table, [BY_ASSISTANCE])

    def assistance_associations(
        self,
        filters: Filters,
        index_version: str,
        *,
        figure: str = "composite",
        protected: bool = False,
    ) -> pd.DataFrame:
        """Each assistance type :meth:`assistance` lists against ``none``: the raw gap in
        ``figure`` beside the gap adjusted for sex, age group, return type, country and months
        since return, with 95% intervals and the overlap check
        (:func:`reintegration.assistance.associations`). Associations, not effects.
        ``figure`` is a score or ``"sustainable"`` (gaps in the share sustainable: a linear
        probability model).

        Exact figures: a type is compared when its cell and the ``none`` cell are both shown
        (not suppressed) and each has at least ``min_cell`` returnees with ``figure`` known.
        Protected figures (``docs/privacy.md``, "Adjusted assistance associations"): when both
        cells show at least ``min_cell`` perturbed returnees; the counts are the perturbed
        ones, the raw gap is the difference of the published (perturbed) means with Welch's
        interval, and every gap, bound and share is rounded to 2 decimals. ``protected`` as
        in :meth:`aggregates`.

        Returns
        -------
        DataFrame
            The columns of :data:`reintegration.assistance.COLUMNS`, one row per listed type.

        Raises
        ------
        QueryError
            An unknown ``figure``.
        ConfigurationError
            Protected figures asked of a store without record keys.
        """
        if figure not in (*FIGURES, SHARE):
            raise QueryError(
                f"figure must be one of {', '.join((*FIGURES, SHARE))}, not {figure!r}"
            )
        filters = widened(filters) if protected else filters
        return self._cached(
            ("associations", filters, index_version, figure, protected),
            lambda: self._associations(filters, index_version, figure, protected),
        )

    def _associations(
        self, filters: Filters, index_version: str, figure: str, protected: bool
    ) -> pd.DataFrame:
        table = self.assistance(filters, index_version, protected=protected)
        table = table[~table["other"].astype(bool)].set_index(BY_ASSISTANCE)
        listed = [c for c in table.index if c not in (TOTAL, NO_ASSISTANCE)]

        def shown(code: str) -> bool:
            row = table.loc[code] if code in table.index else None
            return (
                row is not None
                and not bool(row["suppressed"])
                and float(row["returnees"]) >= self.min_cell
            )

        compared = [c for c in listed if shown(c)] if shown(NO_ASSISTANCE) else []
        records = self._records(filters, index_version, ())
        records = records.assign(enumerator=self._enumerators_of(records))
        found = associations(
            records,
            self._assistance_of(records).str.split(),
            figure,
            types=compared,
            min_group=self.min_cell,
            cluster="enumerator",
            weight="weight" if "weight" in records and records["weight"].notna().any() else None,
        )
        types = pd.DataFrame({BY_ASSISTANCE: pd.Series(listed, dtype=object)})
        out = types.merge(found, how="left", on=BY_ASSISTANCE)
        out = out[list(ASSOCIATION_COLUMNS)]
        # Fewer than min_cell on either side, shown or true (protected figures need both: a
        # perturbed count can reach min_cell from one returnee): no gap, no counts.
        small = ~out[BY_ASSISTANCE].isin(compared).to_numpy()
        small |= (out["treated"] < self.min_cell).to_numpy()
        small |= (out["untreated"] < self.min_cell).to_numpy()
        if protected:
            raw = raw_from_published(table.reset_index(), figure, listed)
            for column in ("raw_difference", "raw_low", "raw_high"):
                out[column] = raw[column].to_numpy()
            out["treated"] = out[BY_ASSISTANCE].map(table["returnees"]).to_numpy()
            out["untreated"] = table["returnees"].get(NO_ASSISTANCE, np.nan)
            protection = self._protection(protected, index_version)
            assert protection is not None
            out = perturbed_adjusted(
                out, records, self._assistance_of(records).str.split(), figure, protection
            )
            out = rounded(out, ASSOCIATION_DECIMALS)
        out.loc[small, [c for c in ASSOCIATION_COLUMNS if c != BY_ASSISTANCE]] = None
        out.loc[small, "note"] = NOT_COMPARED.format(min_cell=self.min_cell, figure=figure)
        return out

    def _enumerators_of(self, records: pd.DataFrame) -> np.ndarray:
        """Each record's enumerator, the cluster of the associations' standard errors; a
        record without one is a cluster of its own. From the frame (kept up to date with it),
        not read again per data version."""
        ids = records["id"].to_numpy()
        found = records["enumerator_id"].to_numpy(dtype=object)
        return np.where(pd.isna(found), [f"(none) {i}" for i in ids], found)

    def overview(
        self, filters: Filters, index_version: str, *, protected: bool = False
    ) -> dict[str, Any]:
        """The headline figures: returnees, surveys, means with intervals, shares, histogram.

        ``protected`` as in :meth:`aggregates`: then the number of surveys is perturbed too,
        and the histogram's adjacent bins are merged until each shows at least ``min_cell``.
        """
        filters = widened(filters) if protected else filters
        return self._cached(
            ("overview", filters, index_version, protected),
            lambda: self._overview(filters, index_version, protected),
        )

    def _overview(self, filters: Filters, index_version: str, protected: bool) -> dict[str, Any]:
        protection = self._protection(protected, index_version)
        cube = self._cube_for(filters, index_version, ())
        if cube is not None and cube.in_range:
            cells = cube.columns([], filters, keyed=protection is not None)
            count, key = cube.survey_count(filters)
            counts, keys = cube.histogram(filters)  # every composite within [0, 1]
            clipped, scored = counts, int(counts.sum())
        else:
            selection = self.selection(filters, index_version, ())
            frame, mask = selection.frame, selection.mask
            if self._usable(frame):  # each record summed as a cube row, compiled
                cells = cubes.record_columns(
                    frame, selection.latest, [], keyed=protection is not None
                )
                records = selection.records(["composite", "record_key"])
            else:
                records = selection.records(SUMMARY_COLUMNS)
                cells = summarise(records, [], FIGURES, keyed=protection is not None)
                cells = {name: cells[name].to_numpy() for name in cells.columns}
            count = int(mask.sum())
            key = int(frame["record_key"].to_numpy()[mask].sum() % 2**31) if protection else 0
            counts, clipped, keys, scored = _histogram(records)
        table = publish_table(
            cells, groups=[], figures=FIGURES, min_cell=self.min_cell, protection=protection
        )
        total = {name: values[-1] for name, values in table.items()}
        if protection is None:
            surveys = count
            histogram = self._exact_histogram(counts, scored)
        else:
            surveys = int(perturb_counts(np.array([count]), np.array([key]), protection)[0])
            histogram = self._protected_histogram(clipped, keys, protection)
        return {
            "index_version": index_version,
            "figures": "protected" if protected else "exact",
            "returnees": _count(total["returnees"]),
            "surveys": None if 0 < surveys < self.min_cell else surveys,
            "unscored": _count(total["unscored"]),
            "suppressed": bool(total["suppressed"]),
            "means": {f: {k: _number(total[f"{f}_{k}"]) for k in MEAN_PARTS} for f in FIGURES},
            "share_sustainable": _number(total["share_sustainable"]),
            "levels": {level: _number(total.get(f"share_{level}")) for level in LEVELS},
            "share_intervals": {
                share: {
                    "low": _number(total.get(f"share_{share}_ci_low")),
                    "high": _number(total.get(f"share_{share}_ci_high")),
                }
                for share in ("sustainable", *LEVELS)
                if f"share_{share}_ci_low" in total
            },
            "histogram": histogram,
        }

    def _exact_histogram(self, counts: np.ndarray, scored: int) -> list[dict[str, Any]]:
        edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
        bins = pd.DataFrame({"returnees": [*counts, scored], "unscored": 0})
        hidden = suppress(bins, min_cell=self.min_cell)["suppressed"].to_numpy()
        return [
            {
                "bin_low": float(edges[i]),
                "bin_high": float(edges[i + 1]),
                "count": None if hidden[i] else int(counts[i]),
            }
            for i in range(HISTOGRAM_BINS)
        ]

    def _protected_histogram(
        self, counts: np.ndarray, keys: np.ndarray, protection: Protection
    ) -> list[dict[str, Any]]:
        edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
        merged = merge_bins(
            counts.tolist(),
            [int(k) % 2**31 for k in keys],
            edges.tolist(),
            min_cell=self.min_cell,
            protection=protection,
        )
        return [{"bin_low": low, "bin_high": high, "count": n} for low, high, n in merged]

    # -- enumerator effects ------------------------------------------------------------------

    def flagged_interviews(self, index_version: str) -> pd.DataFrame:
        """The current interviews of the enumerators flagged for ``index_version``: ``id`` and
        ``enumerator_id`` (:func:`reintegration.interviewer.flagged_enumerators`), computed once
        per data version."""
        return self._once(
            (self.data_version(), "flagged", index_version),
            lambda: flagged_enumerators(self.engine, load_questionnaire(), index_version),
        )

    def _flagged_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """Which rows of a frame from :meth:`frame` flagged enumerators ran."""
        label = frame.attrs.get("index_version")
        if label is None:  # a frame this object did not build: nothing to compare it with
            raise QueryError("flagged enumerators can only be left out of a stored frame")
        return frame["id"].isin(self.flagged_interviews(label)["id"]).to_numpy()

    def enumerator_exclusion(
        self, filters: Filters, index_version: str, *, protected: bool = False
    ) -> dict[str, Any]:
        """What leaving out the flagged enumerators changes within ``filters``.

        Parameters
        ----------
        filters : Filters
            The selection (its ``exclude_flagged_enumerators`` is ignored: both sides are
            computed).
        index_version : str
        protected : bool, default False
            Protected figures: every count perturbed with the record keys of what it counts
            (hidden from 1 to ``min_cell - 1``), the means published as protected cells, the
            number of enumerators shown only from ``min_cell`` on. Exact otherwise.

        Returns
        -------
        dict
            ``figures``; ``enumerators`` (flagged enumerators with an interview in the
            selection), ``interviews`` (their interviews left out), ``returnees`` (returnees
            left with no interview, so no longer counted); ``with`` and ``without``: the
            returnees counted and the composite ``mean``, ``low``, ``high`` with and without
            the flagged enumerators' interviews; ``summary``, a sentence. Counts are None
            where hidden.
        """
        filters = widened(filters) if protected else filters
        filters = replace(filters, exclude_flagged_enumerators=False)
        return self._cached(
            ("exclusion", filters, index_version, protected),
            lambda: self._exclusion(filters, index_version, protected),
        )

    def _exclusion(self, filters: Filters, index_version: str, protected: bool) -> dict[str, Any]:
        protection = self._protection(protected, index_version)
        # The answer's rows (at its stage if any), then without the flagged enumerators': the
        # latter is the selection of the answer itself, shared with it.
        both = self.selection(filters, index_version, ())
        left = self.selection(replace(filters, exclude_flagged_enumerators=True), index_version, ())
        frame, mask = both.frame, both.mask
        flagged = self._flagged_rows(frame)
        dropped = mask & flagged
        columns = ["rkey", *SUMMARY_COLUMNS]
        everyone, kept = both.records(columns), left.records(columns)
        gone = everyone[~everyone["rkey"].isin(kept["rkey"])]
        listed = self.flagged_interviews(index_version)
        ran = listed.loc[listed["id"].isin(frame["id"].to_numpy()[dropped]), "enumerator_id"]
        enumerators: int | None = int(ran.nunique())
        keys = frame["record_key"].to_numpy(np.int64) if protection is not None else None

        def shown(n: int, counted: np.ndarray | None) -> int | None:
            if protection is None or counted is None:
                return n
            key = np.array([int(counted.sum() % 2**31)])
            out = int(perturb_counts(np.array([n]), key, protection)[0])
            return None if 0 < out < self.min_cell else out

        interviews = shown(int(dropped.sum()), None if keys is None else keys[dropped])
        left_out = shown(
            len(gone), gone["record_key"].to_numpy(np.int64) if keys is not None else None
        )
        if protection is not None and enumerators is not None and enumerators < self.min_cell:
            enumerators = None if enumerators else 0
        sides = {}
        for side, records in (("with", everyone), ("without", kept)):
            total = breakdown(
                records, [], figures=("composite",), min_cell=self.min_cell, protection=protection
            ).iloc[-1]
            sides[side] = {
                "returnees": _count(total["returnees"]),
                **{k: _number(total[f"composite_{k}"]) for k in ("mean", "low", "high")},
            }
        answer = {
            "figures": "protected" if protected else "exact",
            "enumerators": enumerators,
            "interviews": interviews,
            "returnees": left_out,
            "with": sides["with"],
            "without": sides["without"],
        }
        return {**answer, "summary": exclusion_sentence(answer, self.min_cell)}


# -- helpers ----------------------------------------------------------------------------------


MEAN_PARTS = ("mean", "low", "high", "deff", "n_effective")


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


def _staged_within(filters: Filters, within: Sequence[str]) -> list[str]:
    # At a months band, the survey nearest the band's scheduled month counts (not the latest).
    within = _within(within)
    if filters.at_band is not None and "months_band" not in within:
        within.append("months_band")
    return within


def _plain(table: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Group values as text (so the total's "all" sits beside them) in the given order, and
    ``other`` on every row (False throughout exact figures)."""
    out = table.copy() if "other" in table else table.assign(other=False)
    for key in by:
        values = [TOTAL if v == TOTAL else (None if pd.isna(v) else str(v)) for v in out[key]]
        out[key] = pd.Series(values, index=out.index, dtype=object)  # None stays None
    return out.reset_index(drop=True)


def _cube_keys(index_version: str) -> list[tuple[str, tuple[str, ...], str]]:
    """Every cube of an index version's frame, most asked first."""
    return [
        *(
            (index_version, within, kind)
            for kind in ("latest", "months")
            for within in ((), ("round",))
        ),
        (index_version, (), "rounds"),
    ]


def _histogram(records: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The scored composites per bin: ``np.histogram``'s ten over ``[0, 1]`` (which leaves
    out values outside it), the same with every value clipped into the range (the protected
    histogram's) and their key sums; and the number of scored records."""
    values = records["composite"].to_numpy(np.float64)
    values = values[~np.isnan(values)]
    if "record_key" in records:
        key = records["record_key"].to_numpy(np.float64)[records["composite"].notna().to_numpy()]
    else:
        key = np.zeros(len(values))
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    # np.histogram's bins: [low, high) except the last, which holds 1.0.
    where = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, HISTOGRAM_BINS - 1)
    keys = np.bincount(where, weights=key, minlength=HISTOGRAM_BINS)
    clipped = np.bincount(where, minlength=HISTOGRAM_BINS)
    counts = np.histogram(values, bins=HISTOGRAM_BINS, range=(0.0, 1.0))[0]
    return counts, clipped, keys, len(values)


def _day(value: date) -> int:
    return int(np.datetime64(value, "D").astype(np.int64))


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _count(value: Any) -> int | None:
    return None if pd.isna(value) else int(value)


def exclusion_sentence(answer: dict[str, Any], min_cell: int) -> str:
    """What :meth:`Analytics.enumerator_exclusion` found, in one or two sentences.

    Examples
    --------
    >>> side = {"returnees": 10, "mean": 0.5, "low": 0.4, "high": 0.6}
    >>> exclusion_sentence({"enumerators": 0, "interviews": 0, "returnees": 0,
    ...                     "with": side, "without": side}, 5)
    'No flagged enumerator ran an interview in this selection: nothing is left out.'
    """

    def count(n: int | None, what: str) -> str:
        if n is None:
            return f"fewer than {min_cell} {what}"
        return f"{n:,} {what.removesuffix('s') if n == 1 else what}"

    def mean(side: dict[str, Any]) -> str:
        if side["mean"] is None:
            return "not shown (too few returnees)"
        return f"{side['mean']:.3f} ({count(side['returnees'], 'returnees')})"

    if answer["enumerators"] == 0:
        return "No flagged enumerator ran an interview in this selection: nothing is left out."
    return (
        f"Leaving out {count(answer['enumerators'], 'flagged enumerators')} removes "
        f"{count(answer['interviews'], 'interviews')}; "
        f"{count(answer['returnees'], 'returnees')} had no other interview and are no longer "
        f"counted. Mean composite without them {mean(answer['without'])}, with them "
        f"{mean(answer['with'])}."
    )
