"""``POST /models/rss-index/versions/{v}/promote`` through the real registry (issue 14): 202 at
once with the rescoring job to poll, progress up to every interview, the champion's answers
until the job is done, and a failed job that leaves the previous champion serving."""
# ruff: noqa: F811 (the model tests' fixtures are imported, then asked for by name)

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import build_services
from reintegration.policy import CLI
from reintegration.settings import get_settings
from reintegration.users import add_user
from tests.models.conftest import (  # noqa: F401 (fixtures)
    MLFLOW_DEPRECATION,
    count,
    mlflow_template,
    panel,
    panel_store,
    registry_home,
    trained,
)
from tests.models.test_rescore_job import OLD, fail_after

pytestmark = pytest.mark.filterwarnings(MLFLOW_DEPRECATION)

PROMOTE = "/api/v1/models/rss-index/versions/{version}/promote"
WAIT_S = 120


class Stack:
    def __init__(self) -> None:
        self.services = build_services(get_settings())
        self.client = TestClient(create_app(self.services, dashboard=False))
        engine = self.services.engine
        self.tokens = {
            role: add_user(engine, role, role, caller=CLI)
            for role in ("analyst", "admin", "manager")
        }

    def get(self, path: str, who: str = "analyst"):
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"})

    def post(self, path: str, who: str = "analyst", **kwargs):
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.post(path, headers=headers, **kwargs)

    def champion_label(self) -> str:
        return self.get("/api/v1/index-versions").json()["champion"]

    def follow(self, url: str) -> tuple[dict, list[float]]:
        """Poll a job until it ends; returns it and the progress values seen."""
        seen: list[float] = []
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            champion = self.champion_label()  # read before the job: see below
            job = self.get(url).json()
            seen.append(job["progress"])
            if job["status"] in ("done", "failed"):
                return job, seen
            if job["status"] == "running" and job["progress"] < 1.0:
                # Not switched while it rescores. The alias moves after the last row is
                # rescored (progress 1.0) and before the job is marked done, so only a
                # champion read before a job still short of 1.0 must be the old one (reading
                # the job first raced the alias move: CI once saw the new label there).
                assert champion == OLD
            time.sleep(0.1)
        pytest.fail(f"job {url} did not end in {WAIT_S} s")


@pytest.fixture
def stack(registry_home) -> Iterator[Stack]:
    made = Stack()
    with made.client:
        yield made
    made.services.close()


def test_the_route_answers_at_once_with_a_job_and_switches_at_its_end(stack, trained):
    version = trained.index["version"]
    label = f"rss-v{version}-derived"
    current = count(stack.services.engine, "SELECT count(*) FROM submission WHERE current")
    started = time.perf_counter()
    response = stack.post(PROMOTE.format(version=version), json={"reason": " field data "})
    took = time.perf_counter() - started

    assert response.status_code == 202, response.text
    body = response.json()
    assert took < 5
    assert body["status"] == "queued" and body["previous"] == 1 and body["reason"] == "field data"
    assert response.headers["Location"] == body["status_url"] == f"/api/v1/jobs/{body['job_id']}"
    assert stack.champion_label() == OLD
    job, seen = stack.follow(body["status_url"])
    assert job["status"] == "done", job["message"]
    assert job["kind"] == "rescore" and job["progress"] == 1.0
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert job["result"]["rescored"] == job["result"]["rows_total"] == current
    assert job["result"]["label"] == label and job["result"]["rows"]
    assert stack.champion_label() == label
    models = {m["name"]: m for m in stack.get("/api/v1/models").json()}
    assert models["rss-index"]["champion"] == version
    listed = stack.get("/api/v1/jobs").json()
    assert [j["id"] for j in listed if j["kind"] == "rescore"] == [body["job_id"]]


def test_a_failed_job_leaves_the_previous_champion_serving(stack, trained):
    version = trained.index["version"]
    fail_after(stack.services.engine, f"rss-v{version}-derived", 0)
    response = stack.post(PROMOTE.format(version=version), json={"reason": "field data"})
    assert response.status_code == 202, response.text
    job, _ = stack.follow(response.headers["Location"])
    assert job["status"] == "failed"
    assert job["message"].startswith(f"promoting rss-index version {version} failed: ")
    assert job["message"].endswith("version 1 stays the champion")
    assert stack.champion_label() == OLD
    models = {m["name"]: m for m in stack.get("/api/v1/models").json()}
    assert models["rss-index"]["champion"] == 1


def test_who_may_promote_and_what_is_refused_is_unchanged(stack, trained):
    version = trained.index["version"]
    url = PROMOTE.format(version=version)
    assert stack.post(url, "manager", json={"reason": "x"}).status_code == 403
    missing = stack.post(url, json={})
    assert missing.status_code == 422
    assert "give --reason saying why" in missing.json()["detail"]
    first = stack.post(url, "admin", json={"reason": "field data"})
    assert first.status_code == 202
    second = stack.post(url, json={"reason": "again"})
    # While the first is under way (its worker takes seconds to start), or once it is done.
    job_id = first.json()["job_id"]
    assert (second.status_code, second.json()["detail"]) in {
        (
            422,
            f"rss-index version {version} is being promoted (job {job_id}, {status}): wait "
            "until it is done or failed.",
        )
        for status in ("queued", "running")
    } | {(409, f"rss-index version {version} is already the champion")}
    job, _ = stack.follow(first.headers["Location"])
    assert job["status"] == "done" and job["actor"] == "admin"
