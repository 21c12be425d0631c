"""Store operations of an ingest: the batch record, deduplication, versions, rounds, audit.

Everything here runs inside the caller's transaction, except the batch record's own
bookkeeping (:func:`mark_failed`, :func:`recover_interrupted`), which must survive a failed
ingest.
"""

from __future__ import annotations

import json
import os
import socket
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from reintegration.coding import RowIssue
from reintegration.index import ReintegrationIndex
from reintegration.prepare import PreparedChunk, score_values
from reintegration.questionnaire import Questionnaire
from reintegration.reading import FileNote
from reintegration.store.schema import (
    audit,
    batch,
    rejected_row,
    returnee,
    score,
    submission,
    tombstone,
)

INDEX_MODEL = "rss-index"
LOOKUP_BATCH = 500
INGEST_LOCK = 7_221_044  # PostgreSQL advisory lock id shared by every ingest
ERASED = (
    "this returnee's data was erased; an admin must lift the erasure before it is uploaded again"
)


def _now() -> datetime:
    return datetime.now(UTC)


def _audit(conn: sa.Connection, actor: str, action: str, **values: Any) -> None:
    conn.execute(audit.insert().values(at=_now(), actor=actor, action=action, **values))


def mark_failed(engine: sa.Engine, batch_id: str, reason: str, actor: str) -> None:
    """Record that a batch failed, and why; it stores none of its rows."""
    with engine.begin() as conn:
        conn.execute(
            batch.update()
            .where(batch.c.id == batch_id)
            .values(status="failed", reason=reason, finished_at=_now(), pid=None)
        )
        _audit(conn, actor, "upload_failed", batch_id=batch_id, detail={"reason": reason})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_interrupted(engine: sa.Engine) -> int:
    """Mark failed the batches still ``processing`` whose process on this host is gone."""
    host = socket.gethostname()
    with engine.connect() as conn:
        stale = conn.execute(
            sa.select(batch.c.id, batch.c.pid).where(
                batch.c.status == "processing", batch.c.host == host
            )
        ).all()
    dead = [
        row.id
        for row in stale
        if row.pid is None or (row.pid != os.getpid() and not _alive(row.pid))
    ]
    if dead:
        with engine.begin() as conn:
            conn.execute(
                batch.update()
                .where(batch.c.id.in_(dead), batch.c.status == "processing")
                .values(
                    status="failed",
                    reason="interrupted: the process ingesting it stopped before it finished",
                    finished_at=_now(),
                    pid=None,
                )
            )
    return len(dead)


