"""Engines for the app's database and the migrations that shape it.

SQLite (the embedded default) runs in WAL mode, so a reader always sees the last committed state
without waiting. Every transaction begins with ``BEGIN IMMEDIATE``: a writer takes the write lock
before its first read, so concurrent writers queue behind one another instead of failing with
"database is locked" when they try to upgrade a read lock. Work that only reads can say so with
:func:`for_reading`: its transactions begin deferred and never wait for a writer.

PostgreSQL runs the same code through psycopg 3. Alembic is imported only when a migration has to
run, so opening a store that is already up to date costs one query.

For developers, the ``alembic`` command works with the ini file beside the migrations::

    alembic -c reintegration/store/migrations/alembic.ini revision --autogenerate -m "what"
    alembic -c reintegration/store/migrations/alembic.ini -x url=sqlite:///var/x.db upgrade head

Without ``-x url=...`` it uses ``REINTEGRATION_DATABASE_URL`` (or its default).

A SQLite store's file is readable by its owner only (0600; SQLite gives its ``-wal`` and ``-shm``
files the same mode). An erasure runs through :func:`for_erasure` (its deletes overwrite the
erased content) and is followed by :func:`checkpoint`, so no copy of the erased rows stays in
the write-ahead log.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event

from reintegration.errors import ConfigurationError

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest migration; a test fails if it differs from the newest file in migrations/versions.
HEAD_REVISION = "0011"
# Longer than the longest batch (an XLSX of 200 MB is read, checked and stored in minutes, not
# tens of minutes): a writer that arrives during a batch waits for it instead of failing.
BUSY_TIMEOUT_S = 600.0
# Page size of a new SQLite store.
PAGE_BYTES = 16384
# Page cache of a SQLite connection, in KiB.
CACHE_KIB = 256 * 1024
# Execution option of the transactions that only read (see for_reading).
READ_ONLY = "reintegration_read_only"
# Execution option of the transactions that erase (see for_erasure).
ERASING = "reintegration_erasing"
# How long a checkpoint after an erasure waits for readers of an older snapshot, in seconds.
CHECKPOINT_WAIT_S = 60.0
# Permission bits a data file or folder must not have: group and others get nothing.
NOT_PRIVATE = 0o077


def create_store_engine(url: str, *, busy_timeout: float = BUSY_TIMEOUT_S) -> sa.Engine:
    """Create an engine for the app's database, configured for concurrent use.

    Parameters
    ----------
    url : str
        ``sqlite:///<path>`` (the folder is created if needed), ``sqlite://`` (in memory) or
        ``postgresql://...`` (run through psycopg 3 whatever driver the URL names).
    busy_timeout : float, default BUSY_TIMEOUT_S
        SQLite only: seconds a transaction waits for the write lock before it fails.

    Returns
    -------
    sqlalchemy.Engine
        On SQLite: WAL journal, ``synchronous=NORMAL``, foreign keys enforced, and every
        transaction begun with ``BEGIN IMMEDIATE`` unless it is marked read-only (see
        :func:`for_reading`). On PostgreSQL: connections checked before use.

    Raises
    ------
    ConfigurationError
        When the URL names a database other than SQLite or PostgreSQL.

    Examples
    --------
    >>> engine = create_store_engine("sqlite://")
    >>> with engine.connect() as conn:
    ...     conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
    1
    >>> engine.dispose()
    """
    sa_url = sa.make_url(url)
    backend = sa_url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(sa_url, busy_timeout)
    if backend == "postgresql":
        return sa.create_engine(sa_url.set(drivername="postgresql+psycopg"), pool_pre_ping=True)
    raise ConfigurationError(
        f"The database URL names {backend!r}: the store runs on SQLite (sqlite:///path) or "
        "PostgreSQL (postgresql://user@host/database)."
    )


def for_reading(engine: sa.Engine) -> sa.Engine:
    """Return the same engine (same pool) for work that only reads.

    On SQLite its transactions begin deferred: in WAL mode they read the last committed state and
    never wait for a writer. A statement that writes through it may fail with "database is
    locked" when another writer is active, so keep writes on the engine itself. On PostgreSQL
    nothing changes.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        An engine from :func:`create_store_engine`.

    Returns
    -------
    sqlalchemy.Engine
        A view of ``engine`` with the read-only execution option.
    """
    return engine.execution_options(**{READ_ONLY: True})


def for_erasure(engine: sa.Engine) -> sa.Engine:
    """Return the same engine (same pool) for a transaction that erases a person's rows.

    On SQLite its transactions run with ``PRAGMA secure_delete = ON``: the deleted rows'
    bytes are overwritten with zeros instead of lingering in free space. Only erasures pay for
    that; ingests, whose deletes are scratch rows, do not. On PostgreSQL nothing changes (see
    :func:`checkpoint`).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        An engine from :func:`create_store_engine`.

    Returns
    -------
    sqlalchemy.Engine
        A view of ``engine`` with the erasing execution option.
    """
    return engine.execution_options(**{ERASING: True})


def checkpoint(engine: sa.Engine) -> bool:
    """Move the write-ahead log into the database file and empty it (after an erasure).

    On SQLite this is ``PRAGMA wal_checkpoint(TRUNCATE)``: the WAL still holds the pages of
    earlier transactions, erased rows included, until a checkpoint; TRUNCATE copies the newest
    pages into the database file and cuts the WAL to zero bytes. It waits up to
    ``CHECKPOINT_WAIT_S`` for readers of an older snapshot to finish.

    On PostgreSQL there is nothing to do from here: its WAL and table files belong to the
    server. Erased rows are invisible to every query once the erasure commits, VACUUM
    (autovacuum) reclaims their space and the server recycles WAL segments after its own
    checkpoints; what stays on disk until then, and in WAL archives and backups, is the
    database administrator's to protect (disk encryption, archive retention).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        An engine from :func:`create_store_engine`.

    Returns
    -------
    bool
        False when SQLite could not empty the WAL because readers stayed (the next checkpoint
        will); True otherwise.
    """
    if engine.dialect.name != "sqlite":
        return True
    raw = engine.raw_connection()
    try:
        # The connection runs in autocommit (see _configure): the pragma is outside any
        # transaction, as a checkpoint must be.
        cursor = raw.cursor()
        waited = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
        cursor.execute(f"PRAGMA busy_timeout = {int(CHECKPOINT_WAIT_S * 1000)}")
        try:
            busy = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            cursor.execute(f"PRAGMA busy_timeout = {int(waited)}")
            cursor.close()
    finally:
        raw.close()
    if busy:
        logger.warning(
            "the write-ahead log could not be emptied: readers were active; the next "
            "checkpoint will empty it"
        )
    return not busy


def _private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only, or make an existing one so.

    SQLite creates ``-wal`` and ``-shm`` with the mode of the database file, so once the file
    is 0600 they are too; ones left by an older version are fixed here as well.

    An existing file is never opened here: closing any descriptor of a file drops every POSIX
    lock the process holds on it, SQLite's included. A process that opened the store before
    (the demo, then its server) would lose its locks, and another process closing its last
    connection would then delete the write-ahead log under it: two processes, two logs, a
    revoked token still honoured. Only a file that does not exist yet is created, exclusively.
    """
    try:
        try:  # an empty file is an empty store
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if each.exists() and each.stat().st_mode & NOT_PRIVATE:
                each.chmod(each.stat().st_mode & 0o7700)
    except OSError as exc:  # someone else's file: SQLite says what is wrong when it opens it
        logger.warning("could not make the store's files private (%s)", exc.strerror or exc)


