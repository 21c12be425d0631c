"""``POST /models/{name}/versions/{v}/promote`` with ``dry_run``: what the promotion would
change, through the real registry, changing nothing; the promotion then applies what it showed."""
# ruff: noqa: F811 (the model tests' fixtures are imported, then asked for by name)

from __future__ import annotations

import time

import pytest

from tests.api.test_promotion_job import OLD, PROMOTE, WAIT_S, stack  # noqa: F401 (fixture)
from tests.models.conftest import (  # noqa: F401 (fixtures)
    MLFLOW_DEPRECATION,
    count,
    mlflow_template,
    panel,
    panel_store,
    registry_home,
    trained,
)

pytestmark = pytest.mark.filterwarnings(MLFLOW_DEPRECATION)

RISK = "/api/v1/models/risk/versions/{version}/promote"


def unchanged(stack) -> tuple:
    """The data version, the champions, the audit, the jobs and the label answers use."""
    from reintegration.store.data_version import read_data_version

    engine = stack.services.engine
    with engine.connect() as conn:
        version = read_data_version(conn)
    models = {m["name"]: m["champion"] for m in stack.get("/api/v1/models").json()}
    return (
        version,
        models,
        count(engine, "SELECT count(*) FROM audit"),
        count(engine, "SELECT count(*) FROM job"),
        stack.champion_label(),
    )


def ended(stack, url: str) -> dict:
    """Poll a job until it is done or failed (the promotion job's own tests check what
    answers say while it runs)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job = stack.get(url).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    pytest.fail(f"job {url} did not end in {WAIT_S} s")


def test_a_dry_run_changes_nothing_and_the_promotion_applies_what_it_previewed(stack, trained):
    version = trained.index["version"]
    before = unchanged(stack)
    response = stack.post(PROMOTE.format(version=version) + "?dry_run=true", json={})
    assert response.status_code == 200, response.text
    seen = response.json()
    assert unchanged(stack) == before
    assert seen["dry_run"] is True and seen["kind"] == "index" and seen["previous"] == 1
    overall = seen["preview"]["rows"][0]
    assert overall["group"] == "overall"
    assert {"composite_before", "composite_after", "sustainable_change"} <= set(overall)
    promoted = stack.post(PROMOTE.format(version=version), json={"reason": "field data"})
    assert promoted.status_code == 202, promoted.text
    job = ended(stack, promoted.headers["Location"])
    assert job["status"] == "done", job["message"]
    assert job["result"]["preview"] == seen["preview"]
    assert stack.champion_label() == f"rss-v{version}-derived"


def test_a_dry_run_in_the_body_needs_no_reason(stack, trained):
    response = stack.post(PROMOTE.format(version=trained.index["version"]), json={"dry_run": True})
    assert response.status_code == 200, response.text
    assert stack.champion_label() == OLD


def test_a_risk_dry_run_says_the_gate_would_refuse(stack, trained):
    before = unchanged(stack)
    response = stack.post(RISK.format(version=trained.degraded_version), json={"dry_run": True})
    assert response.status_code == 200, response.text
    seen = response.json()
    assert unchanged(stack) == before
    assert seen["refused"] is True
    assert seen["refusal"].startswith(
        f"reintegration-risk version {trained.degraded_version} is refused: "
    )
    assert seen["preview"]["bands"][0]["group"] == "overall"


def test_a_manager_may_not_preview_a_promotion(stack, trained):
    response = stack.post(
        PROMOTE.format(version=trained.index["version"]) + "?dry_run=true", "manager", json={}
    )
    assert response.status_code == 403


def test_the_champion_has_nothing_to_preview(stack):
    response = stack.post(PROMOTE.format(version=1) + "?dry_run=true", json={})
    assert response.status_code == 409
    assert response.json()["detail"] == "rss-index version 1 is already the champion."
