"""Row-level routes: a returnee, the worklist, the score export; scoped by country."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import sqlalchemy as sa

from reintegration.pseudonym import returnee_key
from reintegration.store.schema import audit, risk, submission
from tests.api.conftest import RISK_MODEL, SECRET, ingest_panel


def case_numbers(panel_file, country):
    with panel_file.open(encoding="utf-8") as fh:
        return sorted({r["returnee_id"] for r in csv.DictReader(fh) if r["country"] == country})


def key_of(case):
    return returnee_key(case, SECRET.encode())


def test_a_returnee_has_their_rounds_with_scores(panel, panel_file):
    key = key_of(case_numbers(panel_file, "GIN")[0])

    body = panel.get(f"/api/v1/returnees/{key}", "analyst").json()

    assert body["key"] == key and body["country"] == "GIN"
    dates = [r["interview_date"] for r in body["rounds"]]
    assert dates == sorted(dates) and len(dates) >= 1
    assert [r["survey_round"] for r in body["rounds"]] == list(range(1, len(dates) + 1))
    assert body["rounds"][0]["scores"][0]["index_version"] == "rss-v1-provisional"
    assert body["risk"] == []


def test_a_returnee_may_be_asked_for_with_the_key_prefix(panel, panel_file):
    key = key_of(case_numbers(panel_file, "SEN")[0])
    assert panel.get(f"/api/v1/returnees/key:{key}", "analyst").json()["key"] == key


def test_a_returnee_of_another_country_is_404_for_a_limited_token(panel, panel_file):
    sen = key_of(case_numbers(panel_file, "SEN")[0])
    gin = key_of(case_numbers(panel_file, "GIN")[0])

    assert panel.get(f"/api/v1/returnees/{sen}", "analyst_sen").status_code == 200
    hidden = panel.get(f"/api/v1/returnees/{gin}", "analyst_sen")
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == (
        "there is no returnee with this key that this token may see."
    )


def test_a_case_number_is_not_a_key(panel):
    response = panel.get("/api/v1/returnees/GIN-2024-000001", "analyst")

    assert response.status_code == 422
    assert response.json()["detail"].startswith("path parameter key: ")


def test_without_a_risk_champion_the_worklist_ranks_by_the_baseline_rule_and_says_so(panel):
    body = panel.get("/api/v1/worklist", "analyst").json()

    assert body["model"] is None and body["model_version"] is None
    assert body["note"] == (
        "ranked by the baseline rule (1 − first-survey composite): no promoted risk model"
    )
    risks = [item["probability"] for item in body["items"]]
    assert risks and risks == sorted(risks, reverse=True)
    assert all(
        item["band"] == ("high" if r >= 0.6 else "medium" if r >= 0.3 else "low")
        for item, r in zip(body["items"], risks, strict=True)
    )
    assert body["items"][0]["reasons"]
    senegal = panel.get("/api/v1/worklist", "analyst_sen", params={"band": "high"}).json()
    assert {item["country"] for item in senegal["items"]} <= {"SEN"}
    assert all(item["band"] == "high" for item in senegal["items"])


def _risk_rows(stack, version, probabilities):
    """Risk rows for the first submissions, with the given probabilities in turn."""
    now = datetime.now(UTC)
    with stack.services.engine.begin() as conn:
        firsts = conn.execute(
            sa.select(submission.c.id, submission.c.returnee_key)
            .where(submission.c.survey_round == 1)
            .order_by(submission.c.id)
        ).all()
        for (pk, key), probability in zip(firsts, probabilities, strict=False):
            conn.execute(
                risk.insert().values(
                    submission_pk=pk,
                    model=RISK_MODEL,
                    model_version=version,
                    returnee_key=key,
                    probability=probability,
                    band="high" if probability >= 0.6 else "low",
                    weakest_dimension="economic",
                    reasons=["food_reduction"],
                    created_at=now,
                )
            )


def test_the_worklist_ranks_the_champions_risk_rows(fresh, batch_file):
    ingest_panel(
        fresh,
        batch_file(
            *(
                {"submission_id": f"s{k}", "returnee_id": f"C{k}", "country": c}
                for k, c in enumerate(["SEN", "GIN", "SEN", "GIN"])
            )
        ),
    )
    _risk_rows(fresh, 2, [0.2, 0.9, 0.7, 0.4])
    _risk_rows(fresh, 1, [0.99, 0.99, 0.99, 0.99])  # an older version's rows are not ranked
    fresh.services.champions.risk_ = (object(), 2)

    body = fresh.get("/api/v1/worklist", "analyst").json()
    sen = fresh.get("/api/v1/worklist", "analyst_sen").json()
    high = fresh.get("/api/v1/worklist", "analyst", params={"band": "high"}).json()

    assert body["model"] == RISK_MODEL and body["model_version"] == 2
    assert [i["probability"] for i in body["items"]] == [0.9, 0.7, 0.4, 0.2]
    assert body["total"] == 4 and [i["rank"] for i in body["items"]] == [1, 2, 3, 4]
    # reasons are read from the first survey, and only from its weakest dimension
    assert all(
        r["dimension"] == i["weakest_dimension"] for i in body["items"] for r in i["reasons"]
    )
    assert {i["country"] for i in sen["items"]} == {"SEN"}
    assert [i["probability"] for i in high["items"]] == [0.9, 0.7]


def test_a_bad_band_is_422(panel):
    response = panel.get("/api/v1/worklist", "analyst", params={"band": "extreme"})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "query parameter band: 'extreme' is not one of low, medium, high."
    )


def test_the_score_export_is_csv_scoped_and_audited(panel, panel_file):
    everything = panel.get("/api/v1/exports/scores", "analyst")
    sen = panel.get("/api/v1/exports/scores", "analyst_sen")

    assert everything.status_code == 200
    assert everything.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(everything.text)))
    with panel_file.open(encoding="utf-8") as fh:
        assert len(rows) == sum(1 for _ in csv.DictReader(fh))
    assert set(rows[0]) >= {"returnee_key", "submission_id", "composite", "index_version"}
    assert {r["country"] for r in csv.DictReader(io.StringIO(sen.text))} == {"SEN"}
    with panel.services.engine.connect() as conn:
        exports = conn.execute(
            sa.select(audit.c.actor, audit.c.detail).where(audit.c.action == "export")
        ).all()
    assert ("analyst_sen", "SEN") in {(a, (d["countries"] or ["all"])[0]) for a, d in exports}


def test_the_score_export_neutralises_formulas(fresh, batch_file):
    ingest_panel(fresh, batch_file({"submission_id": "=1+2"}))

    text = fresh.get("/api/v1/exports/scores", "analyst").text

    assert list(csv.DictReader(io.StringIO(text)))[0]["submission_id"] == "'=1+2"
