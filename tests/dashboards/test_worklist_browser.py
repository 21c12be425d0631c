"""The worklist in real headless Chromium: ranked rows whose reasons all belong to their weakest
dimension, pages of 25 with the count the export holds, a row's link to the returnee's page,
where an analyst records a contact that the worklist then shows."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest

from dashboards.labels import dimension_labels, item_labels
from reintegration.questionnaire import load_questionnaire
from tests.dashboards.conftest import (
    TIMEOUT_MS,
    Dashboard,
    add_risk_rows,
    build_services,
    make_users,
)

pytestmark = pytest.mark.browser

ROWS = "#worklist-table tr:has(td.dash-cell)"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, panel_file) -> Iterator[tuple[str, Dashboard]]:
    """A server of its own over the session's panel, with risk rows and a risk champion."""
    from dashboards.app import create_dash_app
    from dashboards.standalone import serve_in_thread, wsgi_app

    services = build_services(tmp_path_factory.mktemp("worklist-browser") / "home", panel_file[0])
    add_risk_rows(services.engine)
    services.champions.risk_version = 1
    dashboard = Dashboard(services, create_dash_app(services), make_users(services), {})
    server = serve_in_thread(wsgi_app(dashboard.app))
    yield f"http://127.0.0.1:{server.server_port}/dashboard", dashboard
    server.shutdown()
    services.close()


@pytest.fixture
def page(browser: Any, live: tuple[str, Dashboard]) -> Iterator[Any]:
    """An analyst's page, logged in; console errors and failed callbacks fail the test."""
    base, dashboard = live
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    opened.on(
        "response",
        lambda r: (
            problems.append(f"callback {r.status}")
            if "/_dash-update-component" in r.url and r.status >= 400
            else None
        ),
    )
    opened.goto(f"{base}/login")
    opened.fill("#login-token", dashboard.tokens["analyst"])
    opened.click("#login-submit")
    opened.wait_for_selector("#shell-user")
    yield opened
    context.close()
    assert problems == []


def table_rows(page: Any) -> list[dict[str, str]]:
    """The worklist table's rows as the reader sees them, by column id."""
    return page.eval_on_selector_all(
        ROWS,
        """rows => rows.map(row => Object.fromEntries(
            [...row.querySelectorAll('td.dash-cell')].map(
                td => [td.getAttribute('data-dash-column'), td.innerText.trim()])))""",
    )


def matching(page: Any) -> int:
    text = page.inner_text("#worklist-summary")
    found = re.match(r"([\d,]+) returnees match", text)
    assert found, text
    return int(found.group(1).replace(",", ""))


def percent(text: str) -> float:
    return float(text.rstrip("%").replace(",", ""))


def test_the_worklist_is_ranked_explained_paged_exported_and_linked(page, live):
    base, dashboard = live
    page.goto(f"{base}/worklist")
    page.wait_for_selector(f"{ROWS} >> nth=0")
    rows = table_rows(page)
    total = matching(page)

    # ranked: 1..25, risk never rising
    assert [r["rank"] for r in rows] == [str(k) for k in range(1, 26)]
    risks = [percent(r["risk"]) for r in rows]
    assert risks == sorted(risks, reverse=True)
    assert "Risk bands: low below 30.0%" in page.inner_text("#worklist-bands")

    # every reason shown belongs to the weakest dimension shown
    questionnaire = load_questionnaire()
    dimension_of = {label: questionnaire.item(i).dimension for i, label in item_labels().items()}
    name_of = dimension_labels()
    for row in rows:
        for reason in filter(None, row["reasons"].split("; ")):
            assert name_of[dimension_of[reason]] == row["weakest_dimension"], row

    # the next page continues the ranking
    page.click("#worklist-table button.next-page")
    page.wait_for_function(
        "() => document.querySelector(\"#worklist-table td[data-dash-column='rank']\")"
        ".innerText.trim() === '26'"
    )

    # the export holds as many rows as the page says match
    with page.expect_download() as download:
        page.click("#worklist-csv-button")
    exported = list(csv.DictReader(io.StringIO(download.value.path().read_text("utf-8"))))
    assert len(exported) == total
    assert [e["rank"] for e in exported[:3]] == ["1", "2", "3"]

    # a row's link opens the returnee's page, where a contact is recorded
    page.click("#worklist-table button.first-page")
    page.wait_for_function(
        "() => document.querySelector(\"#worklist-table td[data-dash-column='rank']\")"
        ".innerText.trim() === '1'"
    )
    first_key = exported[0]["key"]
    page.click(f"#worklist-table a[href$='key={first_key}']")
    page.wait_for_selector("#returnee-trajectory .js-plotly-plot g.trace")
    assert first_key in page.inner_text("#returnee-who")
    assert "rank 1 on the worklist" in page.inner_text("#returnee-risk-sentence")
    page.click("#returnee-status")
    page.locator("[role=option]", has_text="Contacted").first.click()
    page.click("#returnee-status-save")
    page.wait_for_selector("#returnee-status-message:has-text('Status saved: Contacted.')")
    assert "analyst" in page.inner_text("#returnee-status-history")

    page.goto(f"{base}/worklist")
    page.wait_for_selector(f"{ROWS} >> nth=0")
    assert table_rows(page)[0]["status"].startswith("Contacted")

    # the second row's status, chosen in the table
    cell = page.locator(f"{ROWS} >> nth=1").locator("td[data-dash-column='status']")
    cell.click()
    cell.locator(".Select-control, .Select, [role=combobox]").first.click()
    page.locator(".Select-option, [role=option]", has_text="Follow-up planned").first.click()
    page.wait_for_selector("#worklist-status-message:has-text('Follow-up planned')")
    second = exported[1]["key"]
    assert page.inner_text("#worklist-status-message") == (
        f"Status saved: {second[:12]}…: Follow-up planned."
    )
    page.reload()
    page.wait_for_selector(f"{ROWS} >> nth=0")
    assert table_rows(page)[1]["status"].startswith("Follow-up planned")
