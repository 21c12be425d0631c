"""The write path of an ingest: one batch, chunk by chunk, inside one transaction.

Each chunk is checked against the store set-wise (erased returnees, return dates after another
round's interview, versions already stored) with the chunk's keys and identities loaded into
temporary tables and joined, then classified with pandas (new, duplicate, update) and loaded
with the driver's bulk path. Nothing here loops over rows in Python except to hand tuples to
the driver and to word the messages of rejected rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from reintegration.coding import RowIssue
from reintegration.index import LEVELS, ReintegrationIndex
from reintegration.prepare import PreparedChunk
from reintegration.questionnaire import Questionnaire
from reintegration.reading import FileNote
from reintegration.store.bulk import insert_rows, scratch_table, timestamp
from reintegration.store.schema import rejected_row, submission, tombstone

INDEX_MODEL = "rss-index"
EPOCH = date(1970, 1, 1)
ERASED = (
    "this returnee's data was erased; an admin must lift the erasure before it is uploaded again"
)
KEYS = sa.table("_ingest_keys", sa.column("key"))
SIDS = sa.table("_ingest_sids", sa.column("sid"))
OPTIONAL_TEXT = ("admin1", "enumerator_id", "form_version", "interview_mode", "assistance")
SUBMISSION_COLUMNS = (
    "id",
    "submission_id",
    "version",
    "current",
    "content_hash",
    "batch_id",
    "returnee_key",
    "interview_date",
    "return_date",
    "months_since_return",
    "sex",
    "age_at_return",
    "return_type",
    "country",
    *OPTIONAL_TEXT,
    "answers",
    "spec_version",
    "created_at",
)


@dataclass
class Counts:
    """What one chunk did."""

    accepted: int = 0
    rejected: int = 0
    duplicate: int = 0
    updated: int = 0


def _days(value: date) -> int:
    return (value - EPOCH).days


def _iso(days: int) -> str:
    return date.fromordinal(EPOCH.toordinal() + int(days)).isoformat()


class BatchWriter:
    """Writes one batch's chunks inside the caller's transaction."""

    def __init__(
        self,
        conn: sa.Connection,
        batch_id: str,
        scorer: ReintegrationIndex,
        questionnaire: Questionnaire,
        model_version: int | None,
    ) -> None:
        self.conn = conn
        self.batch_id = batch_id
        self.scorer = scorer
        self.questionnaire = questionnaire
        self.model_version = model_version
        self.next_id = (conn.execute(sa.select(sa.func.max(submission.c.id))).scalar() or 0) + 1
        self.erased = set(
            conn.execute(
                sa.select(tombstone.c.returnee_key).where(tombstone.c.lifted_at.is_(None))
            ).scalars()
        )
        self.affected: dict[str, int] = {}  # returnee key -> its first row in this batch
        # Returnees whose every interview so far is in one chunk of this batch: their rounds
        # and attributes were computed in memory; the others are renumbered in SQL at the end.
        self.local: set[str] = set()
        self.stored_keys: set[str] = set()
        self.notes: list[FileNote] = []
        self.batch_first: dict[str, int] = {}  # returnee key -> first interview day stored here
        self.form_version: str | None = None

    # -- checks that need the store -------------------------------------------------------------
    def _load(self, table: sa.TableClause, column: str, values: list[str]) -> None:
        scratch_table(self.conn, table.name, {column: "TEXT PRIMARY KEY"})
        insert_rows(self.conn, table.name, (column,), ((v,) for v in values))

    def _first_interviews(self, keys: list[str]) -> dict[str, int]:
        self._load(KEYS, "key", keys)
        rows = self.conn.execute(
            sa.select(submission.c.returnee_key, sa.func.min(submission.c.interview_date))
            .join(KEYS, KEYS.c.key == submission.c.returnee_key)
            .where(submission.c.current)
            .group_by(submission.c.returnee_key)
        ).all()
        return {key: _days(first) for key, first in rows}

    def _versions(self, sids: list[str]) -> pd.DataFrame:
        self._load(SIDS, "sid", sids)
        rows = self.conn.execute(
            sa.select(
                submission.c.submission_id,
                submission.c.id,
                submission.c.version,
                submission.c.content_hash,
                submission.c.current,
            ).join(SIDS, SIDS.c.sid == submission.c.submission_id)
        ).all()
        return _frame(rows, ["sid", "id", "version", "hash", "current"])

    def _reject_erased(self, chunk: PreparedChunk) -> None:
        positions = np.flatnonzero(chunk.accepted)
        if not self.erased or not len(positions):
            return
        hit = positions[np.isin(chunk.returnee_key[positions], list(self.erased))]
        column = chunk.header("returnee_id")
        chunk.reject(hit, [RowIssue(int(chunk.rows[i]), column, "", ERASED) for i in hit])

    def _reject_late_returns(self, chunk: PreparedChunk) -> None:
        """A return date after another round's interview of the same returnee is an error."""
        positions = np.flatnonzero(chunk.accepted)
        if not len(positions):
            return
        keys = chunk.returnee_key[positions]
        frame = pd.DataFrame(
            {
                "key": pd.Series(keys, dtype=object),
                "interview": chunk.days["interview_date"][positions],
                "returned": chunk.days["return_date"][positions],
            }
        )
        first = frame.groupby("key")["interview"].transform("min")
        stored = self._first_interviews(sorted(set(keys)))
        self.stored_keys = set(stored)
        for source in (stored, self.batch_first):
            if source:
                earlier = frame["key"].map(source)
                first = np.fmin(first, earlier.fillna(first))
        late = frame["returned"].to_numpy() > first.to_numpy()
        column = chunk.header("return_date")
        issues = [
            RowIssue(
                int(chunk.rows[i]),
                column,
                _iso(frame["returned"].iat[k]),
                f"return date {_iso(frame['returned'].iat[k])} is after this returnee's "
                f"interview of {_iso(first.iat[k])} in another round",
            )
            for k, i in zip(np.flatnonzero(late), positions[late], strict=True)
        ]
        chunk.reject(positions[late], issues)

    # -- writing -------------------------------------------------------------------------------
    def write(self, chunk: PreparedChunk) -> Counts:
        """Store a chunk's accepted rows (new or updated); count duplicates and rejections."""
        self._reject_erased(chunk)
        self._reject_late_returns(chunk)
        counts = Counts()
        positions = np.flatnonzero(chunk.accepted)
        frame = pd.DataFrame(
            {
                "pos": positions,
                "sid": pd.Series(chunk.submission_id[positions], dtype=object),
                "hash": pd.Series(chunk.content_hash[positions], dtype=object),
            }
        )
        known = self._versions(sorted(set(frame["sid"])))
        stored_pairs = set(zip(known["sid"], known["hash"], strict=True))
        pairs = pd.Series(list(zip(frame["sid"], frame["hash"], strict=True)), dtype=object)
        duplicate = (
            pairs.isin(stored_pairs).to_numpy() | frame.duplicated(["sid", "hash"]).to_numpy()
        )
        counts.duplicate = int(duplicate.sum())
        new = frame[~duplicate].reset_index(drop=True)
        rank = new.groupby("sid").cumcount().to_numpy() + 1
        top = known.groupby("sid")["version"].max()
        new["version"] = new["sid"].map(top).fillna(0).astype(int).to_numpy() + rank
        new["current"] = ~new.duplicated("sid", keep="last")
        stored_current = known[known["current"].astype(bool)]
        replaces = new["sid"].isin(set(stored_current["sid"])).to_numpy() | (rank > 1)
        counts.updated = int(replaces.sum())
        counts.accepted = len(new)
        superseded = stored_current[stored_current["sid"].isin(set(new["sid"]))]["id"].tolist()
        if superseded:
            for k in range(0, len(superseded), 500):
                part = [int(x) for x in superseded[k : k + 500]]
                self.conn.execute(
                    submission.update().where(submission.c.id.in_(part)).values(current=False)
                )
        if len(new):
            self._insert(chunk, new)
        rejected = np.flatnonzero(~chunk.accepted)
        counts.rejected = len(rejected)
        if counts.rejected:
            self._store_rejected(chunk, rejected)
        return counts

    def _insert(self, chunk: PreparedChunk, new: pd.DataFrame) -> None:
        pos = new["pos"].to_numpy()
        take = pa.array(pos)
        meta = {name: pc.take(values, take) for name, values in chunk.metadata.items()}
        n = len(new)
        ids = list(range(self.next_id, self.next_id + n))
        self.next_id += n
        now = timestamp(self.conn, datetime.now(UTC))
        keys = chunk.returnee_key[pos]

        def optional(name: str) -> list[Any]:
            if name not in meta:
                return [None] * n
            return pc.if_else(pc.equal(meta[name], ""), None, meta[name]).to_pylist()

        columns: list[list[Any] | Any] = [
            ids,
            new["sid"].tolist(),
            new["version"].tolist(),
            new["current"].tolist(),
            new["hash"].tolist(),
            [self.batch_id] * n,
            keys.tolist(),
            meta["interview_date"].to_pylist(),
            meta["return_date"].to_pylist(),
            chunk.months_since_return[pos].tolist(),
            meta["sex"].to_pylist(),
            pc.cast(meta["age_at_return"], pa.int64()).to_pylist(),
            meta["return_type"].to_pylist(),
            meta["country"].to_pylist(),
            *(optional(name) for name in OPTIONAL_TEXT),
            pc.take(chunk.answers_json, take).to_pylist(),
            [self.questionnaire.spec_version] * n,
            [now] * n,
        ]
        if self.form_version is None:
            versions = [v for v in optional("form_version") if v]
            self.form_version = versions[0] if versions else None
        panel = pd.DataFrame(
            {
                "key": pd.Series(keys, dtype=object),
                "sid": new["sid"].to_numpy(),
                "current": new["current"].to_numpy(),
                "interview": chunk.days["interview_date"][pos],
                "interview_date": columns[7],
                "return_date": columns[8],
                "sex": columns[10],
                "age_at_return": columns[11],
                "return_type": columns[12],
                "country": columns[13],
                "row": chunk.rows[pos],
            }
        )
        fresh = ~panel["key"].isin(self.stored_keys | set(self.affected))
        rounds = self._local_rounds(panel, fresh.to_numpy(), now)
        columns.append(rounds)
        self._ensure_returnees(sorted(set(keys[~fresh.to_numpy()].tolist())), now)
        insert_rows(
            self.conn,
            "submission",
            (*SUBMISSION_COLUMNS, "survey_round"),
            zip(*columns, strict=True),
        )
        self._insert_scores(chunk, pos, ids, now)
        rows = chunk.rows[pos]
        days = chunk.days["interview_date"][pos]
        again = set(keys[~fresh.to_numpy()].tolist()) & self.local
        self.local -= again  # seen in an earlier chunk too: renumbered in SQL at the end
        for key, row, day in zip(keys.tolist(), rows.tolist(), days.tolist(), strict=True):
            self.affected.setdefault(key, row)
            if day < self.batch_first.get(key, day + 1):
                self.batch_first[key] = day

    def _local_rounds(self, panel: pd.DataFrame, fresh: np.ndarray, now: Any) -> list[Any]:
        """Rounds, returnee rows and disagreement notes of returnees new to the store.

        Their whole history is in this chunk, so it is ranked in memory; the returnee row is
        inserted complete. Returns the round of every row of ``panel`` (None where not known
        yet: superseded versions, and returnees left to :meth:`finish`).
        """
        rounds: list[Any] = [None] * len(panel)
        history = panel[fresh & panel["current"].to_numpy()]
        if history.empty:
            return rounds
        history = history.sort_values(["key", "interview", "sid"], kind="stable")
        ranks = history.groupby("key").cumcount() + 1
        for position, rank in zip(history.index.tolist(), ranks.tolist(), strict=True):
            rounds[position] = rank
        latest = history.groupby("key").tail(1)
        child = self.questionnaire.child_age_below
        insert_rows(
            self.conn,
            "returnee",
            ("key", "sex", "age_at_return", "child", "return_type", "country", "updated_at"),
            zip(
                latest["key"].tolist(),
                latest["sex"].tolist(),
                latest["age_at_return"].tolist(),
                [age < child for age in latest["age_at_return"].tolist()],
                latest["return_type"].tolist(),
                latest["country"].tolist(),
                [now] * len(latest),
                strict=True,
            ),
        )
        varying = history.groupby("key")[["sex", "return_type", "return_date"]].nunique()
        for key in varying.index[(varying > 1).any(axis=1)]:
            rows = history[history["key"] == key]
            self.notes += self._disagreements(
                int(rows["row"].min()),
                [
                    _Round(
                        date.fromisoformat(r.interview_date),
                        r.sex,
                        r.return_type,
                        date.fromisoformat(r.return_date),
                    )
                    for r in rows.itertuples()
                ],
            )
        self.local |= set(latest["key"].tolist())
        return rounds

    def _ensure_returnees(self, keys: list[str], now: Any) -> None:
        if not keys:
            return
        self._load(KEYS, "key", keys)
        self.conn.execute(
            sa.text(
                "INSERT INTO returnee (key, updated_at) SELECT k.key, :now FROM _ingest_keys k "
                "WHERE NOT EXISTS (SELECT 1 FROM returnee r WHERE r.key = k.key)"
            ),
            {"now": now},
        )

    def _insert_scores(
        self, chunk: PreparedChunk, pos: np.ndarray, ids: list[int], now: Any
    ) -> None:
        scores = chunk.scores
        dims = tuple(self.scorer.dimensions_)
        n = len(pos)
        names = [
            *dims,
            "composite",
            *(f"coverage_{d}" for d in dims),
        ]
        columns: list[list[Any]] = [
            ids,
            [INDEX_MODEL] * n,
            [self.scorer.label_] * n,
            [self.model_version] * n,
            *(pa.array(scores[name][pos], from_pandas=True).to_pylist() for name in names),
            _labels(scores["level"][pos], LEVELS),
            _labels(scores["weakest_dimension"][pos], dims),
            [None if v < 0 else bool(v) for v in scores["sustainable"][pos].tolist()],
            [now] * n,
        ]
        insert_rows(
            self.conn,
            "score",
            (
                "submission_pk",
                "model",
                "index_version",
                "model_version",
                *names,
                "level",
                "weakest_dimension",
                "sustainable",
                "created_at",
            ),
            zip(*columns, strict=True),
        )

    def _store_rejected(self, chunk: PreparedChunk, positions: np.ndarray) -> None:
        by_row: dict[int, list[dict[str, str]]] = {}
        for issue in chunk.issues:
            by_row.setdefault(issue.row, []).append(
                {"column": issue.column, "value": issue.value, "message": issue.message}
            )
        kept = [i for i in positions if not chunk.refused[i]]  # no consent: never kept
        if not kept:
            return
        take = pa.array(kept)
        cells = {h: pc.take(v, take).to_pylist() for h, v in chunk.raw_cells.items()}
        rows = [
            {
                "batch_id": self.batch_id,
                "row": int(chunk.rows[i]),
                "returnee_key": chunk.returnee_key[i] or None,
                "cells": {h: values[k] for h, values in cells.items()},
                "errors": by_row.get(int(chunk.rows[i]), []),
            }
            for k, i in enumerate(kept)
        ]
        self.conn.execute(rejected_row.insert(), rows)

    # -- after the last chunk -----------------------------------------------------------------
    def finish(self) -> list[FileNote]:
        """Renumber rounds, refresh the returnees this batch touched; warn where rounds differ."""
        remaining = sorted(set(self.affected) - self.local)
        if not remaining:
            return sorted(self.notes, key=lambda note: note.row or 0)
        self._load(KEYS, "key", remaining)
        self.conn.execute(
            sa.text(
                "UPDATE submission SET survey_round = r.rn FROM ("
                " SELECT s.id AS id, ROW_NUMBER() OVER ("
                "  PARTITION BY s.returnee_key ORDER BY s.interview_date, s.submission_id) AS rn"
                " FROM submission s JOIN _ingest_keys k ON k.key = s.returnee_key"
                " WHERE s.current) AS r "
                "WHERE submission.id = r.id"
            )
        )
        self.conn.execute(
            sa.text(
                "UPDATE returnee SET sex = l.sex, age_at_return = l.age_at_return,"
                " child = (l.age_at_return < :child), return_type = l.return_type,"
                " country = l.country, updated_at = :now FROM ("
                " SELECT s.returnee_key AS key, s.sex, s.age_at_return, s.return_type, s.country,"
                "  ROW_NUMBER() OVER (PARTITION BY s.returnee_key"
                "   ORDER BY s.interview_date DESC, s.submission_id DESC) AS rn"
                " FROM submission s JOIN _ingest_keys k ON k.key = s.returnee_key"
                " WHERE s.current) AS l "
                "WHERE l.rn = 1 AND returnee.key = l.key"
            ),
            {
                "child": self.questionnaire.child_age_below,
                "now": timestamp(self.conn, datetime.now(UTC)),
            },
        )
        differing = (
            self.conn.execute(
                sa.select(submission.c.returnee_key)
                .join(KEYS, KEYS.c.key == submission.c.returnee_key)
                .where(submission.c.current)
                .group_by(submission.c.returnee_key)
                .having(
                    sa.or_(
                        sa.func.count(sa.distinct(submission.c.sex)) > 1,
                        sa.func.count(sa.distinct(submission.c.return_type)) > 1,
                        sa.func.count(sa.distinct(submission.c.return_date)) > 1,
                    )
                )
            )
            .scalars()
            .all()
        )
        notes: list[FileNote] = list(self.notes)
        for key in sorted(differing, key=lambda k: self.affected[k]):
            history = self.conn.execute(
                sa.select(
                    submission.c.interview_date,
                    submission.c.sex,
                    submission.c.return_type,
                    submission.c.return_date,
                )
                .where(submission.c.returnee_key == key, submission.c.current)
                .order_by(submission.c.interview_date, submission.c.submission_id)
            ).all()
            notes += self._disagreements(self.affected[key], history)
        return sorted(notes, key=lambda note: note.row or 0)

    def _disagreements(self, row: int, history: Sequence[Any]) -> list[FileNote]:
        notes = []
        for column in ("sex", "return_type", "return_date"):
            values = [getattr(row, column) for row in history]
            if len(set(values)) > 1:
                shown = ", ".join(
                    f"{_show(v)} on {row.interview_date.isoformat()}"
                    for v, row in zip(values, history, strict=True)
                )
                what = column.replace("_", " ")
                notes.append(
                    FileNote(
                        f"this returnee's {what} differs between rounds ({shown}); "
                        "the latest interview's is kept",
                        row=row,
                        column=column,
                    )
                )
        return notes


@dataclass(frozen=True)
class _Round:
    """What a disagreement note shows of one interview."""

    interview_date: date
    sex: str
    return_type: str
    return_date: date


def _frame(rows: Sequence[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    """A frame of query rows with text kept as Python objects: pandas' Arrow-backed strings
    are slow for the element-wise work done here."""
    frame = pd.DataFrame.from_records([tuple(row) for row in rows], columns=columns)
    return frame.astype({c: object for c in columns if frame[c].dtype == "str"})


def _labels(codes: np.ndarray, labels: tuple[str, ...]) -> list[str | None]:
    return [labels[c] if c >= 0 else None for c in codes.tolist()]


def _show(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
