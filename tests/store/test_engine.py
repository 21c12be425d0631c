"""The store's engines: SQLite's concurrency settings, and PostgreSQL through psycopg."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from reintegration.errors import ConfigurationError
from reintegration.store import create_store_engine, for_reading
from reintegration.store.engine import BUSY_TIMEOUT_S
from tests.store._workers import PROBE, spawn_all, write_rows


@pytest.fixture
def probe_url(sqlite_url: str) -> str:
    """A SQLite database holding an empty ``probe`` table."""
    engine = create_store_engine(sqlite_url)
    PROBE.metadata.create_all(engine)
    engine.dispose()
    return sqlite_url


def _count(conn: sa.Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(PROBE)).scalar_one()


def test_sqlite_creates_the_folder_of_the_database(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'app.db'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    engine.dispose()
    assert (tmp_path / "a" / "b" / "app.db").is_file()


def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    with engine.connect() as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
        }
    engine.dispose()
    assert pragmas == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "synchronous": 1,  # NORMAL
        "busy_timeout": int(BUSY_TIMEOUT_S * 1000),
    }


def test_sqlite_refuses_a_foreign_key_violation(sqlite_url: str) -> None:
    parent = sa.Table("parent", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    child = sa.Table(
        "child", parent.metadata, sa.Column("parent_id", sa.ForeignKey("parent.id"), nullable=False)
    )
    engine = create_store_engine(sqlite_url)
    parent.metadata.create_all(engine)
    with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY constraint failed"):
        with engine.begin() as conn:
            conn.execute(child.insert(), {"parent_id": 42})
    engine.dispose()


def test_concurrent_writers_queue_and_all_succeed(probe_url: str) -> None:
    rows, hold = 50, 0.3

    results = dict(spawn_all(write_rows, [(probe_url, w, rows, hold) for w in range(4)]))

    assert all(isinstance(seen, int) for seen in results.values()), results
    # Each writer read the count inside its transaction: one after another, they saw 0, 50, ...
    assert sorted(results.values()) == [0, rows, 2 * rows, 3 * rows]
    engine = create_store_engine(probe_url)
    with engine.connect() as conn:
        assert _count(conn) == 4 * rows
    engine.dispose()


def test_a_writer_takes_the_lock_when_its_transaction_begins(probe_url: str) -> None:
    first = create_store_engine(probe_url)
    impatient = create_store_engine(probe_url, busy_timeout=0.2)
    with first.begin():
        # Nothing written yet, but the lock is held: a second writer cannot even begin.
        with pytest.raises(sa.exc.OperationalError, match="database is locked"):
            with impatient.begin():
                pass
    first.dispose()
    impatient.dispose()


def test_a_reader_reads_while_a_writer_holds_its_transaction(probe_url: str) -> None:
    writer = create_store_engine(probe_url)
    # A short timeout: if the reader had to wait for the writer, it would fail instead of hang.
    reader = for_reading(create_store_engine(probe_url, busy_timeout=0.2))
    with writer.begin() as w:
        w.execute(PROBE.insert(), {"worker": 1})
        with reader.connect() as r:
            assert _count(r) == 0  # the last committed state, without waiting
    with reader.connect() as r:
        assert _count(r) == 1
    writer.dispose()
    reader.dispose()


def test_other_databases_are_refused() -> None:
    with pytest.raises(ConfigurationError) as error:
        create_store_engine("mysql://user@localhost/reintegration")
    assert str(error.value) == (
        "The database URL names 'mysql': the store runs on SQLite (sqlite:///path) or "
        "PostgreSQL (postgresql://user@host/database)."
    )


def test_postgresql_urls_run_through_psycopg_with_pre_ping() -> None:
    engine = create_store_engine("postgresql://user@localhost/reintegration")
    assert (engine.dialect.driver, engine.pool._pre_ping) == ("psycopg", True)


@pytest.mark.postgres
def test_postgresql_engine_connects_and_rolls_back(pg_url: str) -> None:
    engine = create_store_engine(pg_url)
    PROBE.metadata.create_all(engine)
    with pytest.raises(RuntimeError, match="abandon"):
        with engine.begin() as conn:
            conn.execute(PROBE.insert(), {"worker": 1})
            raise RuntimeError("abandon the transaction")
    with engine.connect() as conn:
        assert _count(conn) == 0
    engine.dispose()
