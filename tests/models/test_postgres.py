"""MLflow's tracking store and registry on PostgreSQL (REINTEGRATION_TEST_MLFLOW_URI)."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from models import _mlflow, registry
from models.index_training import train_index
from models.promotion import promote
from models.serving import Champions
from reintegration.policy import CLI, cli_caller
from reintegration.settings import Settings
from reintegration.store.engine import create_store_engine
from tests.conftest import _absent
from tests.models.conftest import copy_sqlite

pytestmark = pytest.mark.postgres


@pytest.fixture
def mlflow_uri() -> str:
    uri = os.environ.get("REINTEGRATION_TEST_MLFLOW_URI")
    if not uri:
        _absent("REINTEGRATION_TEST_MLFLOW_URI is not set")
    engine = sa.create_engine(_mlflow.tracking_uri(Settings(mlflow_tracking_uri=uri)))
    with engine.begin() as conn:  # an empty database: MLflow migrates it on first use
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return str(uri)


def test_the_registry_runs_on_postgresql(mlflow_uri, panel_store, tmp_path):
    store = tmp_path / "reintegration.db"
    copy_sqlite(panel_store, store)
    settings = Settings(
        home=tmp_path, database_url=f"sqlite:///{store}", mlflow_tracking_uri=mlflow_uri
    )
    assert not _mlflow.store_exists(settings)
    engine = create_store_engine(settings.database_url)
    assert registry.ensure_builtin_index(settings) == 1
    assert _mlflow.store_exists(settings)
    done = train_index(engine, settings)
    promote(
        engine,
        "index",
        done["version"],
        reason="on PostgreSQL",
        force=False,
        caller=cli_caller("ci"),
        settings=settings,
    )
    versions = {v["version"]: v for v in registry.list_versions("index", settings, caller=CLI)}
    assert versions[done["version"]]["aliases"] == ["champion"]
    assert versions[done["version"]]["label"] == done["label"]
    _, label, version = Champions(settings).index()
    assert (label, version) == (done["label"], done["version"])
    assert (tmp_path / "mlartifacts").is_dir()  # artifacts stay under the data folder
    engine.dispose()
