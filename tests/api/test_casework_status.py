"""The worklist's counts, bands and ties, and the case status route: who may set it, where."""

from __future__ import annotations

import sqlalchemy as sa

from reintegration.pseudonym import returnee_key
from reintegration.store.schema import audit, case_status
from tests.api.conftest import SECRET, ingest_panel

EARLY = {"interview_date": "2025-03-01", "return_date": "2025-01-15"}  # a first survey


def key_of(case):
    return returnee_key(case, SECRET.encode())


def put_status(stack, key, who, status="contacted"):
    return stack.client.put(
        f"/api/v1/worklist/{key}/status", headers=stack.auth(who, {}), json={"status": status}
    )


def two_countries(stack, batch_file):
    ingest_panel(
        stack,
        batch_file(
            {"submission_id": "s1", "returnee_id": "C1", "country": "SEN", **EARLY},
            {"submission_id": "s2", "returnee_id": "C2", "country": "GIN", **EARLY},
        ),
    )


def test_the_worklist_says_how_many_match_and_each_bands_range(panel):
    body = panel.get("/api/v1/worklist", "analyst", params={"limit": 5}).json()
    everything = panel.get("/api/v1/worklist", "analyst", params={"limit": 1000}).json()

    assert len(body["items"]) == 5 and body["total"] == len(everything["items"])
    assert body["bands"] == [
        {"band": "low", "low": 0.0, "high": 0.3},
        {"band": "medium", "low": 0.3, "high": 0.6},
        {"band": "high", "low": 0.6, "high": 1.0},
    ]
    ranges = {b["band"]: (b["low"], b["high"]) for b in body["bands"]}
    for item in everything["items"]:
        low, high = ranges[item["band"]]
        risk = item["ranked_risk"]  # the risk as shown, which ranks and bands
        assert low <= risk < high or (item["band"] == "high" and risk == 1.0)


def test_ties_go_to_the_lower_composite_then_the_longest_since_the_last_survey(panel):
    items = panel.get("/api/v1/worklist", "analyst", params={"limit": 1000}).json()["items"]

    keys = [
        (-i["ranked_risk"], i["composite"], -i["days_since_last_survey"], i["key"]) for i in items
    ]
    assert keys == sorted(keys)
    assert [i["rank"] for i in items] == list(range(1, len(items) + 1))


def test_an_analyst_sets_a_status_that_the_worklist_and_the_returnee_show(fresh, batch_file):
    two_countries(fresh, batch_file)

    response = put_status(fresh, key_of("C1"), "analyst_sen", "follow_up_planned")

    assert response.status_code == 200
    assert response.json()["status"] == "follow_up_planned"
    assert response.json()["actor"] == "analyst_sen"
    items = fresh.get("/api/v1/worklist", "analyst").json()["items"]
    assert {i["key"]: i["status"] for i in items} == {
        key_of("C1"): "follow_up_planned",
        key_of("C2"): "none",
    }
    person = fresh.get(f"/api/v1/returnees/{key_of('C1')}", "admin").json()
    assert [s["status"] for s in person["statuses"]] == ["follow_up_planned"]
    with fresh.services.engine.connect() as conn:
        entry = conn.execute(sa.select(audit).where(audit.c.action == "case_status")).one()
    assert (entry.actor, entry.target) == ("analyst_sen", key_of("C1"))


def test_a_status_outside_the_tokens_countries_is_404_like_an_unknown_key(fresh, batch_file):
    two_countries(fresh, batch_file)

    elsewhere = put_status(fresh, key_of("C2"), "analyst_sen")
    unknown = put_status(fresh, "0" * 64, "analyst")

    assert elsewhere.status_code == unknown.status_code == 404
    assert (
        elsewhere.json()["detail"]
        == unknown.json()["detail"]
        == ("there is no returnee with this key that this token may see.")
    )
    with fresh.services.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(case_status)).scalar() == 0


def test_managers_and_enumerators_may_not_set_a_status(fresh, batch_file):
    two_countries(fresh, batch_file)

    for who in ("manager", "enumerator"):
        response = put_status(fresh, key_of("C1"), who)
        assert response.status_code == 403
        assert "may not see row-level data or exports" in response.json()["detail"]


def test_an_unknown_status_or_a_case_number_is_422(fresh, batch_file):
    two_countries(fresh, batch_file)

    bad_status = put_status(fresh, key_of("C1"), "analyst", "closed")
    bad_key = put_status(fresh, "C1", "analyst")

    assert bad_status.status_code == 422
    assert bad_status.json()["detail"] == (
        "body field status: must be one of 'none', 'contacted' or 'follow_up_planned'."
    )
    assert bad_key.status_code == 422
    assert bad_key.json()["detail"].startswith("path parameter key: ")
