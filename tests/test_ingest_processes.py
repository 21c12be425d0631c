"""Ingest as separate processes: killed mid-batch, and four at once on overlapping files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from reintegration.store.engine import create_store_engine, for_reading
from reintegration.store.schema import batch, returnee, score, submission
from reintegration.synth import generate_panel, write_panel

SURVEY_TABLES = (submission, score, returnee)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path) -> str:
    """A database URL for child processes: an empty SQLite file, or the PostgreSQL test one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def env_for(url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REINTEGRATION_")}
    env.update(
        REINTEGRATION_HOME=str(home),
        REINTEGRATION_DATABASE_URL=url,
        REINTEGRATION_SECRET_KEY="s" * 64,
    )
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "reintegration.cli", *args]


def snapshot(url: str) -> dict[str, list[tuple]]:
    engine = for_reading(create_store_engine(url))
    try:
        with engine.connect() as conn:
            return {
                t.name: sorted(
                    tuple(str(v) for v in row) for row in conn.execute(sa.select(t)).all()
                )
                for t in SURVEY_TABLES
            }
    finally:
        engine.dispose()


def panel(tmp_path: Path, name: str, returnees: int, seed: int = 3) -> Path:
    frame, _ = generate_panel(returnees, 3, seed=seed)
    path = tmp_path / name
    write_panel(frame, path, "csv")
    return path


def test_a_killed_ingest_leaves_the_survey_data_as_it_was(tmp_path, store_url):
    lease = 2.0  # seconds a batch stays leased without a renewal
    env = env_for(store_url, tmp_path / "home") | {"REINTEGRATION_LEASE_SECONDS": str(lease)}
    frame, _ = generate_panel(20050, 3, seed=2)
    few = frame["returnee_id"].isin(frame["returnee_id"].unique()[:50])
    first, big = tmp_path / "first.csv", tmp_path / "big.csv"
    write_panel(frame[few], first, "csv")
    write_panel(frame[~few], big, "csv")
    subprocess.run(command("ingest", str(first)), env=env, check=True, capture_output=True)
    before = snapshot(store_url)
    proc = subprocess.Popen(
        command("ingest", str(big)), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    engine = for_reading(create_store_engine(store_url))  # polls without waiting for the writer
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(
                    sa.select(batch.c.id).where(batch.c.status == "processing")
                ).first():
                    break
            time.sleep(0.05)
        time.sleep(0.5)  # inside the batch transaction, which takes seconds for 50,000 rows
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL, "the ingest finished before it could be killed"
        assert snapshot(store_url) == before
        time.sleep(lease + 0.5)  # its lease passes unrenewed
        # The next ingest notices the dead batch, and completes the file.
        done = subprocess.run(
            command("ingest", str(big), "--json"),
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["accepted"] == report["received"] > 40000
        with engine.connect() as conn:
            statuses = sorted(
                conn.execute(sa.select(batch.c.status, batch.c.reason)).all(), key=str
            )
        assert [s for s, _ in statuses] == ["done", "done", "failed"]
        assert [r for s, r in statuses if s == "failed"][0].startswith("interrupted")
    finally:
        engine.dispose()


def test_four_concurrent_ingests_of_overlapping_files_store_each_interview_once(
    tmp_path, store_url
):
    env = env_for(store_url, tmp_path / "home")
    subprocess.run(command("db", "upgrade"), env=env, check=True, capture_output=True)
    full = panel(tmp_path, "full.csv", 600, seed=5)
    lines = full.read_text().splitlines()
    header, body = lines[0], lines[1:]
    files = []
    for k in range(4):  # overlapping halves, each starting a quarter further
        start = k * len(body) // 4
        part = (body + body)[start : start + len(body) // 2 + 50]
        path = tmp_path / f"part{k}.csv"
        path.write_text("\n".join([header, *part]) + "\n")
        files.append(path)
    procs = [
        subprocess.Popen(
            command("ingest", str(f), "--json"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in files
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(submission.c.submission_id)))
            ).one()
    finally:
        engine.dispose()
    covered = {line.split(",")[0] for f in files for line in f.read_text().splitlines()[1:]}
    assert stored == (len(covered), len(covered))
    assert sum(r["accepted"] for r in reports) == len(covered)
    assert all(r["received"] == r["accepted"] + r["duplicate"] + r["rejected"] for r in reports)
