"""The worklist's rows on a seeded store (reasons of the weakest dimension, bands), the
returnee's page (scoped like the worklist) and the case status set from it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reintegration.policy import cli_caller
from reintegration.store.schema import case_status, returnee
from reintegration.worklist import RiskBands, RiskSource, ranked
from tests.dashboards.conftest import (
    RISK_MODEL,
    SCOPED_COUNTRY,
    Client,
    add_risk_rows,
    components,
    response_text,
    response_text_of,
)
from tests.dashboards.test_aggregate_pages import outputs


@pytest.fixture
def with_risk(own_dashboard):
    add_risk_rows(own_dashboard.services.engine)
    own_dashboard.services.champions.risk_version = 1
    return own_dashboard


def keys_by_country(dashboard):
    with dashboard.services.engine.connect() as conn:
        rows = conn.execute(sa.select(returnee.c.key, returnee.c.country)).all()
    inside = [k for k, c in rows if c == SCOPED_COUNTRY]
    outside = [k for k, c in rows if c != SCOPED_COUNTRY]
    return inside, outside


@pytest.mark.parametrize("source", [RiskSource(RISK_MODEL, 1), RiskSource()])
def test_every_reason_of_the_seeded_worklist_belongs_to_its_weakest_dimension(
    with_risk, questionnaire, source
):
    services = with_risk.services
    index, label, _ = services.champions.index()
    page = ranked(
        services.engine,
        caller=cli_caller(),
        source=source,
        index=index,
        index_version=label,
        bands=RiskBands(*services.settings.risk_band_limits),
        limit=None,
    )

    assert page.total == len(page.items) > 500
    outside = [
        (item["rank"], r["item"])
        for item in page.items
        for r in item["reasons"]
        if questionnaire.item(r["item"]).dimension != item["weakest_dimension"]
    ]
    assert outside == []
    assert sum(bool(item["reasons"]) for item in page.items) > 0.9 * len(page.items)
    ranges = page.bands.ranges()
    for item in page.items:
        low, high = ranges[item["band"]]
        risk = item["ranked_risk"]
        assert low <= risk < high or risk == high == 1.0
        assert abs(risk - item["probability"]) <= 0.0005 + 1e-9


def test_the_returnee_page_shows_rounds_scores_trajectory_risk_and_status(with_risk):
    inside, _ = keys_by_country(with_risk)
    client = Client(with_risk)
    client.login("scoped-analyst")

    layout = client.page("/returnee", f"?key={inside[0]}").get_json()
    text = response_text_of(layout)
    ids = {c["props"]["id"] for c in components(layout)}

    assert {"returnee-rounds-table", "returnee-trajectory", "returnee-status"} <= ids
    assert "returnee-risk-sentence" in ids and "ranked by reintegration-risk version 1" in text
    assert "Weakest dimension:" in text and inside[0] in text
    graph = next(c for c in components(layout) if c["props"]["id"] == "returnee-trajectory")
    assert len(graph["props"]["figure"]["data"]) == 4  # economic, social, psychosocial, composite


def test_a_returnee_of_another_country_is_not_found_like_an_unknown_key(with_risk):
    _, outside = keys_by_country(with_risk)
    client = Client(with_risk)
    client.login("scoped-analyst")

    elsewhere = response_text(client.page("/returnee", f"?key={outside[0]}"))
    unknown = response_text(client.page("/returnee", "?key=" + "0" * 64))

    assert "There is no returnee with this key that you may see." in elsewhere
    assert elsewhere == unknown


def test_managers_and_enumerators_may_not_open_a_returnee(with_risk):
    inside, _ = keys_by_country(with_risk)
    for who in ("manager", "enumerator"):
        client = Client(with_risk)
        client.login(who)
        text = response_text(client.page("/returnee", f"?key={inside[0]}"))
        assert "is not open to your role" in text and inside[0] not in text


def test_the_returnee_page_is_not_in_the_navigation(with_risk):
    client = Client(with_risk)
    client.login("admin")
    layout = client.http.get("/dashboard/_dash-layout").get_json()
    ids = {c["props"]["id"] for c in components(layout)}
    assert "nav-worklist" in ids and "nav-returnee" not in ids


def save_status(client, key, status):
    return client.callback(
        "returnee-status-message.children",
        {"returnee-status-save.n_clicks": 1},
        {"returnee-key.data": key, "returnee-status.value": status},
    )


def test_an_analyst_saves_a_status_that_the_worklist_shows(with_risk):
    inside, outside = keys_by_country(with_risk)
    client = Client(with_risk)
    client.login("scoped-analyst")

    saved = outputs(save_status(client, inside[0], "follow_up_planned"))
    refused = outputs(save_status(client, outside[0], "contacted"))

    assert saved["returnee-status-message.children"] == "Status saved: Follow-up planned."
    assert "Follow-up planned" in str(saved["returnee-status-history-box.children"])
    assert refused["returnee-status-message.children"] == (
        "There is no returnee with this key that you may see."
    )
    with with_risk.services.engine.connect() as conn:
        stored = conn.execute(sa.select(case_status.c.returnee_key, case_status.c.status)).all()
    assert [tuple(r) for r in stored] == [(inside[0], "follow_up_planned")]


def test_a_manager_cannot_save_a_status(with_risk):
    inside, _ = keys_by_country(with_risk)
    client = Client(with_risk)
    client.login("manager")

    response = save_status(client, inside[0], "contacted")

    assert response.status_code == 204  # PreventUpdate: nothing changes
    with with_risk.services.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(case_status)).scalar() == 0


def change_in_table(client, rows, key, status):
    changed = [{**r, "status": status} if r["returnee_key"] == key else r for r in rows]
    return client.callback(
        "worklist-status-message.children",
        {"worklist-table.data_timestamp": 1},
        {"worklist-table.data": changed, "worklist-table.data_previous": rows},
    )


def test_a_status_chosen_in_the_worklist_table_is_saved_within_the_users_countries(with_risk):
    _, outside = keys_by_country(with_risk)
    client = Client(with_risk)
    client.login("scoped-analyst")
    rows = outputs(
        client.callback(
            "worklist-table.data",
            {f"worklist-{n}-filter.value": [] for n in ("country", "sex", "age", "return", "band")},
        )
    )["worklist-table.data"]
    key = rows[0]["returnee_key"]

    saved = outputs(change_in_table(client, rows, key, "contacted"))
    crafted = [{**rows[1], "returnee_key": outside[0]}]
    refused = outputs(change_in_table(client, crafted, outside[0], "contacted"))

    assert saved["worklist-status-message.children"] == f"Status saved: {key[:12]}…: Contacted."
    assert refused["worklist-status-message.children"] == (
        "There is no returnee with this key that you may see."
    )
    with with_risk.services.engine.connect() as conn:
        stored = conn.execute(sa.select(case_status.c.returnee_key, case_status.c.status)).all()
    assert [tuple(r) for r in stored] == [(key, "contacted")]
