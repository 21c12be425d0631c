"""One key per database (issue 14): the key's fingerprint is stored, a server with another key
refuses to start, and migration 0007 goes up and down."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from reintegration.errors import ConfigurationError
from reintegration.store import create_store_engine, downgrade, open_store, upgrade
from reintegration.store.identity import (
    LABEL,
    check_secret_key,
    key_fingerprint,
    stored_fingerprint,
)
from reintegration.store.schema import batch, server_identity
from tests.store._identity_workers import record_key
from tests.store._workers import spawn_all
from tests.store.test_migrations import _differences

KEY_A = b"3f1c9a7e5b2d4068a1e3c5b7d9f0a2c4e6b8d0f1a3c5e7b9"
KEY_B = b"9b7e5c3a1f0d8b6e4c2a0f9d7b5e3c1a4608d2b5e7a9c1f3"
REFUSAL = "every server and command sharing a database must use the same REINTEGRATION_SECRET_KEY"


def test_the_fingerprint_is_an_hmac_of_a_label_and_never_the_key() -> None:
    import hashlib
    import hmac

    assert key_fingerprint(KEY_A) == hmac.new(KEY_A, LABEL, hashlib.sha256).hexdigest()
    assert key_fingerprint(KEY_A) != key_fingerprint(KEY_B)
    assert KEY_A.decode() not in key_fingerprint(KEY_A)
    assert key_fingerprint(KEY_A) != hashlib.sha256(KEY_A).hexdigest()  # not a plain hash


def test_the_first_key_is_recorded_the_same_key_passes_another_is_refused(store_url: str) -> None:
    engine = open_store(store_url)
    try:
        assert stored_fingerprint(engine) is None

        assert check_secret_key(engine, KEY_A) is True  # a fresh store: recorded
        assert check_secret_key(engine, KEY_A) is False  # the same key: passes
        with pytest.raises(ConfigurationError) as refused:
            check_secret_key(engine, KEY_B, source="the development key file /srv/secret.key")

        message = str(refused.value)
        assert message.startswith("REINTEGRATION_SECRET_KEY differs from the key this database")
        assert REFUSAL in message and "/srv/secret.key" in message
        assert KEY_A.decode() not in message and KEY_B.decode() not in message
        with engine.connect() as conn:
            rows = conn.execute(sa.select(server_identity)).all()
        assert [(r.name, r.fingerprint) for r in rows] == [("secret_key", key_fingerprint(KEY_A))]
    finally:
        engine.dispose()


def test_two_processes_with_different_keys_on_a_fresh_store_one_wins(store_url: str) -> None:
    upgrade(store_url)

    results = spawn_all(record_key, [(store_url, KEY_A), (store_url, KEY_B)])

    assert sorted(r.split(" ")[0] for r in results) == ["ConfigurationError:", "recorded"]
    winner = next(r for r in results if r.startswith("recorded")).split(" ")[1]
    engine = create_store_engine(store_url)
    assert stored_fingerprint(engine) == winner
    engine.dispose()


def test_migration_0007_round_trip_and_an_old_store_gets_its_fingerprint(store_url: str) -> None:
    upgrade(store_url, "0006")
    engine = create_store_engine(store_url)
    row = {
        "id": "8c1f0f3e-0000-4000-8000-000000000007",
        "uploader": "enumerator-1",
        "file_name": "batch.csv",
        "sha256": "0" * 64,
        "status": "done",
        "created_at": dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
    }
    with engine.begin() as conn:
        conn.execute(batch.insert(), row)

    upgrade(store_url)

    assert _differences(store_url) == []
    # A store from before fingerprints: the first key is recorded, nothing refused.
    assert check_secret_key(engine, KEY_A) is True
    downgrade(store_url, "0006")
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        kept = conn.execute(sa.select(batch.c.id)).scalars().all()
    assert "server_identity" not in tables and "work_lease" not in tables
    assert kept == [row["id"]]
    upgrade(store_url)  # and up again: the fingerprint is written anew
    assert stored_fingerprint(engine) is None
    assert check_secret_key(engine, KEY_B) is True
    engine.dispose()


# -- the commands and the server -------------------------------------------------------------


def _first_use(home: Path, monkeypatch: pytest.MonkeyPatch, key: bytes) -> None:
    from reintegration.housekeeping import verified_key
    from reintegration.settings import get_settings

    monkeypatch.setenv("REINTEGRATION_SECRET_KEY", key.decode())
    get_settings.cache_clear()
    engine = open_store(get_settings().database_url)
    verified_key(get_settings(), engine)
    engine.dispose()
    monkeypatch.setenv("REINTEGRATION_SECRET_KEY", KEY_B.decode())
    get_settings.cache_clear()


def test_ingest_and_erase_with_another_key_are_refused_with_status_2(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, questionnaire
) -> None:
    from reintegration.cli import app
    from tests.conftest import canonical_row, write_csv

    _first_use(home, monkeypatch, KEY_A)
    path = write_csv(tmp_path / "b.csv", [canonical_row(questionnaire, 1)])

    ingested = CliRunner().invoke(app, ["ingest", str(path), "--json"])
    erased = CliRunner().invoke(app, ["returnee", "erase", "CASE-0001"])

    for result in (ingested, erased):
        assert result.exit_code == 2, result.output
        assert REFUSAL in " ".join(result.output.split())
    engine = open_store(f"sqlite:///{home / 'reintegration.db'}")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(batch)).scalar() == 0
    engine.dispose()


def test_a_development_key_file_that_differs_is_named_in_the_refusal(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reintegration.housekeeping import verified_key
    from reintegration.settings import get_settings

    _first_use(home, monkeypatch, KEY_A)
    monkeypatch.delenv("REINTEGRATION_SECRET_KEY")
    get_settings.cache_clear()
    engine = open_store(get_settings().database_url)
    try:
        with pytest.raises(ConfigurationError, match="REINTEGRATION_SECRET_KEY") as refused:
            verified_key(get_settings(), engine)  # makes <home>/secret.key: another key
    finally:
        engine.dispose()
    assert str(home / "secret.key") in str(refused.value)


def test_a_server_with_another_key_refuses_to_start(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from reintegration.cli import app

    _first_use(home, monkeypatch, KEY_A)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    served = CliRunner().invoke(app, ["serve", "--port", str(port)])

    assert served.exit_code == 2, served.output
    assert REFUSAL in " ".join(served.output.split())
