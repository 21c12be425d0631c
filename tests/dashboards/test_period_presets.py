"""The period picker of the aggregate pages: it opens on the latest interview the user may see,
and its presets (last quarter, last 12 months, this year) set both dates from it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from dashboards.filters import preset_period
from tests.dashboards.conftest import SCOPED_COUNTRY, components
from tests.dashboards.test_aggregate_pages import outputs


def _picker(client, path="/overview", search=""):
    layout = outputs(client.page(path, search))["_pages_content.children"]
    found = {c["props"].get("id"): c for c in components(layout) if c["props"].get("id")}
    return found


def _latest(dashboard, country=None):
    frame = dashboard.services.analytics.frame("rss-v1-provisional")
    if country:
        frame = frame[frame["country"] == country]
    return date(1970, 1, 1) + timedelta(days=int(frame["interview_day"].max()))


def test_the_picker_opens_on_the_latest_interview(client, dashboard):
    client.login("analyst")
    found = _picker(client)
    latest = _latest(dashboard)
    assert found["overview-period-filter"]["props"]["initial_visible_month"] == (latest.isoformat())
    assert found["overview-period-latest"]["props"]["data"] == latest.isoformat()
    assert [found[f"overview-period-{p}"]["props"]["children"] for p in ("quarter", "year")] == [
        "Last quarter",
        "Last 12 months",
    ]


def test_the_picker_opens_where_the_address_says(client):
    client.login("analyst")
    found = _picker(client, "/overview", "?from=2024-01-01&to=2024-03-31")
    picker = found["overview-period-filter"]["props"]
    assert picker["initial_visible_month"] == "2024-03-31"


def test_a_scoped_managers_latest_is_their_countrys_in_whole_months(client, dashboard):
    client.login("scoped-manager")
    found = _picker(client)
    latest = _latest(dashboard, SCOPED_COUNTRY)
    shown = date.fromisoformat(found["overview-period-latest"]["props"]["data"])
    assert (shown.year, shown.month) == (latest.year, latest.month)
    assert (shown + timedelta(days=1)).day == 1  # the month's last day


@pytest.mark.parametrize(
    ("preset", "start", "end"),
    [
        ("quarter", "2025-04-01", "2025-06-30"),
        ("year", "2024-06-01", "2025-05-31"),
        ("calendar", "2025-01-01", "2025-12-31"),
    ],
)
def test_a_preset_sets_both_dates(client, preset, start, end):
    client.login("manager")
    answer = outputs(
        client.callback(
            "overview-period-filter.start_date",
            {f"overview-period-{preset}.n_clicks": 1},
            {"overview-period-latest.data": "2025-05-14"},
        )
    )
    assert answer["overview-period-filter.start_date"] == start
    assert answer["overview-period-filter.end_date"] == end


def test_presets_at_the_turn_of_a_year():
    assert preset_period("year", date(2025, 1, 3)) == (date(2024, 2, 1), date(2025, 1, 31))
    assert preset_period("quarter", date(2025, 12, 31)) == (date(2025, 10, 1), date(2025, 12, 31))


def test_without_data_there_is_no_preset_to_press(client):
    client.login("analyst")
    response = client.callback(
        "overview-period-filter.start_date",
        {"overview-period-quarter.n_clicks": 1},
        {"overview-period-latest.data": None},
    )
    assert response.status_code == 204
