"""Background jobs (training) in the ``job`` table: queued, running, done or failed, with progress.

A job is a row that outlives the process running it. A job is leased
(:mod:`reintegration.store.leases`): a queued job for the lease time from its creation, in
which its worker must claim it; a running job by its worker, which renews the lease from a
thread until it marks the job done or failed. A job whose lease passed (the worker killed, out
of memory, its machine gone) is found by any server, like an interrupted batch, and marked
failed with the reason instead of staying "running" forever. Host and pid are recorded for
people reading the job, not to judge whether it lives.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from reintegration.store import leases
from reintegration.store.engine import for_reading
from reintegration.store.schema import job

STATUSES = ("queued", "running", "done", "failed")
INTERRUPTED = "interrupted: its server stopped renewing its lease before it finished"
COLUMNS = (
    "id",
    "kind",
    "status",
    "progress",
    "message",
    "params",
    "result",
    "actor",
    "host",
    "pid",
    "created_at",
    "started_at",
    "finished_at",
)


def _now() -> datetime:
    return datetime.now(UTC)


def create_job(engine: sa.Engine, kind: str, *, actor: str, params: dict[str, Any]) -> str:
    """Record a queued job and return its id (a UUID).

    The job is leased for the lease time (``REINTEGRATION_LEASE_SECONDS``) and not renewed:
    its worker claims it (:func:`start_job`) within that time or it is taken for dead.
    """
    job_id = str(uuid.uuid4())
    leases.take(engine, "job", job_id)
    with engine.begin() as conn:
        conn.execute(
            job.insert().values(
                id=job_id,
                kind=kind,
                status="queued",
                progress=0.0,
                params=params,
                actor=actor,
                host=socket.gethostname(),
                created_at=_now(),
            )
        )
    return job_id


def _update(engine: sa.Engine, job_id: str, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(job.update().where(job.c.id == job_id).values(**values))


def set_process(engine: sa.Engine, job_id: str, pid: int) -> None:
    """Record the process that will run a queued job (so its death can be noticed)."""
    _update(engine, job_id, pid=pid, host=socket.gethostname())


def start_job(engine: sa.Engine, job_id: str) -> dict[str, Any]:
    """Mark a queued job running in this process and return it.

    From now on a thread of this process renews the job's lease, until :func:`finish_job` or
    :func:`fail_job`.

    Raises
    ------
    LookupError
        When no queued job has this id.
    """
    with engine.begin() as conn:
        claimed = conn.execute(
            job.update()
            .where(job.c.id == job_id, job.c.status == "queued")
            .values(
                status="running",
                started_at=_now(),
                pid=os.getpid(),
                host=socket.gethostname(),
                message="started",
            )
        ).rowcount
    if not claimed:
        raise LookupError(f"no queued job {job_id}")
    leases.keep(engine, "job", job_id)
    found = get_job(engine, job_id)
    assert found is not None
    return found


def report_progress(
    engine: sa.Engine,
    job_id: str,
    progress: float,
    message: str,
    *,
    result: dict[str, Any] | None = None,
) -> None:
    """Record how far a running job is (0..1) and what it is doing; ``result``, when given,
    holds the figures so far (e.g. rows done and to do), replaced by the end result."""
    values: dict[str, Any] = {"progress": min(max(float(progress), 0.0), 1.0), "message": message}
    if result is not None:
        values["result"] = result
    _update(engine, job_id, **values)


def finish_job(engine: sa.Engine, job_id: str, result: dict[str, Any]) -> None:
    """Mark a job done with its result."""
    _update(
        engine,
        job_id,
        status="done",
        progress=1.0,
        message="done",
        result=result,
        finished_at=_now(),
        pid=None,
    )
    leases.drop(engine, "job", job_id)


def fail_job(engine: sa.Engine, job_id: str, message: str) -> None:
    """Mark a job failed, saying why."""
    _update(engine, job_id, status="failed", message=message, finished_at=_now(), pid=None)
    leases.drop(engine, "job", job_id)


def recover_jobs(engine: sa.Engine, *, lease_seconds: float | None = None) -> int:
    """Mark failed the unfinished jobs whose lease has passed; return how many.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store.
    lease_seconds : float, optional
        The lease time of a job without a lease (from before leases). Default
        ``REINTEGRATION_LEASE_SECONDS``.
    """
    unfinished = job.c.status.in_(("queued", "running"))
    with for_reading(engine).connect() as conn:
        stale = conn.execute(sa.select(job.c.id, job.c.created_at).where(unfinished)).all()
    dead = leases.expired(engine, "job", stale, lease_seconds)
    if not dead:
        return 0
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(job.c.id, job.c.created_at).where(unfinished, job.c.id.in_(dead))
        ).all()
        # Asked again under the write lock: a worker may have renewed meanwhile.
        dead = leases.expired(engine, "job", rows, lease_seconds)
        if dead:
            conn.execute(
                job.update()
                .where(job.c.id.in_(dead), unfinished)
                .values(status="failed", message=INTERRUPTED, finished_at=_now(), pid=None)
            )
    leases.release(engine, "job", dead)
    return len(dead)


def _as_dict(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in COLUMNS}


def get_job(engine: sa.Engine, job_id: str) -> dict[str, Any] | None:
    """A job as a dict of its columns, or None."""
    with for_reading(engine).connect() as conn:
        row = conn.execute(sa.select(job).where(job.c.id == job_id)).first()
    return _as_dict(row) if row is not None else None


def list_jobs(engine: sa.Engine, *, limit: int = 100) -> list[dict[str, Any]]:
    """The most recent jobs first."""
    with for_reading(engine).connect() as conn:
        rows = conn.execute(sa.select(job).order_by(job.c.created_at.desc()).limit(limit)).all()
    return [_as_dict(row) for row in rows]
