"""The analytics frame of the current data version, kept fresh by applying what changed.

:class:`reintegration.analytics.Analytics` answers from an in-memory frame of the current
submissions (``reintegration.panel_frame``). Reading it whole takes 7–16 s at a million
interviews, so after the first read a :class:`FrameCache` follows the store's change log
(``reintegration.store.data_version``) instead:

- a stored batch (by this process, another server or the CLI): the returnees it touched are
  read again (their current rows, attributes, scores and assistance: new returnees, new
  rounds, edits, and rounds renumbered) and replace their rows in a copy of the frame;
- an erasure: the rows of the submission ids it removed are left out of the copy;
- anything else (a rescoring or an index promotion, a version missing from the log, an erasure
  of more than :data:`MAX_CHANGED_ROWS` rows, a batch touching more): the frame is read whole
  again in a background thread. Meanwhile answers come from the previous frame, and
  :meth:`FrameCache.version` says which data version that is (the answers' ``data_version``).
  Only the request that noticed the change waits for the reload, at most
  :data:`RELOAD_WAIT_S`.

The copy is swapped in at once: a request holds either the old frame or the new one. While
one thread applies a change, the others answer from the previous frame rather than wait. The
updated frame equals a fresh read (same rows, values, order and categories):
``tests/test_freshness.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from reintegration import heap
from reintegration.followup import band_codes, band_distance, load_follow_up
from reintegration.panel_frame import (
    FIGURES,
    place,
    read_assistance,
    read_base,
    read_scores,
    touched_returnees,
)
from reintegration.store.data_version import BATCH, ERASURE, changes_since, read_data_version

log = logging.getLogger(__name__)

# Rows an incremental update may read again or leave out; beyond, a full reload is cheaper.
MAX_CHANGED_ROWS = 100_000
# How long the request that starts a full reload waits for it before answering from the
# previous frame (a small store reloads within it, so its answers stay current).
RELOAD_WAIT_S = 0.5
SCORE_COLUMNS = (*FIGURES, "level", "sustainable")

ReadBase = Callable[[sa.Connection, int], pd.DataFrame]


class _State:
    """One data version's frames: the base, each index version's frame, the assistance."""

    def __init__(self, version: int, base: pd.DataFrame | None, refs: np.ndarray | None) -> None:
        self.version = version
        self.base = base  # None: a frame without its scores
        self.refs = refs  # the returnee reference of each rkey (None: cannot be updated)
        self.frames: dict[str, pd.DataFrame] = {}
        self.assistance: pd.Series | None = None
        self.lock = threading.Lock()  # one thread loads what is missing

    def base_frame(self) -> pd.DataFrame:
        """The submissions without scores (from a frame when it was not kept apart)."""
        if self.base is None:
            frame = next(iter(self.frames.values()))
            base = frame.drop(columns=list(SCORE_COLUMNS))
            base.attrs.clear()
            self.base = base
        return self.base


class FrameCache:
    """The frames :class:`~reintegration.analytics.Analytics` answers from, kept fresh.

    One per process, shared by threads.

    Parameters
    ----------
    reader : sqlalchemy.Engine
        The store, for reading (``reintegration.store.engine.for_reading``).
    child_age_below : int
        The questionnaire's age under which a returnee is a child.
    read_whole : callable, optional
        Reads the whole base frame (``(conn, child_age_below) -> DataFrame``); default
        :func:`reintegration.panel_frame.read_base`.
    """

    def __init__(
        self,
        reader: sa.Engine,
        child_age_below: int,
        read_whole: ReadBase | None = None,
    ) -> None:
        self._reader = reader
        self._child_below = child_age_below
        self._read_whole = read_whole or read_base
        self._state: _State | None = None
        self._first = threading.Lock()
        self._advancing = threading.Lock()
        self._reload: threading.Thread | None = None
        self._pin = threading.local()  # the state an answer in this thread is computed from
        self.reloads = 0  # full reads after the first (for tests and benchmarks)
        self.updates = 0  # changes applied incrementally

    # -- what requests call -----------------------------------------------------------------

    def version(self) -> int:
        """The data version the frames reflect, after bringing them up to date when they can
        be (before any frame is read: the store's version)."""
        store = self.store_version()
        state = self._state
        if state is None:
            return store
        return self._fresh(state, store).version

    @contextmanager
    def pinned(self) -> Iterator[int]:
        """While inside, this thread's frames come from one state, brought up to date once
        on entering (one read of the store's version per answer rather than one per frame
        asked for, and every part of an answer from the same frame); gives its data
        version. Nested, the outermost holds. Before any frame is read, pins nothing and
        gives the store's version."""
        held = getattr(self._pin, "state", None)
        if held is not None:
            yield held.version
            return
        store = self.store_version()
        state = self._state
        if state is None:
            yield store
            return
        state = self._fresh(state, store)
        self._pin.state = state
        try:
            yield state.version
        finally:
            self._pin.state = None

    def store_version(self) -> int:
        """The store's data version now (one indexed read)."""
        with self._reader.connect() as conn:
            return read_data_version(conn)

    def frame(self, index_version: str) -> pd.DataFrame:
        """The current submissions with their ``index_version`` scores (see
        :meth:`reintegration.analytics.Analytics.frame`)."""
        state = self._current()
        found = state.frames.get(index_version)
        if found is not None:
            return found
        with state.lock:
            found = state.frames.get(index_version)
            if found is None:
                base = state.base_frame()
                with self._connect(whole=True) as conn:
                    scores = read_scores(conn, base["id"].to_numpy(), index_version)
                found = _joined(base, scores, index_version)
                state.frames[index_version] = found
                state.base = None  # the frame holds it; memory for one copy, not two
                del base, scores
                heap.give_back()
        return found

    def assistance(self) -> pd.Series:
        """The assistance codes of the current submissions that have any, by submission id."""
        state = self._current()
        found = state.assistance
        if found is not None:
            return found
        with state.lock:
            if state.assistance is None:
                with self._connect(whole=True) as conn:
                    state.assistance = read_assistance(conn)
                heap.give_back()
            return state.assistance

    def settle(self, timeout: float | None = None) -> None:
        """Wait for a running full reload (tests, benchmarks)."""
        thread = self._reload
        if thread is not None:
            thread.join(timeout)

    # -- keeping up ---------------------------------------------------------------------------

    def _current(self) -> _State:
        held = getattr(self._pin, "state", None)
        if held is not None:
            return held
        state = self._state
        if state is None:
            with self._first:
                if self._state is None:
                    self._state = self._read_all((), with_assistance=False)
                return self._state
        return self._fresh(state, self.store_version())

    def _fresh(self, state: _State, store: int) -> _State:
        if state.version == store or self._reloading():
            return state
        if not self._advancing.acquire(blocking=False):
            return state  # another thread is applying the change: answer from this frame
        started = None
        try:
            state = self._state or state
            if state.version == store:
                return state
            clock = time.perf_counter()
            try:
                updated = self._updated(state)
            except Exception:  # a surprise must not fail the request: reload instead
                log.exception("applying the changes since data version %d failed", state.version)
                updated = None
            if updated is not None:
                self._swap(updated)
                self.updates += 1
                log.info(
                    "analytics frame: data version %d -> %d applied in %.2f s",
                    state.version,
                    updated.version,
                    time.perf_counter() - clock,
                )
            else:
                started = self._start_reload(state)
        finally:
            self._advancing.release()
        if started is not None:
            started.join(RELOAD_WAIT_S)
        return self._state or state

    def _reloading(self) -> bool:
        return self._reload is not None and self._reload.is_alive()

    def _start_reload(self, state: _State) -> threading.Thread:
        wanted = list(state.frames)
        with_assistance = state.assistance is not None

        def run() -> None:
            clock = time.perf_counter()
            try:
                new = self._read_all(wanted, with_assistance=with_assistance)
                self._swap(new)
                self.reloads += 1
                log.info(
                    "analytics frame: data version %d -> %d reloaded in full in %.1f s",
                    state.version,
                    new.version,
                    time.perf_counter() - clock,
                )
            except Exception:  # the next request tries again; answers stay on the old frame
                log.exception("reloading the analytics frame failed")

        thread = threading.Thread(target=run, name="analytics-reload", daemon=True)
        self._reload = thread
        thread.start()
        return thread

    def _swap(self, new: _State) -> None:
        # Updates and reloads never overlap (see _fresh): what was read last is the newest.
        with self._first:
            self._state = new

    def _connect(self, *, whole: bool = False) -> Any:
        """A connection for reading; ``whole``: for reading whole tables (the frame, a
        version's scores, the assistance), closed afterwards instead of going back to the
        pool."""
        conn = self._reader.connect()
        if conn.dialect.name == "postgresql":  # every statement sees the same snapshot
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        elif whole:
            # A SQLite connection keeps the page cache a read filled (up to the store's
            # cache_size, 256 MB) for as long as it is pooled: reading a million interviews
            # left that much in the server for good. Closed, it gives it back.
            conn.detach()
        return conn

    def _read_all(
        self, index_versions: list[str] | tuple[str, ...], *, with_assistance: bool
    ) -> _State:
        with self._connect(whole=True) as conn:
            version = read_data_version(conn)
            raw = self._read_whole(conn, self._child_below)
            refs = raw.attrs.pop("refs", None)
            raw.attrs.pop("touched", None)
            base = derived(raw)
            state = _State(version, base, refs)
            for label in index_versions:
                scores = read_scores(conn, base["id"].to_numpy(), label)
                state.frames[label] = _joined(base, scores, label)
            if state.frames:
                state.base = None  # kept inside the frames
            if with_assistance:
                state.assistance = read_assistance(conn)
        del raw, base
        heap.give_back()
        return state

    def _updated(self, state: _State) -> _State | None:
        """``state`` with the batches and erasures since its version applied, or None when
        what changed calls for a full reload."""
        if state.refs is None:
            return None
        with self._connect() as conn:
            upto = read_data_version(conn)
            if upto < state.version:  # the store went back (restored): read it again
                return None
            changes = changes_since(conn, state.version, upto)
            if changes is None or any(c.kind not in (BATCH, ERASURE) for c in changes):
                return None
            batches = [c.batch_id for c in changes if c.kind == BATCH and c.batch_id]
            removed = np.array([i for c in changes for i in c.removed], dtype=np.int64)
            if len(removed) > MAX_CHANGED_ROWS:
                return None
            returnees = touched_returnees(conn, batches)
            if len(returnees) > MAX_CHANGED_ROWS:
                return None
            raw = read_base(conn, self._child_below, returnees)
            if len(raw) > MAX_CHANGED_ROWS:
                return None
            with state.lock:
                labels = list(state.frames)
                assistance = state.assistance
            scores = {
                label: read_scores(conn, raw["id"].to_numpy(), label, returnees) for label in labels
            }
            texts = read_assistance(conn, returnees) if assistance is not None else None
        new_refs, touched = raw.attrs.pop("refs"), raw.attrs.pop("touched")
        new = derived(raw)
        # Every frame of a state has the base's rows in the base's order: any gives ids, rkeys.
        any_frame = state.frames[labels[0]] if labels else state.base_frame()
        rkey, ids = any_frame["rkey"].to_numpy(), any_frame["id"].to_numpy()
        drop = np.isin(ids, removed)
        at = np.searchsorted(state.refs, touched)
        known = at < len(state.refs)
        known[known] = state.refs[at[known]] == touched[known]
        drop |= np.isin(rkey, at[known])  # the returnees read again
        placement = place(rkey, state.refs, drop, new["rkey"].to_numpy(), new_refs)
        out = _State(upto, None, placement.refs)
        # Each frame is combined whole (base and scores at once); the base, when no frame is
        # kept, on its own.
        wanted: list[str | None] = [*labels] if labels else [None]
        for label in wanted:
            if label is None:
                merged = placement.combine(state.base_frame(), new)
            else:
                fresh = _joined(new, scores[label], label)
                merged = placement.combine(state.frames[label], fresh)
                merged.attrs["index_version"] = label
            if label is None:
                out.base = merged
            else:
                out.frames[label] = merged
        if assistance is not None and texts is not None:
            out.assistance = pd.concat([assistance.drop(ids[drop], errors="ignore"), texts])
        return out


def derived(base: pd.DataFrame) -> pd.DataFrame:
    """``base`` with the columns computed from it: ``months_band``, ``band_keep`` (within a
    band, the survey nearest its scheduled month counts, then the later: see
    :func:`keep_key`) and ``cohort`` (the quarter of return)."""
    months = base["months_since_return"].to_numpy()
    bands = pd.Categorical.from_codes(band_codes(months), load_follow_up().labels)
    return base.assign(
        months_band=bands,
        band_keep=keep_key(months, base["interview_day"].to_numpy()),
        cohort=pd.Categorical(_cohort(base["return_day"])),
    )


def keep_key(months: np.ndarray, days: np.ndarray) -> np.ndarray:
    """A sort key per row, larger for the survey to keep within a band: nearer the band's
    scheduled month (distances rounded to 1e-9 month, as
    :func:`reintegration.followup.nearest_first` does), then the later interview.

    It orders the rows of one returnee as ``nearest_first``'s ranks do (equal keys keep the
    frame's order, as equal ranks follow it), but depends on the row alone, so a frame updated
    in place needs no ranking of every row again.

    Examples
    --------
    >>> months, days = np.array([1.0, 3.0, 2.5, 12.5]), np.array([30, 91, 76, 380])
    >>> from reintegration.followup import nearest_first
    >>> bool((np.argsort(keep_key(months, days)) == np.argsort(nearest_first(months, days))).all())
    True
    """
    distance = np.round(band_distance(months), 9)
    near = np.where(np.isnan(distance), 2**36, -np.rint(distance * 1e9)).astype(np.int64)
    return near * 2**22 + np.asarray(days, dtype=np.int64)


def _cohort(return_days: pd.Series) -> np.ndarray:
    dates = pd.to_datetime(return_days.to_numpy(), unit="D")
    return np.asarray(dates.year.astype(str) + "Q" + dates.quarter.astype(str), dtype=object)


def _joined(base: pd.DataFrame, scores: pd.DataFrame, index_version: str) -> pd.DataFrame:
    frame = pd.concat([base, scores.set_axis(base.index)], axis=1)
    frame.attrs["index_version"] = index_version  # whose flagged enumerators _mask drops
    return frame
