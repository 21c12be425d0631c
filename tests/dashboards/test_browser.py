"""The dashboard in real headless Chromium (Debian's; skipped locally when absent, required in
CI): each role logs in, opens every page it may through the navigation, changes a filter, and
sees figures drawn with data; no callback fails and the console stays free of errors; a manager
cannot open an analyst page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reintegration.roles import Role
from tests.dashboards.conftest import (
    TIMEOUT_MS,
    Dashboard,
    add_risk_rows,
    build_services,
    make_users,
    registry_with_models,
)

pytestmark = pytest.mark.browser

RETURNEES = 2500
PAGES = {
    "enumerator": ["quality", "upload", "glossary"],
    "manager": ["overview", "breakdowns", "trajectories", "assistance", "glossary"],
    "analyst": [
        "overview",
        "breakdowns",
        "trajectories",
        "assistance",
        "worklist",
        "models",
        "quality",
        "upload",
        "glossary",
    ],
    "admin": [
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
    ],
}
# What shows that a page drew its data: every chart has traces, or these tables have rows.
PLOTS = {"overview": 3, "breakdowns": 2, "trajectories": 2, "assistance": 2, "models": 3}
ROW_LEVEL_PLOTS = {"quality": 2}  # missing answers and enumerators, not for an enumerator
TABLES = {
    "worklist": "#worklist-table",
    "quality": "#quality-batches-table",
    "admin": "#admin-audit-table",
}
DRAWN = """(count) => {
    const plots = [...document.querySelectorAll('.content .js-plotly-plot')];
    return plots.length === count && plots.every(p => p.querySelector('g.trace'));
}"""


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Dashboard]]:
    """A server of its own over a few thousand returnees, with risk rows and a risk champion."""
    from dashboards.app import create_dash_app
    from dashboards.standalone import serve_in_thread, wsgi_app
    from reintegration.synth import generate_panel, write_panel

    folder = tmp_path_factory.mktemp("browser")
    frame, truth = generate_panel(RETURNEES, 3, seed=23)
    write_panel(frame, folder / "panel.csv")
    services = build_services(folder / "home", folder / "panel.csv")
    add_risk_rows(services.engine)
    services.champions.risk_version = 1
    services.lifecycle = registry_with_models(services.engine)
    dashboard = Dashboard(services, create_dash_app(services), make_users(services), truth)
    server = serve_in_thread(wsgi_app(dashboard.app))
    yield f"http://127.0.0.1:{server.server_port}/dashboard", dashboard
    server.shutdown()
    services.close()


class Watched:
    """A page whose console errors and failed callbacks are collected."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
            ),
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("response", self._response)

    def _response(self, response: Any) -> None:
        if "/_dash-update-component" in response.url and response.status >= 400:
            self.problems.append(f"callback answered {response.status}")

    def login(self, base: str, token: str) -> None:
        self.page.goto(f"{base}/login")
        self.page.fill("#login-token", token)
        self.page.click("#login-submit")
        self.page.wait_for_selector("#shell-user")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    page = Watched(browser)
    yield page
    page.close()


def _open(page: Any, name: str, role: str = "admin") -> None:
    """Open a page through the navigation and wait until it shows its data."""
    page.click(f"#nav-{name}")
    page.wait_for_selector(f".page-{name}")
    plots = PLOTS.get(name) or (ROW_LEVEL_PLOTS.get(name) if role != "enumerator" else None)
    if plots:
        page.wait_for_function(DRAWN, arg=plots)
    if name in TABLES:
        page.wait_for_selector(f"{TABLES[name]} td.dash-cell")
    if name == "upload":
        page.wait_for_selector("#upload-file")
    assert page.locator("#page-not-allowed").count() == 0
    assert page.locator(".dash-fe-error__title").count() == 0


