"""Users, tokens and the audit trail over HTTP; who am I."""

from __future__ import annotations

USERS = "/api/v1/users"


def test_whoami_names_the_role_and_its_capabilities(panel):
    body = panel.get("/api/v1/me", "manager_sen").json()

    assert body == {
        "name": "manager_sen",
        "role": "manager",
        "countries": ["SEN"],
        "capabilities": ["aggregates"],
    }


def test_an_admin_adds_a_user_whose_token_works_at_once(fresh):
    response = fresh.post(
        USERS, "admin", json={"name": "awa", "role": "enumerator", "countries": ["sen", "GMB"]}
    )

    assert response.status_code == 201
    body = response.json()
    assert body["countries"] == ["GMB", "SEN"] and body["role"] == "enumerator"
    me = fresh.client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json()["name"] == "awa"
    assert "awa" in {u["name"] for u in fresh.get(USERS, "admin").json()}
    assert all("token" not in u for u in fresh.get(USERS, "admin").json())


def test_a_taken_name_is_409(fresh):
    response = fresh.post(
        USERS, "admin", json={"name": "analyst", "role": "analyst", "countries": "all"}
    )

    assert response.status_code == 409
    assert response.json()["detail"] == "a user named 'analyst' already exists: revoke it first."


def test_an_unknown_country_is_422(fresh):
    response = fresh.post(
        USERS, "admin", json={"name": "x", "role": "analyst", "countries": ["ABC"]}
    )

    assert response.status_code == 422
    assert (
        response.json()["detail"] == "'ABC' is not a country code; use the three-letter ISO code."
    )


def test_an_unknown_role_is_422(fresh):
    response = fresh.post(USERS, "admin", json={"name": "x", "role": "boss", "countries": "all"})

    assert response.status_code == 422
    assert response.json()["detail"].startswith("body field role: ")


def test_revoking_a_user_stops_their_token(fresh):
    token = fresh.tokens["enumerator2"]

    response = fresh.delete(f"{USERS}/enumerator2", "admin")

    assert response.status_code == 204
    me = fresh.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401


def test_revoking_an_unknown_user_is_404(fresh):
    response = fresh.delete(f"{USERS}/nobody", "admin")

    assert response.status_code == 404
    assert response.json()["detail"] == "there is no user named 'nobody'."


def test_the_audit_trail_shows_who_did_what(fresh):
    fresh.post(USERS, "admin", json={"name": "new", "role": "manager", "countries": "all"})
    fresh.delete(f"{USERS}/new", "admin")

    entries = fresh.get("/api/v1/audit", "admin", params={"actor": "admin"}).json()
    revokes = fresh.get("/api/v1/audit", "admin", params={"action": "user_revoke"}).json()

    assert [(e["action"], e["target"]) for e in entries] == [
        ("user_revoke", "new"),
        ("user_add", "new"),
    ]
    assert [e["target"] for e in revokes] == ["new"]


def test_a_token_revoked_elsewhere_stops_within_the_cache_lifetime(fresh):
    import time

    from api.caches import TOKEN_TTL_S
    from reintegration.policy import CLI
    from reintegration.users import revoke_user

    assert fresh.get("/api/v1/me", "manager").status_code == 200
    revoke_user(fresh.services.engine, "manager", caller=CLI)  # as the command line does
    time.sleep(TOKEN_TTL_S)

    assert fresh.get("/api/v1/me", "manager").status_code == 401
