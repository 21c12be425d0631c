"""Store operations of an ingest: the batch record, deduplication, versions, rounds, audit.

Everything here runs inside the caller's transaction, except the batch record's own
bookkeeping (:func:`mark_failed`, :func:`recover_interrupted`), which must survive a failed
ingest.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from reintegration.store.data_version import bump_data_version
from reintegration.store.schema import (
    audit,
    batch,
    rejected_row,
    returnee,
    risk,
    score,
    submission,
    tombstone,
)

INGEST_LOCK = 7_221_044  # PostgreSQL advisory lock id shared by every ingest


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


def process_alive(pid: int) -> bool:
    """Whether a process of this host with this id still runs (signal 0 probes, sends nothing)."""
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
        if row.pid is None or (row.pid != os.getpid() and not process_alive(row.pid))
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


def complete_batch(
    conn: sa.Connection,
    batch_id: str,
    report: dict[str, Any],
    actor: str,
    fmt: str,
    form_version: str | None,
    *,
    consent_recorded_elsewhere: bool = False,
) -> None:
    """Mark a batch done with its counts and report, and audit the upload.

    The uploader's declaration that consent was recorded outside the form is kept in the
    batch's report and in the upload's audit entry.
    """
    counts = {k: report[k] for k in ("received", "accepted", "rejected", "duplicate", "updated")}
    declared = {"consent_recorded_elsewhere": True} if consent_recorded_elsewhere else {}
    kept = {k: report[k] for k in report if k not in counts and k != "batch_id"} | declared
    conn.execute(
        batch.update()
        .where(batch.c.id == batch_id)
        .values(
            status="done",
            finished_at=_now(),
            pid=None,
            format=fmt,
            form_version=form_version,
            report=kept,
            **counts,
        )
    )
    _audit(conn, actor, "upload", batch_id=batch_id, detail=counts | declared)
    bump_data_version(conn)
    if report["updated"]:
        _audit(conn, actor, "update", batch_id=batch_id, detail={"updated": report["updated"]})


def erase_returnee(engine: sa.Engine, key: str, actor: str) -> dict[str, int]:
    """Right to erasure: remove a returnee's submissions, scores, risk rows and rejected rows.

    The key stays as a tombstone, so a later upload of the returnee is refused until an admin
    lifts it; the audit keeps only that an erasure of this key happened.

    Returns
    -------
    dict
        How many submissions, scores, risk rows and rejected rows were removed.
    """
    with engine.begin() as conn:
        lock_for_ingest(conn)
        pks = sa.select(submission.c.id).where(submission.c.returnee_key == key)
        removed = {
            "scores": conn.execute(score.delete().where(score.c.submission_pk.in_(pks))).rowcount,
            "risks": conn.execute(risk.delete().where(risk.c.returnee_key == key)).rowcount,
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
        bump_data_version(conn)
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
