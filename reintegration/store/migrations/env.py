"""Alembic's entry point: runs the migrations on the connection that the store hands over.

``reintegration.store.engine`` passes a connection from ``create_store_engine`` in
``config.attributes["connection"]``, so migrations run with the store's SQLite settings. The
``alembic`` command (developers only, see ``alembic.ini`` here) builds that engine itself from
``-x url=...`` or the settings.
"""

from __future__ import annotations

from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context

from reintegration.store import schema

# Any constant shared by every process that migrates: concurrent upgrades on PostgreSQL queue on it.
_MIGRATION_LOCK = 0x7265696E  # "rein"


def _migrate(connection: sa.Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite's procedure for schema changes: foreign keys off (outside any transaction, where
        # the pragma would be ignored), so that a batch migration copying a table does not cascade
        # deletes or trip checks; then a foreign_key_check before committing.
        _sqlite_foreign_keys(connection, on=False)
    try:
        context.configure(
            connection=connection,
            target_metadata=schema.metadata,
            render_as_batch=sqlite,
            # The store's engine makes SQLite's DDL transactional (its "begin" hook): a failed
            # migration leaves nothing half done, and foreign_key_check runs before the commit.
            transactional_ddl=True,
            compare_type=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration broke foreign keys in {broken[:5]}")
    finally:
        if sqlite:
            _sqlite_foreign_keys(connection, on=True)


def _sqlite_foreign_keys(connection: sa.Connection, *, on: bool) -> None:
    # Through the DBAPI connection: SQLAlchemy would wrap the statement in a transaction.
    dbapi_connection = connection.connection.driver_connection
    assert dbapi_connection is not None
    dbapi_connection.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")


def _run_from_command_line() -> None:
    from reintegration.settings import get_settings
    from reintegration.store.engine import create_store_engine

    if context.config.config_file_name is not None:
        fileConfig(context.config.config_file_name, disable_existing_loggers=False)
    url = context.get_x_argument(as_dictionary=True).get("url") or get_settings().database_url
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


def _main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("offline (--sql) migrations are not supported: run them on a database")
    connection = context.config.attributes.get("connection")
    if connection is None:
        _run_from_command_line()
    else:
        _migrate(connection)


# pytest's --doctest-modules imports every module of the package; only Alembic, which installs
# `context.config` while it runs this file, should run the migrations.
if hasattr(context, "config"):
    _main()
