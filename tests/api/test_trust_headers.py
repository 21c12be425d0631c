"""Security headers on every answer, and the Secure cookie behind a TLS proxy (issue 11, finding
12): nosniff, no framing, no referrer and a content security policy on the API, the docs, the
dashboards, redirects and errors alike; the dashboards' policy allows exactly their inline
scripts; forwarded headers are believed only from the proxies the settings name."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import server_config
from api.security import POLICIES, ContentSecurity, script_hash
from dashboards.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from tests.api.conftest import Stack, build_stack

FIXED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
EXECUTED = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>(.*?)</script>", re.S
)


@pytest.fixture
def stack(tmp_path: Path, questionnaire) -> Iterator[Stack]:
    built = build_stack(tmp_path / "home", questionnaire)
    yield built
    built.services.close()


@pytest.fixture
def whole(stack: Stack) -> TestClient:
    """The whole server: API, docs and the dashboards mounted."""
    return TestClient(create_app(stack.services), follow_redirects=False)


def _policy(response: Any) -> dict[str, str]:
    for name, value in FIXED.items():
        assert response.headers.get(name) == value, (response.url, name)
    policy = response.headers.get("content-security-policy", "")
    return dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/healthz", 200),
        ("/openapi.json", 200),
        ("/api/v1/batches", 401),
        ("/api/v1/no-such-route", 404),
        ("/no-such-page", 404),
        ("/", 307),
        ("/docs", 200),
        ("/dashboard/login", 200),
        ("/dashboard/overview", 302),
        ("/dashboard/logout", 405),
    ],
)
def test_every_answer_carries_the_headers(whole, path, status):
    response = whole.get(path)

    assert response.status_code == status
    policy = _policy(response)
    assert policy["frame-ancestors"] == "'none'"
    assert "default-src" in policy and "*" not in str(policy)


def test_api_answers_may_load_and_run_nothing(whole, stack):
    response = whole.get("/api/v1/batches", headers=stack.auth("admin", {}))

    assert response.status_code == 200
    assert _policy(response) == {
        "default-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }


def test_a_callback_refused_for_want_of_a_session_carries_the_headers(whole):
    response = whole.post("/dashboard/_dash-update-component", json={"output": "x.children"})

    assert response.status_code == 401
    assert _policy(response)["script-src"].startswith("'self'")


def test_an_unexpected_error_carries_the_headers(stack):
    app = create_app(stack.services, dashboard=False)

    def boom() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/boom", boom)
    response = TestClient(app, raise_server_exceptions=False).get("/boom")

    assert response.status_code == 500
    assert _policy(response)["default-src"] == "'none'"


def test_the_dashboards_policy_allows_exactly_their_inline_scripts(whole):
    whole.get("/dashboard/login")  # Dash adds some inline scripts at its first request
    response = whole.get("/dashboard/login")
    policy = _policy(response)
    scripts = {script_hash(s) for s in EXECUTED.findall(_without_comments(response.text))}
    allowed = set(policy["script-src"].split())

    assert scripts and allowed == {"'self'", *scripts}
    assert policy["style-src"] == "'self' 'unsafe-inline'"  # Plotly styles elements inline
    assert policy["connect-src"] == "'self'" and policy["object-src"] == "'none'"


def test_docs_run_only_the_servers_own_scripts(whole):
    response = whole.get("/docs")
    policy = _policy(response)

    assert policy["script-src"] == "'self'"
    assert EXECUTED.findall(_without_comments(response.text)) == []


def test_the_policy_of_a_path_is_chosen_by_prefix():
    policies = ContentSecurity()
    policies.allow_scripts("/dashboard", lambda _root: ["'sha256-x'"])
    dashboard = dict(POLICIES)["/dashboard"]

    assert policies.policy("/dashboard/overview").startswith(
        f"default-src {dashboard['default-src']}; script-src 'self' 'sha256-x';"
    )
    assert "sha256-x" not in policies.policy("/dashboards-elsewhere")
    assert policies.policy("/api/dashboard").startswith("default-src 'none'")
    assert "sha256-x" in policies.policy("/root/dashboard/", "/root")


# -- the Secure flag behind a TLS proxy ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve(stack: Stack) -> Iterator[Any]:
    """Start the whole server as ``reintegration serve`` configures uvicorn, trusting the
    proxies given; returns its base address."""
    running: list[tuple[Any, threading.Thread]] = []

    def start(proxies: str) -> str:
        import uvicorn

        settings = stack.services.settings.model_copy(update={"forwarded_allow_ips": proxies})
        port = _free_port()
        config = server_config(create_app(stack.services), "127.0.0.1", port, settings)
        config.log_level = "warning"
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(10)


def _cookies_of_login(base: str, token: str, headers: dict[str, str]) -> list[str]:
    """Log in through the dashboard's form with ``headers`` on both requests; the session
    cookie's Set-Cookie lines."""
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as http:
        page = http.get("/dashboard/login", headers=headers)
        csrf = page.cookies.get(LOGIN_CSRF_COOKIE) or _set_cookie_value(page, LOGIN_CSRF_COOKIE)
        response = http.post(
            "/dashboard/login",
            data={"token": token, "next": "", "csrf": csrf},
            # Sent by hand: a Secure cookie is not sent back over plain HTTP by httpx's jar.
            headers={**headers, "Cookie": f"{LOGIN_CSRF_COOKIE}={csrf}"},
        )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard/"
    return [
        c for c in response.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}=")
    ]


