"""`reintegration train`, `models list|promote|card`, and score/ingest with the champion."""

from __future__ import annotations

import csv
import json

from typer.testing import CliRunner

from reintegration.cli import app
from reintegration.synth import generate_panel, write_panel
from tests.models.conftest import count


def run(*args):
    return CliRunner().invoke(app, list(args))


def test_models_list_shows_versions_labels_and_aliases(registry_home, trained):
    result = run("models", "list")
    assert result.exit_code == 0, result.output
    assert "rss-v1-provisional" in result.stdout and "champion" in result.stdout
    assert "challenger" in result.stdout and "roc_auc" in result.stdout


def test_models_list_without_a_registry_says_so(home):
    result = run("models", "list")
    assert result.exit_code == 0
    assert result.stderr == "No model is registered yet.\n"
    assert not home.exists()


def test_train_index_registers_a_challenger(registry_home):
    result = run("train", "index", "--from", "2024-01-01", "--actor", "officer")
    assert result.exit_code == 0, result.output
    assert "Explained variance of the first component" in result.stdout
    assert (
        "Registered rss-v3-derived from 2500 returnees as rss-index version 3 (challenger)"
        in result.stderr
    )


def test_train_index_refuses_a_bad_date(registry_home):
    result = run("train", "index", "--from", "2025-13-01")
    assert result.exit_code == 2
    assert result.stderr == "error: --from '2025-13-01' is not a date; write it as YYYY-MM-DD.\n"


def test_train_index_refuses_incomplete_dimension_weights(registry_home):
    result = run("train", "index", "--dimension-weights", "economic=1")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --dimension-weights: give a weight for social, psychosocial too.\n"
    )


def test_a_refused_promotion_is_exit_status_1_naming_the_metric(registry_home, trained):
    result = run("models", "promote", "risk", str(trained.degraded_version))
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"reintegration-risk version {trained.degraded_version} is refused: it does not beat the "
        "baseline rule (1 - first-survey composite): ROC AUC 0."
    )
    assert "; and its ROC AUC is lower than the champion's" in result.stderr


def test_an_index_promotion_without_a_reason_is_exit_status_2(registry_home, trained):
    result = run("models", "promote", "index", str(trained.index["version"]))
    assert result.exit_code == 2
    assert result.stderr == (
        "error: promoting an index version is a methodological decision: give --reason saying "
        "why.\n"
    )


def test_an_unknown_model_is_exit_status_2(registry_home):
    result = run("models", "promote", "weights", "1", "--reason", "x")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: there is no model called 'weights'")


def test_after_promotion_score_and_ingest_use_the_new_index(registry_home, trained, tmp_path):
    settings, engine = registry_home
    version = trained.index["version"]
    label = f"rss-v{version}-derived"
    result = run(
        "models", "promote", "index", str(version), "--reason", "field data", "--actor", "officer"
    )
    assert result.exit_code == 0, result.output
    assert f"rss-index version {version} is now the champion; " in result.stderr
    assert "| overall |" not in result.stdout and "overall" in result.stdout
    frame, _ = generate_panel(40, 1, seed=5)
    frame["returnee_id"] = "CLI-" + frame["returnee_id"].astype(str)
    batch = tmp_path / "batch.csv"
    write_panel(frame, batch, "csv")
    out = tmp_path / "scores.csv"
    result = run("score", str(batch), "--out", str(out))
    assert result.exit_code == 0, result.output
    with out.open() as fh:
        assert {row["index_version"] for row in csv.DictReader(fh)} == {label}
    result = run("ingest", str(batch), "--json")
    assert result.exit_code == 0, result.output
    batch_id = json.loads(result.stdout)["batch_id"]
    in_batch = "JOIN submission b ON b.id = t.submission_pk WHERE b.batch_id = :b"
    assert (
        count(
            engine,
            f"SELECT count(*) FROM score t {in_batch} AND t.index_version = :l "
            "AND t.model_version = :v",
            b=batch_id,
            l=label,
            v=version,
        )
        == 40
    )
    assert count(engine, f"SELECT count(*) FROM risk t {in_batch}", b=batch_id) == 40
    assert (
        count(
            engine,
            "SELECT count(*) FROM drift WHERE batch_id = :b AND model_version = :v",
            b=batch_id,
            v=version,
        )
        == 26
    )


def test_the_card_command_prints_the_markdown(registry_home, trained):
    result = run("models", "card", "risk", str(trained.risk["version"]))
    assert result.exit_code == 0
    assert result.stdout.startswith(f"# reintegration-risk, version {trained.risk['version']}")


def test_score_without_a_registry_creates_nothing(home, tmp_path):
    frame, _ = generate_panel(5, 1, seed=1)
    batch = tmp_path / "b.csv"
    write_panel(frame, batch, "csv")
    result = run("score", str(batch), "--out", str(tmp_path / "s.csv"))
    assert result.exit_code == 0, result.output
    assert "with rss-v1-provisional" in result.stderr
    assert not home.exists()