def _sqlite_engine(url: sa.URL, busy_timeout: float) -> sa.Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private_file(Path(database))
    engine = sa.create_engine(url, connect_args={"timeout": busy_timeout})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite would otherwise open transactions itself, late and deferred, and commit before
        # DDL; with this off, the "begin" hook below decides how every transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        # Taken only by a database that has no page yet (a new store): a row of a submission
        # is about 500 bytes, and 16 KiB pages hold them with less slack and fewer B-tree
        # levels than the default 4 KiB. An existing database keeps its page size.
        cursor.execute(f"PRAGMA page_size = {PAGE_BYTES}")
        _enter_wal(cursor, busy_timeout)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # A batch inserts into several B-trees keyed by random ids (UUIDs, HMACs): with
        # SQLite's 8 MB default page cache most of those inserts miss it. 256 MB at most.
        cursor.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        cursor.execute("PRAGMA temp_store = MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        options = conn.get_execution_options()
        erasing = bool(options.get(ERASING))
        record = conn.connection.info
        if record.get(ERASING, False) != erasing:  # set per connection; outside a transaction
            conn.exec_driver_sql(f"PRAGMA secure_delete = {'ON' if erasing else 'OFF'}")
            record[ERASING] = erasing
        if options.get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _enter_wal(cursor: Any, busy_timeout: float) -> None:
    # WAL is a property of the file: once set, reading it back takes no lock. Switching a new
    # file into WAL needs an exclusive lock, and SQLite answers "database is locked" there
    # without calling the busy handler when another process is creating the same file, so
    # this waits itself, for as long as the busy timeout.
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def current_revision(engine: sa.Engine) -> str | None:
    """Return the migration the database is at, or None when it has never been migrated.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        An engine from :func:`create_store_engine`.

    Returns
    -------
    str or None
        The revision recorded in ``alembic_version``.
    """
    with for_reading(engine).connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (``reintegration db upgrade``).

    Safe to run when the database is already there, and from several processes at once: they
    take turns (SQLite's write lock, a PostgreSQL advisory lock) and the later ones find nothing
    left to do.

    Parameters
    ----------
    url : str
        The database URL, as for :func:`create_store_engine`.
    revision : str, default "head"
        The target revision.

    Raises
    ------
    ConfigurationError
        When the database is at a revision this version of the code does not know.
    """
    engine = create_store_engine(url)
    try:
        _run_migrations(engine, "upgrade", revision)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Undo the migrations down to ``revision`` (``"base"``: an empty database).

    Parameters
    ----------
    url : str
        The database URL, as for :func:`create_store_engine`.
    revision : str
        The target revision, e.g. ``"base"`` or ``"-1"``.
    """
    engine = create_store_engine(url)
    try:
        _run_migrations(engine, "downgrade", revision)
    finally:
        engine.dispose()


def open_store(url: str) -> sa.Engine:
    """Create the engine of the app's database and bring its tables up to date.

    When the database is already at the newest migration this costs one query and Alembic is
    not loaded.

    Parameters
    ----------
    url : str
        The database URL, as for :func:`create_store_engine`.

    Returns
    -------
    sqlalchemy.Engine
        The engine, ready for use.

    Raises
    ------
    ConfigurationError
        When the database is at a revision this version of the code does not know.
    """
    engine = create_store_engine(url)
    if current_revision(engine) != HEAD_REVISION:
        _run_migrations(engine, "upgrade", "head")
    return engine


def alembic_config() -> Config:
    """Return the Alembic configuration of the packaged migrations, built without an ini file.

    Returns
    -------
    alembic.config.Config
        ``script_location`` points at ``reintegration/store/migrations`` wherever the package is
        installed.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    return config


def _run_migrations(engine: sa.Engine, direction: str, revision: str) -> None:
    from alembic import command
    from alembic.util import CommandError

    config = alembic_config()
    logger.info("migrating the store: %s to %s", direction, revision)
    with engine.connect() as connection:
        # env.py runs on this connection, so the engine's SQLite settings apply to migrations.
        config.attributes["connection"] = connection
        try:
            getattr(command, direction)(config, revision)
        except CommandError as exc:
            raise ConfigurationError(
                f"The database cannot be migrated ({exc}); if it was migrated by a newer version "
                "of reintegration, install that version."
            ) from exc
