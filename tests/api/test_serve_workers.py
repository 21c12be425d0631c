"""``reintegration serve --workers N``: N processes on one port, started once, stopped together.

The server runs as a real process tree (the command, its supervisor and its workers); which
worker answered a request is read from the log, where each worker's lines carry its process
id. Nothing is exposed over HTTP for the test.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from api.workers import listening_socket
from reintegration.cli import app

START_S = 180.0
"""How long two workers may take to answer /healthz (each imports pandas, Dash, MLflow)."""
STOP_S = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is stopped too.
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split(") ", 1)[1][:1] != "Z"


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def workers(self) -> set[int]:
        return {int(p) for p in re.findall(r"Started server process \[(\d+)\]", self.text())}

    def answered_by(self) -> list[int]:
        return [int(p) for p in re.findall(r"\[(\d+)\] api\.access: GET /healthz 200", self.text())]


@pytest.fixture
def serve_workers(home: Path, tmp_path: Path) -> Iterator[Running]:
    """``reintegration serve --workers 2`` on a free port, in a data folder of its own."""
    port = _free_port()
    log = tmp_path / "serve.log"
    command = Path(sys.executable).with_name("reintegration")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "NO_PROXY": "*"}
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 (the project's own command)
            [str(command), "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, as a terminal would make
        )
    running = Running(process, port, log)
    try:
        deadline = time.monotonic() + START_S
        while len(running.workers()) < 2 or not _answers(running.url):
            assert process.poll() is None, running.text()[-2000:]
            assert time.monotonic() < deadline, "not serving in time:\n" + running.text()[-2000:]
            time.sleep(0.5)
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _stopped(running: Running, workers: set[int]) -> bool:
    running.process.wait(timeout=STOP_S)
    deadline = time.monotonic() + STOP_S
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not any(_alive(pid) for pid in workers)


def test_two_workers_answer_on_one_port_and_sigterm_stops_them_all(serve_workers):
    running = serve_workers
    workers = running.workers()
    assert len(workers) == 2 and running.process.pid not in workers
    assert f"127.0.0.1:{running.port}/api/v1" in running.text()
    assert "with 2 worker processes. Ctrl-C stops." in running.text()
    # New connections go to whichever worker accepts first: both do, sooner or later.
    for _ in range(200):
        assert httpx.get(f"{running.url}/healthz", timeout=10).json()["status"] == "ok"
        if set(running.answered_by()) == workers:
            break
    assert set(running.answered_by()) == workers

    # Requests on a reused connection are not held back by Nagle's algorithm: with uvicorn's
    # own kind of socket each waited for the client's delayed acknowledgement (about 40 ms).
    with httpx.Client(base_url=running.url) as client:
        client.get("/healthz")
        took = []
        for _ in range(30):
            start = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            took.append(time.perf_counter() - start)
    assert statistics.median(took) < 0.030, took

    running.process.send_signal(signal.SIGTERM)  # as systemd or docker stop: the parent only
    assert _stopped(running, workers), running.text()[-2000:]
    assert running.process.returncode == 0
    assert "Stopping parent process" in running.text()


def test_ctrl_c_stops_every_worker_and_the_built_in_index_is_registered_once(serve_workers):
    from models import registry
    from reintegration.policy import CLI

    running = serve_workers
    workers = running.workers()
    os.killpg(running.process.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
    assert _stopped(running, workers), running.text()[-2000:]
    # Prepared once before the workers started: not one built-in version per worker.
    versions = registry.list_versions("index", caller=CLI)
    assert [v["label"] for v in versions] == ["rss-v1-provisional"]


def test_a_bad_setting_stops_serve_before_any_worker_starts(home, monkeypatch, tmp_path):
    monkeypatch.setenv("REINTEGRATION_ARTIFACT_LOCATION", str(tmp_path / "not-mounted"))
    command = Path(sys.executable).with_name("reintegration")
    result = subprocess.run(  # noqa: S603
        [str(command), "serve", "--port", str(_free_port()), "--workers", "2"],
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert f"error: REINTEGRATION_ARTIFACT_LOCATION {tmp_path / 'not-mounted'} is not a folder" in (
        result.stderr
    )
    assert "Started server process" not in result.stderr
    assert "Serving the API" not in result.stderr


@pytest.mark.parametrize(
    ("workers", "says"),
    [
        ("0", "greater than or equal to 1"),
        ("65", "less than or equal to 64"),
        ("many", "should be a valid integer"),
    ],
)
def test_a_number_of_workers_outside_1_to_64_is_refused(home, workers, says):
    result = CliRunner().invoke(app, ["serve", "--port", str(_free_port()), "--workers", workers])

    assert result.exit_code == 2
    assert "Invalid value for '--workers'" in result.output
    assert says in result.output


def test_a_taken_port_is_refused_before_anything_starts(home):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--port", str(port), "--workers", "2"])

    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is already in use; choose another with --port."
    )


def test_the_socket_is_one_asyncio_sets_tcp_nodelay_on():
    sock = listening_socket("127.0.0.1", 0)
    with sock:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.get_inheritable()


@pytest.fixture
def built(monkeypatch):
    """worker_app with the app's build replaced by a stand-in (the real one runs above)."""
    import api.app
    import api.cli

    async def stand_in(scope, receive, send):  # pragma: no cover - never called
        raise AssertionError

    calls = []
    monkeypatch.setattr(api.app, "create_app", lambda: stand_in)
    monkeypatch.setattr(api.cli, "settle_heap", lambda: calls.append("settled"))
    return stand_in, calls


def test_a_worker_believes_forwarded_headers_only_from_the_proxies_named(home, monkeypatch, built):
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from api.workers import worker_app
    from reintegration.settings import get_settings

    stand_in, calls = built
    assert worker_app() is stand_in and calls == ["settled"]

    monkeypatch.setenv("REINTEGRATION_FORWARDED_ALLOW_IPS", "10.0.0.5")
    get_settings.cache_clear()
    wrapped = worker_app()
    assert isinstance(wrapped, ProxyHeadersMiddleware) and wrapped.app is stand_in
    assert "10.0.0.5" in wrapped.trusted_hosts and "127.0.0.1" not in wrapped.trusted_hosts


def test_a_worker_that_cannot_build_the_app_ends_with_uvicorns_startup_failure(
    home, monkeypatch, built
):
    import api.app
    from api.workers import STARTUP_FAILURE, worker_app
    from reintegration.errors import ConfigurationError

    def refuse():
        raise ConfigurationError("REINTEGRATION_SECRET_KEY differs from the database's")

    monkeypatch.setattr(api.app, "create_app", refuse)
    with pytest.raises(SystemExit) as caught:
        worker_app()
    assert caught.value.code == STARTUP_FAILURE


def test_one_server_with_an_unusable_artifact_location_does_not_start(home, monkeypatch, tmp_path):
    import uvicorn

    monkeypatch.setenv("REINTEGRATION_ARTIFACT_LOCATION", str(tmp_path / "not-mounted"))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: pytest.fail("started"))
    result = CliRunner().invoke(app, ["serve", "--port", str(_free_port())])

    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: REINTEGRATION_ARTIFACT_LOCATION {tmp_path / 'not-mounted'} is not a folder"
    )
