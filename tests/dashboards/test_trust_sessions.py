"""Sessions held in the store (issue 11, finding 12): logout ends the session for good and only
as a POST carrying the session's CSRF token; login needs the login form's CSRF token; a session
opened on one server is honoured, and ended, on another sharing the store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from dashboards.auth import (
    LOGIN_CSRF_COOKIE,
    LOGOUT_IS_POST,
    LOGOUT_REFUSED,
    SESSION_COOKIE,
    csrf_for,
    session_secret,
)
from reintegration.policy import CLI, cli_caller
from reintegration.sessions import close_session, open_session, session_user
from reintegration.store.schema import app_user, audit, dashboard_session
from reintegration.users import add_user, revoke_user, token_hash
from tests.dashboards.conftest import Client, response_text

ENDED = {"error": "your session has ended: log in again"}


def _sessions(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.select(dashboard_session)).all()


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _cookie(client: Client) -> str:
    cookie = client.http.get_cookie(SESSION_COOKIE, path="/dashboard")
    assert cookie is not None
    return cookie.value


def _in_session(client: Client) -> bool:
    return client.http.get("/dashboard/worklist").status_code == 200


# -- logout ----------------------------------------------------------------------------------


def test_after_logout_the_old_cookie_opens_nothing(own_dashboard):
    client = Client(own_dashboard)
    client.login("analyst")
    stolen = _cookie(client)
    assert _in_session(client)

    response = client.logout()

    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard/login"
    assert client.http.get_cookie(SESSION_COOKIE, path="/dashboard") is None
    # Whoever kept a copy of the cookie (a shared computer, a proxy log) finds it dead.
    client.http.set_cookie(SESSION_COOKIE, stolen, path="/dashboard")
    assert client.http.get("/dashboard/worklist").status_code == 302
    refused = client.callback("overview-query.data", {"overview-sex-filter.value": ["female"]})
    assert (refused.status_code, refused.get_json()) == (401, ENDED)
    [row] = _sessions(own_dashboard.services.engine)
    assert row.revoked_at is not None


def test_get_logout_is_refused_and_logs_nobody_out(own_dashboard):
    client = Client(own_dashboard)
    client.login("analyst")

    response = client.http.get("/dashboard/logout")

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.get_data(as_text=True) == LOGOUT_IS_POST
    assert _in_session(client)
    assert [r.revoked_at for r in _sessions(own_dashboard.services.engine)] == [None]


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "other-session"])
def test_logout_without_the_sessions_csrf_token_is_refused(own_dashboard, csrf):
    # What another site's form (or a link) could send: no token, or one it guessed.
    client = Client(own_dashboard)
    client.login("analyst")
    if csrf == "other-session":
        csrf = csrf_for(own_dashboard.services.settings.secret_key_bytes(), "another-secret")
    data = {} if csrf is None else {"csrf": csrf}

    response = client.http.post("/dashboard/logout", data=data)

    assert response.status_code == 403
    assert response.get_data(as_text=True) == LOGOUT_REFUSED
    assert _in_session(client)
    assert [r.revoked_at for r in _sessions(own_dashboard.services.engine)] == [None]


def test_the_logout_button_is_a_form_posting_the_csrf_token(own_dashboard):
    client = Client(own_dashboard)
    client.login("manager")
    layout = client.http.get("/dashboard/_dash-layout").get_json()
    text = str(layout)
    assert "'type': 'Form'" in text and "'action': '/dashboard/logout'" in text
    assert "'method': 'POST'" in text
    key = own_dashboard.services.settings.secret_key_bytes()
    secret = session_secret(key, _cookie(client))
    assert secret is not None and client.logout_csrf() == csrf_for(key, secret)


# -- login CSRF ------------------------------------------------------------------------------


def test_the_login_page_sets_a_strict_csrf_cookie_that_its_form_repeats(client):
    response = client.http.get("/dashboard/login")

    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(LOGIN_CSRF_COOKIE)]
    assert len(cookies) == 1
    assert "SameSite=Strict" in cookies[0] and "HttpOnly" in cookies[0]
    token = client.http.get_cookie(LOGIN_CSRF_COOKIE, path="/dashboard").value
    page = client.page("/login").get_json()
    fields = [c["props"] for c in _components(page) if c["props"]["id"] == "login-csrf"]
    assert fields == [{"id": "login-csrf", "name": "csrf", "type": "hidden", "value": token}]


@pytest.mark.parametrize(
    "sent",
    ["no field", "no cookie", "other value"],
)
def test_a_login_without_the_forms_csrf_token_opens_no_session(own_dashboard, sent):
    # A page of another site posting a token of its choosing (login CSRF): its form cannot
    # know the cookie's value, and the browser does not send a Strict cookie with it anyway.
    client = Client(own_dashboard)
    engine = own_dashboard.services.engine
    token = own_dashboard.tokens["admin"]
    csrf = client.login_csrf()
    data = {"token": token, "next": "/dashboard/admin", "csrf": csrf}
    if sent == "no field":
        del data["csrf"]
    elif sent == "no cookie":
        client.http.delete_cookie(LOGIN_CSRF_COOKIE, path="/dashboard")
    else:
        data["csrf"] = csrf[::-1]
    before = (_count(engine, dashboard_session), _count(engine, audit))

    response = client.http.post("/dashboard/login", data=data)

    assert response.status_code == 303
    assert response.headers["Location"] == (
        "/dashboard/login?error=form-expired&next=%2Fdashboard%2Fadmin"
    )
    assert SESSION_COOKIE not in response.headers.get("Set-Cookie", "")
    assert (_count(engine, dashboard_session), _count(engine, audit)) == before
    assert client.http.get("/dashboard/admin").status_code == 302
    text = response_text(client.page("/login", "?error=form-expired"))
    assert "This login form had expired, so nobody was logged in." in text


def test_the_login_form_works_when_rendered_before_the_cookie_was_set(own_dashboard):
    # A browser that reached the login page without loading it (no cookie yet) gets the cookie
    # with the answer that renders the form.
    client = Client(own_dashboard)
    page = client.page("/login").get_json()
    [field] = [c["props"] for c in _components(page) if c["props"]["id"] == "login-csrf"]
    cookie = client.http.get_cookie(LOGIN_CSRF_COOKIE, path="/dashboard")
    assert cookie is not None and cookie.value == field["value"]

    response = client.http.post(
        "/dashboard/login",
        data={"token": own_dashboard.tokens["manager"], "next": "", "csrf": field["value"]},
    )

    assert response.status_code == 303 and response.headers["Location"] == "/dashboard/"
    assert client.http.get("/dashboard/overview").status_code == 200


# -- the session in the store ----------------------------------------------------------------


def test_the_store_keeps_only_hashes_and_an_expiry_of_a_working_day(own_dashboard):
    client = Client(own_dashboard)
    client.login("analyst")
    [row] = _sessions(own_dashboard.services.engine)
    cookie = _cookie(client)

    assert row.token_sha256 == token_hash(own_dashboard.tokens["analyst"])
    assert row.id not in cookie and own_dashboard.tokens["analyst"] not in cookie
    lasts = _aware(row.expires_at) - _aware(row.created_at)
    assert lasts == timedelta(hours=10)


def test_a_session_past_its_expiry_opens_nothing(own_dashboard):
    client = Client(own_dashboard)
    client.login("analyst")
    engine = own_dashboard.services.engine
    with engine.begin() as conn:
        conn.execute(
            dashboard_session.update().values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    assert client.http.get("/dashboard/worklist").status_code == 302
    assert client.callback("overview-query.data", {}).status_code == 401


def test_revoking_a_user_ends_the_sessions_they_opened(own_dashboard):
    client = Client(own_dashboard)
    client.login("analyst")
    revoke_user(own_dashboard.services.engine, "analyst", caller=cli_caller("test"))
    # A user of that name added again holds another token: the old session stays dead.
    add_user(own_dashboard.services.engine, "analyst", "analyst", caller=CLI)

    assert client.http.get("/dashboard/worklist").status_code == 302
    assert client.callback("overview-query.data", {}).status_code == 401


def test_sessions_open_check_close_and_expire_in_the_store(engine):
    add_user(engine, "ana", "analyst", ["SEN"], caller=CLI)
    with engine.connect() as conn:
        digest = conn.execute(sa.select(app_user.c.token_sha256)).scalar_one()
    now = datetime.now(UTC)
    old = open_session(engine, digest, now=now - timedelta(hours=11))
    live = open_session(engine, digest)

    user = session_user(engine, live)
    assert user is not None and (user.name, user.countries) == ("ana", frozenset({"SEN"}))
    # The login of ``live`` deleted the session that had ended an hour earlier.
    assert len(_sessions(engine)) == 1 and session_user(engine, old) is None
    assert session_user(engine, live, now=now + timedelta(hours=10, seconds=1)) is None
    assert session_user(engine, "") is None and session_user(engine, "x" * 500) is None
    assert session_user(engine, "not-a-session") is None

    assert close_session(engine, live) is True
    assert session_user(engine, live) is None
    assert close_session(engine, live) is False
    [row] = _sessions(engine)
    assert row.revoked_at is not None


# -- two servers over one store --------------------------------------------------------------


@pytest.fixture
def two_servers(engine, tmp_path: Path, questionnaire) -> Iterator[tuple[Any, Any, str]]:
    """Two apps (as two servers would build them) over one store, and an analyst's token."""
    from api.app import create_app
    from api.services import Services
    from api.uploads import Uploads
    from reintegration.analytics import Analytics
    from reintegration.settings import Settings
    from reintegration.store.engine import open_store
    from tests.api.conftest import SECRET, FakeChampions, FakeLifecycle

    url = engine.url.render_as_string(hide_password=False)
    token = add_user(engine, "analyst", "analyst", caller=CLI)
    built = []
    for name in ("a", "b"):
        settings = Settings(
            home=tmp_path / name,
            database_url=url,
            mlflow_tracking_uri=f"sqlite:///{tmp_path / name / 'mlflow.db'}",
            secret_key=SECRET,
        )
        store = open_store(url)
        champions = FakeChampions()
        services = Services(
            settings=settings,
            engine=store,
            questionnaire=questionnaire,
            analytics=Analytics(store, min_cell=5),
            champions=champions,
            uploads=Uploads(store, questionnaire, champions, secret=settings.secret_key_bytes),
            lifecycle=FakeLifecycle(),
        )
        built.append(services)
    first, second = (TestClient(create_app(s), follow_redirects=False) for s in built)
    yield first, second, token
    for services in built:
        services.close()


