"""The demo's data folder: its own, reused, rebuilt on request, never a folder it did not make."""

from __future__ import annotations

import pytest

from reintegration.demo import MARKER, READY, demo_folder, mark_ready
from reintegration.errors import DemoError


def test_a_new_home_gets_a_marked_demo_folder_to_build(tmp_path):
    folder, build = demo_folder(tmp_path / "var", fresh=False)
    assert folder == tmp_path / "var" / "demo" and build
    assert (folder / MARKER).read_text().startswith("created by `reintegration demo`")


def test_a_ready_demo_folder_is_reused_as_it_is(tmp_path):
    folder, _ = demo_folder(tmp_path, fresh=False)
    (folder / "reintegration.db").write_text("data")
    mark_ready(folder)
    again, build = demo_folder(tmp_path, fresh=False)
    assert again == folder and not build
    assert (folder / "reintegration.db").read_text() == "data"


def test_fresh_rebuilds_the_demo_folder(tmp_path):
    folder, _ = demo_folder(tmp_path, fresh=False)
    (folder / "reintegration.db").write_text("data")
    mark_ready(folder)
    again, build = demo_folder(tmp_path, fresh=True)
    assert build and not (again / "reintegration.db").exists() and not (again / READY).exists()


def test_a_half_built_demo_folder_is_rebuilt(tmp_path):
    folder, _ = demo_folder(tmp_path, fresh=False)
    (folder / "reintegration.db").write_text("interrupted")
    again, build = demo_folder(tmp_path, fresh=False)
    assert build and not (again / "reintegration.db").exists()


@pytest.mark.parametrize("fresh", [False, True])
def test_a_folder_the_demo_did_not_create_is_left_alone(tmp_path, fresh):
    foreign = tmp_path / "demo"
    foreign.mkdir()
    (foreign / "thesis.docx").write_text("years of work")
    with pytest.raises(DemoError) as caught:
        demo_folder(tmp_path, fresh=fresh)
    assert str(caught.value) == (
        f"{foreign} exists but was not created by the demo, so the demo will not use or remove "
        "it: move it away, or set REINTEGRATION_HOME to another folder"
    )
    assert (foreign / "thesis.docx").read_text() == "years of work"


def test_the_demo_serves_the_api_and_dashboards_with_a_token_per_role(tmp_path):
    """What `make run` does, end to end: build, train, serve, print URLs and tokens."""
    import os
    import re
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REINTEGRATION_", "MLFLOW_"))}
    env["REINTEGRATION_HOME"] = str(tmp_path / "var")
    command = Path(sys.executable).with_name("reintegration")
    server = subprocess.Popen(
        [str(command), "demo", "--port", str(port), "--returnees", "400"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = server.stdout.readline()  # type: ignore[union-attr]
            assert line or server.poll() is None, "".join(lines)
            lines.append(line)
            if line.strip().startswith("admin "):
                break
        text = "".join(lines)
        tokens = dict(re.findall(r"^  (enumerator|manager|analyst|admin) +(\S+)$", text, re.M))
        assert set(tokens) == {"enumerator", "manager", "analyst", "admin"}, text
        assert f"http://127.0.0.1:{port}/dashboard/" in text
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        manager = {"Authorization": f"Bearer {tokens['manager']}"}
        aggregates = httpx.get(
            f"{base}/api/v1/aggregates", params={"by": "sex"}, headers=manager, timeout=30
        )
        assert aggregates.status_code == 200, aggregates.text
        assert httpx.get(f"{base}/api/v1/audit", headers=manager, timeout=10).status_code == 403
        analyst = {"Authorization": f"Bearer {tokens['analyst']}"}
        worklist = httpx.get(f"{base}/api/v1/worklist", headers=analyst, timeout=30)
        assert worklist.status_code == 200, worklist.text
        ranked = worklist.json()
        assert ranked["items"], ranked
        # Promoted only if it beats the baseline rule; else the rule ranks, and says so.
        assert ranked["model"] == "reintegration-risk" or ranked["note"].startswith(
            "ranked by the baseline rule (1 − first-survey composite)"
        ), ranked
        assert ranked["items"][0]["reasons"], ranked["items"][0]
        login = httpx.get(f"{base}/dashboard/", timeout=30, follow_redirects=True)
        assert login.status_code == 200 and '<div id="react-entry-point">' in login.text
        assert (tmp_path / "var" / "demo" / READY).is_file()
        assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()
    finally:
        server.terminate()
        server.wait(timeout=30)
