"""Two servers started at once on fresh databases both come up (issue 14).

They create the app's tables (Alembic under an advisory lock, or SQLite's write lock), record
the key's fingerprint (one row wins) and create MLflow's tables (``models._mlflow``: under an
advisory lock on PostgreSQL, a ``flock`` of the data folder on SQLite), then register the
built-in index.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.store._server_workers import start_server
from tests.store._workers import spawn_all

KEY = "3f1c9a7e5b2d4068a1e3c5b7d9f0a2c4e6b8d0f1a3c5e7b9"


def _empty(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def fresh_postgres(postgres_url: str) -> tuple[str, str]:
    """The app's and MLflow's PostgreSQL test databases, both emptied."""
    mlflow_url = os.environ.get("REINTEGRATION_TEST_MLFLOW_URI")
    if not mlflow_url:
        pytest.skip("REINTEGRATION_TEST_MLFLOW_URI is not set")
    _empty(postgres_url)
    _empty(mlflow_url)
    return postgres_url, mlflow_url


def _env(home: Path, **more: str) -> dict[str, str]:
    return {
        "REINTEGRATION_HOME": str(home),
        "REINTEGRATION_SECRET_KEY": KEY,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **more,
    }


@pytest.mark.postgres
def test_two_servers_on_fresh_postgresql_databases_both_come_up(fresh_postgres, tmp_path):
    app_url, mlflow_url = fresh_postgres
    (tmp_path / "shared-artifacts").mkdir()  # the shared storage, mounted on both
    shared = {
        "REINTEGRATION_DATABASE_URL": app_url,
        "MLFLOW_TRACKING_URI": mlflow_url,
        "REINTEGRATION_ARTIFACT_LOCATION": str(tmp_path / "shared-artifacts"),
    }
    envs = [_env(tmp_path / name, **shared) for name in ("a", "b")]

    assert spawn_all(start_server, [(env, True) for env in envs], timeout=180) == ["ok", "ok"]
    engine = sa.create_engine(mlflow_url)
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT name, version FROM model_versions")).all()
    engine.dispose()
    assert [tuple(v) for v in versions] == [("rss-index", 1)]  # the built-in index, once


def test_two_servers_on_one_fresh_data_folder_both_come_up(tmp_path):
    env = _env(tmp_path / "var")

    assert spawn_all(start_server, [(env, True), (env, True)], timeout=180) == ["ok", "ok"]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'var' / 'mlflow.db'}")
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT name, version FROM model_versions")).all()
    engine.dispose()
    assert [tuple(v) for v in versions] == [("rss-index", 1)]
