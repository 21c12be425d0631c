"""The models page's actions in real headless Chromium, over the real registry (the model tests'
trained store): an analyst previews the promotion of an index version (overall and by group),
confirms it and sees the rescoring job end with the new champion; compares two risk versions;
trains a risk version and follows its progress to the end. A manager cannot open the page."""
# ruff: noqa: F811 (the model tests' fixtures are imported, then asked for by name)

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reintegration.policy import CLI
from reintegration.roles import Role
from reintegration.users import add_user
from tests.dashboards.test_browser import Watched
from tests.models.conftest import (  # noqa: F401 (fixtures)
    MLFLOW_DEPRECATION,
    mlflow_template,
    panel,
    panel_store,
    registry_home,
    trained,
)

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings(MLFLOW_DEPRECATION)]

JOB_MS = 600_000  # a rescoring or a training in a worker process of its own (on a busy CI host)


@pytest.fixture
def served(registry_home) -> Iterator[tuple[str, dict[str, str], Any]]:
    """The dashboards over the trained registry's copy, in a thread: base URL, tokens."""
    from api.services import build_services
    from dashboards.app import create_dash_app
    from dashboards.standalone import serve_in_thread, wsgi_app
    from reintegration.settings import get_settings

    services = build_services(get_settings())
    tokens = {
        role: add_user(services.engine, role, Role(role), caller=CLI)
        for role in ("analyst", "manager", "enumerator")
    }
    server = serve_in_thread(wsgi_app(create_dash_app(services)))
    yield f"http://127.0.0.1:{server.server_port}/dashboard", tokens, services
    server.shutdown()
    services.close()


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    page = Watched(browser)
    yield page
    page.close()


def test_an_analyst_previews_confirms_compares_and_trains(served, watched, trained):
    base, tokens, _ = served
    version = trained.index["version"]
    watched.login(base, tokens["analyst"])
    page = watched.page
    page.goto(f"{base}/models?model=index&version={version}")
    page.wait_for_selector("#models-promote-preview-button")

    # Preview: nothing changes yet; figures overall and by group.
    page.click("#models-promote-preview-button")
    page.wait_for_selector("#models-promote-sentence")
    sentence = page.inner_text("#models-promote-sentence")
    assert f"Promoting rss-v{version}-derived in place of rss-v1-provisional" in sentence
    assert "share sustainable from" in sentence
    page.wait_for_selector("#models-promote-table td.dash-cell")
    table = page.inner_text("#models-promote-table")
    for group in ("Overall", "Sex: ", "Child or adult: ", "Return type: ", "Country: "):
        assert group in table, group
    assert page.locator("#models-promote-graph .js-plotly-plot g.trace").count() > 0
    assert "No index promotion yet." in page.inner_text("#models-promotions")

    # Confirm without a reason: refused, the preview stays; with one: the job starts.
    page.click("#models-promote-confirm")
    page.wait_for_selector("#models-promote-error")
    assert "give --reason saying why" in page.inner_text("#models-promote-error")
    page.fill("#models-promote-reason", "weights derived from our own field data")
    page.click("#models-promote-confirm")
    page.wait_for_selector("#models-promote-done")
    assert f"Promotion of rss-index version {version} started" in page.inner_text(
        "#models-promote-done"
    )
    assert not page.is_visible("#models-promote-panel")
    page.wait_for_function(
        "() => document.querySelector('#models-promotions').innerText.includes('done')",
        timeout=JOB_MS,
    )
    assert f"rss-index v{version}" in page.inner_text("#models-promotions")
    # Applied: the versions table names the new champion without a reload.
    page.wait_for_function(
        """(label) => document.querySelector('#models-versions-table').innerText
            .split('\\n').some(line => line.includes(label) && line.includes('champion'))""",
        arg=f"rss-v{version}-derived",
        timeout=30_000,
    )

    # Compare two risk versions side by side.
    page.goto(f"{base}/models?model=risk")
    page.wait_for_selector("#models-compare-button")
    page.click("#models-compare-button")
    page.wait_for_selector("#models-compare-metrics td.dash-cell")
    assert "ROC AUC" in page.inner_text("#models-compare-metrics")

    assert watched.problems == []


def test_an_analyst_trains_a_version_and_follows_its_progress(served, watched):
    base, tokens, _ = served
    watched.login(base, tokens["analyst"])
    page = watched.page
    page.goto(f"{base}/models?model=index")  # an index version trains in seconds
    page.wait_for_selector("#models-train-button")
    page.click("#models-train-button")
    page.wait_for_selector("#models-train-progress")
    page.wait_for_function(
        "() => /Done|Failed/.test(document.querySelector('#models-train-status').innerText)",
        timeout=JOB_MS,
    )
    status = page.inner_text("#models-train-status")
    assert "is registered as challenger" in status, status
    assert watched.problems == []


@pytest.mark.parametrize("role", ["manager", "enumerator"])
def test_a_manager_or_enumerator_cannot_open_the_models_page(served, watched, role):
    base, tokens, _ = served
    watched.login(base, tokens[role])
    page = watched.page
    page.goto(f"{base}/models")
    page.wait_for_selector("#page-not-allowed")
    assert page.locator("#models-promote-preview-button").count() == 0
    assert page.locator("#models-train-button").count() == 0
