"""The Assistance page's gaps: each type against none, raw and adjusted side by side with 95%
intervals, worded as association, through the callbacks as the browser calls them (exact for
an analyst, protected for a manager) and in the chart's CSV; the figure builder on small
frames (poor overlap, types not compared, nothing to compare)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from dashboards.figures.assistance import GAPS_NOTE, gaps_figure, gaps_table
from reintegration.analytics import Filters
from reintegration.assistance import COLUMNS
from tests.dashboards.conftest import LABEL, array, response_text
from tests.dashboards.test_aggregate_pages import filter_values, outputs

GRAPH = "assistance-gaps-graph.figure"


def inputs(score: str = "composite", switch=None) -> dict:
    return {
        **filter_values("assistance"),
        "assistance-score-control.value": score,
        "assistance-publishable.value": switch,
    }


def traces(figure: dict) -> dict[str, dict]:
    return {t["name"]: t for t in figure["data"]}


def test_an_analyst_sees_exact_raw_and_adjusted_gaps_side_by_side(client, dashboard):
    client.login("analyst")
    figure = outputs(client.callback(GRAPH, inputs("economic")))[GRAPH]
    expected = dashboard.services.analytics.assistance_associations(
        Filters(), LABEL, figure="economic"
    )
    compared = expected[expected["adjusted_difference"].notna()]
    assert len(compared)
    assert figure["layout"]["title"]["text"] == (
        "Economic: gap against no assistance, raw and adjusted"
    )
    subtitle = figure["layout"]["title"]["subtitle"]["text"].replace("<br>", " ")  # wrapped
    assert "association, not effect; adjusted for sex, age group" in subtitle
    assert figure["layout"]["meta"]["figures"] == "exact"
    raw, adjusted = traces(figure)["Raw gap"], traces(figure)["Adjusted gap"]
    # Plotly draws categories bottom up: the traces hold the table's rows reversed.
    got = {
        name.split(" (n = ")[0]: x
        for name, x in zip(adjusted["y"], array(adjusted["x"]), strict=True)
    }
    assert got["Business grant"] == pytest.approx(
        expected.set_index("assistance").at["business_grant", "adjusted_difference"]
    )
    assert array(raw["x"])[::-1] == pytest.approx(
        expected["raw_difference"].to_numpy(float), nan_ok=True
    )
    assert GAPS_NOTE in [a["text"] for a in figure["layout"]["annotations"]]


def test_a_manager_sees_protected_rounded_gaps(client, dashboard):
    client.login("manager")
    figure = outputs(client.callback(GRAPH, inputs(switch=[])))[GRAPH]
    assert figure["layout"]["meta"]["figures"] == "protected"
    assert "figures perturbed for privacy" in figure["layout"]["title"]["subtitle"]["text"]
    gaps = np.array(array(traces(figure)["Adjusted gap"]["x"]), dtype=float)
    shown = gaps[~np.isnan(gaps)]
    assert len(shown) and (shown == np.round(shown, 2)).all()


def test_the_gaps_csv_has_raw_and_adjusted_columns_and_says_association(client, dashboard):
    client.login("analyst")
    states = inputs()
    answer = outputs(
        client.callback(
            "assistance-gaps-csv.data", {"assistance-gaps-csv-button.n_clicks": 1}, states
        )
    )
    payload = answer["assistance-gaps-csv.data"]
    assert payload["filename"] == f"assistance-gaps-composite-{LABEL}.csv"
    frame = pd.read_csv(io.StringIO(payload["content"]))
    for column in (
        "raw_difference",
        "raw_difference_lower_95",
        "adjusted_difference",
        "adjusted_difference_upper_95",
        "overlap",
    ):
        assert column in frame
    assert set(frame["reading"]) == {"association, not effect"}
    assert set(frame["comparison"]) == {"received it minus received none"}
    expected = dashboard.services.analytics.assistance_associations(Filters(), LABEL)
    assert frame["adjusted_difference"].to_numpy() == pytest.approx(
        expected["adjusted_difference"].to_numpy(float), nan_ok=True, abs=5e-5
    )
    # Protected figures say so in the CSV too.
    answer = outputs(
        client.callback(
            "assistance-gaps-csv.data",
            {"assistance-gaps-csv-button.n_clicks": 1},
            inputs(switch=["publishable"]),
        )
    )
    protected = pd.read_csv(io.StringIO(answer["assistance-gaps-csv.data"]["content"]))
    assert set(protected["figures"]) == {"figures perturbed for privacy"}


def test_the_page_has_both_charts_and_the_association_note(client):
    client.login("admin")
    page = response_text(client.page("/assistance"))
    assert "Association, not effect" in page
    assert "the raw gap beside the gap adjusted for sex, age group" in page


# -- the figure builder -------------------------------------------------------------------------


def frame_of(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame([dict.fromkeys(COLUMNS) | row for row in rows], columns=list(COLUMNS))


def compared(code: str, raw: float, adjusted: float, overlap: str = "adequate") -> dict:
    return {
        "assistance": code,
        "treated": 40,
        "untreated": 60,
        "raw_difference": raw,
        "raw_low": raw - 0.02,
        "raw_high": raw + 0.02,
        "adjusted_difference": adjusted,
        "adjusted_low": adjusted - 0.03,
        "adjusted_high": adjusted + 0.03,
        "overlap": overlap,
    }


def test_types_are_named_with_their_state():
    frame = frame_of(
        compared("cash", 0.1, 0.05),
        compared("housing", 0.08, 0.02, overlap="limited"),
        {"assistance": "legal", "note": "not compared: fewer than 5 returnees"},
    )
    fig = gaps_figure(
        frame,
        figure="composite",
        index_version="v1",
        min_cell=5,
        labels={"cash": "Cash assistance"},
    )
    adjusted = next(t for t in fig.data if t.name == "Adjusted gap")
    assert list(adjusted.y) == [
        "legal (not compared)",
        "housing (n = 40) (poor overlap)",
        "Cash assistance (n = 40)",
    ]
    assert list(adjusted.error_x.array)[-1] == pytest.approx(0.03)
    assert fig.layout.meta["figures"] == "exact"
    assert gaps_table(frame, figure="composite")["adjusted_for"].iloc[0] == (
        "sex, age group, return type, country and months since return"
    )


def test_nothing_to_compare_says_why():
    frame = frame_of({"assistance": "legal", "note": "not compared"})
    fig = gaps_figure(frame, figure="social", index_version="v1", min_cell=5, protected=True)
    assert fig.layout.annotations[0].text == (
        "No assistance type has 5 or more returnees beside 5 or more with none."
    )
    assert fig.layout.meta["figures"] == "protected"


def test_the_share_sustainable_gets_gaps_in_shares(client, dashboard):
    client.login("analyst")
    figure = outputs(client.callback(GRAPH, inputs("share_sustainable")))[GRAPH]
    assert figure["layout"]["title"]["text"] == (
        "Share sustainable: gap against no assistance, raw and adjusted"
    )
    assert figure["layout"]["xaxis"]["title"]["text"] == (
        "Difference in share sustainable (with it - none)"
    )
    expected = dashboard.services.analytics.assistance_associations(
        Filters(), LABEL, figure="sustainable"
    )
    got = np.array(array(traces(figure)["Raw gap"]["x"]), dtype=float)[::-1]
    assert got == pytest.approx(expected["raw_difference"].to_numpy(float), nan_ok=True)
