"""Reissuing a user's token over HTTP: admins for every country only; the new token works at
once, the old one is refused; audited; an unknown user is 404."""

from __future__ import annotations

USERS = "/api/v1/users"


def test_an_admin_reissues_a_token_the_old_one_stops_the_new_one_works(fresh):
    old = fresh.tokens["manager"]
    assert fresh.get("/api/v1/me", "manager").status_code == 200

    response = fresh.post(f"{USERS}/manager/token", "admin")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "manager" and body["token"] != old
    assert body["note"] == "the token is shown this once; only its hash is stored"
    refused = fresh.client.get("/api/v1/me", headers={"Authorization": f"Bearer {old}"})
    assert refused.status_code == 401
    me = fresh.client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json()["name"] == "manager" and me.json()["role"] == "manager"
    audit = fresh.get("/api/v1/audit", "admin", params={"action": "user_reissue"}).json()
    assert [(a["actor"], a["target"]) for a in audit] == [("admin", "manager")]
    assert body["token"] not in str(audit)


def test_reissuing_for_an_unknown_user_is_404(fresh):
    response = fresh.post(f"{USERS}/ghost/token", "admin")

    assert response.status_code == 404
    assert response.json()["detail"] == "there is no user named 'ghost'."


def test_only_an_admin_for_every_country_may_reissue(fresh):
    for caller in ("analyst", "manager", "enumerator", "analyst_sen"):
        response = fresh.post(f"{USERS}/enumerator/token", caller)
        assert response.status_code == 403, caller
    assert fresh.get("/api/v1/me", "enumerator").status_code == 200


def test_reissuing_needs_a_token(fresh):
    assert fresh.post(f"{USERS}/enumerator/token", None).status_code == 401
