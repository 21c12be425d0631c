"""Housekeeping at start, private files and erasure without traces (issue 11, findings 10 and 14).

A batch left ``processing`` whose lease passed is failed when a server or a command starts
(not only at the next ingest), and one whose lease is renewed is never, whatever its host and
process id say (issue 14; more in ``tests/store/test_leases.py``);
uploads left behind by dead processes are removed and live ones kept; everything under the data
folder is its owner's only; an erasure leaves no copy of the erased rows in SQLite's database
file or its write-ahead log. The server's side: ``tests/api/test_trust_housekeeping.py``.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from reintegration import housekeeping
from reintegration.cli import app
from reintegration.pseudonym import returnee_key
from reintegration.store import leases
from reintegration.store.batches import erase_returnee, recover_interrupted
from reintegration.store.engine import checkpoint, open_store
from reintegration.store.schema import audit, batch
from tests.conftest import SECRET, canonical_row, write_csv

MARK = "Qzxjv-Distinctive-Admin-Region"


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def sleeper():
    """A live process of this host, started now."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    time.sleep(0.05)
    yield child
    child.kill()
    child.wait()


def add_batch(engine, batch_id, *, pid, created_at=None, host=None, lease=None):
    """A batch left ``processing``; ``lease``: seconds its lease runs from now (negative: it
    passed that long ago; None: no lease, as stored before leases)."""
    if lease is not None:
        leases.take(engine, "batch", batch_id, lease)
    with engine.begin() as conn:
        conn.execute(
            batch.insert().values(
                id=batch_id,
                uploader="enumerator-1",
                file_name="b.csv",
                sha256="0" * 64,
                status="processing",
                host=socket.gethostname() if host is None else host,
                pid=pid,
                created_at=created_at or datetime.now(UTC),
            )
        )


def statuses(engine):
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(batch.c.id, batch.c.status)).all())


def modes(home: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(home.stat().st_mode)}
    for path in home.rglob("*"):
        if not path.is_symlink():
            found[str(path.relative_to(home))] = stat.S_IMODE(path.stat().st_mode)
    return found


def assert_private(home: Path) -> None:
    loose = {name: oct(mode) for name, mode in modes(home).items() if mode & 0o077}
    assert loose == {}


# -- interrupted batches ---------------------------------------------------------------------


def test_interrupted_batches_are_failed_and_audited_live_ones_kept(engine, sleeper):
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    add_batch(engine, "dead", pid=dead_pid(), lease=-1)
    add_batch(engine, "live", pid=sleeper.pid, lease=30)
    # A live lease decides, whatever the process id says (another machine's, or a container
    # whose host name is this one's): never failed while renewed.
    add_batch(engine, "same-host-other-pid", pid=dead_pid(), created_at=an_hour_ago, lease=30)
    # Stored before leases: leased until created_at plus the lease time.
    add_batch(engine, "legacy-old", pid=os.getpid(), created_at=an_hour_ago)
    add_batch(engine, "legacy-new", pid=dead_pid())
    add_batch(engine, "elsewhere", pid=dead_pid(), host="another-host", lease=-5)

    assert recover_interrupted(engine) == 3

    assert statuses(engine) == {
        "dead": "failed",
        "live": "processing",
        "same-host-other-pid": "processing",
        "legacy-old": "failed",
        "legacy-new": "processing",
        "elsewhere": "failed",
    }
    with engine.connect() as conn:
        entries = conn.execute(
            sa.select(audit.c.actor, audit.c.action, audit.c.batch_id, audit.c.detail)
        ).all()
        reasons = set(conn.execute(sa.select(batch.c.reason)).scalars()) - {None}
    assert sorted((a, act, b) for a, act, b, _ in entries) == [
        ("enumerator-1", "upload_failed", "dead"),
        ("enumerator-1", "upload_failed", "elsewhere"),
        ("enumerator-1", "upload_failed", "legacy-old"),
    ]
    assert reasons == {"interrupted: its server stopped renewing its lease before it finished"}
    assert recover_interrupted(engine) == 0  # nothing twice


# -- uploads left behind ---------------------------------------------------------------------


def _named(uploads: Path, pid: int, host_tag: str | None = None, tail: str = "x") -> Path:
    folder = uploads / f"upload.{pid}.{host_tag or housekeeping._host_tag()}.{tail}"
    folder.mkdir(parents=True)
    (folder / "batch.csv").write_text("returnee_id\nCASE-1\n")
    return folder


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    for inner in [*path.rglob("*"), path]:
        os.utime(inner, (then, then), follow_symlinks=False)


def test_uploads_of_dead_processes_are_removed_and_live_ones_kept(tmp_path, sleeper):
    uploads = tmp_path / "uploads"
    mine = housekeeping.new_upload_folder(uploads)
    (mine / "b.csv").write_text("x")
    live = _named(uploads, sleeper.pid)
    dead = _named(uploads, dead_pid())
    reused = _named(uploads, sleeper.pid, tail="old")  # written to before that process began
    _age(reused, 3600)
    other_host_recent = _named(uploads, 1, "0123456789ab")
    other_host_old = _named(uploads, 2, "ba9876543210")
    _age(other_host_old, housekeeping.ORPHAN_AGE_S + 60)
    legacy_old = uploads / "upload-abc123"
    legacy_old.mkdir()
    (legacy_old / "b.csv").write_text("x")
    _age(legacy_old, housekeeping.ORPHAN_AGE_S + 60)
    legacy_recent = uploads / "upload-def456"
    legacy_recent.mkdir()
    loose_old = uploads / "panel.csv"
    loose_old.write_text("x")
    _age(loose_old, housekeeping.ORPHAN_AGE_S + 60)

    removed = housekeeping.remove_orphan_uploads(uploads)

    assert removed == 5
    assert sorted(p.name for p in uploads.iterdir()) == sorted(
        p.name for p in (mine, live, other_host_recent, legacy_recent)
    )
    assert not dead.exists() and not reused.exists() and not legacy_old.exists()
    assert mine.name.startswith(f"upload.{os.getpid()}.")
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700