def lock_for_ingest(conn: sa.Connection) -> None:
    """Serialise ingests: SQLite's ``BEGIN IMMEDIATE`` already holds the lock; PostgreSQL
    takes a transaction-level advisory lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": INGEST_LOCK})


@dataclass
class Counts:
    accepted: int = 0
    rejected: int = 0
    duplicate: int = 0
    updated: int = 0


def _day(text: str) -> date:
    return date.fromisoformat(text)


class BatchWriter:
    """Writes one batch's chunks inside one transaction, deduplicating against the store."""

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
        self.affected: dict[str, int] = {}  # returnee key -> first row of it in this batch
        self.updated_ids: list[str] = []
        self.batch_first: dict[str, date] = {}  # returnee key -> first interview in this batch
        self.form_version: str | None = None

    # -- lookups -------------------------------------------------------------------------------
    def _chunks(self, values: list[str]) -> list[list[str]]:
        return [values[k : k + LOOKUP_BATCH] for k in range(0, len(values), LOOKUP_BATCH)]

    def _erased(self, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for part in self._chunks(keys):
            found |= set(
                self.conn.execute(
                    sa.select(tombstone.c.returnee_key).where(
                        tombstone.c.returnee_key.in_(part), tombstone.c.lifted_at.is_(None)
                    )
                ).scalars()
            )
        return found

    def _versions(self, ids: list[str]) -> dict[str, list[_Version]]:
        found: dict[str, list[_Version]] = defaultdict(list)
        for part in self._chunks(ids):
            rows = self.conn.execute(
                sa.select(
                    submission.c.submission_id,
                    submission.c.id,
                    submission.c.version,
                    submission.c.content_hash,
                    submission.c.current,
                ).where(submission.c.submission_id.in_(part))
            ).all()
            for row in rows:
                found[row.submission_id].append(
                    _Version(row.id, row.version, row.content_hash, row.current)
                )
        return found

    def _first_interviews(self, keys: list[str]) -> dict[str, date]:
        found: dict[str, date] = {}
        for part in self._chunks(keys):
            rows = self.conn.execute(
                sa.select(submission.c.returnee_key, sa.func.min(submission.c.interview_date))
                .where(submission.c.returnee_key.in_(part), submission.c.current)
                .group_by(submission.c.returnee_key)
            ).all()
            found.update(dict(rows))
        return found

    # -- writing -------------------------------------------------------------------------------
    def write(self, chunk: PreparedChunk) -> Counts:
        """Store a chunk's accepted rows (new or updated); count duplicates and rejections."""
        counts = Counts()
        meta = chunk.metadata
        positions = np.flatnonzero(chunk.accepted)
        keys = sorted({chunk.returnee_key[i] for i in positions})
        erased = self._erased(keys)
        first_interview = self._first_interviews(keys)
        for key, day in self.batch_first.items():
            if key in first_interview or key in keys:
                first_interview[key] = min(day, first_interview.get(key, day))
        for i in positions:
            key = chunk.returnee_key[i]
            if key in erased:
                chunk.reject(
                    int(i), RowIssue(int(chunk.rows[i]), chunk.header("returnee_id"), "", ERASED)
                )
                continue
            first = first_interview.get(key)
            if first is not None and _day(meta["return_date"][i]) > first:
                chunk.reject(
                    int(i),
                    RowIssue(
                        int(chunk.rows[i]),
                        chunk.header("return_date"),
                        meta["return_date"][i],
                        f"return date {meta['return_date'][i]} is after this returnee's "
                        f"interview of {first.isoformat()} in another round",
                    ),
                )
        positions = np.flatnonzero(chunk.accepted)
        versions = self._versions(sorted({chunk.submission_id[i] for i in positions}))
        new_rows: list[dict[str, Any]] = []
        score_rows: list[dict[str, Any]] = []
        superseded: list[int] = []
        now = _now()
        for i in positions:
            sid = chunk.submission_id[i]
            digest = chunk.content_hash[i]
            known = versions[sid]
            if any(v.content_hash == digest for v in known):
                counts.duplicate += 1
                continue
            current = [v for v in known if v.current]
            for v in current:
                v.current = False
                if v.pending is not None:  # an earlier row of this file, not stored yet
                    v.pending["current"] = False
                else:
                    superseded.append(v.id)
            if current:
                counts.updated += 1
                self.updated_ids.append(sid)
            pk = self.next_id
            self.next_id += 1
            row = self._submission_row(
                chunk, int(i), pk, max((v.version for v in known), default=0) + 1, now
            )
            new_rows.append(row)
            known.append(_Version(pk, row["version"], digest, True, pending=row))
            score_rows.append(
                {
                    "submission_pk": pk,
                    "model": INDEX_MODEL,
                    "index_version": self.scorer.label_,
                    "model_version": self.model_version,
                    "created_at": now,
                    **score_values(chunk.scores, tuple(self.scorer.dimensions_), int(i)),
                }
            )
            key = chunk.returnee_key[i]
            self.affected.setdefault(key, int(chunk.rows[i]))
            self.batch_first[key] = min(
                row["interview_date"], self.batch_first.get(key, row["interview_date"])
            )
            counts.accepted += 1
        if superseded:
            self.conn.execute(
                submission.update().where(submission.c.id.in_(superseded)).values(current=False)
            )
        self._ensure_returnees({r["returnee_key"] for r in new_rows}, now)
        if new_rows:
            self.conn.execute(submission.insert(), new_rows)
            self.conn.execute(score.insert(), score_rows)
        rejected_positions = np.flatnonzero(~chunk.accepted)
        counts.rejected = len(rejected_positions)
        if counts.rejected:
            self._store_rejected(chunk, rejected_positions)
        return counts

    def _submission_row(
        self, chunk: PreparedChunk, i: int, pk: int, version: int, now: datetime
    ) -> dict[str, Any]:
        meta = chunk.metadata
        row = {
            "id": pk,
            "submission_id": chunk.submission_id[i],
            "version": version,
            "current": True,
            "content_hash": chunk.content_hash[i],
            "batch_id": self.batch_id,
            "returnee_key": chunk.returnee_key[i],
            "interview_date": _day(meta["interview_date"][i]),
            "return_date": _day(meta["return_date"][i]),
            "months_since_return": float(chunk.months_since_return[i]),
            "sex": meta["sex"][i],
            "age_at_return": int(meta["age_at_return"][i]),
            "return_type": meta["return_type"][i],
            "country": meta["country"][i],
            "admin1": _optional(meta, "admin1", i),
            "enumerator_id": _optional(meta, "enumerator_id", i),
            "form_version": _optional(meta, "form_version", i),
            "interview_mode": _optional(meta, "interview_mode", i),
            "assistance": _optional(meta, "assistance", i),
            "answers": json.loads(chunk.answers_json[i]),
            "spec_version": self.questionnaire.spec_version,
            "created_at": now,
        }
        if self.form_version is None and row["form_version"]:
            self.form_version = row["form_version"]
        return row

    def _ensure_returnees(self, keys: set[str], now: datetime) -> None:
        if not keys:
            return
        existing: set[str] = set()
        for part in self._chunks(sorted(keys)):
            existing |= set(
                self.conn.execute(
                    sa.select(returnee.c.key).where(returnee.c.key.in_(part))
                ).scalars()
            )
        missing = [{"key": k, "updated_at": now} for k in sorted(keys - existing)]
        if missing:
            self.conn.execute(returnee.insert(), missing)

    def _store_rejected(self, chunk: PreparedChunk, positions: np.ndarray) -> None:
        by_row: dict[int, list[dict[str, str]]] = defaultdict(list)
        for issue in chunk.issues:
            by_row[issue.row].append(
                {"column": issue.column, "value": issue.value, "message": issue.message}
            )
        rows = []
        for i in positions:
            if chunk.refused[i]:  # no consent: the row is reported, never kept
                continue
            number = int(chunk.rows[i])
            rows.append(
                {
                    "batch_id": self.batch_id,
                    "row": number,
                    "returnee_key": chunk.returnee_key[i] or None,
                    "cells": {h: values[i] for h, values in chunk.raw_cells.items()},
                    "errors": by_row.get(number, []),
                }
            )
        if rows:
            self.conn.execute(rejected_row.insert(), rows)

    # -- after the last chunk -----------------------------------------------------------------
    def finish(self) -> list[FileNote]:
        """Renumber rounds, refresh the returnees this batch touched; warn where rounds differ."""
        keys = sorted(self.affected)
        if not keys:
            return []
        notes: list[FileNote] = []
        for part in self._chunks(keys):
            rows = self.conn.execute(
                sa.select(
                    submission.c.id,
                    submission.c.submission_id,
                    submission.c.returnee_key,
                    submission.c.interview_date,
                    submission.c.return_date,
                    submission.c.sex,
                    submission.c.age_at_return,
                    submission.c.return_type,
                    submission.c.country,
                )
                .where(submission.c.returnee_key.in_(part), submission.c.current)
                .order_by(
                    submission.c.returnee_key,
                    submission.c.interview_date,
                    submission.c.submission_id,
                )
            ).all()
            by_key: dict[str, list[Any]] = defaultdict(list)
            for row in rows:
                by_key[row.returnee_key].append(row)
            rounds = []
            for key, history in by_key.items():
                rounds += [{"pk": row.id, "r": k + 1} for k, row in enumerate(history)]
                latest = history[-1]
                self.conn.execute(
                    returnee.update()
                    .where(returnee.c.key == key)
                    .values(
                        sex=latest.sex,
                        age_at_return=latest.age_at_return,
                        child=latest.age_at_return < self.questionnaire.child_age_below,
                        return_type=latest.return_type,
                        country=latest.country,
                        updated_at=_now(),
                    )
                )
                notes += self._disagreements(key, history)
            if rounds:
                self.conn.execute(
                    submission.update()
                    .where(submission.c.id == sa.bindparam("pk"))
                    .values(survey_round=sa.bindparam("r")),
                    rounds,
                )
        return notes

    def _disagreements(self, key: str, history: list[Any]) -> list[FileNote]:
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
                        row=self.affected[key],
                        column=column,
                    )
                )
        return notes


