"""The aggregate pages through their callbacks, as the browser calls them: the numbers are the
domain's, filters come from and go to the URL, a country-scoped user sees only their countries,
and the CSV behind a chart keeps suppression visible."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from reintegration.analytics import Filters
from tests.dashboards.conftest import (
    LABEL,
    SCOPED_COUNTRY,
    array,
    components,
    response_text,
    response_text_of,
)

FILTERS = ("country", "round", "sex", "age", "return")


def filter_values(page: str, **chosen) -> dict:
    values = {f"{page}-{name}-filter.value": chosen.get(name, []) for name in FILTERS}
    values[f"{page}-index-filter.value"] = chosen.get("index", LABEL)
    values[f"{page}-period-filter.start_date"] = chosen.get("start")
    values[f"{page}-period-filter.end_date"] = chosen.get("end")
    return values


def outputs(response) -> dict:
    assert response.status_code == 200, response.data
    return {
        f"{element}.{prop}": value
        for element, props in response.get_json()["response"].items()
        for prop, value in props.items()
    }


def test_overview_shows_the_domains_numbers_and_puts_the_filters_in_the_url(client, dashboard):
    client.login("manager")
    answer = outputs(
        client.callback("overview-query.data", filter_values("overview", sex=["female"]))
    )
    # A manager's figures are protected ones.
    expected = dashboard.services.analytics.overview(
        Filters(sex=frozenset({"female"})), LABEL, protected=True
    )
    assert answer["overview-query.data"] == f"?sex=female&index={LABEL}"
    returnees = answer["overview-headlines.children"][0]["props"]["children"][1]["props"][
        "children"
    ]
    assert returnees == f"{expected['returnees']:,}"
    means = answer["overview-means-graph.figure"]
    assert array(means["data"][0]["y"])[-1] == pytest.approx(expected["means"]["composite"]["mean"])
    assert means["layout"]["title"]["subtitle"]["text"].startswith(f"Index version {LABEL}")
    histogram = answer["overview-histogram-graph.figure"]["data"][0]
    assert sum(array(histogram["y"])) == sum(b["count"] or 0 for b in expected["histogram"])


def test_a_scoped_manager_sees_only_their_countries(client, dashboard):
    client.login("scoped-manager")
    answer = outputs(client.callback("overview-query.data", filter_values("overview")))
    expected = dashboard.services.analytics.overview(
        Filters(countries=frozenset({SCOPED_COUNTRY})), LABEL, protected=True
    )
    everyone = dashboard.services.analytics.overview(Filters(), LABEL, protected=True)
    text = response_text_of(answer["overview-headlines.children"])
    assert f"{expected['returnees']:,}" in text and expected["returnees"] < everyone["returnees"]
    # Asking for another country gives nothing rather than that country's data.
    answer = outputs(
        client.callback("overview-query.data", filter_values("overview", country=["GIN"]))
    )
    assert "no scored returnee matches these filters" in response_text_of(
        answer["overview-headlines.children"]
    )
    countries = outputs(
        client.callback(
            "breakdowns-country-graph.figure",
            {
                **filter_values("breakdowns"),
                "breakdowns-by-control.value": ["sex"],
                "breakdowns-score-control.value": "composite",
            },
        )
    )["breakdowns-country-graph.figure"]
    (bar,) = [bar for bar in countries["data"] if bar["type"] == "bar"]
    assert [y.split(" (n = ")[0] for y in bar["y"]] == [SCOPED_COUNTRY]


def test_breakdowns_draw_intersections_with_n_and_intervals(client, dashboard):
    client.login("analyst")
    by = ["sex", "age_group", "return_type"]
    answer = outputs(
        client.callback(
            "breakdowns-groups-graph.figure",
            {
                **filter_values("breakdowns"),
                "breakdowns-by-control.value": by,
                "breakdowns-score-control.value": "economic",
            },
        )
    )
    assert answer["breakdowns-query.data"] == (
        f"?index={LABEL}&by=sex,age_group,return_type&score=economic"
    )
    figure = answer["breakdowns-groups-graph.figure"]
    frame = dashboard.services.analytics.aggregates(by, Filters(), LABEL)
    shown = frame.iloc[:-1][~frame.iloc[:-1]["suppressed"]]
    (bar,) = [t for t in figure["data"] if t["type"] == "bar"]
    assert len(array(bar["x"])) == len(shown)
    assert array(bar["x"])[0] == pytest.approx(shown["economic_mean"].iloc[0])
    assert array(bar["error_x"]["arrayminus"])[0] == pytest.approx(
        shown["economic_mean"].iloc[0] - shown["economic_low"].iloc[0]
    )
    # n beside each group's name, the value printed on its bar
    first = f"(n = {int(shown['returnees'].iloc[0]):,})"
    names = [y.replace("<br>", " ") for y in bar["y"]]  # long names wrap on the axis
    assert [y for y in names if y.startswith("Female · Child (under 18) · Forced (n = ")]
    assert names[0].endswith(first)
    assert bar["text"][0] == f"{shown['economic_mean'].iloc[0]:.2f}"
    if frame["suppressed"].any():
        marks = [t for t in figure["data"] if t.get("mode") == "markers"][0]["y"]
        assert all(m.endswith("(fewer than 5)") for m in marks)


def test_the_csv_behind_a_breakdown_keeps_suppressed_cells_empty_and_flagged(client, dashboard):
    client.login("analyst")  # exact figures list their suppressed cells
    response = client.callback(
        "breakdowns-groups-csv.data",
        {"breakdowns-groups-csv-button.n_clicks": 1},
        {
            **filter_values("breakdowns"),
            "breakdowns-by-control.value": ["country", "sex", "age_group"],
            "breakdowns-score-control.value": "composite",
        },
    )
    download = outputs(response)["breakdowns-groups-csv.data"]
    assert download["filename"] == f"breakdown-country-sex-age_group-{LABEL}.csv"
    table = pd.read_csv(io.StringIO(download["content"]))
    suppressed = table[table["suppressed"]]
    assert len(suppressed) > 0
    assert suppressed["composite_mean"].isna().all() and suppressed["returnees"].isna().all()
    assert (table["index_version"] == LABEL).all()
    assert table.iloc[-1]["country"] == "all"


def test_trajectories_follow_the_same_returnees_when_asked(client):
    client.login("manager")
    values = {
        **filter_values("trajectories"),
        "trajectories-by-control.value": ["return_type"],
        "trajectories-score-control.value": "composite",
        "trajectories-axis-control.value": "months",
        "trajectories-follow-control.value": ["follow"],
    }
    answer = outputs(client.callback("trajectories-lines-graph.figure", values))
    figure = answer["trajectories-lines-graph.figure"]
    assert answer["trajectories-query.data"].endswith(
        "&by=return_type&score=composite&axis=months&follow=1"
    )
    assert {t["name"] for t in figure["data"]} >= {"Forced", "Voluntary"}
    assert "the same returnees at every point" in figure["layout"]["title"]["subtitle"]["text"]
    assert figure["data"][0]["x"][0] == "within 4 months"
    retention = answer["trajectories-retention-graph.figure"]
    assert [str(x) for x in retention["data"][0]["x"]] == ["Round 1", "Round 2", "Round 3"]
    assert "% of round 1" in retention["data"][0]["text"][1]


def test_trajectories_follow_survey_rounds_by_default(client):
    client.login("analyst")
    values = {
        **filter_values("trajectories"),
        "trajectories-by-control.value": [],
        "trajectories-score-control.value": "composite",
        "trajectories-axis-control.value": "round",
        "trajectories-follow-control.value": [],
    }
    answer = outputs(client.callback("trajectories-lines-graph.figure", values))
    figure = answer["trajectories-lines-graph.figure"]
    assert [str(x) for x in figure["data"][0]["x"]] == ["1", "2", "3"]
    assert figure["layout"]["xaxis"]["title"]["text"] == "Round"


def test_assistance_says_association_not_effect(client):
    client.login("admin")
    answer = outputs(
        client.callback(
            "assistance-types-graph.figure",
            {**filter_values("assistance"), "assistance-score-control.value": "economic"},
        )
    )
    figure = answer["assistance-types-graph.figure"]
    assert figure["layout"]["title"]["text"] == "Economic by assistance received"
    types = [t for t in figure["data"] if t["type"] == "bar"][0]["y"]
    assert [t for t in types if t.startswith("Business grant (n = ")]
    page = response_text(client.page("/assistance"))
    assert "Association, not effect" in page


def test_filters_are_read_from_the_address(client):
    client.login("manager")
    layout = client.page(
        "/breakdowns", "?sex=female&round=2&by=country&score=social&from=2025-13-01"
    )
    text = response_text(layout)
    assert (
        "Ignored in the address: " in text
        and "from: '2025-13-01' is not a date (YYYY-MM-DD)" in text
    )
    controls = {c["props"]["id"]: c["props"] for c in components(layout.get_json())}
    assert controls["breakdowns-sex-filter"]["value"] == ["female"]
    assert controls["breakdowns-round-filter"]["value"] == [2]
    assert controls["breakdowns-by-control"]["value"] == ["country"]
    assert controls["breakdowns-score-control"]["value"] == "social"
    assert controls["breakdowns-index-filter"]["value"] == LABEL


def test_an_unknown_index_version_in_the_address_falls_back_to_the_champion(client):
    client.login("manager")
    layout = client.page("/overview", "?index=rss-v9-derived")
    controls = {c["props"]["id"]: c["props"] for c in components(layout.get_json())}
    assert controls["overview-index-filter"]["value"] == LABEL
