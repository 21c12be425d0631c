"""POST /score: stateless scoring of JSON records, with the validation sentences of uploads."""

from __future__ import annotations

import sqlalchemy as sa

from reintegration.store.schema import submission
from tests.conftest import canonical_row

SCORE = "/api/v1/score"


def test_valid_records_are_scored_in_input_order(panel, questionnaire):
    records = [canonical_row(questionnaire, k) for k in (1, 2)]

    response = panel.post(SCORE, "enumerator", json={"records": records})

    assert response.status_code == 200
    body = response.json()
    assert body["index_version"] == "rss-v1-provisional"
    assert [s["submission_id"] for s in body["scores"]] == ["sub-0001", "sub-0002"]
    assert [s["record"] for s in body["scores"]] == [1, 2]
    first = body["scores"][0]
    assert first["composite"] == 1.0 and first["level"] == "high" and first["sustainable"] is True
    assert body["errors"] == [] and (body["received"], body["scored"]) == (2, 2)


def test_invalid_records_get_the_sentences_of_an_upload(panel, questionnaire):
    records = [
        canonical_row(questionnaire, 1),
        canonical_row(questionnaire, 2, age_at_return="300"),
        canonical_row(questionnaire, 3),
    ]

    body = panel.post(SCORE, "enumerator", json={"records": records}).json()

    assert [(s["record"], s["submission_id"]) for s in body["scores"]] == [
        (1, "sub-0001"),
        (3, "sub-0003"),
    ]
    assert body["errors"] == [
        {
            "row": 2,
            "column": "age_at_return",
            "value": "300",
            "message": "age at return 300 is outside 0–110",
        }
    ]


def test_only_the_submission_id_is_required(panel, questionnaire):
    answers = {k: v for k, v in canonical_row(questionnaire).items() if k in questionnaire.item_ids}

    body = panel.post(SCORE, "analyst", json={"records": [{"submission_id": "a", **answers}]})

    assert body.status_code == 200 and body.json()["scores"][0]["composite"] == 1.0


def test_records_without_a_submission_id_are_refused_with_a_sentence(panel):
    response = panel.post(SCORE, "analyst", json={"records": [{"sex": "female"}]})

    assert response.status_code == 422
    assert "submission_id" in response.json()["detail"]


def test_numbers_in_records_are_read_like_text(panel, questionnaire):
    record = {**canonical_row(questionnaire), "age_at_return": 29}

    body = panel.post(SCORE, "analyst", json={"records": [record]}).json()

    assert body["scored"] == 1 and body["errors"] == []


def test_an_empty_list_of_records_is_422(panel):
    response = panel.post(SCORE, "analyst", json={"records": []})

    assert response.status_code == 422
    assert response.json()["detail"].startswith("body field records: ")


def test_scoring_stores_nothing(panel, questionnaire):
    with panel.services.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(submission)).scalar_one()
    panel.post(SCORE, "analyst", json={"records": [canonical_row(questionnaire, 99)]})
    with panel.services.engine.connect() as conn:
        after = conn.execute(sa.select(sa.func.count()).select_from(submission)).scalar_one()
    assert after == before


class FakeRiskModel:
    """Answers like models.estimators.RiskModel, checking it is given the model's features."""

    def __init__(self, questionnaire):
        from reintegration.risk_features import feature_columns

        self.columns = list(feature_columns(questionnaire))
        self.seen = None

    def risk(self, X):
        assert list(X.columns) == self.columns
        self.seen = X
        return [0.8] * len(X)

    def bands(self, probabilities):
        return ["high" if p >= 2 / 3 else "low" for p in probabilities]


def test_first_surveys_get_the_risk_champions_estimate(fresh, questionnaire):
    model = FakeRiskModel(questionnaire)
    fresh.services.champions.risk_ = (model, 4)
    records = [
        canonical_row(questionnaire, 1, return_date="2025-04-01"),  # 2 months: a first survey
        canonical_row(questionnaire, 2, return_date="2024-06-01"),  # a year: a follow-up
        {k: v for k, v in canonical_row(questionnaire, 3).items() if k != "return_date"},
    ]

    body = fresh.post(SCORE, "analyst", json={"records": records}).json()

    risks = [s["risk"] for s in body["scores"]]
    assert risks == [{"model_version": 4, "probability": 0.8, "band": "high"}, None, None]
    assert model.seen["country"].tolist() == ["SEN"]
    assert model.seen["assistance_cash"].tolist() == [1.0]


def test_without_a_risk_champion_no_record_has_a_risk(panel, questionnaire):
    record = canonical_row(questionnaire, 1, return_date="2025-04-01")

    body = panel.post(SCORE, "analyst", json={"records": [record]}).json()

    assert body["scores"][0]["risk"] is None


def test_the_real_risk_model_scores_the_features_built_here(fresh, questionnaire):
    import numpy as np

    from models.risk_training import build_model

    records = [
        canonical_row(
            questionnaire,
            k,
            return_date="2025-04-01",
            sex=("female", "male")[k % 2],
            country=("SEN", "GIN", "MLI")[k % 3],
        )
        for k in range(1, 61)
    ]
    capture = FakeRiskModel(questionnaire)
    fresh.services.champions.risk_ = (capture, 1)
    fresh.post(SCORE, "analyst", json={"records": records})
    model = build_model(fresh.services.champions.index_)
    model.fit(capture.seen, np.arange(len(capture.seen)) % 2)
    fresh.services.champions.risk_ = (model, 2)

    body = fresh.post(SCORE, "analyst", json={"records": records[:3]}).json()

    for entry in body["scores"]:
        assert 0.0 <= entry["risk"]["probability"] <= 1.0
        assert entry["risk"]["band"] in ("low", "medium", "high")
