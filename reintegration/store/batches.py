"""Store operations of an ingest: the batch record, deduplication, versions, rounds, audit.

Everything here runs inside the caller's transaction, except the batch record's own
bookkeeping (:func:`mark_failed`, :func:`recover_interrupted`), which must survive a failed
ingest.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reintegration.store.data_version import bump_data_version
from reintegration.store.engine import checkpoint, for_erasure
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
INTERRUPTED = "interrupted: the process ingesting it stopped before it finished"
# When this process loaded the store: it began no work before (see process_alive).
_LOADED_AT = time.time()
# Start times read from /proc are rounded to the second of boot: allow that much.
_START_SLACK_S = 1.0


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


def process_alive(pid: int | None, *, since: datetime | float | None = None) -> bool:
    """Whether the process of this host that began some work still runs.

    Signal 0 probes and sends nothing. Process ids are reused (a container restarted runs its
    server under the same small pid, a reboot starts the count again), so with ``since`` the
    process must also have started before that moment: a process younger than the work it is
    said to be doing is another one.

    Parameters
    ----------
    pid : int or None
        The process id recorded with the work (None: no process, so not alive).
    since : datetime or float, optional
        When the work began (a datetime, or seconds since the epoch).

    Returns
    -------
    bool
        True also when the process exists but its start time cannot be read (another
        operating system than Linux): the work is then left alone.
    """
    if pid is None or pid <= 0:  # 0 and negative ids name process groups, not a process
        return False
    began = _epoch(since)
    if pid == os.getpid():
        # This process imported this module before it began any work of its own: older work
        # under its pid was a previous process's.
        return began is None or began >= _LOADED_AT
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    if began is None:
        return True
    started = _process_started(pid)
    return started is None or started <= began + _START_SLACK_S


def _epoch(moment: datetime | float | None) -> float | None:
    if moment is None or isinstance(moment, int | float):
        return moment
    if moment.tzinfo is None:  # SQLite gives back the stored UTC time without its zone
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _process_started(pid: int) -> float | None:
    """When a process started, in seconds since the epoch (Linux's /proc), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        # Fields after the command name (which may hold spaces and parentheses); the 22nd
        # field of the line, starttime, is the 20th after it, in clock ticks since boot.
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text(encoding="ascii").splitlines()
            if line.startswith("btime ")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def recover_interrupted(engine: sa.Engine) -> int:
    """Mark failed the batches still ``processing`` whose process on this host is gone.

    Run when an ingest, a server or a command starts. A batch of another host is left alone:
    its process cannot be probed from here. Each batch marked failed is audited, as a batch
    that fails while its process lives is.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store.

    Returns
    -------
    int
        How many batches were marked failed.
    """
    host = socket.gethostname()
    with engine.connect() as conn:
        stale = conn.execute(
            sa.select(batch.c.id, batch.c.pid, batch.c.created_at, batch.c.uploader).where(
                batch.c.status == "processing", batch.c.host == host
            )
        ).all()
    dead = [row for row in stale if not process_alive(row.pid, since=row.created_at)]
    if not dead:
        return 0
    marked = 0
    with engine.begin() as conn:
        for row in dead:
            done = conn.execute(
                batch.update()
                .where(batch.c.id == row.id, batch.c.status == "processing")
                .values(status="failed", reason=INTERRUPTED, finished_at=_now(), pid=None)
            ).rowcount
            if done:  # another process starting at the same time may have marked it first
                detail = {"reason": INTERRUPTED}
                _audit(conn, row.uploader, "upload_failed", batch_id=row.id, detail=detail)
                marked += 1
    return marked


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
    with for_erasure(engine).begin() as conn:  # SQLite zeroes the bytes of what it deletes
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
    checkpoint(engine)  # no copy of the erased rows stays in SQLite's write-ahead log
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
