"""After a batch: drift per item, risk rows with reasons for new first surveys."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from models import _mlflow
from models.hooks import after_batch
from models.serving import Champions
from reintegration.index import ReintegrationIndex
from reintegration.ingest import ingest_file
from reintegration.store.engine import for_reading
from reintegration.synth import generate_panel, write_panel
from tests.models.conftest import count

NEW = 150


@pytest.fixture
def new_batch(registry_home, questionnaire, tmp_path):
    """A batch of first surveys of returnees the store has not seen."""
    settings, engine = registry_home
    frame, _ = generate_panel(NEW, 1, seed=99)
    frame["returnee_id"] = "NEW-" + frame["returnee_id"].astype(str)
    path = tmp_path / "new.csv"
    write_panel(frame, path, "csv")
    report = ingest_file(
        path,
        engine,
        scorer=ReintegrationIndex().fit(),
        questionnaire=questionnaire,
        secret=b"k" * 32,
        uploader="test",
    )
    assert report.accepted == NEW
    return settings, engine, report.batch_id


def test_new_first_surveys_get_risk_rows_with_reasons(new_batch, trained):
    settings, engine, batch_id = new_batch
    before = count(engine, "SELECT count(*) FROM risk")
    done = after_batch(engine, batch_id, Champions(settings))
    assert done["error"] is None
    assert done["risks"] == NEW == count(engine, "SELECT count(*) FROM risk") - before
    with for_reading(engine).connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT r.model, r.model_version, r.probability, r.band, r.weakest_dimension, "
                "r.reasons FROM risk r JOIN submission s ON s.id = r.submission_pk "
                "WHERE s.batch_id = :b"
            ),
            {"b": batch_id},
        ).all()
    assert len(rows) == NEW
    for row in rows:
        assert row.model == "reintegration-risk" and row.model_version == trained.risk["version"]
        assert 0 <= row.probability <= 1 and row.band in ("low", "medium", "high")
        reasons = json.loads(row.reasons) if isinstance(row.reasons, str) else row.reasons
        assert 1 <= len(reasons) <= 3
    assert {r.weakest_dimension for r in rows} <= {"economic", "social", "psychosocial", None}
    again = after_batch(engine, batch_id, Champions(settings))
    assert again["risks"] == 0  # a first survey gets one row per model version


def test_drift_is_stored_per_item_for_the_batch(new_batch, questionnaire):
    settings, engine, batch_id = new_batch
    done = after_batch(engine, batch_id, Champions(settings))
    assert done["drift"] == len(questionnaire.items)
    with for_reading(engine).connect() as conn:
        rows = conn.execute(
            sa.text("SELECT model, model_version, item, psi, n FROM drift WHERE batch_id = :b"),
            {"b": batch_id},
        ).all()
    assert {r.item for r in rows} == set(questionnaire.item_ids)
    assert {(r.model, r.model_version) for r in rows} == {("rss-index", 1)}
    assert all(r.psi is not None and r.psi >= 0 and 0 < r.n <= NEW for r in rows)


def test_drift_against_a_derived_champion_uses_its_training_data(new_batch, trained):
    settings, engine, batch_id = new_batch
    _mlflow.client(settings).set_registered_model_alias(
        "rss-index", "champion", str(trained.index["version"])
    )
    after_batch(engine, batch_id, Champions(settings))
    assert (
        count(
            engine,
            "SELECT count(DISTINCT model_version) FROM drift WHERE batch_id = :b",
            b=batch_id,
        )
        == 1
    )
    assert count(engine, "SELECT max(model_version) FROM drift") == trained.index["version"]


def test_a_failure_after_the_batch_is_reported_not_raised(new_batch):
    settings, engine, batch_id = new_batch

    class Broken(Champions):
        def index(self):
            raise RuntimeError("registry unreachable")

    done = after_batch(engine, batch_id, Broken(settings))
    assert done == {"drift": 0, "risks": 0, "error": "RuntimeError: registry unreachable"}
    assert count(engine, "SELECT count(*) FROM submission WHERE batch_id = :b", b=batch_id) == NEW
