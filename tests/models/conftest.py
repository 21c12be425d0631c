"""Session fixtures of the model tests: one synthetic store, one MLflow store, trained once.

Creating an MLflow SQLite store runs its migrations (seconds) and training takes seconds more,
so the session does both once: ``trained`` holds a registry with the built-in index (champion),
a derived index version (challenger), a risk model (champion, forced in when it does not beat
the baseline rule) and a risk model trained on shuffled outcomes (challenger). A test that changes anything works on copies of both stores
(``registry_home``); the artifacts stay where the session wrote them (runs name them by
absolute path), and tests only add to them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from reintegration.policy import cli_caller
from reintegration.settings import Settings, get_settings

RETURNEES = 2500
SEED = 11
MLFLOW_DEPRECATION = (
    "ignore:The ``noload`` loader strategy is deprecated:sqlalchemy.exc.SADeprecationWarning"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # MLflow's registry store uses a loader strategy SQLAlchemy 2.1 deprecates; pyproject.toml
    # turns SQLAlchemy's deprecations into errors, which is meant for our own code only.
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.filterwarnings(MLFLOW_DEPRECATION))


@dataclass
class Trained:
    """What the session trained, and where."""

    home: Path
    store: Path
    panel: Path
    truth: dict[str, Any]
    index: dict[str, Any]
    risk: dict[str, Any]
    degraded_version: int


def settings_for(home: Path, store: Path) -> Settings:
    return Settings(home=home, database_url=f"sqlite:///{store}", mlflow_tracking_uri="")


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite file with everything committed (its WAL checkpointed first)."""
    import sqlite3

    with sqlite3.connect(source) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


@pytest.fixture(scope="session")
def panel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A synthetic panel of 2,500 returnees in three rounds, and its ground truth."""
    from reintegration.synth import generate_panel, write_panel

    folder = tmp_path_factory.mktemp("panel")
    frame, truth = generate_panel(RETURNEES, 3, seed=SEED)
    path = folder / "panel.csv"
    write_panel(frame, path, "csv")
    return path, truth


@pytest.fixture(scope="session")
def panel_store(tmp_path_factory: pytest.TempPathFactory, panel) -> Path:
    """A SQLite store holding the panel, scored with the built-in index."""
    from reintegration.index import ReintegrationIndex
    from reintegration.ingest import ingest_file
    from reintegration.questionnaire import load_questionnaire
    from reintegration.store.engine import open_store

    path = tmp_path_factory.mktemp("store") / "reintegration.db"
    engine = open_store(f"sqlite:///{path}")
    ingest_file(
        panel[0],
        engine,
        scorer=ReintegrationIndex().fit(),
        questionnaire=load_questionnaire(),
        secret=b"k" * 32,
        uploader="test",
    )
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow SQLite store to copy."""
    from models import _mlflow

    home = tmp_path_factory.mktemp("mlflow-template")
    settings = Settings(home=home, database_url="", mlflow_tracking_uri="")
    _mlflow.client(settings).search_experiments()
    return home / "mlflow.db"


@pytest.fixture(scope="session")
def trained(tmp_path_factory, panel, panel_store, mlflow_template) -> Trained:
    from models import _mlflow, registry
    from models.index_training import train_index
    from models.promotion import promote
    from models.risk_training import (
        evaluate_risk,
        fit,
        log_risk_model,
        one_thread,
        outcome_index,
        risk_data,
        train_risk,
    )
    from reintegration.questionnaire import load_questionnaire
    from reintegration.store.engine import create_store_engine

    home = tmp_path_factory.mktemp("trained")
    store = home / "reintegration.db"
    copy_sqlite(panel_store, store)
    copy_sqlite(mlflow_template, home / "mlflow.db")
    settings = settings_for(home, store)
    engine = create_store_engine(settings.database_url)
    registry.ensure_builtin_index(settings)
    derived = train_index(engine, settings, actor="session")
    risk = train_risk(engine, settings, actor="session")
    # On the synthetic panel the model does not beat the baseline rule (its card says so), so
    # the session forces it in: the tests need a champion to compare challengers with.
    promote(
        engine,
        "risk",
        risk["version"],
        reason="a champion for the tests to compare with",
        force=not risk["beats_baseline"],
        caller=cli_caller("session"),
        settings=settings,
    )
    # A deliberately degraded model: the same pipeline fitted to shuffled outcomes.
    client = _mlflow.client(settings)
    index = outcome_index(settings)
    data = risk_data(engine, load_questionnaire(), index)
    shuffled = np.random.default_rng(0).permutation(data.y)
    with one_thread():
        model = fit(data, index, y=shuffled)
        evaluation = evaluate_risk(model, data, index, settings)
    model.set_params(**evaluation["bands"])
    degraded, _ = log_risk_model(client, settings, model, data, evaluation, actor="session")
    engine.dispose()
    return Trained(
        home=home,
        store=store,
        panel=panel[0],
        truth=panel[1],
        index=derived,
        risk=risk,
        degraded_version=degraded,
    )


@pytest.fixture
def registry_home(trained: Trained, tmp_path: Path, monkeypatch) -> Iterator[tuple[Settings, Any]]:
    """Copies of the trained registry and store, configured through the environment."""
    from reintegration.store.engine import create_store_engine

    home = tmp_path / "var"
    store = home / "reintegration.db"
    copy_sqlite(trained.store, store)
    copy_sqlite(trained.home / "mlflow.db", home / "mlflow.db")
    for name in list(os.environ):
        if name.startswith("REINTEGRATION_") or name == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(name)
    monkeypatch.setenv("REINTEGRATION_HOME", str(home))
    monkeypatch.setenv("REINTEGRATION_SECRET_KEY", "k" * 32)
    get_settings.cache_clear()
    engine = create_store_engine(f"sqlite:///{store}")
    yield get_settings(), engine
    engine.dispose()
    get_settings.cache_clear()


def count(engine: Any, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one())
