"""Background jobs (training) in the ``job`` table: queued, running, done or failed, with progress.

A job is a row that outlives the process running it. The process records its host and pid, so
a job whose process died (killed, out of memory, machine restarted) is found, like an
interrupted batch, and marked failed with the reason instead of staying "running" forever.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from reintegration.store.batches import process_alive
from reintegration.store.engine import for_reading
from reintegration.store.schema import job

STATUSES = ("queued", "running", "done", "failed")
INTERRUPTED = "interrupted: the process running it stopped before it finished"
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
    """Record a queued job and return its id (a UUID)."""
    job_id = str(uuid.uuid4())
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
    found = get_job(engine, job_id)
    assert found is not None
    return found


def report_progress(engine: sa.Engine, job_id: str, progress: float, message: str) -> None:
    """Record how far a running job is (0..1) and what it is doing."""
    _update(engine, job_id, progress=min(max(float(progress), 0.0), 1.0), message=message)


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


def fail_job(engine: sa.Engine, job_id: str, message: str) -> None:
    """Mark a job failed, saying why."""
    _update(engine, job_id, status="failed", message=message, finished_at=_now(), pid=None)


def recover_jobs(engine: sa.Engine) -> int:
    """Mark failed the unfinished jobs of this host whose process is gone; return how many."""
    with for_reading(engine).connect() as conn:
        stale = conn.execute(
            sa.select(job.c.id, job.c.pid).where(
                job.c.status.in_(("queued", "running")),
                job.c.host == socket.gethostname(),
                job.c.pid.is_not(None),
            )
        ).all()
    dead = [row.id for row in stale if row.pid != os.getpid() and not process_alive(row.pid)]
    if dead:
        with engine.begin() as conn:
            conn.execute(
                job.update()
                .where(job.c.id.in_(dead), job.c.status.in_(("queued", "running")))
                .values(status="failed", message=INTERRUPTED, finished_at=_now(), pid=None)
            )
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
