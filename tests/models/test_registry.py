"""The registry: names, versions, labels, aliases, cards, and the built-in index."""

from __future__ import annotations

import pytest

from models import _mlflow, registry
from reintegration.errors import ModelError
from reintegration.policy import CLI
from reintegration.settings import Settings


def test_short_and_registered_names_resolve():
    assert registry.resolve_name("index") == "rss-index"
    assert registry.resolve_name("reintegration-risk") == "reintegration-risk"


def test_an_unknown_name_is_refused_with_the_names_it_knows():
    with pytest.raises(
        ModelError,
        match="there is no model called 'weights'; use one of index, risk, rss-index, reintegration-risk",
    ):
        registry.resolve_name("weights")


def test_versions_carry_labels_aliases_and_metrics(registry_home, trained):
    settings, _ = registry_home
    versions = {v["version"]: v for v in registry.list_versions("index", settings, caller=CLI)}
    assert versions[1]["label"] == "rss-v1-provisional"
    assert versions[1]["aliases"] == ["champion"]
    derived = versions[trained.index["version"]]
    assert derived["label"] == f"rss-v{trained.index['version']}-derived"
    assert derived["aliases"] == ["challenger"]
    assert derived["metrics"]["n"] == trained.index["n"]
    risk = {v["version"]: v for v in registry.list_versions("risk", settings, caller=CLI)}
    assert risk[trained.risk["version"]]["aliases"] == ["champion"]
    assert risk[trained.degraded_version]["aliases"] == ["challenger"]
    assert risk[trained.risk["version"]]["metrics"]["roc_auc"] == pytest.approx(
        trained.risk["model"]["roc_auc"]
    )


def test_list_models_names_champion_and_challenger(registry_home, trained):
    settings, _ = registry_home
    models = {m["short_name"]: m for m in registry.list_models(settings, caller=CLI)}
    assert models["index"]["champion"] == 1
    assert models["index"]["challenger"] == trained.index["version"]
    assert models["risk"]["champion"] == trained.risk["version"]


def test_ensure_builtin_index_is_idempotent(registry_home):
    settings, _ = registry_home
    before = len(registry.list_versions("index", settings, caller=CLI))
    assert registry.ensure_builtin_index(settings) == 1
    assert len(registry.list_versions("index", settings, caller=CLI)) == before


def test_a_missing_version_is_a_model_error(registry_home):
    settings, _ = registry_home
    with pytest.raises(ModelError, match="reintegration-risk has no version 99"):
        registry.model_card("risk", 99, settings, caller=CLI)


def test_every_version_has_a_model_card(registry_home, trained):
    settings, _ = registry_home
    card = registry.model_card("index", 1, settings, caller=CLI)
    assert card.startswith("# rss-index, version 1: rss-v1-provisional")
    assert "not derived from data" in card


def test_logged_models_pin_their_runtime_as_pyproject_does():
    pins = registry.pip_requirements()
    assert "scikit-learn==1.9.1" in pins
    assert "numpy==2.4.6" in pins
    assert all("==" in p for p in pins)


def test_looking_at_a_registry_that_does_not_exist_creates_nothing(tmp_path):
    settings = Settings(home=tmp_path / "var", database_url="", mlflow_tracking_uri="")
    assert not _mlflow.store_exists(settings)
    assert registry.list_versions("index", settings, caller=CLI) == []
    with pytest.raises(ModelError, match="no model is registered yet"):
        registry.model_card("index", 1, settings, caller=CLI)
    assert not (tmp_path / "var").exists()


def test_a_postgresql_uri_goes_through_psycopg_3():
    settings = Settings(
        home="/srv", database_url="", mlflow_tracking_uri="postgresql://u@h:5432/mlflow"
    )
    assert _mlflow.tracking_uri(settings) == "postgresql+psycopg://u@h:5432/mlflow"


def test_the_package_switches_telemetry_off_itself():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_DISABLE_TELEMETRY"}
    shown = subprocess.run(
        [sys.executable, "-c", "import models, os; print(os.environ['MLFLOW_DISABLE_TELEMETRY'])"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "true"


def test_registering_writes_under_the_data_folder_only(mlflow_template, tmp_path, monkeypatch):
    from tests.models.conftest import copy_sqlite

    monkeypatch.chdir(tmp_path)
    home = tmp_path / "var"
    copy_sqlite(mlflow_template, home / "mlflow.db")
    settings = Settings(home=home, database_url="", mlflow_tracking_uri="")
    assert registry.ensure_builtin_index(settings) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["var"]
    assert (home / "mlartifacts" / "rss-index").is_dir()
    assert registry.list_versions("index", settings, caller=CLI)[0]["aliases"] == ["champion"]
