"""Login, the session cookie, and who may open which page: checked on the server for pages,
the navigation and callbacks alike."""

from __future__ import annotations

import pytest

from dashboards.auth import SESSION_COOKIE, SESSION_SECONDS, session_secret, session_value
from reintegration.policy import cli_caller
from reintegration.roles import Role
from reintegration.users import revoke_user
from tests.dashboards.conftest import Client, response_text

# Which page each role may open (DESIGN.md's role matrix, as the issue lists the pages).
PAGES = (
    "overview",
    "breakdowns",
    "trajectories",
    "assistance",
    "worklist",
    "models",
    "quality",
    "upload",
    "admin",
    "glossary",
)
OPENS = {
    "enumerator": {"quality", "upload", "glossary"},
    "manager": {"overview", "breakdowns", "trajectories", "assistance", "glossary"},
    "analyst": {
        "overview",
        "breakdowns",
        "trajectories",
        "assistance",
        "worklist",
        "models",
        "quality",
        "upload",
        "glossary",
    },
    "admin": set(PAGES),
}


def test_login_sets_a_signed_httponly_samesite_cookie_for_a_working_day(client):
    response = client.login("manager")
    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard/overview"
    [cookie] = [
        c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{SESSION_COOKIE}=")
    ]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/dashboard" in cookie
    assert f"Max-Age={SESSION_SECONDS}" in cookie and SESSION_SECONDS == 10 * 3600
    assert client.dashboard.tokens["manager"] not in cookie


def test_a_wrong_token_returns_to_the_login_page_with_a_sentence(client):
    response = client.post_login("not-a-token")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/dashboard/login?error=bad-token")
    assert SESSION_COOKIE not in response.headers.get("Set-Cookie", "")
    page = client.page("/login", "?error=bad-token")
    assert "This token is not valid (mistyped, or revoked)." in response_text(page)


@pytest.mark.parametrize(
    "target",
    ["https://elsewhere.example/x", "//elsewhere.example", "/api/v1/users", "/dashboard/login"],
)
def test_login_never_sends_the_user_off_the_dashboard(client, target):
    response = client.post_login(client.dashboard.tokens["analyst"], target)
    assert response.headers["Location"] == "/dashboard/"


def test_a_page_without_a_session_leads_to_the_login_page(client):
    response = client.http.get("/dashboard/breakdowns?sex=female")
    assert response.status_code == 302
    assert response.headers["Location"] == (
        "/dashboard/login?next=%2Fdashboard%2Fbreakdowns%3Fsex%3Dfemale"
    )
    assert client.http.get("/dashboard/login").status_code == 200


def test_the_root_leads_each_role_to_its_first_page(client):
    client.login("enumerator")
    assert client.http.get("/dashboard/").headers["Location"] == "/dashboard/quality"
    client.login("manager")
    assert client.http.get("/dashboard/").headers["Location"] == "/dashboard/overview"


def test_callbacks_without_a_session_are_refused(client):
    response = client.callback("overview-query.data", {"overview-sex-filter.value": ["female"]})
    assert response.status_code == 401
    assert response.get_json() == {"error": "your session has ended: log in again"}


def test_the_page_router_without_a_session_asks_to_log_in(client):
    page = client.page("/overview")
    assert page.status_code == 200
    assert "Your session has ended or you have not logged in yet." in response_text(page)


def test_an_altered_or_expired_cookie_is_no_session():
    secret = b"s" * 64
    value = session_value(secret, "ab" * 32)
    assert session_secret(secret, value) == "ab" * 32
    assert session_secret(secret, value[:-2] + "xx") is None
    assert session_secret(secret, value, max_age=-1) is None
    assert session_secret(secret, None) is None


def test_a_forged_cookie_does_not_open_pages(client):
    client.http.set_cookie(
        SESSION_COOKIE, session_value(b"guess" * 10, "x" * 43), path="/dashboard"
    )
    assert client.http.get("/dashboard/overview").status_code == 302


def test_revoking_a_user_ends_their_session_at_once(own_dashboard):
    client = Client(own_dashboard)
    client.login("analyst")
    assert client.http.get("/dashboard/worklist").status_code == 200
    revoke_user(own_dashboard.services.engine, "analyst", caller=cli_caller("test"))
    assert client.http.get("/dashboard/worklist").status_code == 302
    assert client.callback("overview-query.data", {}).status_code == 401


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_each_role_opens_exactly_its_pages_and_sees_only_them_in_its_navigation(client, role):
    client.login(role)
    layout = client.http.get("/dashboard/_dash-layout").get_json()
    nav = [
        link["props"]["id"].removeprefix("nav-")
        for link in _find(layout, "shell-nav")["props"]["children"]
    ]
    assert set(nav) == OPENS[role]
    for page in PAGES:
        text = response_text(client.page(f"/{page}"))
        refused = f"is not open to your role ({role})" in text
        assert refused == (page not in OPENS[role]), page


def test_a_manager_is_told_why_an_analyst_page_is_closed(client):
    client.login("manager")
    text = response_text(client.page("/worklist"))
    assert (
        "The Worklist page is not open to your role (manager): it is for the admin or analyst "
        "roles. Ask an administrator if you need it."
    ) in text


def test_callbacks_check_the_role_again(client):
    client.login("manager")
    response = client.callback("worklist-table.data", {"worklist-band-filter.value": ["high"]})
    assert response.status_code == 204  # nothing changes
    client.login("enumerator")
    response = client.callback("overview-query.data", {})
    assert response.status_code == 204


def _find(node, element_id):
    if isinstance(node, dict):
        if node.get("props", {}).get("id") == element_id:
            return node
        for value in node.values():
            found = _find(value, element_id)
            if found is not None:
                return found
    if isinstance(node, list):
        for value in node:
            found = _find(value, element_id)
            if found is not None:
                return found
    return None
