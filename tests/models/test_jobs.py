"""Training jobs: a process of their own, state in the database, a killed worker found out."""

from __future__ import annotations

import os
import signal
import time

import pytest

from models import registry
from models.jobs import get_job, list_jobs, submit_job
from reintegration.errors import JobError
from reintegration.policy import CLI, cli_caller
from reintegration.settings import get_settings
from reintegration.store.jobs import INTERRUPTED

WAIT_S = 240


def wait_for(engine, job_id, statuses=("done", "failed")):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job = get_job(engine, job_id, caller=CLI)
        if job["status"] in statuses:
            return job
        time.sleep(0.3)
    pytest.fail(f"job {job_id} still {job['status']} after {WAIT_S} s: {job['message']}")


def test_training_jobs_run_in_processes_of_their_own(registry_home):
    """One job registers a version; another, started alongside, fails and says why."""
    settings, engine = registry_home
    before = {v["version"] for v in registry.list_versions("index", settings, caller=CLI)}
    good = submit_job(
        engine,
        "train-index",
        caller=cli_caller("officer"),
        params={"date_from": "2024-01-01", "dimension_weights": ""},
    )
    bad = submit_job(
        engine, "train-index", caller=cli_caller("officer"), params={"date_from": "2031-01-01"}
    )
    job = get_job(engine, good, caller=CLI)
    assert job["status"] in ("queued", "running", "done") and job["pid"] != os.getpid()
    job = wait_for(engine, good)
    assert job["status"] == "done", job["message"]
    assert job["progress"] == 1.0 and job["actor"] == "officer"
    assert job["params"] == {"date_from": "2024-01-01"}
    failed = wait_for(engine, bad)
    assert failed["status"] == "failed"
    assert failed["message"] == (
        "weights need at least 30 returnees with an interview in the data window; there are 0"
    )
    after = {v["version"] for v in registry.list_versions("index", settings, caller=CLI)}
    assert after - before == {job["result"]["version"]}  # the failed job registered nothing
    assert job["result"]["label"] == f"rss-v{job['result']['version']}-derived"
    assert {j["id"] for j in list_jobs(engine, caller=CLI)} == {good, bad}


def test_a_killed_worker_leaves_a_failed_job_and_no_model(registry_home, monkeypatch):
    settings, engine = registry_home
    # The job's lease, renewed by the worker every third of it: failed this long after it dies.
    monkeypatch.setenv("REINTEGRATION_LEASE_SECONDS", "6")
    get_settings.cache_clear()
    before = len(registry.list_versions("risk", settings, caller=CLI))
    job_id = submit_job(engine, "train-risk", caller=cli_caller("officer"), params={})
    running = wait_for(engine, job_id, statuses=("running", "done", "failed"))
    assert running["status"] == "running", running["message"]
    os.kill(running["pid"], signal.SIGKILL)
    job = wait_for(engine, job_id, statuses=("failed",))
    assert job["message"] == INTERRUPTED
    assert len(registry.list_versions("risk", settings, caller=CLI)) == before


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        (
            "train-weights",
            {},
            "there is no job kind 'train-weights'; use one of train-index, train-risk",
        ),
        ("train-risk", {"date_from": "2025-01-01"}, "train-risk takes no parameter 'date_from'"),
        (
            "train-index",
            {"date_to": "31/12/2025"},
            "date_to '31/12/2025' is not a date; write it as YYYY-MM-DD",
        ),
        (
            "train-index",
            {"date_from": "2025-02-01", "date_to": "2025-01-01"},
            "date_from 2025-02-01 is after date_to 2025-01-01",
        ),
        (
            "train-index",
            {"dimension_weights": {"economic": 1.0}},
            "dimension_weights: give a weight for social, psychosocial too",
        ),
    ],
)
def test_bad_parameters_queue_nothing(registry_home, kind, params, message):
    _, engine = registry_home
    with pytest.raises(JobError, match=message):
        submit_job(engine, kind, caller=cli_caller("officer"), params=params)
    assert list_jobs(engine, caller=CLI) == []
