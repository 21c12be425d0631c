"""A process that opens its store twice keeps SQLite's locks on it.

Closing any descriptor of a file drops every POSIX lock the process holds on that file. When a
second engine was created for a store this process already had open, the store file was opened
and closed to make it private: the process lost SQLite's locks, and the next process to close
its last connection took itself for the last one, checkpointed and deleted the write-ahead log
under the first. Seen on the demo: a user revoked from the command line kept working on the
server, whose connections went on with a deleted log.
"""

from __future__ import annotations

import subprocess
import sys

import sqlalchemy as sa

from reintegration.store.engine import for_reading, open_store
from reintegration.store.schema import app_user, audit

WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=30)
conn.execute("INSERT INTO audit (at, actor, action) VALUES ('2026-01-01', 'other', 'probe')")
conn.commit()
conn.close()
"""


def test_a_second_engine_on_the_same_store_keeps_the_first_ones_locks(tmp_path):
    path = tmp_path / "store.db"
    first = open_store(f"sqlite:///{path}")
    try:
        with for_reading(first).connect() as held:  # kept open, like a server's pool
            held.execute(sa.select(sa.func.count()).select_from(app_user)).scalar()
            second = open_store(f"sqlite:///{path}")  # the demo opens its store, then serves
            second.dispose()

            # Another process writes and closes its only connection.
            subprocess.run([sys.executable, "-c", WRITER, str(path)], check=True, timeout=60)

            # It was not the last connection: the log stays, and this process sees its write.
            assert path.with_name("store.db-wal").exists()
            held.rollback()
            probes = held.execute(
                sa.select(sa.func.count()).select_from(audit).where(audit.c.action == "probe")
            ).scalar()
            assert probes == 1
    finally:
        first.dispose()


def test_a_new_store_file_is_created_private(tmp_path):
    path = tmp_path / "new.db"
    engine = open_store(f"sqlite:///{path}")
    engine.dispose()
    assert path.stat().st_mode & 0o777 == 0o600
