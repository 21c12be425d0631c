"""The server's housekeeping (issue 11, findings 10 and 14): an upload's raw file is deleted when
its batch ends, whatever the outcome (done, failed, an internal error, refused, the client
gone), and a server start fails the batches of dead processes, removes their uploads, keeps
live ones and leaves every file of the data folder its owner's only."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest
import sqlalchemy as sa
from starlette.requests import Request

from api.problems import ApiProblem
from api.receive import receive_file
from reintegration.store.engine import open_store
from reintegration.store.schema import batch
from tests.api.test_batches import BATCHES, upload
from tests.conftest import canonical_row, write_csv


def uploads_left(stack) -> list[str]:
    folder = stack.services.settings.home / "uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_the_raw_file_is_deleted_when_the_batch_is_done_before_the_hook(fresh, batch_file):
    seen_by_hook: list[list[str]] = []
    fresh.services.uploads.after_batch = lambda *_: seen_by_hook.append(uploads_left(fresh))

    response = upload(fresh, "enumerator", batch_file({}, {}), wait=60)

    assert response.status_code == 201 and response.json()["status"] == "done"
    assert seen_by_hook == [[]]
    assert uploads_left(fresh) == []


def test_the_raw_file_is_deleted_when_the_batch_fails(fresh, tmp_path, questionnaire):
    row = canonical_row(questionnaire, 1)
    del row["country"]
    response = upload(fresh, "enumerator", write_csv(tmp_path / "nocountry.csv", [row]), wait=60)

    assert response.status_code == 422
    assert "country" in response.json()["detail"]
    assert uploads_left(fresh) == []


def test_the_raw_file_is_deleted_after_an_internal_error(fresh, batch_file, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("reintegration.ingest._ingest", broken)

    response = upload(fresh, "enumerator", batch_file({}), wait=60)

    assert response.status_code == 503
    assert "failed, nothing was stored: internal error (RuntimeError)" in response.json()["detail"]
    assert uploads_left(fresh) == []
    with fresh.services.engine.connect() as conn:
        assert conn.execute(sa.select(batch.c.status)).scalars().all() == ["failed"]


@pytest.mark.parametrize(
    ("content", "status"),
    [(b"", 422), (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 415)],
)
def test_the_raw_file_is_deleted_when_the_upload_is_refused(fresh, content, status):
    response = upload(fresh, "enumerator", None, name="b.csv", content=content)

    assert response.status_code == status
    assert uploads_left(fresh) == []


def test_the_partial_file_is_deleted_when_the_client_leaves(tmp_path):
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="b.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\nreturnee_id\nCASE-1\n"
    )
    messages = [
        {"type": "http.request", "body": body, "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive():
        return messages.pop(0)

    request = Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/api/v1/batches",
            "headers": [(b"content-type", b"multipart/form-data; boundary=XyZ")],
        },
        receive,
    )

    with pytest.raises(ApiProblem) as refused:
        anyio.run(partial(receive_file, request, limit_mb=1, folder=tmp_path / "uploads"))

    assert refused.value.status == 400 and "interrupted" in refused.value.detail
    assert list((tmp_path / "uploads").iterdir()) == []


# -- a real server start ---------------------------------------------------------------------


def _command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("reintegration")), *args]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_server_start_cleans_up_and_keeps_the_data_folder_private(tmp_path, questionnaire):
    from tests.test_trust_housekeeping import _named, add_batch, assert_private, dead_pid

    home = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REINTEGRATION_", "MLFLOW_"))}
    env |= {"REINTEGRATION_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    added = subprocess.run(
        _command("users", "add", "ana", "--role", "analyst"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    store = open_store(f"sqlite:///{home / 'reintegration.db'}")
    add_batch(store, "dead", pid=dead_pid(), created_at=datetime.now(UTC), lease=-1)
    store.dispose()
    orphan = _named(home / "uploads", dead_pid())
    live = _named(home / "uploads", os.getpid())  # this test's process: alive, and older
    (home / "jobs").mkdir()
    (home / "jobs" / "old.log").write_text("x")
    for path in [home, *home.rglob("*")]:  # as an older version left them
        path.chmod(0o755 if path.is_dir() else 0o644)
    port = _free_port()
    server = subprocess.Popen(
        _command("serve", "--port", str(port)),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stderr.read()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        store = open_store(f"sqlite:///{home / 'reintegration.db'}")
        with store.connect() as conn:
            status = conn.execute(sa.select(batch.c.status).where(batch.c.id == "dead")).scalar()
        assert status == "failed"
        assert not orphan.exists() and live.exists()
        assert_private(home)
        assert stat.S_IMODE((home / "mlflow.db").stat().st_mode) == 0o600

        path = write_csv(tmp_path / "b.csv", [canonical_row(questionnaire, 1)])
        stored = httpx.post(
            f"{base}{BATCHES}",
            params={"wait": 60},
            headers={"Authorization": f"Bearer {token}"},
            files={"file": ("b.csv", path.read_bytes(), "text/csv")},
            timeout=90,
        )
        assert stored.status_code == 201, stored.text
        assert sorted(p.name for p in (home / "uploads").iterdir()) == [live.name]
        assert_private(home)
        store.dispose()
    finally:
        server.terminate()
        server.wait(timeout=30)
