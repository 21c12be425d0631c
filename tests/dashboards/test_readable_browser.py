"""Readable figures and field-ready exports in real headless Chromium (issue 15): on a 375 px
phone no page scrolls sideways, whatever the role, and "Log out" stays on screen; bars and
points print their values without hovering; a filtered chart names its filters (so its PNG
does), and its CSV and Excel downloads name them too."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pandas as pd
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
from tests.dashboards.test_browser import DRAWN, PLOTS, ROW_LEVEL_PLOTS, TABLES

pytestmark = pytest.mark.browser

RETURNEES = 1200
PHONE = {"width": 375, "height": 740}
SCROLL_WIDTH = "() => document.documentElement.scrollWidth"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Dashboard]]:
    """A server of its own, with the glossary among its pages."""
    import dashboards.app as app_module
    from dashboards.standalone import serve_in_thread, wsgi_app
    from reintegration.synth import generate_panel, write_panel

    folder = tmp_path_factory.mktemp("readable")
    frame, truth = generate_panel(RETURNEES, 3, seed=29)
    write_panel(frame, folder / "panel.csv")
    services = build_services(folder / "home", folder / "panel.csv")
    add_risk_rows(services.engine)
    services.champions.risk_version = 1
    services.lifecycle = registry_with_models(services.engine)
    app = app_module.create_dash_app(services)
    dashboard = Dashboard(services, app, make_users(services), truth)
    server = serve_in_thread(wsgi_app(dashboard.app))
    yield f"http://127.0.0.1:{server.server_port}/dashboard", dashboard
    server.shutdown()
    services.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


@pytest.fixture
def desk(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def _login(page: Any, base: str, token: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#login-token", token)
    page.click("#login-submit")
    page.wait_for_selector("#shell-user")


def _drawn(page: Any, name: str, role: str) -> None:
    page.wait_for_selector(f".page-{name}")
    plots = PLOTS.get(name) or (ROW_LEVEL_PLOTS.get(name) if role != "enumerator" else None)
    if plots:
        page.wait_for_function(DRAWN, arg=plots)
    if name in TABLES:
        page.wait_for_selector(f"{TABLES[name]} td.dash-cell")
    if name == "upload":
        page.wait_for_selector("#upload-file")


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_no_page_scrolls_sideways_on_a_phone(live, phone, role):
    base, dashboard = live
    phone.goto(f"{base}/login")
    phone.wait_for_selector("#login-token")
    assert phone.evaluate(SCROLL_WIDTH) <= PHONE["width"], "login"
    _login(phone, base, dashboard.tokens[role])
    names = [
        e.get_attribute("id").removeprefix("nav-") for e in phone.locator("#shell-nav a").all()
    ]
    assert "glossary" in names
    too_wide = {}
    for name in names:
        phone.goto(f"{base}/{name}")
        _drawn(phone, name, role)
        if name == "glossary":
            terms = phone.locator("#glossary-terms dt").all_text_contents()
            assert {"Composite", "Sustainable", "Weakest dimension", "95% interval"} <= set(terms)
        width = phone.evaluate(SCROLL_WIDTH)
        if width > PHONE["width"]:
            too_wide[name] = width
        logout = phone.locator("#shell-logout").bounding_box()
        assert logout is not None and logout["x"] + logout["width"] <= PHONE["width"], name
        # The charts follow the screen's width.
        for box in [g.bounding_box() for g in phone.locator(".content .js-plotly-plot").all()]:
            assert box is not None and box["x"] + box["width"] <= PHONE["width"], name
    assert too_wide == {}


def test_bars_and_points_print_their_values_without_hovering(live, desk):
    base, dashboard = live
    _login(desk, base, dashboard.tokens["analyst"])
    desk.goto(f"{base}/breakdowns")
    desk.wait_for_function(DRAWN, arg=PLOTS["breakdowns"])
    values = desk.locator("#breakdowns-groups-graph g.trace.bars text.bartext").all_text_contents()
    assert values and all(v[0].isdigit() and "." in v for v in values)
    groups = desk.locator("#breakdowns-groups-graph g.ytick text").all_text_contents()
    assert groups and all("(n = " in g or "fewer than" in g for g in groups)
    assert desk.locator("#breakdowns-groups-note").inner_text()

    desk.goto(f"{base}/overview")
    desk.wait_for_function(DRAWN, arg=PLOTS["overview"])
    shares = desk.locator("#overview-levels-graph text.bartext").all_text_contents()
    assert shares and all(s.endswith("%") for s in shares)

    # One line by default: each point prints its value, and its n sits under its round.
    desk.goto(f"{base}/trajectories")
    desk.wait_for_function(DRAWN, arg=PLOTS["trajectories"])
    lines = desk.locator("#trajectories-lines-graph g.trace.scatter")
    assert lines.count() == 1
    points = desk.locator("#trajectories-lines-graph g.textpoint").all_text_contents()
    assert points and all(p[0].isdigit() and "." in p for p in points)
    rounds = desk.locator("#trajectories-lines-graph g.xtick text").all_text_contents()
    assert rounds and all("n = " in r for r in rounds)


def _download(page: Any, button: str) -> bytes:
    with page.expect_download() as event:
        page.click(button)
    path = event.value.path()
    with open(path, "rb") as handle:
        return handle.read()


def test_a_filtered_export_names_its_filters(live, desk):
    base, dashboard = live
    _login(desk, base, dashboard.tokens["scoped-manager"])
    desk.goto(f"{base}/breakdowns?sex=female&by=return_type")
    desk.wait_for_function(DRAWN, arg=PLOTS["breakdowns"])

    # On the chart (and so in the PNG its toolbar saves): the filters, the day, the figures.
    subtitle = desk.locator("#breakdowns-groups-graph .gtitle-subtitle").text_content()
    assert "country SEN" in subtitle and "sex female" in subtitle
    assert "extracted" in subtitle and "figures perturbed for privacy" in subtitle

    table = pd.read_csv(io.BytesIO(_download(desk, "#breakdowns-groups-csv-button")))
    assert set(table["filters"]) == {"country=SEN; sex=female; by=return_type"}
    assert set(table["figures"]) == {"figures perturbed for privacy"}
    assert set(table["index_version"]) == {"rss-v1-provisional"}
    assert table["extracted_on"].notna().all()

    readme = pd.read_excel(
        io.BytesIO(_download(desk, "#breakdowns-groups-xlsx-button")),
        sheet_name="read me",
        engine="openpyxl",
        header=None,
    )
    said = dict(zip(readme[0], readme[1], strict=False))
    assert said["Filters"] == "country=SEN; sex=female; by=return_type"
    assert said["Figures"].startswith("Perturbed for privacy")