def _set_cookie_value(response: httpx.Response, name: str) -> str:
    for line in response.headers.get_list("set-cookie"):
        if line.startswith(f"{name}="):
            return line.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no {name} cookie set")


HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


def test_the_session_cookie_is_secure_behind_a_trusted_tls_proxy(serve, stack):
    base = serve("127.0.0.1")

    [cookie] = _cookies_of_login(base, stack.tokens["analyst"], HTTPS)
    [plain] = _cookies_of_login(base, stack.tokens["analyst"], {})

    assert "; Secure" in cookie and "HttpOnly" in cookie
    assert "Secure" not in plain  # the same proxy, speaking plain HTTP


@pytest.mark.parametrize("proxies", ["", "10.0.0.1"])
def test_forwarded_headers_from_an_untrusted_client_are_ignored(serve, stack, proxies):
    # By default nobody is trusted (uvicorn alone would trust 127.0.0.1); a proxy elsewhere
    # does not make a direct client trusted either.
    base = serve(proxies)

    [cookie] = _cookies_of_login(base, stack.tokens["analyst"], HTTPS)

    assert "Secure" not in cookie


def test_a_request_over_https_gets_a_secure_cookie(stack):
    http = TestClient(create_app(stack.services), base_url="https://testserver")
    http.get("/dashboard/login")
    response = http.post(
        "/dashboard/login",
        data={"token": stack.tokens["manager"], "csrf": http.cookies[LOGIN_CSRF_COOKIE]},
        follow_redirects=False,
    )

    [cookie] = [
        c for c in response.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}=")
    ]
    assert "; Secure" in cookie


def _without_comments(page: str) -> str:
    # Dash's page has a script for Internet Explorer inside a conditional comment: not run.
    return re.sub(r"<!--.*?-->", "", page, flags=re.S)


def test_answers_over_https_through_a_trusted_proxy_say_strict_transport(serve, stack):
    base = serve("127.0.0.1")

    with httpx.Client(base_url=base, timeout=30) as http:
        secure = http.get("/healthz", headers=HTTPS)
        plain = http.get("/healthz")
        refused = http.get("/api/v1/aggregates", headers=HTTPS)  # a 401 too

    assert secure.headers["strict-transport-security"] == "max-age=31536000"
    assert refused.status_code == 401
    assert refused.headers["strict-transport-security"] == "max-age=31536000"
    # Over plain HTTP a browser ignores it anyway, and it must not pin a host that has no TLS.
    assert "strict-transport-security" not in plain.headers


def test_an_untrusted_client_cannot_make_answers_say_strict_transport(serve, stack):
    base = serve("")

    with httpx.Client(base_url=base, timeout=30) as http:
        response = http.get("/healthz", headers=HTTPS)

    assert "strict-transport-security" not in response.headers
