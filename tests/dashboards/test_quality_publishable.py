"""The data-quality page's "Publishable figures" switch (issue 12), through its callbacks as the
aggregate pages' are tested: an analyst gets exact missing answers and enumerators by default,
and with the switch the protected ones, whose charts and CSVs say "figures perturbed for
privacy"; the page's role rules do not change."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest

from reintegration import quality
from reintegration.questionnaire import load_questionnaire
from tests.dashboards.conftest import LABEL, array, components, response_text_of
from tests.dashboards.test_aggregate_pages import outputs

PERTURBED = "figures perturbed for privacy"
GRAPHS = ("quality-missingness-graph.figure", "quality-enumerators-graph.figure")
NO_BATCH = {"quality-batches-table.data": []}


def answers(client: Any, switch: Any) -> dict[str, Any]:
    inputs = {"quality-batches-table.selected_rows": [], "quality-publishable.value": switch}
    return outputs(client.callback(GRAPHS[0], inputs, NO_BATCH))


def csv(client: Any, name: str, switch: Any) -> str:
    states = {**NO_BATCH, "quality-batches-table.selected_rows": []}
    answer = outputs(
        client.callback(
            f"quality-{name}-csv.data",
            {f"quality-{name}-csv-button.n_clicks": 1},
            {**states, "quality-publishable.value": switch},
        )
    )
    return str(answer[f"quality-{name}-csv.data"]["content"])


def says(figure: dict[str, Any]) -> str:
    """Which figures a chart says it draws, from its subtitle, checked against its meta."""
    protected = PERTURBED in figure["layout"]["title"]["subtitle"]["text"]
    assert figure["layout"]["meta"]["figures"] == ("protected" if protected else "exact")
    return "protected" if protected else "exact"


def domain(dashboard: Any, *, protected: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The domain's answers the page should draw, asked directly."""
    analytics = dashboard.services.analytics
    options = {
        "protected": protected,
        "min_cell": analytics.min_cell,
        "protection": analytics.protection,
    }
    engine, questionnaire = dashboard.services.engine, load_questionnaire()
    return (
        quality.missingness(engine, questionnaire, **options),
        quality.enumerator_anomalies(engine, questionnaire, index_version=LABEL, **options),
    )


def blank_shares(figure: dict[str, Any]) -> list[float]:
    (blank,) = [t for t in figure["data"] if t["name"] == "Left blank"]
    return array(blank["x"])


def test_with_the_switch_on_the_charts_say_figures_perturbed_for_privacy(client):
    client.login("analyst")

    answer = answers(client, ["publishable"])

    assert [says(answer[g]) for g in GRAPHS] == ["protected", "protected"]
    note = response_text_of(answer["quality-figures.children"])
    assert "Publishable figures." in note and "Figures perturbed for privacy;" in note
    assert "other groups: fewer than 5 each" in note


@pytest.mark.parametrize("switch", ([], None))
def test_an_analyst_gets_exact_figures_by_default(client, dashboard, switch):
    client.login("analyst")
    exact, _ = domain(dashboard, protected=False)

    answer = answers(client, switch)

    assert [says(answer[g]) for g in GRAPHS] == ["exact", "exact"]
    assert response_text_of(answer["quality-figures.children"]).startswith("Exact figures")
    shares = blank_shares(answer[GRAPHS[0]])
    assert shares == pytest.approx((exact["blank"] / exact["interviews"]).tolist())


def test_the_switched_on_charts_draw_the_protected_numbers(client, dashboard):
    client.login("analyst")
    exact, _ = domain(dashboard, protected=False)
    protected, enumerators = domain(dashboard, protected=True)

    answer = answers(client, ["publishable"])

    shares = blank_shares(answer[GRAPHS[0]])
    expected = (protected["blank"] / protected["interviews"]).tolist()
    assert shares == pytest.approx(expected, nan_ok=True)
    assert shares != pytest.approx((exact["blank"] / exact["interviews"]).tolist())
    table = answer["quality-enumerators-table.data"]
    listed = enumerators[~enumerators["other"]]
    assert [row["enumerator_id"] for row in table][: len(listed)] == listed[
        "enumerator_id"
    ].tolist()
    assert [row["interviews"] for row in table][: len(listed)] == listed["interviews"].tolist()


def test_the_csvs_are_exact_by_default_and_labelled_with_the_switch(client):
    client.login("analyst")

    for name in ("missingness", "enumerators"):
        exact = csv(client, name, [])
        protected = pd.read_csv(io.StringIO(csv(client, name, ["publishable"])))

        assert "perturbed" not in exact
        assert (pd.read_csv(io.StringIO(exact))["figures"] == "exact").all()
        assert (protected["figures"] == PERTURBED).all(), name
        assert {"period_from", "period_to", "label"} <= set(protected.columns)


def test_the_switch_is_offered_to_an_analyst_and_not_to_an_enumerator(client, dashboard):
    def switch(who: str, search: str = "") -> list[dict[str, Any]]:
        client.login(who)
        layout = client.page("/quality", search)
        return [
            c["props"]
            for c in components(layout.get_json())
            if c["props"]["id"] == "quality-publishable"
        ]

    (off,) = switch("analyst")
    (on,) = switch("analyst", "?publishable=1")

    assert off["value"] == [] and off["options"][0]["disabled"] is False
    assert on["value"] == ["publishable"]
    assert switch("enumerator") == []


def test_the_answers_stay_refused_to_an_enumerator_whatever_the_switch(client):
    client.login("enumerator")

    refused = client.callback(
        GRAPHS[0],
        {"quality-batches-table.selected_rows": [], "quality-publishable.value": ["publishable"]},
        NO_BATCH,
    )

    assert refused.status_code == 204