def _choose(page: Any, dropdown: str, option: str) -> None:
    page.click(f"#{dropdown}")
    page.locator("[role=option]", has_text=option).first.click()
    page.keyboard.press("Escape")


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_each_role_opens_its_pages_and_changes_a_filter(live, watched, role):
    base, dashboard = live
    watched.login(base, dashboard.tokens[role])
    page = watched.page
    nav = sorted(
        e.get_attribute("id").removeprefix("nav-") for e in page.locator("#shell-nav a").all()
    )
    assert nav == sorted(PAGES[role])
    for name in PAGES[role]:
        _open(page, name, role)
    if "overview" in PAGES[role]:
        _open(page, "overview")
        before = page.inner_text("#overview-returnees .headline-value")
        _choose(page, "overview-sex-filter", "Female")
        page.wait_for_url("**/overview?sex=female*")
        page.wait_for_function(
            "(before) => document.querySelector('#overview-returnees .headline-value').innerText !== before",
            arg=before,
        )
        page.wait_for_function(DRAWN, arg=PLOTS["overview"])
        subtitle = page.locator("#overview-means-graph .gtitle-subtitle").text_content()
        assert subtitle.startswith("Index version rss-v1-provisional")
        # The view is shareable: the address alone opens it again with the filter set.
        page.reload()
        page.wait_for_function(DRAWN, arg=PLOTS["overview"])
        assert page.inner_text("#overview-sex-filter") == "Female"
    else:
        _open(page, "quality", role)
        page.locator("#quality-batches-table input[type=radio]").first.check()
        page.wait_for_url("**/quality?batch=*")
        page.wait_for_selector("#quality-batch-detail h2")
    assert watched.problems == []


def test_a_manager_cannot_open_an_analyst_page(live, watched):
    base, dashboard = live
    watched.login(base, dashboard.tokens["manager"])
    page = watched.page
    page.goto(f"{base}/worklist")
    page.wait_for_selector("#page-not-allowed")
    assert "The Worklist page is not open to your role (manager)" in page.inner_text(
        "#page-not-allowed"
    )
    assert page.locator("#nav-worklist").count() == 0
    assert page.locator("#worklist-table").count() == 0
    assert watched.problems == []


def test_without_a_session_the_login_page_comes_first_and_refuses_a_bad_token(live, watched):
    base, _ = live
    page = watched.page
    page.goto(f"{base}/trajectories?sex=male")
    page.wait_for_selector("#login-token")
    page.fill("#login-token", "no-such-token")
    page.click("#login-submit")
    page.wait_for_selector("#login-error")
    assert "This token is not valid" in page.inner_text("#login-error")
    assert watched.problems == []


PERTURBED = "figures perturbed for privacy"


def test_a_managers_figures_are_perturbed_and_for_whole_months(live, watched):
    base, dashboard = live
    watched.login(base, dashboard.tokens["manager"])
    page = watched.page
    page.goto(f"{base}/overview?from=2025-06-02&to=2025-06-03")
    page.wait_for_function(DRAWN, arg=PLOTS["overview"])
    page.wait_for_function(
        "() => document.querySelector('#overview-figures').innerText.includes('Figures for')"
    )
    assert "Figures for 2025-06-01 to 2025-06-30." in page.inner_text("#overview-figures")
    # The period picker shows months.
    dates = page.locator("#overview-period-filter-wrapper input.dash-datepicker-input")
    shown = [i.input_value() for i in dates.all()]
    assert shown == ["2025-06", "2025-06"]
    for graph in ("means", "histogram", "levels"):
        subtitle = page.locator(f"#overview-{graph}-graph .gtitle-subtitle").text_content()
        assert PERTURBED in subtitle, graph
    assert page.locator("#overview-publishable input").is_disabled()
    assert page.locator("#overview-publishable input").is_checked()
    assert watched.problems == []


def test_an_analyst_turns_on_publishable_figures(live, watched):
    base, dashboard = live
    watched.login(base, dashboard.tokens["analyst"])
    page = watched.page
    _open(page, "breakdowns")
    subtitle = "#breakdowns-groups-graph .gtitle-subtitle"
    assert PERTURBED not in page.locator(subtitle).text_content()
    assert page.inner_text("#breakdowns-figures").startswith("Exact figures")
    page.locator("#breakdowns-publishable input").check()
    page.wait_for_url("**/breakdowns?*publishable=1*")
    page.wait_for_function(
        "(s) => document.querySelector(s).textContent.includes('perturbed for privacy')",
        arg=subtitle,
    )
    assert "Publishable figures" in page.inner_text("#breakdowns-figures")
    assert watched.problems == []
