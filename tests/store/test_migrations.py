"""The Alembic migrations: they build exactly the tables of schema.py, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from reintegration.errors import ConfigurationError
from reintegration.store import (
    create_store_engine,
    current_revision,
    downgrade,
    open_store,
    upgrade,
)
from reintegration.store import engine as store_engine
from reintegration.store.engine import HEAD_REVISION, alembic_config
from reintegration.store.schema import metadata
from tests.store._workers import run_upgrade, spawn_all

pytestmark = pytest.mark.filterwarnings("error")  # a warning from Alembic is a finding


def _batch(status: str = "done") -> dict[str, object]:
    return {
        "id": "8c1f0f3e-0000-4000-8000-000000000001",
        "uploader": "enumerator-1",
        "file_name": "batch.csv",
        "sha256": "0" * 64,
        "status": status,
        "created_at": dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
    }


def _differences(url: str) -> list[object]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_store_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_head_revision_is_the_newest_migration() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_upgrade_from_empty_builds_the_tables_of_schema_py(store_url: str) -> None:
    upgrade(store_url)

    assert _tables(store_url) == set(metadata.tables) | {"alembic_version"}
    assert _differences(store_url) == []


def test_migrated_sqlite_ddl_matches_schema_py(sqlite_url: str, tmp_path: Path) -> None:
    # compare_metadata does not see CHECK constraints or server defaults; SQLite keeps each
    # table's DDL, so compare it line by line (constraint order may differ).
    upgrade(sqlite_url)
    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    reference = create_store_engine(reference_url)
    metadata.create_all(reference)
    reference.dispose()

    def ddl(url: str) -> dict[str, set[str]]:
        engine = create_store_engine(url)
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master "
                "WHERE sql IS NOT NULL AND name != 'alembic_version'"
            ).all()
        engine.dispose()
        # A table that a migration rebuilt (SQLite's way to change a column) was renamed into
        # place, and SQLite then quotes its name: the same table.
        unquoted = (
            (name, re.sub(r'^CREATE TABLE "(\w+)"', r"CREATE TABLE \1", sql)) for name, sql in rows
        )
        # A column added by ALTER TABLE is appended to the last line (", weight FLOAT").
        lines = r"\n|, (?=\w+ [A-Z])"
        return {name: {ln.strip(" ,\t") for ln in re.split(lines, sql)} for name, sql in unquoted}

    assert ddl(sqlite_url) == ddl(reference_url)


def test_migrated_batch_refuses_an_unknown_status(store_url: str) -> None:
    upgrade(store_url)
    engine = create_store_engine(store_url)
    with pytest.raises(sa.exc.IntegrityError, match="ck_batch_status|CHECK constraint failed"):
        with engine.begin() as conn:
            conn.execute(metadata.tables["batch"].insert(), _batch(status="lost"))
    engine.dispose()


def test_upgrade_twice_changes_nothing(store_url: str) -> None:
    upgrade(store_url)
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        conn.execute(metadata.tables["batch"].insert(), _batch())

    upgrade(store_url)

    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id FROM batch")).scalars().all() == [_batch()["id"]]
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [
            HEAD_REVISION
        ]
    engine.dispose()


def test_downgrade_to_base_removes_the_tables(store_url: str) -> None:
    upgrade(store_url)

    downgrade(store_url, "base")

    assert _tables(store_url) == {"alembic_version"}
    engine = create_store_engine(store_url)
    assert current_revision(engine) is None
    engine.dispose()


def test_upgrade_works_from_any_working_directory(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    upgrade(sqlite_url)

    assert _differences(sqlite_url) == []


def test_concurrent_upgrades_take_turns(store_url: str) -> None:
    assert spawn_all(run_upgrade, [(store_url,), (store_url,)]) == ["ok", "ok"]
    assert _differences(store_url) == []


def test_open_store_migrates_an_empty_database(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)

    assert current_revision(engine) == HEAD_REVISION
    engine.dispose()


def test_open_store_leaves_foreign_keys_on_after_migrating(sqlite_url: str) -> None:
    # The migration turns them off on its connection; the pool hands that connection out next.
    engine = open_store(sqlite_url)
    with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY constraint failed"):
        with engine.begin() as conn:
            conn.execute(
                metadata.tables["rejected_row"].insert(),
                {"batch_id": "no-such-batch", "row": 2, "cells": {}, "errors": []},
            )
    engine.dispose()


def test_open_store_does_not_run_alembic_when_at_head(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(sqlite_url)

    def refuse(*args: object) -> None:
        raise AssertionError("Alembic ran on a database at head")

    monkeypatch.setattr(store_engine, "_run_migrations", refuse)
    open_store(sqlite_url).dispose()


def test_open_store_refuses_a_database_from_a_newer_version(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    engine = create_store_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()

    with pytest.raises(ConfigurationError) as error:
        open_store(sqlite_url)
    assert str(error.value) == (
        "The database cannot be migrated (Can't locate revision identified by '9999'); if it "
        "was migrated by a newer version of reintegration, install that version."
    )


def test_0004_moves_stored_report_issues_into_their_table_and_back(store_url: str) -> None:
    upgrade(store_url, "0003")
    engine = create_store_engine(store_url)
    errors = [
        {"row": n, "column": "sex", "value": "robot", "message": f"bad {n}"}
        for n in range(2, 2 + 130)
    ]
    warnings = [{"row": None, "column": None, "message": "a file note"}]
    report = {"errors": errors, "warnings": warnings, "ignored_columns": ["x"]}
    batch = sa.table("batch", *(sa.column(c) for c in _batch()), sa.column("report", sa.JSON))
    with engine.begin() as conn:
        conn.execute(batch.insert(), _batch() | {"report": report})

    upgrade(store_url)

    with engine.connect() as conn:
        moved = conn.execute(
            sa.text("SELECT seq, kind, row, value, message FROM batch_issue ORDER BY seq")
        ).all()
        kept = conn.execute(sa.select(batch.c.report)).scalar_one()
    assert [(r.kind, r.row, r.message) for r in moved] == [
        *(("error", e["row"], e["message"]) for e in errors),
        ("warning", None, "a file note"),
    ]
    assert [r.seq for r in moved] == list(range(131))
    assert kept["errors"] == errors[:100] and kept["errors_total"] == 130
    assert kept["warnings"] == warnings and kept["warnings_total"] == 1
    assert kept["ignored_columns"] == ["x"]

    downgrade(store_url, "0003")

    with engine.connect() as conn:
        restored = conn.execute(sa.select(batch.c.report)).scalar_one()
    engine.dispose()
    assert restored == report


def _stored_interviews(n: int) -> tuple[dict[str, object], list[dict[str, object]]]:
    """A returnee and ``n`` versions of interviews as a 0004 store holds them (no key)."""
    day = dt.date(2025, 6, 1)
    person = {
        "key": "r" * 64,
        "country": "SEN",
        "updated_at": dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
    }
    rows = [
        {
            "id": k + 1,
            "submission_id": f"sub-{k:06d}",
            "version": 1,
            "current": True,
            "content_hash": "0" * 32,  # every row the same content: keys must still differ
            "batch_id": _batch()["id"],
            "returnee_key": person["key"],
            "interview_date": day,
            "return_date": day,
            "months_since_return": 0.0,
            "sex": "female",
            "age_at_return": 30,
            "return_type": "forced",
            "country": "SEN",
            "answers": {},
            "spec_version": "1.0.0",
            "created_at": dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
        }
        for k in range(n)
    ]
    return person, rows


def _keys(engine: sa.Engine) -> list[int | None]:
    with engine.connect() as conn:
        return list(
            conn.execute(sa.text("SELECT record_key FROM submission ORDER BY id")).scalars()
        )


def test_0005_gives_every_stored_interview_its_own_random_key_and_back(store_url: str) -> None:
    upgrade(store_url, "0004")
    engine = create_store_engine(store_url)
    n = 40_003  # the keys are drawn in pages of 20,000 rows: three pages, the last of 3
    person, rows = _stored_interviews(n)
    typed = metadata.tables["submission"].c
    old = sa.table("submission", *(sa.column(c, typed[c].type) for c in rows[0]))
    scored = metadata.tables["score"].c
    score = sa.table(
        "score",
        *(
            sa.column(c, scored[c].type)
            for c in ("submission_pk", "model", "index_version", "created_at")
        ),
    )
    with engine.begin() as conn:
        conn.execute(metadata.tables["batch"].insert(), _batch())
        conn.execute(metadata.tables["returnee"].insert(), person)
        conn.execute(old.insert(), rows)
        conn.execute(
            score.insert(),
            [
                {
                    "submission_pk": 1,
                    "model": "m",
                    "index_version": "v",
                    "created_at": rows[0]["created_at"],
                }
            ],
        )

    upgrade(store_url)

    keys = _keys(engine)
    assert len(keys) == n and None not in keys
    assert all(0 <= k < 2**31 for k in keys)
    # Uniform on [0, 2**31): about n**2 / 2**32 = 0.37 pairs collide; 6 or more happen once
    # in a million stores. Each eighth of the range holds n/8 keys within 6 standard deviations.
    assert len(set(keys)) >= n - 5
    eighths = [sum(1 for k in keys if k >> 28 == b) for b in range(8)]
    spread = 6 * (n * 1 / 8 * 7 / 8) ** 0.5
    assert all(abs(count - n / 8) < spread for count in eighths), eighths
    with pytest.raises(sa.exc.IntegrityError):  # NOT NULL holds
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE submission SET record_key = NULL WHERE id = 2"))
    with engine.connect() as conn:  # the rebuilt table kept its rows' scores
        assert conn.execute(sa.text("SELECT submission_pk FROM score")).scalars().all() == [1]
    assert _differences(store_url) == []

    downgrade(store_url, "0004")

    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("submission")}
        assert conn.execute(sa.text("SELECT count(*) FROM submission")).scalar() == n
        assert conn.execute(sa.text("SELECT submission_pk FROM score")).scalars().all() == [1]
    assert "record_key" not in columns
    upgrade(store_url)  # and up again: new keys, none missing
    assert None not in _keys(engine)
    engine.dispose()
