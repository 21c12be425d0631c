"""Training both models on the synthetic store: what is registered and what the cards say."""

from __future__ import annotations

import datetime as dt

import pytest
from scipy.stats import spearmanr

from models import _mlflow, registry
from models.index_training import train_index
from models.risk_training import train_risk
from reintegration.errors import ModelError
from reintegration.policy import CLI


def test_derived_weights_follow_the_truth(trained):
    """Acceptance: the strongest items of each dimension get the largest weights."""
    loadings = trained.truth["loadings"]
    weights = trained.index["weights"]
    for dim in ("economic", "social", "psychosocial"):
        rows = [w for w in weights if w["dimension"] == dim]
        by_truth = sorted(rows, key=lambda w: -loadings[w["item"]])
        by_weight = sorted(rows, key=lambda w: -w["weight"])
        rho = spearmanr([loadings[w["item"]] for w in rows], [w["weight"] for w in rows]).statistic
        assert rho > 0.8, dim
        assert {w["item"] for w in by_truth[:3]} <= {w["item"] for w in by_weight[:4]}, dim


def test_the_index_run_records_its_provenance(registry_home, trained):
    settings, _ = registry_home
    client = _mlflow.client(settings)
    version = registry.get_version(client, "rss-index", trained.index["version"])
    run = client.get_run(version.run_id)
    assert run.data.params["data_window_from"] == "start"
    assert int(run.data.params["n"]) == trained.index["n"] == 2500
    assert run.data.params["champion"] == "rss-v1-provisional"
    assert run.data.metrics["correlation_with_champion"] == pytest.approx(
        trained.index["correlation"]
    )
    for dim in ("economic", "social", "psychosocial"):
        assert 0 < run.data.metrics[f"explained_variance/{dim}"] < 1
    assert registry.read_json_artifact(client, version.run_id, registry.REFERENCE)
    card = registry.model_card("index", trained.index["version"], settings, caller=CLI)
    assert "## Against the champion (rss-v1-provisional)" in card
    assert "| sex=female |" in card


def test_a_window_without_interviews_is_refused(registry_home):
    settings, engine = registry_home
    before = len(registry.list_versions("index", settings, caller=CLI))
    with pytest.raises(
        ModelError,
        match="weights need at least 30 returnees with an interview in the data window; there are 0",
    ):
        train_index(engine, settings, date_from=dt.date(2030, 1, 1))
    assert len(registry.list_versions("index", settings, caller=CLI)) == before


def test_a_window_that_ends_before_it_starts_is_refused(registry_home):
    settings, engine = registry_home
    with pytest.raises(
        ModelError, match=r"the data window starts \(2025-02-01\) after it ends \(2025-01-01\)"
    ):
        train_index(engine, settings, date_from=dt.date(2025, 2, 1), date_to=dt.date(2025, 1, 1))


def test_a_window_and_dimension_weights_are_recorded(registry_home):
    settings, engine = registry_home
    done = train_index(
        engine,
        settings,
        date_from=dt.date(2024, 1, 1),
        date_to=dt.date(2025, 6, 30),
        dimension_weights={"economic": 0.5, "social": 0.25, "psychosocial": 0.25},
    )
    client = _mlflow.client(settings)
    version = registry.get_version(client, "rss-index", done["version"])
    assert registry.label_of(version) == f"rss-v{done['version']}-derived"
    params = client.get_run(version.run_id).data.params
    assert params["data_window_to"] == "2025-06-30"
    assert float(params["dimension_weight/economic"]) == 0.5
    assert registry.load_index(client, version).dimension_weights_["economic"] == 0.5


def test_the_risk_model_beats_chance_on_held_out_returnees(trained):
    """Acceptance: ROC AUC of at least 0.70 on returnees the model never saw."""
    risk = trained.risk
    assert risk["model"]["roc_auc"] >= 0.70
    assert 0 < risk["n_test"] < risk["n"]
    assert risk["model"]["brier"] < 0.25


def held_out_baseline(engine, settings):
    """The baseline rule recomputed independently: 1 - the first survey's composite."""
    from models.risk_training import outcome_index, risk_data
    from reintegration.questionnaire import load_questionnaire

    index = outcome_index(settings)
    questionnaire = load_questionnaire()
    data = risk_data(engine, questionnaire, index)
    X, y = data.X[data.test], data.y[data.test]
    scores = index.score_arrays({i: X[i].to_numpy() for i in questionnaire.item_ids})
    return y, 1.0 - scores["composite"]


