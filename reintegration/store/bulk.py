"""Bulk loading inside the caller's transaction: SQLite ``executemany``, PostgreSQL ``COPY``.

SQLAlchemy's ORM-free inserts still build a parameter dict per row; for a million interviews
that is the slow part of an ingest. These helpers hand tuples straight to the driver on the
same connection, in the same transaction, so atomicity is unchanged.
"""

from __future__ import annotations

import io
import itertools
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa

# SQLite: rows of one INSERT statement in a bulk load. Several rows per statement share the
# driver's per-statement work, which pays for rows of numbers (scores: 4.3 s -> 3.5 s per
# million at 100 rather than 50 rows). But SQLite runs a multi-row VALUES through a
# co-routine that copies every value once more, which costs more than it saves when a row
# binds much text: the submissions of a million-row ingest (14 text values a row) took
# 19-25 s of CPU at 2 to 50 rows per statement and 12.6-15.8 s at one (the columns of every
# chunk captured, then loaded into fresh stores in alternating runs).
ROWS_PER_STATEMENT = 100
TEXT_VALUES_FOR_SINGLE_ROWS = 5  # a row binding at least this many text values goes alone
# What a missing integer or text is bound as on SQLite (see _bindable): values no column holds.
INT_NULL = -(2**63)
TEXT_NULL = "\x00"
TEXT_NULL_MARK = "NULLIF(?, char(0))"


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


@dataclass(frozen=True)
class Constant:
    """A column holding one value in every row (see :func:`constant`)."""

    value: Any
    length: int

    def __len__(self) -> int:
        return self.length


def constant(value: Any, length: int) -> Constant:
    """A column of ``length`` rows that all hold ``value``, for :func:`insert_columns`."""
    return Constant(value, length)


Column: TypeAlias = "Sequence[Any] | np.ndarray | pa.Array | pa.ChunkedArray | Constant"


def insert_columns(
    conn: sa.Connection, table: str, names: Sequence[str], columns: Sequence[Column]
) -> None:
    """Insert rows given column by column (of equal length, in ``names`` order).

    A column is a list (or any sequence), a NumPy array (NaN is NULL), an Arrow array, or a
    :func:`constant`. On SQLite the rows go to ``executemany`` as tuples. On PostgreSQL the
    columns become one Arrow table written as CSV and sent with a single
    ``COPY ... (FORMAT csv)``: no Python work per row. Arrow quotes every text value, so an
    empty text stays empty and only a missing value (an unquoted empty field) is NULL.
    """
    if not is_postgres(conn):
        _insert_sqlite(conn, table, names, columns)
        return
    arrays = [_arrow(values) for values in columns]
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


