"""The exclude_flagged_enumerators filter through the API: every aggregate answer leaves out
the flagged enumerators' interviews and says what that changes, protected for managers."""

from __future__ import annotations

import pytest

from tests.api.conftest import build_stack, ingest_panel

AGGREGATES = "/api/v1/aggregates"
TRAJECTORIES = "/api/v1/trajectories"
OVERVIEW = "/api/v1/overview"


@pytest.fixture(scope="module")
def panel(tmp_path_factory, questionnaire):
    """A store large enough for enumerators to be judged (the shared panel's have fewer than
    20 interviews each): 400 returnees, two anomalous enumerators."""
    from reintegration.synth import generate_panel, write_panel

    folder = tmp_path_factory.mktemp("exclusion")
    frame, _ = generate_panel(400, 3, seed=7)
    write_panel(frame, folder / "panel.csv", "csv")
    stack = build_stack(folder, questionnaire)
    ingest_panel(stack, folder / "panel.csv")
    with stack.client:
        yield stack
    stack.services.close()


def body(stack, path, who="analyst", **params):
    response = stack.get(path, who, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_aggregate_without_the_filter_has_no_exclusion(panel):
    answer = body(panel, AGGREGATES, by="country")

    assert answer["enumerator_exclusion"] is None
    assert answer["filters"]["exclude_flagged_enumerators"] is False


@pytest.mark.parametrize("path", [AGGREGATES, TRAJECTORIES, OVERVIEW])
def test_every_answer_with_the_filter_says_what_it_left_out(panel, path):
    plain = body(panel, path)
    answer = body(panel, path, exclude_flagged_enumerators="true")
    change = answer["enumerator_exclusion"]

    assert answer["filters"]["exclude_flagged_enumerators"] is True
    assert change["figures"] == "exact"
    assert change["enumerators"] >= 1 and change["interviews"] > 0
    assert change["without"]["mean"] != change["with"]["mean"]
    assert change["summary"].startswith(f"Leaving out {change['enumerators']} flagged")
    if path == OVERVIEW:
        assert answer["returnees"] == change["without"]["returnees"]
        assert plain["returnees"] == change["with"]["returnees"]
        assert answer["means"]["composite"]["mean"] == pytest.approx(change["without"]["mean"])
    if path == AGGREGATES:
        assert answer["cells"][-1]["returnees"] == change["without"]["returnees"]


def test_the_assistance_breakdown_takes_the_filter_too(panel):
    plain = body(panel, AGGREGATES, by="assistance")
    answer = body(panel, AGGREGATES, by="assistance", exclude_flagged_enumerators="true")

    assert answer["cells"][-1]["returnees"] < plain["cells"][-1]["returnees"]
    assert answer["enumerator_exclusion"]["interviews"] > 0


def test_a_manager_gets_the_change_protected_without_small_exact_counts(panel):
    answer = body(panel, OVERVIEW, "manager", exclude_flagged_enumerators="true")
    change = answer["enumerator_exclusion"]

    assert change["figures"] == "protected"
    assert change["enumerators"] is None or change["enumerators"] >= 5
    for key in ("interviews", "returnees"):
        assert change[key] is None or change[key] >= 5


def test_a_filter_value_that_is_not_a_boolean_is_refused(panel):
    response = panel.get(AGGREGATES, "analyst", params={"exclude_flagged_enumerators": "maybe"})

    assert response.status_code == 422
    assert "exclude_flagged_enumerators" in response.text


def test_the_schema_describes_the_filter(panel):
    spec = panel.client.get("/openapi.json").json()
    parameters = spec["paths"][AGGREGATES]["get"]["parameters"]
    described = {p["name"]: p.get("description", "") for p in parameters}

    assert "flags" in described["exclude_flagged_enumerators"]
    assert "EnumeratorExclusion" in spec["components"]["schemas"]
