"""Panels through the API: follow=true is a balanced panel, retention per round, cohorts at the
same months since return, answers at a round or a months band, and the stages an answer mixes
(docs/methods.md, "Panels and bands")."""

from __future__ import annotations

import pytest

from reintegration.synth import generate_panel
from tests.api.conftest import PANEL_RETURNEES

AGGREGATES = "/api/v1/aggregates"
TRAJECTORIES = "/api/v1/trajectories"
OVERVIEW = "/api/v1/overview"
BANDS = ["within 4 months", "over 4, under 9 months", "9 or more months"]


def ask(stack, path, who="analyst", **params):
    response = stack.get(path, who, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def points(body, column):
    return {
        c["group"][column]: c["returnees"]
        for c in body["cells"]
        if not c["total"] and not c["other"]
    }


@pytest.fixture(scope="module")
def truth():
    return generate_panel(PANEL_RETURNEES, 3, seed=7)[1]


@pytest.mark.parametrize("axis", ["round", "months"])
def test_following_gives_the_same_returnees_at_every_point(panel, axis):
    body = ask(panel, TRAJECTORIES, axis=axis, follow="true")
    column = "round" if axis == "round" else "months_band"
    shown = points(body, column)

    assert body["follow"] is True and len(shown) == 3
    assert len(set(shown.values())) == 1  # one n at every point: a balanced panel
    everyone = points(ask(panel, TRAJECTORIES, axis=axis), column)
    assert all(shown[p] <= everyone[p] for p in shown)


def test_following_rounds_two_and_three_keeps_those_seen_at_both(panel):
    body = ask(panel, TRAJECTORIES, round="2,3", follow="true")
    shown = points(body, "round")

    assert set(shown) == {"2", "3"} and shown["2"] == shown["3"] > 0
    # Those seen at both 2 and 3 are at least those seen at all three rounds.
    assert shown["2"] >= points(ask(panel, TRAJECTORIES, follow="true"), "round")["1"]


def test_retention_per_round_equals_the_generators_truth(panel, truth):
    body = ask(panel, TRAJECTORIES)
    retention = {r["round"]: r for r in body["retention"]}
    per_round = truth["interviews_per_round"]

    assert [retention[k + 1]["returnees"] for k in range(3)] == per_round
    for k, n in enumerate(per_round):
        assert retention[k + 1]["percent_of_round_1"] == pytest.approx(100 * n / per_round[0])
    # The round filter narrows the trajectory, not the retention (always from round 1).
    assert ask(panel, TRAJECTORIES, round="3")["retention"] == body["retention"]


def test_protected_retention_is_perturbed_not_exact(panel, truth):
    body = ask(panel, TRAJECTORIES, who="manager")
    got = [r["returnees"] for r in body["retention"]]

    assert body["figures"] == "protected" and len(got) == 3
    assert all(abs(g - n) <= 5 for g, n in zip(got, truth["interviews_per_round"], strict=True))


def test_cohorts_are_compared_at_the_same_months_since_return(panel):
    body = ask(panel, TRAJECTORIES, axis="cohort")
    bands = {c["group"]["months_band"] for c in body["cells"] if not c["total"]}

    assert body["by"] == ["cohort", "months_band"] and bands <= set(BANDS)
    at_band = ask(panel, TRAJECTORIES, axis="cohort", at_band="9-or-more")
    assert at_band["by"] == ["cohort"]
    assert at_band["filters"]["at_band"] == "9 or more months"


def test_an_answer_at_a_round_counts_that_rounds_surveys(panel, truth):
    body = ask(panel, AGGREGATES, at_round="2")
    total = body["cells"][-1]

    assert body["filters"]["at_round"] == 2
    surveyed = truth["interviews_per_round"][1]
    if total["unscored"] is None:  # a small unscored count is hidden (1 to 4)
        assert surveyed - 4 <= total["returnees"] < surveyed
    else:
        assert total["returnees"] + total["unscored"] == surveyed
    assert [s["value"] for s in body["stages"]["rounds"]] == ["2"]


def test_an_answer_at_a_band_takes_one_survey_per_returnee_in_it(panel):
    body = ask(panel, AGGREGATES, by="sex", at_band="within 4 months")
    total = body["cells"][-1]

    assert body["filters"]["at_band"] == "within 4 months"
    assert [s["value"] for s in body["stages"]["bands"]] == ["within 4 months"]
    assert PANEL_RETURNEES - 4 <= total["returnees"] + (total["unscored"] or 0) <= PANEL_RETURNEES
    overview = ask(panel, OVERVIEW, at_band="within-4")
    assert overview["returnees"] == total["returnees"]


def test_the_default_answer_says_which_follow_up_times_it_mixes(panel):
    body = ask(panel, AGGREGATES, by="sex")
    rounds = body["stages"]["rounds"]
    bands = body["stages"]["bands"]

    assert {s["value"] for s in rounds} == {"1", "2", "3"}  # latest in the window mixes them
    assert {s["value"] for s in bands} <= set(BANDS)
    shown = [s["returnees"] for s in rounds if s["returnees"] is not None]
    if len(shown) == len(rounds):
        assert sum(shown) == body["cells"][-1]["returnees"]
    assert ask(panel, OVERVIEW)["stages"]["rounds"] == rounds


def test_protected_stage_counts_are_perturbed_and_never_small(panel):
    body = ask(panel, AGGREGATES, who="manager", by="sex")

    for stage in body["stages"]["rounds"] + body["stages"]["bands"]:
        assert stage["returnees"] is None or stage["returnees"] >= 5
        assert stage["other"] == (stage["value"] is None)


def test_exact_stage_counts_hide_small_ones_with_a_complement(panel):
    body = ask(panel, AGGREGATES, country="SEN", sex="female", by="sex")

    for stage in body["stages"]["rounds"]:
        assert stage["returnees"] is None or stage["returnees"] >= 5
    hidden = [s for s in body["stages"]["rounds"] if s["suppressed"]]
    assert len(hidden) != 1  # one hidden count would be the total less the others


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("at_round=first", "query parameter at_round: 'first' is not a survey round (1, 2, ...)."),
        ("at_round=0", "query parameter at_round: '0' is not a survey round (1, 2, ...)."),
        ("round=1&at_round=2", "query parameter at_round: round 2 is outside round= (1)."),
        (
            "at_round=1&at_band=within-4",
            "ask for at_round or at_band, not both: an answer is at one stage or the other.",
        ),
        (
            "at_band=0-3",
            "query parameter at_band: '0-3' is not a months band: use one of within-4 (within "
            "4 months); over-4-under-9 (over 4, under 9 months); 9-or-more (9 or more months).",
        ),
    ],
)
@pytest.mark.parametrize("path", [AGGREGATES, TRAJECTORIES, OVERVIEW])
def test_bad_stages_are_422_with_a_sentence(panel, path, query, detail):
    response = panel.get(f"{path}?{query}", "analyst")

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == detail


def test_an_unknown_axis_names_the_three_axes(panel):
    response = panel.get(f"{TRAJECTORIES}?axis=years", "analyst")

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("query parameter axis: ")
    assert "'round'" in detail and "'months'" in detail and "'cohort'" in detail


def test_assistance_can_be_asked_at_a_round_too(panel):
    everyone = ask(panel, AGGREGATES, by="assistance")
    at_round = ask(panel, AGGREGATES, by="assistance", at_round="1")

    assert [s["value"] for s in at_round["stages"]["rounds"]] == ["1"]
    assert len(everyone["stages"]["rounds"]) == 3
    assert at_round["cells"][-1]["returnees"] <= PANEL_RETURNEES
    assert at_round["cells"][-1]["figures"] != everyone["cells"][-1]["figures"]


def test_trajectories_by_assistance_are_refused_with_a_sentence(panel):
    response = panel.get(f"{TRAJECTORIES}?by=assistance", "analyst")

    assert response.status_code == 422
    assert response.json()["detail"] == (
        "trajectories cannot break out by assistance: ask /aggregates?by=assistance, with "
        "at_round or at_band for one stage."
    )
