"""Field use in real headless Chromium: a token typed key by key (slowly or as fast as a
keyboard can) logs in unscrambled; the admin's new token has a copy button; the date picker
opens on the data's months and its presets set the range."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from tests.dashboards.conftest import TIMEOUT_MS, Dashboard, build_services, make_users

pytestmark = pytest.mark.browser

RETURNEES = 300


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Dashboard]]:
    from dashboards.app import create_dash_app
    from dashboards.standalone import serve_in_thread, wsgi_app
    from reintegration.synth import generate_panel, write_panel

    folder = tmp_path_factory.mktemp("field-browser")
    frame, truth = generate_panel(RETURNEES, 2, seed=5)
    write_panel(frame, folder / "panel.csv")
    services = build_services(folder / "home", folder / "panel.csv")
    dashboard = Dashboard(services, create_dash_app(services), make_users(services), truth)
    server = serve_in_thread(wsgi_app(dashboard.app))
    yield f"http://127.0.0.1:{server.server_port}/dashboard", dashboard
    server.shutdown()
    services.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("delay", [0, 15])
def test_a_token_typed_key_by_key_logs_in(live, page, delay):
    base, dashboard = live
    token = dashboard.tokens["admin"]
    page.goto(f"{base}/login")
    page.wait_for_selector("#login-token")
    page.click("#login-token")
    page.keyboard.type(token, delay=delay)
    assert page.input_value("#login-token") == token
    page.click("#login-submit")
    page.wait_for_selector("#shell-user")
    assert page.locator("#login-error").count() == 0


def test_a_token_typed_with_page_type_logs_in(live, page):
    base, dashboard = live
    page.goto(f"{base}/login")
    page.type("#login-token", dashboard.tokens["manager"], delay=5)
    page.press("#login-token", "Enter")
    page.wait_for_selector("#shell-user")


BUSY = """() => { window.__busy = setInterval(() => {
    const start = performance.now(); while (performance.now() - start < 40) {} }, 45); }"""


def test_a_token_typed_fast_on_a_busy_page_stays_as_typed(live, page):
    # A slow phone: the page's main thread is busy, so keys queue up behind its work.
    base, dashboard = live
    token = dashboard.tokens["analyst"]
    page.goto(f"{base}/login")
    page.wait_for_selector("#login-token")
    page.click("#login-token")
    page.evaluate(BUSY)
    page.keyboard.type(token, delay=0)
    page.evaluate("() => clearInterval(window.__busy)")
    assert page.input_value("#login-token") == token


def _log_in(page, base, token):
    page.goto(f"{base}/login")
    page.fill("#login-token", token)
    page.click("#login-submit")
    page.wait_for_selector("#shell-user")


def _latest_interview(dashboard) -> date:
    frame = dashboard.services.analytics.frame("rss-v1-provisional")
    return date(1970, 1, 1) + timedelta(days=int(frame["interview_day"].max()))


def test_the_date_picker_opens_on_the_datas_latest_month_with_whole_years(live, page):
    base, dashboard = live
    _log_in(page, base, dashboard.tokens["analyst"])
    page.goto(f"{base}/overview")
    page.wait_for_selector("#overview-period-filter")
    page.click("#overview-period-filter")
    year = page.locator(".dash-datepicker-controls .dash-input-element").first
    year.wait_for()
    latest = _latest_interview(dashboard)
    assert year.input_value() == str(latest.year)
    # The whole year is visible, not "202".
    assert year.evaluate("e => e.scrollWidth <= e.clientWidth")
    shown = page.inner_text(".dash-datepicker-calendar-wrapper")
    assert f"{calendar.month_name[latest.month]} {latest.year}" in shown


@pytest.mark.parametrize("preset", ["quarter", "year", "calendar"])
def test_a_period_preset_sets_both_dates_and_the_address(live, page, preset):
    from dashboards.filters import preset_period

    base, dashboard = live
    _log_in(page, base, dashboard.tokens["analyst"])
    page.goto(f"{base}/overview")
    page.wait_for_selector(f"#overview-period-{preset}")
    page.click(f"#overview-period-{preset}")
    start, end = preset_period(preset, _latest_interview(dashboard))
    page.wait_for_url(f"**from={start.isoformat()}&to={end.isoformat()}*")
    assert page.input_value("#overview-period-filter") == start.isoformat()
    assert page.input_value("#overview-period-filter-end-date") == end.isoformat()


def test_an_admin_reissues_a_token_and_copies_it_with_the_button(live, browser):
    from reintegration.policy import CLI
    from reintegration.users import add_user, authenticate

    base, dashboard = live
    engine = dashboard.services.engine
    old = add_user(engine, "field-copy", "enumerator", ["SEN"], caller=CLI)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        _log_in(page, base, dashboard.tokens["admin"])
        page.goto(f"{base}/admin")
        page.click("#admin-reissue-input")
        page.locator("[role=option]", has_text="field-copy").first.click()
        page.keyboard.press("Escape")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#admin-reissue-confirm button")
        page.wait_for_selector("#admin-new-token")
        token = page.inner_text("#admin-new-token").strip()
        page.click("#admin-copy-token")
        copied = ""
        for _attempt in range(20):  # the button copies asynchronously
            copied = page.evaluate("() => navigator.clipboard.readText()")
            if copied == token:
                break
            page.wait_for_timeout(100)
        assert copied == token
        assert authenticate(engine, old) is None
        assert authenticate(engine, token).name == "field-copy"
    finally:
        context.close()