def _api_login(http: TestClient, token: str) -> None:
    http.get("/dashboard/login")
    response = http.post(
        "/dashboard/login",
        data={"token": token, "next": "", "csrf": http.cookies[LOGIN_CSRF_COOKIE]},
    )
    assert response.status_code == 303, response.text


def _api_logout_csrf(http: TestClient) -> str:
    layout = http.get("/dashboard/_dash-layout").json()
    [field] = [c for c in _components(layout) if c["props"]["id"] == "shell-logout-csrf"]
    return str(field["props"]["value"])


def test_a_session_opened_on_one_server_is_honoured_and_ended_on_another(two_servers):
    first, second, token = two_servers
    _api_login(first, token)
    assert first.get("/dashboard/worklist").status_code == 200
    second.cookies.set(SESSION_COOKIE, first.cookies[SESSION_COOKIE], path="/dashboard")

    assert second.get("/dashboard/worklist").status_code == 200  # same session, other server
    response = second.post("/dashboard/logout", data={"csrf": _api_logout_csrf(second)})

    assert response.status_code == 303
    assert first.get("/dashboard/worklist").status_code == 302  # ended everywhere
    assert first.get("/dashboard/worklist").headers["location"].startswith("/dashboard/login")


def _components(node: Any) -> Iterator[dict[str, Any]]:
    from tests.dashboards.conftest import components

    yield from components(node)


def _aware(moment: datetime) -> datetime:
    # SQLite gives back the UTC time it was given, without its zone.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
