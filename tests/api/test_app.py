"""The server as a whole: the dashboards mounted beside the API, the home page."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app


def test_the_dashboards_are_mounted_with_a_public_login_page(panel):
    app = create_app(panel.services)
    with TestClient(app) as client:
        login = client.get("/dashboard/login")
        page = client.get("/dashboard/", follow_redirects=False)
        home = client.get("/", follow_redirects=False)

    assert login.status_code == 200 and "<!DOCTYPE html>" in login.text
    assert page.status_code == 302
    assert page.headers["location"].startswith("/dashboard/login")
    assert home.headers["location"] == "/dashboard/"


def test_the_api_still_needs_a_token_with_the_dashboards_mounted(panel):
    app = create_app(panel.services)
    with TestClient(app) as client:
        assert client.get("/api/v1/aggregates").status_code == 401
