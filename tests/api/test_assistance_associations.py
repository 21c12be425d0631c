"""GET /assistance: the cells by assistance type and each type against none, raw and adjusted
side by side, worded as association; exact for an analyst, protected for a manager; bad
questions answered 422 with a sentence, never 500."""

from __future__ import annotations

import pytest

ASSISTANCE = "/api/v1/assistance"


def assistance(stack, who="analyst", **params):
    response = stack.get(ASSISTANCE, who, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_analyst_gets_exact_raw_and_adjusted_gaps_beside_the_cells(panel):
    body = assistance(panel)
    assert body["figures"] == "exact" and body["figure"] == "composite"
    assert body["by"] == ["assistance"]
    assert body["comparison"].startswith("each assistance type against none")
    assert "associations, not effects" in body["comparison"]
    assert "effect of" not in body["method"]
    assert body["adjusted_for"] == [
        "sex",
        "age_group",
        "return_type",
        "country",
        "months_since_return",
    ]
    cells = {c["group"]["assistance"]: c for c in body["cells"]}
    listed = set(cells) - {"all", "none"}
    assert {a["assistance"] for a in body["associations"]} == listed
    compared = [a for a in body["associations"] if a["adjusted"]["difference"] is not None]
    assert compared, "the panel has types with at least min_cell returnees"
    for row in compared:
        raw, adjusted = row["raw"], row["adjusted"]
        assert raw["low"] < raw["difference"] < raw["high"]
        assert adjusted["low"] < adjusted["difference"] < adjusted["high"]
        mean = cells[row["assistance"]]["figures"]["composite"]["mean"]
        none = cells["none"]["figures"]["composite"]["mean"]
        assert raw["difference"] == pytest.approx(mean - none)
        assert row["treated"] == cells[row["assistance"]]["returnees"]
        assert row["untreated"] == cells["none"]["returnees"]
        assert row["overlap"] in ("adequate", "limited")
        assert 0 <= row["treated_outside_support"] <= 1
    for row in body["associations"]:
        if row["adjusted"]["difference"] is None and row["overlap"] is None:
            assert row["note"].startswith("not compared: fewer than 5 returnees")
            assert row["treated"] is None and row["raw"]["difference"] is None


def test_a_figure_can_be_chosen(panel):
    body = assistance(panel, figure="economic")
    cells = {c["group"]["assistance"]: c for c in body["cells"]}
    row = next(a for a in body["associations"] if a["raw"]["difference"] is not None)
    gap = (
        cells[row["assistance"]]["figures"]["economic"]["mean"]
        - cells["none"]["figures"]["economic"]["mean"]
    )
    assert body["figure"] == "economic"
    assert row["raw"]["difference"] == pytest.approx(gap)


def test_a_manager_gets_protected_rounded_associations(panel):
    body = assistance(panel, "manager")
    assert body["figures"] == "protected"
    cells = {c["group"]["assistance"]: c for c in body["cells"] if not c["other"]}
    compared = [a for a in body["associations"] if a["adjusted"]["difference"] is not None]
    assert compared
    for row in compared:
        for gap in (row["raw"], row["adjusted"]):
            for value in gap.values():
                assert value == round(value, 2)
        assert row["treated"] == cells[row["assistance"]]["returnees"] >= 5
        assert row["untreated"] == cells["none"]["returnees"] >= 5
        assert row["treated_outside_support"] == round(row["treated_outside_support"], 2)
    # An analyst asking for publishable figures gets the same answer.
    assert assistance(panel, "analyst", protected="true")["associations"] == body["associations"]


def test_a_country_limited_token_compares_within_its_countries(panel):
    body = assistance(panel, "manager_sen")
    assert body["filters"]["countries"] == ["SEN"]
    assert all(a["assistance"] for a in body["associations"])


def test_bad_questions_are_422_with_a_sentence_never_500(panel):
    cases = {
        "figure=income": "query parameter figure: ",
        "round=first": "query parameter round: 'first' is not a survey round (1, 2, ...).",
        "from=2025-02-01&to=2025-01-01": "query parameter from (2025-02-01) is after to "
        "(2025-01-01).",
        "sex=robot": "query parameter sex: 'robot' is not one of female, male, other, unknown.",
        "protected=perhaps": "query parameter protected: ",
    }
    for query, detail in cases.items():
        response = panel.get(f"{ASSISTANCE}?{query}", "analyst")
        assert response.status_code == 422, (query, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"].startswith(detail), response.json()["detail"]


def test_an_index_version_without_scores_is_404(panel):
    response = panel.get(ASSISTANCE, "analyst", params={"index_version": "rss-v9-derived"})
    assert response.status_code == 404


def test_an_enumerator_may_not_ask(panel):
    response = panel.get(ASSISTANCE, "enumerator")
    assert response.status_code == 403


def test_a_selection_without_returnees_answers_with_no_association(panel):
    for who in ("analyst", "manager"):
        body = assistance(panel, who, country="ATA")
        assert body["associations"] == []
        assert body["cells"][-1]["total"] is True


@pytest.mark.parametrize("who", ["analyst", "manager"])
def test_gaps_in_the_share_sustainable(panel, who):
    body = assistance(panel, who, figure="sustainable")
    cells = {c["group"]["assistance"]: c for c in body["cells"]}
    row = next(a for a in body["associations"] if a["raw"]["difference"] is not None)
    gap = cells[row["assistance"]]["share_sustainable"] - cells["none"]["share_sustainable"]
    assert row["raw"]["difference"] == pytest.approx(gap, abs=0.005 if who == "manager" else 1e-9)
    assert row["raw"]["low"] < row["raw"]["high"]
