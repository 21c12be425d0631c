"""One policy over HTTP: users (countries explicit, safe names), the domain's refusal as 403
problem+json, and reads of row-level data audited (findings 1, 13 and 14 of the trust issue)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from api.problems import PROBLEM_JSON
from reintegration.roles import Capability, Role
from reintegration.store.schema import app_user, audit
from tests.api.conftest import CALLERS, SECRET
from tests.conftest import canonical_row, write_csv

USERS = "/api/v1/users"


def users_and_audit(stack) -> tuple[int, int]:
    with stack.services.engine.connect() as conn:
        users = conn.execute(sa.select(sa.func.count()).select_from(app_user)).scalar_one()
        entries = conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar_one()
    return users, entries


def test_an_empty_list_of_countries_is_refused_and_nothing_is_stored(fresh):
    before = users_and_audit(fresh)

    response = fresh.post(USERS, "admin", json={"name": "wide", "role": "admin", "countries": []})

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["detail"] == (
        "body field countries: Value error, the list of countries is empty: give at least one "
        'ISO3 code, or "all" for every country.'
    )
    assert users_and_audit(fresh) == before


def test_countries_must_be_said_all_or_listed(fresh):
    before = users_and_audit(fresh)

    missing = fresh.post(USERS, "admin", json={"name": "wide", "role": "manager"})
    everywhere = fresh.post(
        USERS, "admin", json={"name": "wide", "role": "manager", "countries": "all"}
    )
    some = fresh.post(
        USERS, "admin", json={"name": "narrow", "role": "manager", "countries": ["sen"]}
    )

    assert missing.status_code == 422
    assert missing.json()["detail"].startswith("body field countries: ")
    assert everywhere.status_code == 201 and everywhere.json()["countries"] is None
    assert some.status_code == 201 and some.json()["countries"] == ["SEN"]
    assert users_and_audit(fresh) == (before[0] + 2, before[1] + 2)
    me = fresh.client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {everywhere.json()['token']}"}
    ).json()
    assert me["countries"] is None


def test_a_path_as_a_user_name_is_refused_with_the_rule(fresh):
    before = users_and_audit(fresh)

    response = fresh.post(
        USERS, "admin", json={"name": "../../x", "role": "manager", "countries": "all"}
    )

    assert response.status_code == 422
    assert response.json()["detail"] == (
        "body field name: Value error, '../../x' cannot be a user name: a user name has 1 to 64 "
        "characters: letters, digits, dot, underscore, @ or hyphen, starting with a letter or "
        "digit."
    )
    assert users_and_audit(fresh) == before


def test_every_name_that_can_be_made_can_be_revoked_over_http(fresh):
    for name in ("a.b@c-d_e", "X" * 64, "0.0"):
        made = fresh.post(
            USERS, "admin", json={"name": name, "role": "manager", "countries": "all"}
        )
        assert made.status_code == 201, name

        gone = fresh.delete(f"{USERS}/{name}", "admin")

        assert gone.status_code == 204, name
    assert [u["name"] for u in fresh.get(USERS, "admin").json()] == sorted(n for n in fresh.tokens)


@pytest.mark.parametrize(
    ("who", "path", "capability", "every_country"),
    [
        ("manager", "/api/v1/models", Capability.MODELS, True),
        ("analyst_sen", "/api/v1/models", Capability.MODELS, True),
        ("enumerator", "/api/v1/worklist", Capability.ROW_LEVEL, False),
        ("analyst", "/api/v1/audit", Capability.ADMIN, True),
    ],
)
def test_the_api_refuses_with_the_domains_sentence(fresh, who, path, capability, every_country):
    from reintegration.policy import User, refusal

    role, countries = CALLERS[who]
    caller = User(who, Role(role), frozenset(countries) if countries else None)

    answer = fresh.get(path, who)

    assert answer.status_code == 403
    assert answer.json()["detail"] == refusal(caller, capability, every_country=every_country) + "."


def test_a_domain_refusal_is_a_403_problem(fresh):
    from fastapi import APIRouter

    from reintegration.errors import Forbidden

    router = APIRouter()

    @router.get("/forbidden-probe")
    def probe() -> None:
        raise Forbidden("the manager role may not manage users or read the audit trail")

    fresh.app.include_router(router)
    response = fresh.client.get("/forbidden-probe")

    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["detail"] == (
        "the manager role may not manage users or read the audit trail."
    )


def test_reading_a_returnee_is_audited_with_its_key_only(fresh, questionnaire, tmp_path):
    from reintegration.pseudonym import returnee_key
    from tests.api.conftest import ingest_panel

    ingest_panel(fresh, write_csv(tmp_path / "one.csv", [canonical_row(questionnaire, 7)]))
    key = returnee_key("CASE-0007", SECRET.encode())
    _, before = users_and_audit(fresh)

    found = fresh.get(f"/api/v1/returnees/{key}", "analyst")

    assert found.status_code == 200
    with fresh.services.engine.connect() as conn:
        entries = conn.execute(sa.select(audit).where(audit.c.id > before)).all()
    assert [(e.actor, e.action, e.target) for e in entries] == [("analyst", "returnee_read", key)]
    assert "CASE-0007" not in str([tuple(e) for e in entries])
    assert entries[0].detail == {"rounds": 1}


def test_a_returnee_nobody_may_see_leaves_no_read_in_the_audit(fresh, questionnaire, tmp_path):
    from reintegration.pseudonym import returnee_key
    from tests.api.conftest import ingest_panel

    row = canonical_row(questionnaire, 8, country="GIN", admin1="Conakry")
    ingest_panel(fresh, write_csv(tmp_path / "one.csv", [row]))
    key = returnee_key("CASE-0008", SECRET.encode())
    before = users_and_audit(fresh)

    hidden = fresh.get(f"/api/v1/returnees/{key}", "analyst_sen")
    refused = fresh.get(f"/api/v1/returnees/{key}", "manager")

    assert hidden.status_code == 404 and refused.status_code == 403
    assert users_and_audit(fresh) == before


def test_reading_the_worklist_is_audited_with_a_count(fresh):
    fresh.services.champions.risk_ = (object(), 1)
    _, before = users_and_audit(fresh)

    answer = fresh.get("/api/v1/worklist", "analyst_sen")

    assert answer.status_code == 200 and answer.json()["items"] == []
    with fresh.services.engine.connect() as conn:
        entries = conn.execute(sa.select(audit).where(audit.c.id > before)).all()
    assert [(e.actor, e.action, e.target, e.detail) for e in entries] == [
        (
            "analyst_sen",
            "worklist_read",
            "reintegration-risk v1",
            {"rows": 0, "offset": 0, "total": 0},
        )
    ]
