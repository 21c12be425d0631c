"""Functions that the store's tests run in separate processes (spawned, so importable by name)."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from reintegration.store import create_store_engine, upgrade

PROBE = sa.Table(
    "probe",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("worker", sa.Integer, nullable=False),
)


def write_rows(url: str, worker: int, rows: int, hold: float, barrier: Any, results: Any) -> None:
    """Read the row count, then insert ``rows`` rows in one transaction held ``hold`` seconds.

    Puts ``(worker, count seen at the start)`` on ``results``, or ``(worker, error text)``.
    """
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:  # connect before the race, so that only the writes race
            conn.exec_driver_sql("SELECT 1")
        barrier.wait()
        with engine.begin() as conn:
            seen = conn.execute(sa.select(sa.func.count()).select_from(PROBE)).scalar_one()
            half = rows // 2
            conn.execute(PROBE.insert(), [{"worker": worker}] * half)
            time.sleep(hold)
            conn.execute(PROBE.insert(), [{"worker": worker}] * (rows - half))
        results.put((worker, seen))
    except Exception as exc:  # reported to the test, which shows it
        results.put((worker, f"{type(exc).__name__}: {exc}"))
    finally:
        engine.dispose()


def run_upgrade(url: str, barrier: Any, results: Any) -> None:
    """Upgrade the store to head once every process is ready; put "ok" or the error text."""
    from alembic import command  # noqa: F401  (imported before the race, not during it)

    barrier.wait()
    try:
        upgrade(url)
        results.put("ok")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def spawn_all(target: Any, argsets: list[tuple[Any, ...]], timeout: float = 60.0) -> list[Any]:
    """Run ``target(*args, barrier, results)`` in one spawned process per argset; return results.

    The barrier releases the processes together once each has started, so that they race.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(argsets))
    results = ctx.Queue()
    processes = [ctx.Process(target=target, args=(*a, barrier, results)) for a in argsets]
    for p in processes:
        p.start()
    try:
        out = [results.get(timeout=timeout) for _ in processes]
    finally:
        for p in processes:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
    return out
