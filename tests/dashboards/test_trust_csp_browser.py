"""The content security policy in real headless Chromium (issue 11, findings 12 and 16), against
the whole server (API, docs and dashboards in one app, served by uvicorn on 127.0.0.1): every
dashboard page draws its figures and tables with no CSP violation and no console error, the
charts' toolbars offer nothing that sends a chart to another host, logout is a button that ends
the session, and ``/docs`` draws its operations under its own policy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.dashboards.conftest import (
    TIMEOUT_MS,
    Dashboard,
)
from tests.dashboards.test_browser import (
    DRAWN,
    PAGES,
    PLOTS,
    ROW_LEVEL_PLOTS,
    TABLES,
)

pytestmark = pytest.mark.browser

# Recorded before any script of the page runs (Playwright's init scripts are not subject to
# the page's policy): every violation the browser reports, with the directive and what it
# blocked.
LISTEN = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
    window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
});
"""
CLOUD_BUTTONS = """() => [...document.querySelectorAll('.modebar-btn')]
    .map(b => b.getAttribute('data-title') || '')
    .filter(t => /share|cloud|chart studio|plotly/i.test(t))"""


class Policed:
    """A page whose CSP violations, console errors and failed callbacks are collected."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.add_init_script(LISTEN)
        # The test itself never reaches the network: anything for another host is aborted (and
        # would be reported as a violation or an error first).
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.violations: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("response", self._response)

    def _route(self, route: Any) -> None:
        if route.request.url.startswith((self.base, "data:", "blob:")):
            route.continue_()
        else:
            self.problems.append(f"asked another host: {route.request.url}")
            route.abort("blockedbyclient")

    def _console(self, message: Any) -> None:
        if message.type == "error" or "Content Security Policy" in message.text:
            self.problems.append(f"console {message.type}: {message.text}")

    def _response(self, response: Any) -> None:
        if "/_dash-update-component" in response.url and response.status >= 400:
            self.problems.append(f"callback answered {response.status}")

    def collect(self) -> None:
        """Add the violations the current document recorded (before leaving it)."""
        self.violations.extend(self.page.evaluate("window.__violations || []"))

    def goto(self, path: str) -> Any:
        if self.page.url.startswith(self.base):
            self.collect()
        return self.page.goto(f"{self.base}{path}")

    def login(self, token: str) -> None:
        response = self.goto("/dashboard/login")
        assert "script-src 'self' 'sha256-" in response.headers["content-security-policy"]
        self.page.fill("#login-token", token)
        self.page.click("#login-submit")
        self.page.wait_for_selector("#shell-user")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def policed(browser: Any, whole_server: tuple[str, Dashboard]) -> Iterator[Policed]:
    page = Policed(browser, whole_server[0])
    yield page
    page.close()


def test_every_dashboard_page_draws_under_the_policy_and_offers_no_cloud(whole_server, policed):
    _, dashboard = whole_server
    policed.login(dashboard.tokens["admin"])
    page = policed.page
    cloud: dict[str, list[str]] = {}
    for name in PAGES["admin"]:
        # A full load of each page: its document, with its policy, and every script it runs.
        response = policed.goto(f"/dashboard/{name}")
        policy = response.headers["content-security-policy"]
        assert (
            "frame-ancestors 'none'" in policy
            and "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
        )
        page.wait_for_selector(f".page-{name}")
        plots = {**PLOTS, **ROW_LEVEL_PLOTS}.get(name)
        if plots:
            page.wait_for_function(DRAWN, arg=plots)
            for plot in page.locator(".content .js-plotly-plot").all():
                plot.hover()  # shows the toolbar
            cloud[name] = page.evaluate(CLOUD_BUTTONS)
        if name in TABLES:
            page.wait_for_selector(f"{TABLES[name]} td.dash-cell")
        assert page.locator(".dash-fe-error__title").count() == 0, name
    policed.goto("/dashboard/no-such-page")
    page.wait_for_load_state("networkidle")
    policed.collect()
    assert cloud and all(buttons == [] for buttons in cloud.values()), cloud
    assert policed.violations == []
    assert policed.problems == []


def test_the_logout_button_ends_the_session_in_the_browser(whole_server, policed):
    _, dashboard = whole_server
    policed.login(dashboard.tokens["manager"])
    page = policed.page
    # The overview's callbacks finish first: one still in flight at logout rightly answers 401.
    page.wait_for_selector("#overview-returnees .headline-value")
    page.wait_for_load_state("networkidle")
    page.click("#shell-logout")
    page.wait_for_selector("#login-token")
    assert page.url == f"{policed.base}/dashboard/login"
    policed.goto("/dashboard/overview")
    page.wait_for_selector("#login-token")  # sent back to the login page
    assert page.url.startswith(f"{policed.base}/dashboard/login?next=")
    policed.collect()
    assert policed.violations == []
    assert policed.problems == []


def test_the_docs_draw_their_operations_under_their_policy(whole_server, policed):
    response = policed.goto("/docs")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    policed.page.wait_for_selector(".opblock")
    policed.collect()
    assert policed.violations == []
    assert policed.problems == []
