"""Bulk loading inside the caller's transaction: SQLite ``executemany``, PostgreSQL ``COPY``.

SQLAlchemy's ORM-free inserts still build a parameter dict per row; for a million interviews
that is the slow part of an ingest. These helpers hand tuples straight to the driver on the
same connection, in the same transaction, so atomicity is unchanged.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa


def is_postgres(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql"


def timestamp(conn: sa.Connection, moment: datetime) -> Any:
    """A timestamp as the column type stores it: SQLAlchemy keeps SQLite's as naive text."""
    if is_postgres(conn):
        return moment
    return moment.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def insert_rows(
    conn: sa.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert rows (tuples in ``columns`` order) with the driver's fastest path.

    Values must already be in a form both drivers take: text, numbers, booleans, None, and
    dates as ISO text.
    """
    driver = conn.connection.driver_connection
    names = ", ".join(columns)
    if is_postgres(conn):
        with driver.cursor() as cursor:  # type: ignore[union-attr]
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
    finally:
        cursor.close()


def insert_columns(
    conn: sa.Connection, table: str, names: Sequence[str], columns: Sequence[Sequence[Any]]
) -> None:
    """Insert rows given column by column (lists of equal length, in ``names`` order).

    On PostgreSQL the columns become one Arrow table written as CSV and sent with a single
    ``COPY ... (FORMAT csv)``: no Python work per row. Arrow quotes every text value, so an
    empty text stays empty and only a missing value (an unquoted empty field) is NULL.
    """
    if not is_postgres(conn):
        insert_rows(conn, table, names, zip(*columns, strict=True))
        return
    arrays = [pa.array(list(values)) for values in columns]
    buffer = io.BytesIO()
    pacsv.write_csv(
        pa.table(arrays, names=[f"c{k}" for k in range(len(names))]),
        buffer,
        pacsv.WriteOptions(include_header=False, quoting_style="needed"),
    )
    driver = conn.connection.driver_connection
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        with cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(buffer.getbuffer())


def scratch_table(conn: sa.Connection, name: str, columns: dict[str, str]) -> None:
    """An empty temporary table of this connection (created once, emptied on every use)."""
    spec = ", ".join(f"{c} {t}" for c, t in columns.items())
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({spec})")
    conn.exec_driver_sql(f"DELETE FROM {name}")
