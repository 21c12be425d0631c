"""The models page's index promotions (issue 14): a running rescoring job with its interviews
rescored so far, a failed one with its reason, and nothing for a manager."""

from __future__ import annotations

import pytest

from models import jobs
from reintegration.store import jobs as job_store
from tests.dashboards.conftest import Client, registry_with_models, response_text
from tests.dashboards.test_aggregate_pages import outputs

POLL = "models-promotions-poll.n_intervals"


@pytest.fixture
def with_jobs(own_dashboard):
    engine = own_dashboard.services.engine
    lifecycle = registry_with_models(engine)
    lifecycle.list_jobs = lambda *, caller: jobs.list_jobs(engine, caller=caller)  # type: ignore[attr-defined]
    own_dashboard.services.lifecycle = lifecycle
    return own_dashboard


def promotions(client) -> str:
    response = client.callback("models-promotions.children", {POLL: 1})
    outputs(response)  # answered (200)
    return response_text(response)


def test_the_page_shows_a_running_promotion_then_its_failure(with_jobs):
    engine = with_jobs.services.engine
    client = Client(with_jobs)
    client.login("analyst")
    assert "No index promotion yet." in promotions(client)
    params = {"name": "rss-index", "version": 2, "reason": "field data", "previous": 1}
    job_id = job_store.create_job(engine, jobs.RESCORE, actor="officer", params=params)
    job_store.start_job(engine, job_id)
    try:
        jobs.report_rows(engine, job_id, 50_000, 200_000, "interviews rescored")
        shown = promotions(client)
        assert "rss-index v2 · running" in shown
        assert "figures keep using the previous champion until every interview is rescored" in (
            shown
        )
        assert "50,000 of 200,000 interviews rescored" in shown
    finally:
        job_store.fail_job(engine, job_id, "promoting rss-index version 2 failed: disk full")
        jobs.forget_rows(engine, job_id)
    shown = promotions(client)
    assert "rss-index v2 · failed" in shown and "the previous champion stays in use" in shown
    assert "promoting rss-index version 2 failed: disk full" in shown


def test_a_manager_gets_no_promotions(with_jobs):
    client = Client(with_jobs)
    client.login("manager")
    response = client.callback("models-promotions.children", {POLL: 1})
    assert response.status_code == 204
