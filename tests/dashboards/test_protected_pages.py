"""The aggregate pages' figures through their callbacks, as issue 12 asks: a manager gets
protected figures whatever the request says (the switch sent off, missing or crafted), an
analyst exact ones by default and protected ones with the "Publishable figures" switch; charts
and CSVs of protected figures say "figures perturbed for privacy", list the gathered groups as
"other groups: fewer than 5 each" and use dates widened to whole months."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import pandas as pd
import pytest

from reintegration.analytics import Filters
from tests.dashboards.conftest import LABEL, array, components, response_text_of
from tests.dashboards.test_aggregate_pages import filter_values, outputs

PERTURBED = "figures perturbed for privacy"
OTHER = "other groups: fewer than 5 each"
CRAFTED = ([], None, False, "exact", ["exact"])  # what a manager's request may say instead
PAGES = ("overview", "breakdowns", "trajectories", "assistance")
BY = ["country", "sex", "age_group"]


def switched(page: str, switch: Any) -> dict[str, Any]:
    return {f"{page}-publishable.value": switch}


def says(figure: dict[str, Any]) -> str:
    """Which figures a chart says it draws, from its subtitle, checked against its meta."""
    text = figure["layout"]["title"]["subtitle"]["text"]
    protected = PERTURBED in text
    assert figure["layout"]["meta"]["figures"] == ("protected" if protected else "exact")
    return "protected" if protected else "exact"


def page_inputs(page: str, **chosen: Any) -> dict[str, Any]:
    values = filter_values(page, **chosen)
    if page == "breakdowns":
        values |= {"breakdowns-by-control.value": BY, "breakdowns-score-control.value": "composite"}
    elif page == "trajectories":
        values |= {
            "trajectories-by-control.value": ["sex"],
            "trajectories-score-control.value": "composite",
            "trajectories-axis-control.value": "months",
            "trajectories-follow-control.value": [],
        }
    elif page == "assistance":
        values |= {"assistance-score-control.value": "composite"}
    return values


GRAPH = {
    "overview": "overview-means-graph.figure",
    "breakdowns": "breakdowns-groups-graph.figure",
    "trajectories": "trajectories-lines-graph.figure",
    "assistance": "assistance-types-graph.figure",
}
CSV = {
    "overview": "overview-means",
    "breakdowns": "breakdowns-groups",
    "trajectories": "trajectories-lines",
    "assistance": "assistance-types",
}


def charts(client: Any, page: str, switch: Any, **chosen: Any) -> dict[str, Any]:
    values = {**page_inputs(page, **chosen), **switched(page, switch)}
    return outputs(client.callback(GRAPH[page], values))


def csv(client: Any, page: str, switch: Any) -> str:
    states = {**page_inputs(page), **switched(page, switch)}
    answer = outputs(
        client.callback(f"{CSV[page]}-csv.data", {f"{CSV[page]}-csv-button.n_clicks": 1}, states)
    )
    return str(answer[f"{CSV[page]}-csv.data"]["content"])


def bar_means(figure: dict[str, Any]) -> dict[str, float]:
    (bar,) = [t for t in figure["data"] if t["type"] == "bar"]
    return dict(zip(bar["y"], array(bar["x"]), strict=True))


# -- who gets which figures -------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("switch", CRAFTED)
def test_a_manager_gets_protected_figures_whatever_the_request_says(client, page, switch):
    client.login("manager")

    answer = charts(client, page, switch)

    assert says(answer[GRAPH[page]]) == "protected"
    if page == "overview":
        assert all(
            says(answer[f"overview-{f}-graph.figure"]) == "protected"
            for f in ("histogram", "levels")
        )


@pytest.mark.parametrize("page", PAGES)
def test_an_analyst_gets_exact_figures_by_default_and_protected_with_the_switch(client, page):
    client.login("analyst")

    default = charts(client, page, [])
    missing = charts(client, page, None)
    switched_on = charts(client, page, ["publishable"])

    assert says(default[GRAPH[page]]) == "exact"
    assert says(missing[GRAPH[page]]) == "exact"
    assert says(switched_on[GRAPH[page]]) == "protected"
    assert switched_on[f"{page}-query.data"].endswith("&publishable=1")
    assert "publishable" not in default[f"{page}-query.data"]


def test_the_numbers_are_the_protected_ones_for_a_manager_and_exact_for_an_analyst(
    client, dashboard
):
    analytics = dashboard.services.analytics
    exact = analytics.aggregates(BY, Filters(), LABEL)
    protected = analytics.aggregates(BY, Filters(), LABEL, protected=True)

    client.login("manager")
    managers = bar_means(charts(client, "breakdowns", [])["breakdowns-groups-graph.figure"])
    client.login("analyst")
    analysts = bar_means(charts(client, "breakdowns", [])["breakdowns-groups-graph.figure"])

    def means(frame: pd.DataFrame) -> list[float]:
        body = frame.iloc[:-1]
        return sorted(body.loc[~body["suppressed"], "composite_mean"].astype(float))

    assert sorted(managers.values()) == pytest.approx(means(protected))
    assert sorted(analysts.values()) == pytest.approx(means(exact))
    assert sorted(managers.values()) != pytest.approx(means(exact))  # the test tells them apart


def test_a_managers_overview_headlines_are_the_protected_ones(client, dashboard):
    protected = dashboard.services.analytics.overview(Filters(), LABEL, protected=True)
    exact = dashboard.services.analytics.overview(Filters(), LABEL)
    client.login("manager")

    answer = charts(client, "overview", ["exact"])

    headline = response_text_of(answer["overview-headlines.children"])
    mean = array(answer["overview-means-graph.figure"]["data"][0]["y"])[-1]
    assert f"{protected['means']['composite']['mean']:.2f}" in headline
    assert mean == pytest.approx(protected["means"]["composite"]["mean"])
    assert mean != pytest.approx(exact["means"]["composite"]["mean"], abs=1e-9)


# -- coarsening ---------------------------------------------------------------------------------


def test_a_managers_dates_are_widened_to_whole_months_and_said(client, dashboard):
    client.login("manager")
    days = {"start": "2025-06-02", "end": "2025-06-03"}

    answer = charts(client, "overview", [], **days)
    note = outputs(
        client.callback(
            "overview-figures.children",
            {
                "overview-publishable.value": [],
                "overview-period-filter.start_date": days["start"],
                "overview-period-filter.end_date": days["end"],
            },
        )
    )

    june = Filters(date_from=date(2025, 6, 1), date_to=date(2025, 6, 30))
    expected = dashboard.services.analytics.overview(june, LABEL, protected=True)
    headline = response_text_of(answer["overview-headlines.children"])
    assert f"{expected['returnees']:,}" in headline
    assert "Figures for 2025-06-01 to 2025-06-30." in response_text_of(
        note["overview-figures.children"]
    )
    assert note["overview-period-filter.display_format"] == "YYYY-MM"


def test_an_analysts_exact_figures_keep_the_days_asked(client, dashboard):
    client.login("analyst")

    note = outputs(
        client.callback(
            "breakdowns-figures.children",
            {
                "breakdowns-publishable.value": [],
                "breakdowns-period-filter.start_date": "2025-06-02",
                "breakdowns-period-filter.end_date": "2025-06-03",
            },
        )
    )

    assert response_text_of(note["breakdowns-figures.children"]).startswith("Exact figures")
    assert note["breakdowns-period-filter.display_format"] == "YYYY-MM-DD"


def test_the_gathered_groups_are_one_row_named_other_groups(client, dashboard):
    protected = dashboard.services.analytics.aggregates(BY, Filters(), LABEL, protected=True)
    assert protected["other"].any(), "the panel has no small group to gather"
    client.login("manager")

    figure = charts(client, "breakdowns", [])["breakdowns-groups-graph.figure"]

    names = [n for t in figure["data"] for n in t["y"]]
    assert len([n for n in names if n.replace("<br>", " ").startswith(OTHER)]) == 1
    assert "not recorded · not recorded" not in " ".join(names)


def test_a_protected_histogram_has_merged_bins_and_no_zero_beside_a_hidden_one(client, dashboard):
    expected = dashboard.services.analytics.overview(Filters(), LABEL, protected=True)
    client.login("manager")

    figure = charts(client, "overview", [])["overview-histogram-graph.figure"]

    (bar,) = [t for t in figure["data"] if t["type"] == "bar"]
    widths = array(bar["width"])
    assert widths == pytest.approx([b["bin_high"] - b["bin_low"] for b in expected["histogram"]])
    assert sum(widths) == pytest.approx(1.0)
    assert min(array(bar["y"])) >= 5
    assert not [t for t in figure["data"] if t["type"] == "scatter"]


# -- the switch and the exports -----------------------------------------------------------------


def test_the_switch_is_on_and_fixed_for_a_manager_and_free_for_an_analyst(client):
    def switch(who: str, search: str = "") -> dict[str, Any]:
        client.login(who)
        layout = client.page("/overview", search)
        (found,) = [
            c["props"]
            for c in components(layout.get_json())
            if c["props"]["id"] == "overview-publishable"
        ]
        return found

    manager, analyst = switch("manager"), switch("analyst")
    asked = switch("analyst", "?publishable=1")

    assert manager["value"] == ["publishable"] and manager["options"][0]["disabled"] is True
    assert analyst["value"] == [] and analyst["options"][0]["disabled"] is False
    assert asked["value"] == ["publishable"]


@pytest.mark.parametrize("page", PAGES)
def test_a_managers_csv_says_figures_perturbed_for_privacy_whatever_the_request(client, page):
    client.login("manager")

    table = pd.read_csv(io.StringIO(csv(client, page, [])))

    assert (table["figures"] == PERTURBED).all()
    assert {"period_from", "period_to", "label"} <= set(table.columns)


def test_the_breakdown_csv_names_the_gathered_row(client):
    client.login("manager")

    table = pd.read_csv(io.StringIO(csv(client, "breakdowns", None)))

    gathered = table[table["other"]]
    assert gathered["label"].tolist() == [OTHER]
    assert gathered[BY].isna().all().all()


@pytest.mark.parametrize("page", PAGES)
def test_an_analysts_csv_is_exact_by_default_and_labelled_with_the_switch(client, page):
    client.login("analyst")

    exact = csv(client, page, [])
    protected = pd.read_csv(io.StringIO(csv(client, page, ["publishable"])))

    assert "perturbed" not in exact
    assert (pd.read_csv(io.StringIO(exact))["figures"] == "exact").all()
    assert (protected["figures"] == PERTURBED).all()