def _show(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


@dataclass
class _Version:
    """A stored (or, with ``pending``, about to be stored) version of an interview."""

    id: int
    version: int
    content_hash: str
    current: bool
    pending: dict[str, Any] | None = None


def _optional(meta: dict[str, np.ndarray], name: str, i: int) -> str | None:
    if name not in meta:
        return None
    value = meta[name][i]
    return value or None


def complete_batch(
    conn: sa.Connection,
    batch_id: str,
    report: dict[str, Any],
    actor: str,
    fmt: str,
    form_version: str | None,
) -> None:
    """Mark a batch done with its counts and report, and audit the upload."""
    counts = {k: report[k] for k in ("received", "accepted", "rejected", "duplicate", "updated")}
    conn.execute(
        batch.update()
        .where(batch.c.id == batch_id)
        .values(
            status="done",
            finished_at=_now(),
            pid=None,
            format=fmt,
            form_version=form_version,
            report={k: report[k] for k in report if k not in counts and k != "batch_id"},
            **counts,
        )
    )
    _audit(conn, actor, "upload", batch_id=batch_id, detail=counts)
    if report["updated"]:
        _audit(conn, actor, "update", batch_id=batch_id, detail={"updated": report["updated"]})


def erase_returnee(engine: sa.Engine, key: str, actor: str) -> dict[str, int]:
    """Right to erasure: remove a returnee's submissions, scores and rejected rows.

    The key stays as a tombstone, so a later upload of the returnee is refused until an admin
    lifts it; the audit keeps only that an erasure of this key happened.

    Returns
    -------
    dict
        How many submissions, scores and rejected rows were removed.
    """
    with engine.begin() as conn:
        lock_for_ingest(conn)
        pks = sa.select(submission.c.id).where(submission.c.returnee_key == key)
        removed = {
            "scores": conn.execute(score.delete().where(score.c.submission_pk.in_(pks))).rowcount,
            "submissions": conn.execute(
                submission.delete().where(submission.c.returnee_key == key)
            ).rowcount,
            "rejected_rows": conn.execute(
                rejected_row.delete().where(rejected_row.c.returnee_key == key)
            ).rowcount,
        }
        conn.execute(returnee.delete().where(returnee.c.key == key))
        already = conn.execute(
            sa.select(tombstone.c.returnee_key).where(tombstone.c.returnee_key == key)
        ).first()
        if already:
            conn.execute(
                tombstone.update()
                .where(tombstone.c.returnee_key == key)
                .values(erased_at=_now(), lifted_at=None)
            )
        else:
            conn.execute(tombstone.insert().values(returnee_key=key, erased_at=_now()))
        _audit(conn, actor, "erase", target=key)
    return removed


def rejected_rows(conn: sa.Connection, batch_id: str) -> list[Any]:
    """A batch's kept rejected rows, in row order: row, cells as sent, errors."""
    return list(
        conn.execute(
            sa.select(rejected_row.c.row, rejected_row.c.cells, rejected_row.c.errors)
            .where(rejected_row.c.batch_id == batch_id)
            .order_by(rejected_row.c.row)
        ).all()
    )
