"""Aggregates, trajectories and the overview: figures, suppression, filters, country scopes."""

from __future__ import annotations

from tests.api.conftest import PANEL_RETURNEES

AGGREGATES = "/api/v1/aggregates"
TRAJECTORIES = "/api/v1/trajectories"


def aggregates(stack, who="analyst", **params):
    # Exact figures (an analyst's default); tests/api/test_protected_figures.py has a manager's.
    response = stack.get(AGGREGATES, who, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def total(body):
    cell = body["cells"][-1]
    assert cell["total"] is True
    return cell


def test_a_breakdown_has_a_cell_per_group_then_the_total(panel):
    body = aggregates(panel, by="sex,age_group,return_type")

    assert body["by"] == ["sex", "age_group", "return_type"]
    assert body["index_version"] == "rss-v1-provisional"  # the champion's label by default
    assert total(body)["group"] == {"sex": "all", "age_group": "all", "return_type": "all"}
    assert total(body)["returnees"] == PANEL_RETURNEES
    shown = [c for c in body["cells"][:-1] if not c["suppressed"]]
    assert shown and all(c["returnees"] >= 5 for c in shown)
    composite = total(body)["figures"]["composite"]
    assert composite["low"] < composite["mean"] < composite["high"]
    assert 0 <= total(body)["share_sustainable"] <= 1
    shares = [total(body)[f"share_{level}"] for level in ("low", "medium", "high")]
    assert abs(sum(shares) - 1) < 1e-9


def test_small_cells_are_suppressed_with_a_flag_never_a_zero(panel):
    body = aggregates(panel, by="country,sex,return_type,age_group")

    hidden = [c for c in body["cells"] if c["suppressed"]]
    assert hidden, "the panel is small enough to have cells below min_cell"
    for cell in hidden:
        assert cell["returnees"] is None
        assert cell["figures"]["composite"]["mean"] is None
        assert cell["share_sustainable"] is None
    assert body["min_cell"] == 5
    assert body["suppression"].startswith("cells with fewer than 5 returnees are hidden")


def test_a_country_limited_token_sees_only_its_countries(panel):
    everything = aggregates(panel, "manager", by="country")  # protected, as manager_sen
    sen = aggregates(panel, "manager_sen", by="country")
    asked_for_other = aggregates(panel, "manager_sen", by="country", country="GIN")

    assert {c["group"]["country"] for c in everything["cells"][:-1]} > {"SEN", "GIN"}
    assert [c["group"]["country"] for c in sen["cells"]] == ["SEN", "all"]
    assert sen["filters"]["countries"] == ["SEN"]
    sen_cell = next(c for c in everything["cells"] if c["group"]["country"] == "SEN")
    assert total(sen)["returnees"] == sen_cell["returnees"]
    assert total(asked_for_other)["returnees"] == 0
    assert asked_for_other["filters"]["countries"] == []


def test_filters_narrow_the_returnees_counted(panel):
    everyone = total(aggregates(panel))["returnees"]
    women = total(aggregates(panel, sex="female"))["returnees"]
    early = total(aggregates(panel, to="2024-03-31"))["returnees"]
    first_round = aggregates(panel, by="round", round="1")

    assert 0 < women < everyone and 0 < early < everyone
    assert [c["group"]["round"] for c in first_round["cells"]] == ["1", "all"]
    assert 0 < total(first_round)["returnees"] <= everyone


def test_countries_may_be_repeated_or_comma_separated(panel):
    repeated = panel.get(AGGREGATES, "manager", params=[("country", "SEN"), ("country", "gin")])
    joined = aggregates(panel, country="SEN,GIN")

    assert repeated.json()["filters"]["countries"] == joined["filters"]["countries"]
    assert joined["filters"]["countries"] == ["GIN", "SEN"]


def test_repeated_questions_get_the_same_bytes(panel):
    first = panel.get(AGGREGATES, "manager", params={"by": "sex"})
    second = panel.get(AGGREGATES, "manager", params={"by": "sex"})
    assert first.content == second.content


def test_bad_questions_are_answered_422_with_a_sentence(panel):
    cases = {
        "by=colour": "cannot group by 'colour': use sex, age_group, return_type, country, round, "
        "months_band, cohort, assistance.",
        "from=2025-02-01&to=2025-01-01": "query parameter from (2025-02-01) is after to "
        "(2025-01-01).",
        "round=first": "query parameter round: 'first' is not a survey round (1, 2, ...).",
        "sex=robot": "query parameter sex: 'robot' is not one of female, male, other, unknown.",
        "country=SENEGAL": "query parameter country: 'SENEGAL' is not a three-letter country code.",
        "age_group=teen": "query parameter age_group: 'teen' is not one of child, adult.",
    }
    for query, detail in cases.items():
        response = panel.get(f"{AGGREGATES}?{query}", "manager")
        assert response.status_code == 422, query
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == detail


def test_an_invalid_date_names_the_parameter(panel):
    response = panel.get(AGGREGATES, "manager", params={"from": "2025-13-01"})

    assert response.status_code == 422
    assert response.json()["detail"].startswith("query parameter from: ")


def test_an_index_version_without_scores_is_404(panel):
    response = panel.get(AGGREGATES, "manager", params={"index_version": "rss-v9-derived"})

    assert response.status_code == 404
    assert response.json()["detail"] == (
        "no scores are stored for index version 'rss-v9-derived' (stored: rss-v1-provisional)."
    )


def test_trajectories_break_out_by_survey_round_first_by_default(panel):
    body = panel.get(TRAJECTORIES, "analyst", params={"by": "sex"}).json()

    assert body["by"] == ["round", "sex"] and body["axis"] == "round"
    assert {c["group"]["round"] for c in body["cells"][:-1]} == {"1", "2", "3"}


def test_trajectories_by_months_band(panel):
    body = panel.get(TRAJECTORIES, "analyst", params={"by": "sex", "axis": "months"}).json()

    assert body["by"] == ["months_band", "sex"] and body["axis"] == "months"
    bands = {c["group"]["months_band"] for c in body["cells"][:-1]}
    assert bands == {"within 4 months", "over 4, under 9 months", "9 or more months"}


def test_trajectories_by_return_cohort(panel):
    body = panel.get(TRAJECTORIES, "analyst", params={"axis": "cohort"}).json()

    cohorts = [c["group"]["cohort"] for c in body["cells"][:-1]]
    assert cohorts and all(len(c) == 6 and c[4] == "Q" for c in cohorts)
    # Cohorts are compared at the same months since return, band by band.
    assert body["by"] == ["cohort", "months_band"]


def test_an_unknown_axis_is_422(panel):
    response = panel.get(TRAJECTORIES, "analyst", params={"axis": "years"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("query parameter axis: ")


def test_the_overview_and_the_index_versions(panel):
    overview = panel.get("/api/v1/overview", "analyst").json()
    versions = panel.get("/api/v1/index-versions", "manager").json()

    assert overview["returnees"] == PANEL_RETURNEES and overview["suppressed"] is False
    assert len(overview["histogram"]) == 10
    assert versions == {"champion": "rss-v1-provisional", "stored": ["rss-v1-provisional"]}


def test_a_batch_uploaded_here_shows_in_the_next_answer(fresh, batch_file):
    from tests.api.test_batches import upload

    upload(fresh, "analyst", batch_file(*({} for _ in range(6)), name="six.csv"), wait=30)
    before = fresh.get(AGGREGATES, "analyst").json()
    more = ({"submission_id": f"x{k}", "returnee_id": f"N{k}"} for k in range(6))
    upload(fresh, "analyst", batch_file(*more, name="more.csv"), wait=30)
    after = fresh.get(AGGREGATES, "analyst").json()

    assert total(before)["returnees"] == 6 and total(after)["returnees"] == 12
    assert after["data_version"] > before["data_version"]


def test_a_batch_stored_by_another_process_shows_within_the_version_ttl(fresh, batch_file):
    import time

    from api.caches import VERSION_TTL_S
    from tests.api.conftest import ingest_panel

    ingest_panel(fresh, batch_file(*({} for _ in range(6)), name="six.csv"))
    time.sleep(VERSION_TTL_S)
    before = fresh.get(AGGREGATES, "analyst").json()
    more = ({"submission_id": f"x{k}", "returnee_id": f"N{k}"} for k in range(6))
    ingest_panel(fresh, batch_file(*more, name="more.csv"))
    time.sleep(VERSION_TTL_S)
    after = fresh.get(AGGREGATES, "analyst").json()

    assert total(before)["returnees"] == 6 and total(after)["returnees"] == 12
