"""Store operations of an ingest: the batch record, deduplication, versions, rounds, audit.

Everything here runs inside the caller's transaction, except the batch record's own
bookkeeping (:func:`start_batch`, :func:`mark_failed`, :func:`recover_interrupted`), which
must survive a failed ingest. A batch being stored is leased to its process
(:mod:`reintegration.store.leases`); :func:`process_alive` is left for the uploads folder's
housekeeping, which is about this host's files.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reintegration.errors import ReintegrationError
from reintegration.store import leases
from reintegration.store.data_version import BATCH, ERASURE, bump_data_version
from reintegration.store.engine import checkpoint, for_erasure, for_reading
from reintegration.store.schema import (
    audit,
    batch,
    case_status,
    rejected_row,
    returnee,
    risk,
    score,
    submission,
    tombstone,
)

INGEST_LOCK = 7_221_044  # PostgreSQL advisory lock id shared by every ingest
INTERRUPTED = "interrupted: its server stopped renewing its lease before it finished"
# When this process loaded the store: it began no work before (see process_alive).
_LOADED_AT = time.time()
# Start times read from /proc are rounded to the second of boot: allow that much.
_START_SLACK_S = 1.0


class LeaseLost(ReintegrationError):
    """A batch's lease passed and another process marked it failed before it was complete."""


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
    leases.release(engine, "batch", [batch_id])


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


def recover_interrupted(engine: sa.Engine, *, lease_seconds: float | None = None) -> int:
    """Mark failed the batches still ``processing`` whose lease has passed.

    Run when an ingest, a server or a command starts, and periodically by a server's
    housekeeping. A batch is leased by the process storing it, which renews the lease
    (:mod:`reintegration.store.leases`); a lease that passed means that process died or stopped
    (whatever its host), and a live batch is never touched, even by a process of a host with
    the same name. Each batch marked failed is audited, as a batch that fails while its process
    lives is.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store.
    lease_seconds : float, optional
        The lease time of a batch without a lease (stored before leases): it counts as leased
        until it was created plus this. Default ``REINTEGRATION_LEASE_SECONDS``.

    Returns
    -------
    int
        How many batches were marked failed.
    """
    with for_reading(engine).connect() as conn:
        stale = conn.execute(
            sa.select(batch.c.id, batch.c.created_at).where(batch.c.status == "processing")
        ).all()
    if not stale or not leases.expired(engine, "batch", stale, lease_seconds):
        return 0
    marked = []
    with engine.begin() as conn:
        # Under the write lock now (SQLite waits here behind a batch being stored): read again,
        # and ask the leases again, so a batch that finished or renewed meanwhile is left alone.
        rows = conn.execute(
            sa.select(batch.c.id, batch.c.created_at, batch.c.uploader).where(
                batch.c.status == "processing"
            )
        ).all()
        dead = set(leases.expired(engine, "batch", [(r.id, r.created_at) for r in rows]))
        for row in rows:
            if row.id not in dead:
                continue
            done = conn.execute(
                batch.update()
                .where(batch.c.id == row.id, batch.c.status == "processing")
                .values(status="failed", reason=INTERRUPTED, finished_at=_now(), pid=None)
            ).rowcount
            if done:  # another process may have marked it first
                detail = {"reason": INTERRUPTED}
                _audit(conn, row.uploader, "upload_failed", batch_id=row.id, detail=detail)
                marked.append(row.id)
    leases.release(engine, "batch", marked)
    return len(marked)


def start_batch(engine: sa.Engine, **values: Any) -> None:
    """Record a new batch as ``processing``, leased to this process.

    The lease is taken first, so no other process ever sees the batch without one; the caller
    keeps it renewed (:func:`reintegration.store.leases.holding`) until the batch ends.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store.
    **values
        The batch row's columns (``id`` among them); ``status``, ``host``, ``pid`` and
        ``created_at`` are set here.
    """
    leases.take(engine, "batch", values["id"])
    with engine.begin() as conn:
        conn.execute(
            batch.insert().values(
                status="processing",
                host=socket.gethostname(),
                pid=os.getpid(),
                created_at=_now(),
                **values,
            )
        )


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

    Raises
    ------
    LeaseLost
        The batch is no longer ``processing``: another process took it for dead (its lease
        passed) and marked it failed. The caller's transaction must roll back, so that a
        failed batch stores none of its rows.
    """
    counts = {k: report[k] for k in ("received", "accepted", "rejected", "duplicate", "updated")}
    declared = {"consent_recorded_elsewhere": True} if consent_recorded_elsewhere else {}
    kept = {k: report[k] for k in report if k not in counts and k != "batch_id"} | declared
    completed = conn.execute(
        batch.update()
        .where(batch.c.id == batch_id, batch.c.status == "processing")
        .values(
            status="done",
            finished_at=_now(),
            pid=None,
            format=fmt,
            form_version=form_version,
            report=kept,
            **counts,
        )
    ).rowcount
    if not completed:
        raise LeaseLost(
            "the batch was marked interrupted by another server while it was stored (its lease "
            "was not renewed in time, e.g. the database was unreachable): nothing of it is "
            "stored; upload the file again"
        )
    _audit(conn, actor, "upload", batch_id=batch_id, detail=counts | declared)
    bump_data_version(conn, BATCH, batch_id=batch_id)
    if report["updated"]:
        _audit(conn, actor, "update", batch_id=batch_id, detail={"updated": report["updated"]})


def erase_returnee(engine: sa.Engine, key: str, actor: str) -> dict[str, int]:
    """Right to erasure: remove a returnee's submissions, scores, risk rows, rejected rows and
    case statuses.

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
        gone = conn.execute(pks).scalars().all()  # logged for incremental readers
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
        # The worklist's case statuses are the returnee's data too (the foreign key would
        # cascade; said here so an erasure reads as the list of what it removes).
        conn.execute(case_status.delete().where(case_status.c.returnee_key == key))
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
        bump_data_version(conn, ERASURE, removed=gone)
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
