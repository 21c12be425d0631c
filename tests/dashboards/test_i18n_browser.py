"""Languages in real headless Chromium: every page in French and in Arabic as each role, Arabic
laid out right to left; the switch is remembered across reloads, logouts and browsers; a French
browser gets French before anyone chooses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reintegration.policy import CLI
from reintegration.roles import Role
from reintegration.users import add_user
from tests.dashboards.conftest import (
    TIMEOUT_MS,
    Dashboard,
    add_risk_rows,
    build_services,
    make_users,
    registry_with_models,
)
from tests.dashboards.test_browser import DRAWN, PAGES, PLOTS, TABLES, Watched, _open

pytestmark = pytest.mark.browser

RETURNEES = 800
LANGUAGE = "() => [document.documentElement.lang, document.documentElement.dir]"
# Every column of a table is drawn (Dash's DataTable in a right-to-left page once kept two).
COLUMNS_DRAWN = """(table) => {
    const heads = [...document.querySelectorAll(table + ' th.dash-header')];
    return heads.length > 0 && heads.every(th => th.getBoundingClientRect().width > 10);
}"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Dashboard]]:
    """A server of its own (users' choices are written to its store)."""
    from dashboards.app import create_dash_app
    from dashboards.standalone import serve_in_thread, wsgi_app
    from reintegration.synth import generate_panel, write_panel

    folder = tmp_path_factory.mktemp("browser-i18n")
    frame, truth = generate_panel(RETURNEES, 3, seed=29)
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


class Browser(Watched):
    """A watched page in a browser context speaking ``locale``."""

    def __init__(self, browser: Any, locale: str = "en-GB") -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 800}, locale=locale)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.problems = []
        self.page.on(
            "console",
            lambda m: (
                self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
            ),
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("response", self._response)


@pytest.fixture
def fresh(browser: Any) -> Iterator[Any]:
    """Fresh browsers (no cookies) in the locales asked for, closed after the test."""
    opened: list[Browser] = []

    def open_one(locale: str = "en-GB") -> Browser:
        opened.append(Browser(browser, locale))
        return opened[-1]

    yield open_one
    for one in opened:
        one.close()


def _new_user(dashboard: Dashboard, name: str, role: Role) -> str:
    """A user of their own, with no stored language (the other tests store choices)."""
    return add_user(dashboard.services.engine, name, role, caller=CLI)


def _switch(page: Any, language: str) -> None:
    page.click(f"#shell-language-{language}")
    page.wait_for_function(f"() => document.documentElement.lang === '{language}'")
    page.wait_for_selector("#shell-user")


def _drawn(page: Any) -> None:
    # Leaving a page while its callbacks run makes them answer 401 (after a logout) or abort.
    page.wait_for_function(DRAWN, arg=PLOTS["overview"])
    page.wait_for_load_state("networkidle")


def _right_to_left(page: Any) -> bool:
    """The frame is mirrored: the brand sits right of the navigation, text runs right to left."""
    return bool(
        page.evaluate(
            """() => {
                const brand = document.querySelector('.brand').getBoundingClientRect();
                const nav = document.querySelector('#shell-nav').getBoundingClientRect();
                return getComputedStyle(document.body).direction === 'rtl'
                    && brand.left > nav.left;
            }"""
        )
    )


@pytest.mark.parametrize("language", ["fr", "ar"])
@pytest.mark.parametrize("role", [r.value for r in Role])
def test_every_page_in_the_language_as_each_role(live, fresh, role, language):
    base, dashboard = live
    watched = fresh()
    watched.login(base, dashboard.tokens[role])
    page = watched.page
    if "overview" in PAGES[role]:
        _drawn(page)
    _switch(page, language)

    for name in PAGES[role]:
        _open(page, name, role)
        assert page.evaluate(LANGUAGE) == [language, "rtl" if language == "ar" else "ltr"]
        assert _right_to_left(page) is (language == "ar"), name
        if name in TABLES:
            assert page.evaluate(COLUMNS_DRAWN, TABLES[name]), name
    assert watched.problems == []


def test_arabic_is_remembered_across_reloads_logouts_and_browsers(live, fresh):
    base, dashboard = live
    token = _new_user(dashboard, "remembering-analyst", Role.ANALYST)
    first = fresh()
    first.login(base, token)
    page = first.page

    _drawn(page)
    _switch(page, "ar")
    _drawn(page)
    assert page.evaluate(LANGUAGE) == ["ar", "rtl"]
    assert page.inner_text("#nav-overview") == "نظرة عامة"
    assert _right_to_left(page)

    page.reload()
    page.wait_for_selector("#shell-user")
    _drawn(page)
    assert page.evaluate(LANGUAGE) == ["ar", "rtl"]

    page.click("#shell-logout")
    page.wait_for_selector("#login-token")
    assert page.evaluate(LANGUAGE) == ["ar", "rtl"]
    assert page.inner_text("#login-submit") == "تسجيل الدخول"
    first.login(base, token)
    _drawn(page)
    assert page.evaluate(LANGUAGE) == ["ar", "rtl"]

    other = fresh("en-US")
    other.login(base, token)
    _drawn(other.page)
    assert other.page.evaluate(LANGUAGE) == ["ar", "rtl"]
    assert (first.problems, other.problems) == ([], [])


def test_a_french_browser_gets_french_before_anyone_chooses(live, fresh):
    base, dashboard = live
    watched = fresh("fr-FR")
    page = watched.page

    page.goto(f"{base}/login")
    page.wait_for_selector("#login-token")

    assert page.evaluate(LANGUAGE) == ["fr", "ltr"]
    assert page.inner_text("#login-submit") == "Connexion"
    assert page.title() == "Suivi de la réintégration" or "Réintégration" in page.title()
    watched.login(base, _new_user(dashboard, "french-manager", Role.MANAGER))
    _drawn(page)
    assert page.inner_text("#nav-overview") == "Vue d’ensemble"
    assert watched.problems == []


def test_the_switch_works_on_the_login_page(live, fresh):
    base, _ = live
    watched = fresh("en-GB")
    page = watched.page
    page.goto(f"{base}/login")
    page.wait_for_selector("#login-token")

    page.click("#shell-language-ar")
    page.wait_for_function("() => document.documentElement.dir === 'rtl'")

    assert page.inner_text("#login-submit") == "تسجيل الدخول"
    assert watched.problems == []
