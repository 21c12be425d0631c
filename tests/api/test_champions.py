"""A champion that cannot be loaded is the server's problem: 503 with a sentence, never 422."""

from __future__ import annotations

import logging

import pytest

from api.champions import GuardedChampions
from reintegration.errors import IndexParameterError
from tests.conftest import canonical_row

DETAIL = (
    "the champion index cannot be loaded from the model registry; the server's log says why "
    "(an administrator can promote another version)."
)


class Broken:
    def index(self):
        raise IndexParameterError("dimension weights must be non-negative and sum to 1")

    def risk(self):
        return None

    def refresh(self):
        return None


@pytest.fixture
def broken(fresh):
    guarded = GuardedChampions(Broken())
    fresh.services.champions = guarded
    fresh.services.uploads.champions = guarded
    return fresh


def test_aggregates_answer_503_when_the_champion_cannot_be_loaded(broken, caplog):
    caplog.set_level(logging.ERROR)

    response = broken.get("/api/v1/aggregates", "manager")

    assert response.status_code == 503
    assert response.json()["detail"] == DETAIL
    assert any("cannot be loaded" in r.getMessage() for r in caplog.records)


def test_an_upload_answers_503_when_the_champion_cannot_be_loaded(broken, batch_file):
    from tests.api.test_batches import upload

    response = upload(broken, "enumerator", batch_file({}))

    assert response.status_code == 503
    assert response.json()["detail"] == (
        "the upload could not be recorded because of a server problem; send it again."
    )


def test_scoring_answers_503_when_the_champion_cannot_be_loaded(broken, questionnaire):
    response = broken.post(
        "/api/v1/score", "analyst", json={"records": [canonical_row(questionnaire)]}
    )

    assert response.status_code == 503 and response.json()["detail"] == DETAIL


def test_an_asked_index_version_with_stored_scores_needs_no_champion(broken, batch_file):
    from tests.api.conftest import ingest_panel

    ingest_panel(broken, batch_file({}))  # stored with the built-in index, as the CLI would

    response = broken.get(
        "/api/v1/aggregates", "manager", params={"index_version": "rss-v1-provisional"}
    )

    assert response.status_code == 200