def test_no_uploads_folder_is_nothing_to_do(tmp_path):
    assert housekeeping.remove_orphan_uploads(tmp_path / "absent") == 0


# -- private files ---------------------------------------------------------------------------


def test_what_the_data_folder_holds_becomes_its_owners_only(tmp_path):
    home = tmp_path / "var"
    (home / "mlartifacts" / "1").mkdir(parents=True)
    (home / "mlartifacts" / "1" / "model.pkl").write_bytes(b"x")
    (home / "jobs").mkdir()
    (home / "jobs" / "j.log").write_text("x")
    (home / "tool").write_text("#!/bin/sh\n")
    for path in [home, *home.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (home / "tool").chmod(0o755)
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    outside.chmod(0o644)
    (home / "link").symlink_to(outside)

    changed = housekeeping.make_private(home)

    assert changed == 7
    assert modes(home) == {
        ".": 0o700,
        "mlartifacts": 0o700,
        "mlartifacts/1": 0o700,
        "mlartifacts/1/model.pkl": 0o600,
        "jobs": 0o700,
        "jobs/j.log": 0o600,
        "tool": 0o700,
    }
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644  # a link is not followed
    assert housekeeping.make_private(home) == 0
    assert housekeeping.make_private(tmp_path / "absent") == 0


def test_a_sqlite_store_and_its_wal_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        engine = open_store(f"sqlite:///{tmp_path / 'data' / 'store.db'}")
        add_batch(engine, "b", pid=None)
        wal = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "data").iterdir()}
        engine.dispose()
        assert wal == {"store.db": 0o600, "store.db-wal": 0o600, "store.db-shm": 0o600}
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
        # A store made before this rule: 0644 until it is opened again.
        (tmp_path / "data" / "store.db").chmod(0o644)
        open_store(f"sqlite:///{tmp_path / 'data' / 'store.db'}").dispose()
        assert stat.S_IMODE((tmp_path / "data" / "store.db").stat().st_mode) == 0o600
    finally:
        os.umask(old)


# -- erasure ---------------------------------------------------------------------------------


def _bytes_of(db: Path) -> dict[str, int]:
    return {
        suffix or "db": Path(f"{db}{suffix}").read_bytes().count(MARK.encode())
        for suffix in ("", "-wal", "-shm")
        if Path(f"{db}{suffix}").exists()
    }


def test_an_erasure_leaves_no_trace_in_the_sqlite_files(tmp_path, questionnaire, ingest):
    db = tmp_path / "erase.db"
    store = open_store(f"sqlite:///{db}")
    rows = [canonical_row(questionnaire, n, admin1=f"region-{n % 7}") for n in range(1, 400)]
    rows.insert(200, canonical_row(questionnaire, 9999, admin1=MARK, submission_id="mark-1"))
    ingest(write_csv(tmp_path / "a.csv", rows), store=store)
    checkpoint(store)  # the rows reach the database file, as SQLite's own checkpoints do
    later = [
        canonical_row(questionnaire, 9999, admin1=MARK, submission_id="mark-2"),
        canonical_row(questionnaire, 9999, admin1=MARK, submission_id="mark-1", sex="other"),
        canonical_row(questionnaire, 9999, admin1=MARK, submission_id="mark-3", sex="bad"),
    ]
    ingest(write_csv(tmp_path / "b.csv", later), store=store)  # a version, a rejected row
    before = _bytes_of(db)
    assert before["db"] > 0 and before["-wal"] > 0

    removed = erase_returnee(store, returnee_key("CASE-9999", SECRET), "admin")

    assert removed["submissions"] == 3 and removed["rejected_rows"] == 1
    assert _bytes_of(db) == {"db": 0, "-wal": 0, "-shm": 0}
    assert db.with_name("erase.db-wal").stat().st_size == 0
    store.dispose()


def test_a_checkpoint_is_harmless_on_either_store(engine):
    assert checkpoint(engine) is True


# -- a command that opens the store ----------------------------------------------------------


def test_a_command_does_the_housekeeping_of_a_start(home, sleeper, tmp_path, questionnaire):
    store = open_store(f"sqlite:///{home / 'reintegration.db'}")
    add_batch(store, "dead", pid=dead_pid(), lease=-1)
    add_batch(store, "live", pid=sleeper.pid, lease=60)
    store.dispose()
    uploads = home / "uploads"
    orphan, live = _named(uploads, dead_pid()), _named(uploads, sleeper.pid)
    (home / "jobs").mkdir()
    (home / "jobs" / "j.log").write_text("x")
    for path in [home, *home.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)

    erased = CliRunner().invoke(app, ["returnee", "erase", "CASE-0001"])

    assert erased.exit_code == 0, erased.output
    store = open_store(f"sqlite:///{home / 'reintegration.db'}")
    assert statuses(store) == {"dead": "failed", "live": "processing"}
    assert not orphan.exists() and live.exists()
    assert_private(home)
    # An ingest through the command line leaves only private files too.
    batch_file = write_csv(tmp_path / "b.csv", [canonical_row(questionnaire, 2)])
    ingested = CliRunner().invoke(app, ["ingest", str(batch_file)])
    assert ingested.exit_code == 0, ingested.output
    assert_private(home)
    store.dispose()
