"""Leases of running work (issue 14): any server marks dead work failed within the lease time,
and never a live one, whatever host names and process ids say; on SQLite too, where a batch
holds the store's write lock for minutes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from reintegration.housekeeping import Sweeper
from reintegration.settings import get_settings
from reintegration.store import batches, jobs, leases, open_store
from reintegration.store.schema import batch, job, work_lease
from tests.store._lease_workers import hold_batch, hold_job

LEASE = 2.0


@pytest.fixture
def short_lease(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REINTEGRATION_LEASE_SECONDS", str(LEASE))
    get_settings.cache_clear()
    yield LEASE
    get_settings.cache_clear()


@pytest.fixture
def store(store_url: str, short_lease: float):
    engine = open_store(store_url)
    yield engine
    engine.dispose()


def start(engine: sa.Engine, batch_id: str) -> None:
    batches.start_batch(
        engine, id=batch_id, uploader="enumerator-1", file_name="b.csv", sha256="0" * 64
    )


def status(engine: sa.Engine, batch_id: str) -> tuple[str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(batch.c.status, batch.c.reason).where(batch.c.id == batch_id)
        ).one()
    return row.status, row.reason


def test_a_lease_is_taken_renewed_and_released(store: sa.Engine) -> None:
    created = datetime.now(UTC)
    leases.take(store, "batch", "b1", 30)
    assert leases.expired(store, "batch", [("b1", created)]) == []
    leases.take(store, "batch", "b1", -1)  # as if its owner stopped a second ago
    assert leases.expired(store, "batch", [("b1", created)]) == ["b1"]
    assert leases.renew(store, "batch", "b1", 30) is True
    assert leases.expired(store, "batch", [("b1", created)]) == []
    leases.release(store, "batch", ["b1"])
    assert leases.renew(store, "batch", "b1") is False  # gone
    # Without a lease (work from before leases): leased until created_at plus the lease time.
    old = created - timedelta(seconds=LEASE + 1)
    assert leases.expired(store, "batch", [("b1", created), ("b2", old)]) == ["b2"]


def test_on_sqlite_the_leases_live_in_a_file_beside_the_store(sqlite_url: str, short_lease):
    engine = open_store(sqlite_url)
    try:
        leases.take(engine, "job", "j1")
        side = leases.side_file(engine)
        assert side is not None and side.name == "reintegration.leases.db" and side.exists()
        with engine.connect() as conn:  # the store's own table stays empty
            assert conn.execute(sa.select(sa.func.count()).select_from(work_lease)).scalar() == 0
        with leases.lease_engine(engine).connect() as conn:
            assert conn.execute(sa.select(work_lease.c.work_id)).scalars().all() == ["j1"]
    finally:
        engine.dispose()


def test_a_killed_servers_batch_is_failed_by_another_within_the_lease_time_a_live_one_never(
    store: sa.Engine, store_url: str
) -> None:
    # Two "servers" on this host (so the same host name), each storing a batch, and this
    # process as a third one sweeping as a server does.
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    live = ctx.Process(target=hold_batch, args=(store_url, "live", LEASE, ready), daemon=True)
    doomed = ctx.Process(target=hold_batch, args=(store_url, "doomed", LEASE, ready), daemon=True)
    live.start()
    doomed.start()
    sweeper = Sweeper(store, every=0.2).start()
    try:
        assert {ready.get(timeout=60), ready.get(timeout=60)} == {"live", "doomed"}
        time.sleep(2 * LEASE)  # several lease times: renewed, so both stay
        assert status(store, "live")[0] == status(store, "doomed")[0] == "processing"

        assert doomed.pid is not None
        killed_at = time.monotonic()
        doomed.kill()
        while status(store, "doomed")[0] == "processing":
            assert time.monotonic() - killed_at < LEASE + 5, "the dead batch was not failed"
            time.sleep(0.05)
        took = time.monotonic() - killed_at

        assert status(store, "doomed") == ("failed", batches.INTERRUPTED)
        assert took <= LEASE + 0.2 + 1.0  # the lease, a sweep, and slack for a loaded machine
        time.sleep(LEASE)
        assert status(store, "live") == ("processing", None)
    finally:
        sweeper.stop()
        for process in (live, doomed):
            process.kill()
            process.join(10)
    assert (
        batches.INTERRUPTED
        == "interrupted: its server stopped renewing its lease before it finished"
    )


def test_a_batch_queueing_behind_a_long_writer_is_not_failed(store: sa.Engine) -> None:
    # On SQLite a batch being stored holds the write lock for as long as it takes (minutes);
    # another batch waits. Its lease is renewed meanwhile (in the lease file: a renewal in the
    # store would wait behind the lock too), so whoever gets the lock next, a sweep here, does
    # not take it for dead.
    start(store, "waiting")
    keeper = leases.LeaseKeeper(store, "batch", "waiting").start()
    marked: list[int] = []

    def long_writer() -> None:
        with store.begin() as conn:
            conn.execute(batch.update().where(batch.c.id == "nothing").values(status="done"))
            time.sleep(2.5 * LEASE)
        marked.append(batches.recover_interrupted(store))  # first in line for the lock

    writer = threading.Thread(target=long_writer)
    writer.start()
    try:
        writer.join()
        assert marked == [0]
        assert status(store, "waiting") == ("processing", None)
    finally:
        keeper.stop()


def test_a_batch_failed_meanwhile_cannot_complete(store: sa.Engine) -> None:
    start(store, "late")
    leases.take(store, "batch", "late", -1)  # its owner stopped renewing
    assert batches.recover_interrupted(store) == 1

    with pytest.raises(batches.LeaseLost, match="marked interrupted by another server"):
        with store.begin() as conn:
            counts = dict.fromkeys(("received", "accepted", "rejected", "duplicate", "updated"), 0)
            batches.complete_batch(conn, "late", counts, "enumerator-1", "csv", None)
    assert status(store, "late") == ("failed", batches.INTERRUPTED)


def test_a_job_nobody_claims_is_failed_and_a_running_one_is_kept(store: sa.Engine) -> None:
    unclaimed = jobs.create_job(store, "train-risk", actor="officer", params={})
    running = jobs.create_job(store, "train-risk", actor="officer", params={})
    jobs.start_job(store, running)  # its lease is renewed by a thread of this process

    time.sleep(LEASE + 0.5)
    assert jobs.recover_jobs(store) == 1

    got = {j["id"]: (j["status"], j["message"]) for j in jobs.list_jobs(store)}
    assert got == {unclaimed: ("failed", jobs.INTERRUPTED), running: ("running", "started")}
    jobs.finish_job(store, running, {"version": 2})
    with leases.lease_engine(store).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(work_lease)).scalar() == 0
    with store.connect() as conn:
        assert conn.execute(sa.select(job.c.status).where(job.c.id == running)).scalar() == "done"


def test_a_killed_workers_job_is_failed_by_another_server_within_the_lease_time(
    store: sa.Engine, store_url: str
) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    worker = ctx.Process(target=hold_job, args=(store_url, LEASE, ready), daemon=True)
    worker.start()
    sweeper = Sweeper(store, every=0.2).start()
    try:
        job_id = ready.get(timeout=60)
        time.sleep(2 * LEASE)
        assert jobs.get_job(store, job_id)["status"] == "running"  # renewed meanwhile

        killed_at = time.monotonic()
        worker.kill()
        while jobs.get_job(store, job_id)["status"] == "running":
            assert time.monotonic() - killed_at < LEASE + 5, "the dead job was not failed"
            time.sleep(0.05)

        assert time.monotonic() - killed_at <= LEASE + 0.2 + 1.0
        assert jobs.get_job(store, job_id)["message"] == jobs.INTERRUPTED
    finally:
        sweeper.stop()
        worker.kill()
        worker.join(10)
