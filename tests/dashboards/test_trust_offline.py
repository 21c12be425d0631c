"""Nothing leaves the machine (issue 11): in real headless Chromium, against the whole server
(API, docs and dashboards in one app on 127.0.0.1), every role logs in through the login page
and opens every page it may, and ``/docs`` draws its operations, while every request the pages
make is recorded and any that is not for the server is aborted (so the test itself never
reaches the network). The pass condition is that there were none."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from reintegration.roles import Role, allowed
from tests.dashboards.conftest import (
    TIMEOUT_MS,
    Dashboard,
)

pytestmark = pytest.mark.browser

# Schemes that never touch the network: the page's own memory.
LOCAL_SCHEMES = {"data", "blob", "about"}
THIRD_PARTY_TITLE = re.compile(r"share|cloud|chart studio", re.IGNORECASE)


@dataclass
class Fenced:
    """A browser context that records every request and aborts those not for ``origin``."""

    origin: str
    context: Any = None
    page: Any = None
    requests: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def open(self, browser: Any) -> Fenced:
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.context.set_default_timeout(TIMEOUT_MS)
        # Context-wide, so requests of workers and frames are fenced too, not only the page's.
        self.context.route("**/*", self._route)
        self.context.on("request", self._request)
        self.context.on("requestfailed", lambda request: self.failed.append(request.url))
        self.page = self.context.new_page()
        return self

    def _is_server(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in LOCAL_SCHEMES:
            return True
        return f"{parts.scheme}://{parts.netloc}" == self.origin

    def _request(self, request: Any) -> None:
        self.requests.append(request.url)
        if not self._is_server(request.url):
            self.outside.append(request.url)

    def _route(self, route: Any) -> None:
        if self._is_server(route.request.url):
            route.continue_()
        else:
            route.abort("blockedbyclient")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def fenced(browser: Any, whole_server: tuple[str, Dashboard]) -> Iterator[Fenced]:
    page = Fenced(whole_server[0]).open(browser)
    yield page
    page.close()


def pages_for(role: Role) -> list[str]:
    """The gated pages of ``dash.page_registry`` this role may open, by path."""
    import dash

    import dashboards.app  # noqa: F401  (registers the pages)
    from dashboards.access import capabilities

    return sorted(
        str(p["path"]).strip("/")
        for p in dash.page_registry.values()
        if capabilities(p) and any(allowed(role, c) for c in capabilities(p))
    )


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_every_page_as_every_role_asks_only_the_server(whole_server, fenced, role):
    base, dashboard = whole_server
    page = fenced.page
    page.goto(f"{base}/dashboard/login")
    page.fill("#login-token", dashboard.tokens[role])
    page.click("#login-submit")
    page.wait_for_selector("#shell-user")
    expected = pages_for(Role(role))
    assert expected, f"no page is open to {role}"
    nav = sorted(
        e.get_attribute("id").removeprefix("nav-") for e in page.locator("#shell-nav a").all()
    )
    # A returnee's page opens from the worklist's rows, not from the navigation.
    assert nav == [name for name in expected if name != "returnee"]
    for name in expected:
        # A full load of each page (not only a navigation click): every script, style, font
        # and figure the page needs is asked for again.
        page.goto(f"{base}/dashboard/{name}")
        page.wait_for_selector(f".page-{name}")
        page.wait_for_load_state("networkidle")
        assert page.locator("#page-not-allowed").count() == 0, name
        assert page.locator(".dash-fe-error__title").count() == 0, name
        # Every chart's toolbar, shown by hovering, offers no button that sends the chart to a
        # third party (Plotly's "Share chart...", which opens Plotly Cloud in a new window
        # with the figure; pressing it in headless Chromium opened nothing to record).
        for plot in page.locator(".content .js-plotly-plot").all():
            plot.hover()
            titles = [
                b.get_attribute("data-title") or "" for b in plot.locator(".modebar-btn").all()
            ]
            assert titles, f"{name}: a chart without its toolbar"
            offered = [t for t in titles if THIRD_PARTY_TITLE.search(t)]
            assert offered == [], f"{name}: a chart offers {offered}"
        page.wait_for_load_state("networkidle")
    page.goto(f"{base}/dashboard/no-such-page")
    page.wait_for_load_state("networkidle")
    assert any("/_dash-update-component" in url for url in fenced.requests)
    assert fenced.outside == [], f"{role}'s pages asked other hosts: {sorted(set(fenced.outside))}"


def test_docs_draw_their_operations_offline(whole_server, fenced):
    base, _ = whole_server
    page = fenced.page
    page.goto(f"{base}/docs")
    drawn = True
    try:
        page.wait_for_selector(".opblock", timeout=TIMEOUT_MS)
    except Exception:  # Playwright's TimeoutError: reported by the assertions below
        drawn = False
    assert fenced.outside == [], f"/docs asked other hosts: {sorted(set(fenced.outside))}"
    assert drawn, "/docs drew no operation"
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any(p.replace("\u200b", "") == "/api/v1/batches" for p in paths), paths


def test_the_fence_sees_and_stops_a_request_to_another_host(fenced):
    """The walk above can fail: a request to another host is recorded, and aborted before it
    leaves (a page of no origin, so no Content-Security-Policy stops it first)."""
    page = fenced.page
    page.set_content('<img src="http://192.0.2.1/beacon.png">')
    page.wait_for_load_state("networkidle")
    assert fenced.outside == ["http://192.0.2.1/beacon.png"]
    assert fenced.failed == ["http://192.0.2.1/beacon.png"]
