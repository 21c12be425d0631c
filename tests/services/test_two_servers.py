"""Two servers behind one load balancer (issue 14, docs/deployment.md): two real ``reintegration
serve`` processes with data folders of their own, on one PostgreSQL database, one MLflow
registry (PostgreSQL) and one shared artifact folder, with the same production key.

Every clause is asked through the HTTP API (and the dashboard's login form) of either server,
never through an in-process shortcut: uploads, training, promotion, ``/score``, the worklist,
a dashboard login, identical answers, a revoked token, a killed server's batch and job, a
server with another key, and the start of both on fresh databases. The servers are started
once for the module (at once, on databases this module creates and drops: ``<test db>_two``
and ``<test db>_two_mlflow``); server A is killed by the last test.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import _absent

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

KEY = "5e0b8d2f7a4c1e9b3d6f0a8c2e4b7d1f9a3c5e8b0d2f4a6c"
OTHER_KEY = "c8a1f4e7b0d3a6c9f2e5b8d1a4c7f0e3b6d9a2c5f8e1b4d7"
LEASE_S = 10.0
"""The lease time both servers run with: a killed server's work is failed within it and a
sweep (a sixth of it). Not shorter: a queued job's lease runs from its creation until its
worker claims it, and the worker (a new Python process) took 7 s to import at a load average
of 9 on two cores; with 3 s the sweep failed a live training job as interrupted."""
START_S = 180.0
"""How long two servers starting at once may take to answer /healthz (each imports pandas,
Dash and MLflow, creates the tables or waits for the other to)."""
RETURNEES = 160  # enough for a risk model (100 with a first survey and a follow-up)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """One ``reintegration serve`` process and what it answers."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    home: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class Pair:
    a: Server
    b: Server
    env: dict[str, str]
    app_url: str
    mlflow_url: str
    tokens: dict[str, str]
    up_s: float


def _databases(postgres_url: str) -> tuple[str, str]:
    """``<test db>_two`` and ``<test db>_two_mlflow``, dropped and created again."""
    if not os.environ.get("REINTEGRATION_TEST_MLFLOW_URI"):
        _absent("REINTEGRATION_TEST_MLFLOW_URI is not set")
    url = sa.engine.make_url(postgres_url)
    names = (f"{url.database}_two", f"{url.database}_two_mlflow")
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    app, mlflow = (url.set(database=n).render_as_string(hide_password=False) for n in names)
    return app, mlflow