def _insert_sqlite(
    conn: sa.Connection, table: str, names: Sequence[str], columns: Sequence[Column]
) -> None:
    # A constant goes into the statement as a literal: nothing to convert and bind per row.
    # So does a column that happens to hold one value in every row (versions, flags, the form
    # version of a whole file).
    literals = [_sqlite_literal(_only_value(c)) for c in columns]
    n = len(columns[0]) if columns else 0
    varying: list[list[Any]] = []
    marks: list[str] = []
    texts = 0
    for values, literal in zip(columns, literals, strict=True):
        if literal is None:
            bound, mark = _bindable(values)
            varying.append(bound)
            marks.append(mark)
            texts += _is_text(values)
        else:
            marks.append(literal)
    row = "(" + ", ".join(marks) + ")"
    insert = f"INSERT INTO {table} ({', '.join(names)}) VALUES "
    driver = conn.connection.driver_connection
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        if not varying:
            cursor.executemany(insert + row, itertools.repeat((), n))
            return
        # Several rows per statement: the driver's per-statement work is shared by them.
        width = len(varying)
        limit = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # type: ignore[union-attr]
        per = max(1, min(ROWS_PER_STATEMENT, limit // width))
        if texts >= TEXT_VALUES_FOR_SINGLE_ROWS:
            cursor.executemany(insert + row, zip(*varying, strict=True))
            return
        flat = list(itertools.chain.from_iterable(zip(*varying, strict=True)))
        whole = n - n % per
        step = per * width
        cursor.executemany(
            insert + ", ".join([row] * per),
            (flat[k : k + step] for k in range(0, whole * width, step)),
        )
        if whole < n:
            cursor.execute(insert + ", ".join([row] * (n - whole)), flat[whole * width :])
    finally:
        cursor.close()


_NOT_CONSTANT = object()


def _only_value(values: Column) -> Any:
    """The value every row of the column holds, or a marker that there is none (a column
    with nulls or of no rows counts as varying, except a :func:`constant`)."""
    if isinstance(values, Constant):
        return values.value
    n = len(values)
    if not n:
        return _NOT_CONSTANT
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if values.null_count or values[0] != values[n - 1]:
            return _NOT_CONSTANT
        if pc.all(pc.equal(values, values[0])).as_py():
            return values[0].as_py()
        return _NOT_CONSTANT
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuO":
        first = values[0]
        if first is None or first != values[n - 1] or not bool(np.all(values == first)):
            return _NOT_CONSTANT
        return first.item() if isinstance(first, np.generic) else first
    return _NOT_CONSTANT


def _is_text(values: Column) -> bool:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    if isinstance(values, np.ndarray):
        return values.dtype.kind in "OUS"
    return False


def _sqlite_literal(value: Any) -> str | None:
    """``value`` as an SQLite literal, or None when it is bound as a parameter instead."""
    if value is _NOT_CONSTANT:
        return None
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return None


def _bindable(values: Column) -> tuple[list[Any], str]:
    """A column as Python values the SQLite driver binds at full speed, and the placeholder
    that reads one of them.

    The driver binds an exact ``int``, ``float`` or ``str`` directly but sends anything else,
    ``None`` and ``bool`` included, through its adapter lookup: about four times the cost of an
    integer, half a second more per million values. So booleans go as 0 and 1, as SQLite stores
    them anyway; a missing float as NaN, which SQLite stores as NULL; a missing integer or text
    as a sentinel that ``NULLIF`` in the placeholder turns back into NULL (unless the column
    holds that very value: then None is bound, slowly but right).
    """
    if isinstance(values, Constant):
        return [values.value] * values.length, "?"
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        kind = values.type
        if pa.types.is_boolean(kind) or pa.types.is_integer(kind):
            if pa.types.is_boolean(kind):
                values = pc.cast(values, pa.int64())
            if values.null_count and not pc.any(pc.equal(values, INT_NULL)).as_py():
                return pc.fill_null(values, INT_NULL).to_pylist(), f"NULLIF(?, {INT_NULL})"
            return values.to_pylist(), "?"
        if pa.types.is_floating(kind):
            return values.to_numpy(zero_copy_only=False).tolist(), "?"  # nulls become NaN
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            if values.null_count and not pc.any(pc.equal(values, TEXT_NULL)).as_py():
                return pc.fill_null(values, TEXT_NULL).to_pylist(), TEXT_NULL_MARK
            return values.to_pylist(), "?"
        return values.to_pylist(), "?"
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "b":
            return values.astype(np.int64).tolist(), "?"
        if values.dtype.kind == "O":
            listed = values.tolist()
            if None not in listed:
                return listed, "?"
            if TEXT_NULL not in listed and all(isinstance(v, str) for v in listed if v is not None):
                return [TEXT_NULL if v is None else v for v in listed], TEXT_NULL_MARK
            return listed, "?"
        return values.tolist(), "?"  # NaN, in a float array, is stored as NULL
    return list(values), "?"


def _arrow(values: Column) -> pa.Array | pa.ChunkedArray:
    """A column as an Arrow array, for the CSV sent to PostgreSQL."""
    if isinstance(values, Constant):
        if values.value is None:
            return pa.nulls(values.length)
        return pa.repeat(pa.scalar(values.value), values.length)
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    if isinstance(values, np.ndarray):
        return pa.array(values, from_pandas=True)
    return pa.array(list(values))


def defer_foreign_keys(conn: sa.Connection) -> bool:
    """Stop checking this transaction's foreign keys row by row, where the database allows it.

    On SQLite (``PRAGMA defer_foreign_keys``) the database checks them when the transaction
    commits, and refuses to commit a row whose parent is missing. On PostgreSQL, whose
    constraints are not deferrable, the checks (one trigger query per inserted row) are
    skipped (``session_replication_role = replica``, as ``pg_restore --disable-triggers``
    does) when the role may do so (a superuser, or a role granted ``SET`` on that
    parameter); the caller must then check set-wise before it commits, with
    :func:`check_references`.

    Returns
    -------
    bool
        True when a child row may now be inserted before its parent.
    """
    if not is_postgres(conn):
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        return True
    allowed = conn.exec_driver_sql(
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
    ).scalar()
    if not allowed and (conn.dialect.server_version_info or (0,)) >= (15,):
        allowed = conn.exec_driver_sql(
            "SELECT has_parameter_privilege('session_replication_role', 'SET')"
        ).scalar()
    if not allowed:
        return False
    conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    return True


def check_references(conn: sa.Connection, checks: Sequence[tuple[str, sa.Executable]]) -> None:
    """Check foreign keys set-wise after :func:`defer_foreign_keys` on PostgreSQL, and check
    them row by row again from then on.

    Parameters
    ----------
    checks : sequence of (str, sqlalchemy.Executable)
        What is checked (named in the error) and a query counting the rows that break it.

    Raises
    ------
    sqlalchemy.exc.IntegrityError
        When a query counts a row: the caller's transaction must not commit.
    """
    if not is_postgres(conn):
        return  # SQLite checks deferred foreign keys itself when the transaction commits
    for what, query in checks:
        broken = conn.execute(query).scalar()
        if broken:
            raise sa.exc.IntegrityError(str(query), None, Exception(f"{broken} rows break {what}"))
    conn.exec_driver_sql("SET LOCAL session_replication_role = DEFAULT")


def scratch_table(conn: sa.Connection, name: str, columns: dict[str, str]) -> None:
    """An empty temporary table of this connection (created once, emptied on every use)."""
    spec = ", ".join(f"{c} {t}" for c, t in columns.items())
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({spec})")
    # PostgreSQL: DELETE would leave every row behind as a dead tuple (nothing vacuums a
    # temporary table), and a batch refills the same table once per chunk; TRUNCATE empties it.
    conn.exec_driver_sql(f"{'TRUNCATE' if is_postgres(conn) else 'DELETE FROM'} {name}")
