"""Issue 13's small corrections through the API: round totals are labelled returnee-rounds,
the score export rounds as `reintegration score` does, and POST /score refuses interviews
dated after today."""

from __future__ import annotations

import csv
import datetime as dt
import io

from reintegration.coding import latest_today
from reintegration.index import ReintegrationIndex
from reintegration.scoring import score_file
from tests.api.conftest import PANEL_RETURNEES
from tests.conftest import canonical_row

AGGREGATES = "/api/v1/aggregates"
TRAJECTORIES = "/api/v1/trajectories"
FIGURES = ("economic", "social", "psychosocial", "composite")


def body(stack, path, **params):
    response = stack.get(path, "analyst", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_breakdown_by_round_counts_returnee_rounds_and_says_so(panel):
    by_round = body(panel, AGGREGATES, by="round")
    by_sex = body(panel, AGGREGATES, by="sex")

    total = by_round["cells"][-1]
    rounds = [c["returnees"] for c in by_round["cells"][:-1]]
    assert by_round["counted"] == "returnee-rounds"
    assert total["returnees"] == sum(rounds) > PANEL_RETURNEES
    assert by_sex["counted"] == "returnees"
    assert by_sex["cells"][-1]["returnees"] == PANEL_RETURNEES
    # The JSON field clients read keeps its name.
    assert set(total) >= {"returnees", "unscored", "figures"}


def test_trajectories_by_months_band_count_returnee_rounds(panel):
    assert body(panel, TRAJECTORIES, axis="months")["counted"] == "returnee-rounds"


def test_the_api_schema_describes_returnees_as_returnee_rounds_by_round(panel):
    schemas = panel.client.get("/openapi.json").json()["components"]["schemas"]

    returnees = schemas["Cell"]["properties"]["returnees"]["description"]
    assert returnees.startswith("distinct returnees, or returnee-rounds")
    assert "round or months_band among the groupings" in returnees
    counted = schemas["Aggregates"]["properties"]["counted"]
    assert counted["enum"] == ["returnees", "returnee-rounds"]
    assert (
        "returnee-rounds when round or months_band is among the groupings"
        in (counted["description"])
    )


def test_the_score_export_agrees_with_score_row_by_row(panel, panel_file, tmp_path):
    response = panel.get("/api/v1/exports/scores", "analyst")
    assert response.status_code == 200
    exported = list(csv.DictReader(io.StringIO(response.text)))
    out = tmp_path / "scores.csv"
    with out.open("wb") as sink:
        score_file(panel_file, sink, ReintegrationIndex().fit(), panel.services.questionnaire)
    with out.open(encoding="utf-8") as fh:
        scored = {r["submission_id"]: r for r in csv.DictReader(fh)}

    assert len(exported) == len(scored)
    differing = [
        (row["submission_id"], figure)
        for row in exported
        for figure in FIGURES
        if row[figure] != scored[row["submission_id"]][figure]
    ]
    assert differing == []


def test_post_score_refuses_an_interview_dated_after_today(panel, questionnaire):
    day = (latest_today() + dt.timedelta(days=1)).isoformat()
    records = [
        canonical_row(questionnaire, 1, interview_date=latest_today().isoformat()),
        canonical_row(questionnaire, 2, interview_date=day),
    ]

    answer = panel.post("/api/v1/score", "enumerator", json={"records": records}).json()

    assert [s["submission_id"] for s in answer["scores"]] == ["sub-0001"]
    assert answer["errors"] == [
        {
            "row": 2,
            "column": "interview_date",
            "value": day,
            "message": f"interview date {day} is after today ({latest_today().isoformat()} at "
            "the latest anywhere on Earth); write the date it took place",
        }
    ]