def test_the_card_states_the_baseline_rule_and_the_paired_interval(registry_home, trained):
    """Acceptance: the composite baseline's AUC, the candidate's and their paired interval."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    settings, engine = registry_home
    y, rule = held_out_baseline(engine, settings)
    known = ~np.isnan(rule)
    baseline_auc = roc_auc_score(y[known], rule[known])
    versus = trained.risk["versus_baseline"]
    card = registry.model_card("risk", trained.risk["version"], settings, caller=CLI)

    assert versus["baseline_auc"] == pytest.approx(baseline_auc, abs=5e-4)
    assert (
        f"| baseline rule (1 − first-survey composite) | {versus['n']} | {baseline_auc:.3f} |"
        in (card)
    )
    assert versus["low"] < versus["difference"] < versus["high"]
    assert (
        f"ROC AUC {versus['model_auc']:.3f} against the baseline rule's {baseline_auc:.3f}" in card
    )
    assert (
        f"paired bootstrap 95% interval {versus['low']:+.3f} to {versus['high']:+.3f} "
        "(2000 replicates, the same resampled returnees for both)" in card
    )
    # The verdict follows the interval, whatever the draw: beaten only when it lies above 0.
    beaten = versus["low"] > 0
    assert trained.risk["beats_baseline"] is beaten
    assert ("**This version beats the baseline rule**" in card) is beaten
    assert ("**This version does not beat the baseline rule**" in card) is (not beaten)


def test_the_card_reports_exclusions_prevalence_calibration_by_group_and_time(
    registry_home, trained
):
    settings, _ = registry_home
    card = registry.model_card("risk", trained.risk["version"], settings, caller=CLI)
    left = trained.risk["exclusions"]
    assert left["no_follow_up"] > 0 and left["included"] == trained.risk["n"]
    assert f"| left out: no follow-up 9 or more months after return | {left['no_follow_up']} |" in (
        card
    )
    assert (
        "| model | held-out returnees | ROC AUC | average precision | prevalence | Brier score |"
        in card
    )
    prevalence = trained.risk["model"]["prevalence"]
    assert 0 < prevalence < 1 and f"| {prevalence:.3f} |" in card
    assert "## Calibration by group" in card and "| sex=female |" in card
    temporal = trained.risk["temporal"]
    assert temporal["model_auc"] > 0.5 and temporal["n_test"] > 0
    assert f"later cohorts (from {temporal['cutoff']})" in card
    assert "random held-out returnees (this version)" in card
    for section in ("## By subgroup", "## Calibration", "## What drives it", "## Known limits"):
        assert section in card
    assert "insufficient data" in card  # small intersections are not evaluated
    assert "REINTEGRATION_RISK_BANDS" in card and "| band | n | mean predicted | observed |" in card


def test_a_model_trained_on_shuffled_outcomes_does_not_beat_the_baseline(registry_home, trained):
    settings, _ = registry_home
    card = registry.model_card("risk", trained.degraded_version, settings, caller=CLI)
    assert "**This version does not beat the baseline rule**" in card
    client = _mlflow.client(settings)
    version = registry.get_version(client, "reintegration-risk", trained.degraded_version)
    metrics = client.get_run(version.run_id).data.metrics
    assert metrics["beats_baseline"] == 0.0 and metrics["auc_difference_high"] < 0


def test_subgroups_are_evaluated_with_their_sizes(trained):
    groups = {r["group"]: r for r in trained.risk["subgroups"]}
    assert groups["sex=female"]["sufficient"] and groups["sex=female"]["roc_auc"] > 0.5
    assert "sex=female & age_group=child & return_type=forced" in groups
    small = [r for r in trained.risk["subgroups"] if r["n"] < 30]
    assert small and all(not r["sufficient"] and r["roc_auc"] is None for r in small)


def test_the_risk_model_is_registered_with_a_signature_and_pinned_requirements(
    registry_home, trained
):
    settings, _ = registry_home
    client = _mlflow.client(settings)
    version = registry.get_version(client, "reintegration-risk", trained.risk["version"])
    from pathlib import Path

    from mlflow.models import Model

    folder = Path(
        client.get_model_version_download_uri(version.name, version.version).removeprefix("file://")
    )
    info = Model.load(str(folder))
    inputs = [c.name for c in info.signature.inputs.inputs]
    assert "econ_satisfaction" in inputs and "months_since_return" in inputs
    requirements = (folder / "requirements.txt").read_text().split()
    assert set(registry.pip_requirements()) <= set(requirements)
    assert all("==" in r for r in requirements)
    model = registry.load_model(client, version)
    assert hasattr(model, "risk") and model.medium_from < model.high_from


def test_too_little_data_for_a_risk_model_is_refused(tmp_path, monkeypatch):
    from reintegration.settings import Settings
    from reintegration.store.engine import open_store

    settings = Settings(home=tmp_path / "var", database_url="", mlflow_tracking_uri="")
    engine = open_store(settings.database_url)
    with pytest.raises(
        ModelError,
        match="a risk model needs at least 100 returnees with a first survey within 4 months of return and a follow-up 9 or more months after it; there are 0",
    ):
        train_risk(engine, settings)
    assert not (tmp_path / "var" / "mlflow.db").exists()  # refused before touching MLflow