def _drop(postgres_url: str, *urls: str) -> None:
    admin = sa.create_engine(
        sa.engine.make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        for url in urls:
            name = sa.engine.make_url(url).database
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _environment(home: Path, shared: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REINTEGRATION_", "MLFLOW_")) and k != "MLFLOW_TRACKING_URI"
    }
    return {**env, **shared, "REINTEGRATION_HOME": str(home)}


def _start(name: str, root: Path, shared: dict[str, str]) -> Server:
    home = root / name
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = root / f"{name}.log"
    command = Path(sys.executable).with_name("reintegration")
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 (the project's own command)
            [str(command), "serve", "--port", str(port)],
            env=_environment(home, shared),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, process, port, log, home)


def _stop(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("reintegration")
    return subprocess.run(  # noqa: S603 (the project's own command)
        [str(command), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def pair(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Servers A and B, started at once on fresh databases, and an admin's and an analyst's
    tokens (made by the command line on the shared database)."""
    app_url, mlflow_url = _databases(postgres_url)
    root = tmp_path_factory.mktemp("two-servers")
    (root / "shared-artifacts").mkdir()  # the shared storage, mounted on both
    shared = {
        "REINTEGRATION_ENV": "production",
        "REINTEGRATION_SECRET_KEY": KEY,
        "REINTEGRATION_DATABASE_URL": app_url,
        "MLFLOW_TRACKING_URI": mlflow_url,
        "REINTEGRATION_ARTIFACT_LOCATION": str(root / "shared-artifacts"),
        "REINTEGRATION_LEASE_SECONDS": str(LEASE_S),
        "REINTEGRATION_MIN_GROUP": "5",  # a small training set still has subgroups to check
        # Two servers, their jobs and commands within PostgreSQL's 100 connections, beside the
        # rest of the suite (docs/deployment.md).
        "MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "1",
        "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "NO_PROXY": "*",
    }
    started = time.monotonic()
    servers = [_start(name, root, shared) for name in ("a", "b")]
    try:
        deadline = started + START_S
        while not all(s.healthy() for s in servers):
            for s in servers:
                assert s.process.poll() is None, f"server {s.name} stopped:\n{s.text()[-3000:]}"
            assert time.monotonic() < deadline, "\n".join(s.text()[-2000:] for s in servers)
            time.sleep(0.3)
        up_s = time.monotonic() - started
        log.info("both servers answered /healthz %.1f s after their start", up_s)
        env = _environment(root / "cli", shared)
        tokens = {}
        for role in ("admin", "analyst"):
            made = _cli(env, "users", "add", f"two-{role}", "--role", role)
            assert made.returncode == 0, made.stderr
            tokens[role] = made.stdout.strip()
        yield Pair(servers[0], servers[1], env, app_url, mlflow_url, tokens, up_s)
    finally:
        for s in servers:
            _stop(s)
        _drop(postgres_url, app_url, mlflow_url)


# -- helpers -------------------------------------------------------------------------------------


def _panel(path: Path, returnees: int, seed: int, prefix: str = "") -> Path:
    """A synthetic panel file; ``prefix`` makes its case numbers its own."""
    from reintegration.synth import generate_panel, write_panel

    frame, _ = generate_panel(returnees, 3, seed=seed)
    if prefix:
        frame = frame.assign(returnee_id=prefix + frame["returnee_id"].astype(str))
    write_panel(frame, path, "csv")
    return path


def _upload(server: Server, token: str, path: Path, wait: float) -> httpx.Response:
    with server.client(token) as http, path.open("rb") as fh:
        return http.post(
            "/api/v1/batches",
            params={"wait": wait},
            files={"file": (path.name, fh, "text/csv")},
        )


def _get(server: Server, token: str, path: str, **params: Any) -> Any:
    with server.client(token) as http:
        response = http.get(path, params=params)
    assert response.status_code == 200, (server.name, path, response.text[:500])
    return response.json()


def _until(check, timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def _job(server: Server, token: str, job_id: str) -> dict[str, Any]:
    return _get(server, token, f"/api/v1/jobs/{job_id}")


def _stored_version(pair: Pair) -> int:
    engine = sa.create_engine(pair.app_url)
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version FROM data_version")).scalar_one()
    engine.dispose()
    return int(version)


def _same_answers(pair: Pair, token: str) -> tuple[list[Any], list[Any]]:
    """Both servers' answers to the same questions, once both answer at the database's data
    version."""
    questions = [
        ("/api/v1/aggregates", {"by": "sex,return_type"}),
        ("/api/v1/aggregates", {"by": "country", "protected": "true"}),
        ("/api/v1/overview", {}),
    ]
    stored = _stored_version(pair)

    def asked() -> tuple[list[Any], list[Any]] | None:
        a = [_get(pair.a, token, path, **params) for path, params in questions]
        b = [_get(pair.b, token, path, **params) for path, params in questions]
        versions = {answer.get("data_version") for answer in a + b} - {None}
        return (a, b) if versions == {stored} else None

    a, b = _until(asked, 30, f"both servers answering at data version {stored}", every=0.3)
    return a, b


# -- the clauses ---------------------------------------------------------------------------------


def test_two_servers_started_at_once_on_fresh_databases_both_come_up(pair):
    assert pair.a.healthy() and pair.b.healthy()
    assert pair.up_s < START_S
    engine = sa.create_engine(pair.mlflow_url)
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT name, version FROM model_versions")).all()
    engine.dispose()
    assert [tuple(v) for v in versions] == [("rss-index", 1)]  # registered once, not twice
    for server in (pair.a, pair.b):
        me = _get(server, pair.tokens["admin"], "/api/v1/me")
        assert me["name"] == "two-admin"


@dataclass
class Training:
    upload: httpx.Response
    job_id: str


@pytest.fixture(scope="module")
def training(pair: Pair, tmp_path_factory: pytest.TempPathFactory) -> Training:
    """The training set uploaded through A, then a training job asked of A: it runs while the
    tests after the uploads ask their questions (a worker takes tens of seconds on a busy
    machine)."""
    folder = tmp_path_factory.mktemp("training")
    path = _panel(folder / "a.csv", RETURNEES, seed=11)
    upload = _upload(pair.a, pair.tokens["admin"], path, wait=120)
    assert upload.status_code == 201, upload.text[:1000]
    with pair.a.client(pair.tokens["analyst"]) as http:
        accepted = http.post("/api/v1/models/risk/train", json={})
    assert accepted.status_code == 202, accepted.text[:1000]
    return Training(upload, accepted.json()["job_id"])


def test_uploads_through_either_server_are_stored_once_and_seen_by_both(pair, training, tmp_path):
    token = pair.tokens["admin"]
    first = training.upload
    second = _upload(pair.b, token, _panel(tmp_path / "b.csv", 20, seed=12, prefix="B-"), 120)

    assert second.status_code == 201, second.text[:1000]
    assert first.json()["accepted"] > 2 * RETURNEES and second.json()["accepted"] > 20
    for server in (pair.a, pair.b):
        for upload in (first, second):
            batch = _get(server, token, f"/api/v1/batches/{upload.json()['batch_id']}")
            assert batch["status"] == "done"
    listed = {b["id"] for b in _get(pair.b, token, "/api/v1/batches")}
    assert {first.json()["batch_id"], second.json()["batch_id"]} <= listed


def test_a_server_with_another_secret_refuses_to_start(pair, tmp_path):
    env = {**pair.env, "REINTEGRATION_SECRET_KEY": OTHER_KEY, "REINTEGRATION_HOME": str(tmp_path)}
    done = _cli(env, "serve", "--port", str(_free_port()))
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    said = done.stdout + done.stderr
    assert "REINTEGRATION_SECRET_KEY differs from the key this database" in said
    assert OTHER_KEY not in said and KEY not in said
    assert pair.a.healthy() and pair.b.healthy()  # the refusal touched neither


def test_both_servers_give_identical_answers_after_a_batch_through_either(pair, tmp_path):
    token = pair.tokens["analyst"]
    before, _ = _same_answers(pair, token)
    for server, seed in ((pair.a, 21), (pair.b, 22)):
        path = _panel(tmp_path / f"{server.name}.csv", 10, seed=seed, prefix=f"S{seed}-")
        assert _upload(server, pair.tokens["admin"], path, wait=120).status_code == 201

        a, b = _same_answers(pair, token)

        assert a == b  # the same JSON, data_version included
        assert a[0]["data_version"] > before[0]["data_version"]
        before = a


def test_score_answers_the_same_through_either_server(pair, tmp_path):
    from reintegration.synth import generate_panel

    frame, _ = generate_panel(3, 1, seed=31)
    records = [
        {k: str(v) for k, v in row.items() if v is not None and str(v) not in ("", "nan")}
        for row in frame.to_dict("records")
    ]
    answers = []
    for server in (pair.a, pair.b):
        with server.client(pair.tokens["analyst"]) as http:
            response = http.post("/api/v1/score", json={"records": records})
        assert response.status_code == 200, response.text[:1000]
        answers.append(response.json())
    assert answers[0] == answers[1]
    assert answers[0]["scored"] == len(records) and answers[0]["rejected"] == 0


def _login(browser: httpx.Client, token: str) -> None:
    """A browser's login on a dashboard: the form (and its CSRF cookie), then the token."""
    assert browser.get("/dashboard/login").status_code == 200
    csrf = browser.cookies.get("reintegration_login_csrf")
    assert csrf
    answer = browser.post("/dashboard/login", data={"csrf": csrf, "token": token, "next": ""})
    assert answer.status_code == 303, answer.text[:500]
    assert "/login" not in answer.headers["Location"], answer.headers["Location"]


def test_a_dashboard_login_works_on_either_server_and_its_session_on_both(pair):
    for here, there in ((pair.a, pair.b), (pair.b, pair.a)):
        with httpx.Client(base_url=here.url, timeout=60) as browser:
            _login(browser, pair.tokens["analyst"])
            assert browser.get("/dashboard/overview").status_code == 200
            cookie = browser.cookies.get("reintegration_session")
        # No sticky sessions: the other server knows the session (in the database).
        with httpx.Client(base_url=there.url, timeout=60) as other:
            other.cookies.set("reintegration_session", cookie)
            page = other.get("/dashboard/overview")
        assert page.status_code == 200, (here.name, there.name, page.headers)


def test_a_token_revoked_through_one_server_stops_on_both_within_a_second(pair):
    with pair.a.client(pair.tokens["admin"]) as http:
        made = http.post(
            "/api/v1/users", json={"name": "leaving", "role": "analyst", "countries": "all"}
        )
    assert made.status_code == 201, made.text[:500]
    token = made.json()["token"]
    for server in (pair.a, pair.b):  # both hold it in their token cache now
        assert _get(server, token, "/api/v1/me")["name"] == "leaving"

    with pair.a.client(pair.tokens["admin"]) as http:
        revoked = http.delete("/api/v1/users/leaving")
        revoked_at = time.monotonic()
    assert revoked.status_code == 204

    last_ok = {}
    for server in (pair.a, pair.b):
        with server.client(token) as http:
            while True:
                asked = time.monotonic()
                status = http.get("/api/v1/me").status_code
                if status == 401:
                    break
                assert status == 200
                last_ok[server.name] = asked - revoked_at
                assert asked - revoked_at < 3, f"{server.name} still answers the token"
                time.sleep(0.02)
    log.info("revoked token last answered %s s after the revocation", last_ok)
    # A request sent a second or more after the revocation was answered 401 on both.
    assert max(last_ok.values(), default=0.0) < 1.0, last_ok
    assert "a" not in last_ok  # the server that revoked it forgets it at once


def test_training_through_one_server_is_followed_and_used_through_the_other(pair, training):
    token = pair.tokens["analyst"]
    job_id = training.job_id

    done = _until(
        lambda: (j := _job(pair.b, token, job_id))["status"] in ("done", "failed") and j,
        240,
        "the training job, followed through B",
        every=0.5,
    )

    assert done["status"] == "done", done["message"]
    version = done["result"]["version"]
    versions = _get(pair.b, token, "/api/v1/models/risk/versions")
    assert version in [v["version"] for v in versions]
    card = httpx.get(
        f"{pair.b.url}/api/v1/models/risk/versions/{version}/card",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert card.status_code == 200 and card.text.startswith("#")  # B reads A's model files
    assert not list((pair.a.home / "mlartifacts").rglob("MLmodel"))  # shared storage only


def _risk_version(pair: Pair, token: str) -> int:
    versions = _get(pair.a, token, "/api/v1/models/risk/versions")
    return max(v["version"] for v in versions)


def test_promotion_through_b_reaches_the_worklist_of_both(pair):
    token = pair.tokens["analyst"]
    version = _risk_version(pair, token)
    with pair.b.client(token) as http:
        promoted = http.post(
            f"/api/v1/models/risk/versions/{version}/promote",
            json={"reason": "two servers", "force": True},
        )
    assert promoted.status_code == 200, promoted.text[:1000]

    def worklists() -> tuple[Any, Any] | None:
        a = _get(pair.a, token, "/api/v1/worklist")
        b = _get(pair.b, token, "/api/v1/worklist")
        return (a, b) if a["model_version"] == b["model_version"] == version else None

    a, b = _until(worklists, 30, "the promoted model in both worklists", every=0.5)
    assert a == b
    assert a["items"], a


def test_a_killed_servers_batch_and_job_are_failed_by_the_other_within_the_lease(pair, tmp_path):
    token = pair.tokens["analyst"]
    big = _panel(tmp_path / "big.csv", 3000, seed=41, prefix="K-")
    with pair.a.client(token) as http:
        accepted = http.post("/api/v1/models/risk/train", json={})
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    job = _until(lambda: (j := _job(pair.b, token, job_id)).get("pid") and j, 30, "a worker")
    upload = _upload(pair.a, pair.tokens["admin"], big, wait=0)  # answered once received
    assert upload.status_code == 202, upload.text[:500]
    batch_id = upload.json()["batch_id"]
    batch = _get(pair.b, token, f"/api/v1/batches/{batch_id}")
    assert batch["status"] == "processing" and job["status"] in ("queued", "running")

    # Server A's machine dies: the server and the job's worker (a process of its own session).
    os.killpg(pair.a.process.pid, signal.SIGKILL)
    os.kill(int(job["pid"]), signal.SIGKILL)
    killed = time.monotonic()
    pair.a.process.wait()

    def failed() -> bool:
        batch = _get(pair.b, token, f"/api/v1/batches/{batch_id}")
        job = _job(pair.b, token, job_id)
        return batch["status"] == "failed" and job["status"] == "failed"

    _until(failed, LEASE_S + 15, "B marking A's batch and job failed", every=0.1)
    took = time.monotonic() - killed
    log.info("A's batch and job failed by B %.2f s after the kill (lease %s s)", took, LEASE_S)
    # The lease, a sweep (a sixth of it), and a little for a busy machine.
    assert took < LEASE_S * 7 / 6 + 1.5, took
    batch = _get(pair.b, token, f"/api/v1/batches/{batch_id}")
    job = _job(pair.b, token, job_id)
    assert (
        batch["reason"] == "interrupted: its server stopped renewing its lease before it finished"
    )
    assert job["message"] == "interrupted: its server stopped renewing its lease before it finished"
    assert re.search(r"GET /healthz 200", pair.b.text())
