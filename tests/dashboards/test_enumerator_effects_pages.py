"""Enumerator effects on the dashboards: the filter bar's "Leave out flagged enumerators"
switch (in the address as exclude=flagged) changes every aggregate page and says what it
changed; the Data quality page states the interviewer intra-class correlation."""

from __future__ import annotations

from typing import Any

import pytest

from dashboards.filters import FilterState, encode_query, parse_query, scoped
from reintegration.analytics import Filters
from reintegration.interviewer import interviewer_icc
from reintegration.roles import Role
from reintegration.users import User
from tests.dashboards.conftest import LABEL, response_text_of
from tests.dashboards.test_aggregate_pages import filter_values, outputs
from tests.dashboards.test_quality_publishable import NO_BATCH


def test_the_switch_lives_in_the_address():
    state, problems = parse_query({"exclude": "flagged", "sex": "female"})

    assert state.exclude_flagged and problems == []
    assert encode_query(state) == "?sex=female&exclude=flagged"
    assert encode_query(FilterState(sex=("female",))) == "?sex=female"
    analyst = User("a", Role.ANALYST, None)
    assert scoped(state, analyst).exclude_flagged_enumerators is True


def test_an_unknown_exclude_value_is_ignored_and_said():
    state, problems = parse_query({"exclude": "everyone"})

    assert not state.exclude_flagged
    assert problems == ["exclude: 'everyone' is not 'flagged' (flagged enumerators)"]


def _overview(client: Any, switch: list[str]) -> dict[str, Any]:
    values = {**filter_values("overview"), "overview-exclude-filter.value": switch}
    return outputs(client.callback("overview-query.data", values))


def test_the_overview_leaves_out_flagged_enumerators_when_switched_on(client, dashboard):
    client.login("analyst")
    analytics = dashboard.services.analytics
    answer = _overview(client, ["flagged"])
    expected = analytics.overview(Filters(exclude_flagged_enumerators=True), LABEL)
    plain = analytics.overview(Filters(), LABEL)

    assert answer["overview-query.data"] == f"?index={LABEL}&exclude=flagged"
    returnees = answer["overview-headlines.children"][0]["props"]["children"][1]["props"][
        "children"
    ]
    assert returnees == f"{expected['returnees']:,}"
    assert expected["returnees"] < plain["returnees"]


def test_the_note_under_the_filters_says_what_the_switch_changed(client, dashboard):
    client.login("analyst")
    values = {**filter_values("overview"), "overview-exclude-filter.value": ["flagged"]}
    answer = outputs(client.callback("overview-exclusion.children", values))
    text = response_text_of(answer["overview-exclusion.children"])
    change = dashboard.services.analytics.enumerator_exclusion(Filters(), LABEL)

    assert "Flagged enumerators left out." in text
    assert change["summary"] in text
    off = {**filter_values("overview"), "overview-exclude-filter.value": []}
    assert outputs(client.callback("overview-exclusion.children", off)) == {
        "overview-exclusion.children": []
    }


def test_a_managers_note_is_protected(client, dashboard):
    client.login("manager")
    values = {**filter_values("breakdowns"), "breakdowns-exclude-filter.value": ["flagged"]}
    answer = outputs(client.callback("breakdowns-exclusion.children", values))
    change = dashboard.services.analytics.enumerator_exclusion(Filters(), LABEL, protected=True)

    assert change["figures"] == "protected"
    assert change["summary"] in response_text_of(answer["breakdowns-exclusion.children"])


@pytest.mark.parametrize("switch", [[], ["publishable"]])
def test_the_quality_page_states_the_interviewer_icc(client, dashboard, switch):
    client.login("analyst")
    inputs = {"quality-batches-table.selected_rows": [], "quality-publishable.value": switch}
    answer = outputs(client.callback("quality-icc.children", inputs, NO_BATCH))
    services = dashboard.services
    expected = interviewer_icc(
        services.engine,
        index_version=LABEL,
        protected=bool(switch),
        min_cell=services.analytics.min_cell,
        protection=services.analytics.protection,
    )
    text = answer["quality-icc.children"]

    assert text.startswith(
        f"Interviewer intra-class correlation of the composite: {expected['icc']:.2f} "
        f"(95% interval {expected['low']:.2f} to {expected['high']:.2f}), from "
        f"{expected['groups']:,} enumerators and {expected['n']:,} scored interviews."
    )
    if switch:
        assert "the number of interviews is perturbed for privacy" in text
