"""Bulk loading: every kind of column arrives intact, on both stores, whatever the row count."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa

from reintegration.store.bulk import ROWS_PER_STATEMENT, constant, insert_columns

TABLE = sa.Table(
    "bulk_probe",
    sa.MetaData(),
    sa.Column("n", sa.Integer, primary_key=True),
    sa.Column("label", sa.String(50)),
    sa.Column("share", sa.Float),
    sa.Column("flag", sa.Boolean),
    sa.Column("batch", sa.String(50)),
    sa.Column("blank", sa.String(10)),
    sa.Column("version", sa.Integer),
)


@pytest.mark.parametrize("rows", [0, 1, ROWS_PER_STATEMENT, 2 * ROWS_PER_STATEMENT + 7])
def test_insert_columns_takes_lists_arrays_arrow_and_constants(engine, rows):
    TABLE.create(engine)
    labels = [None if k % 3 == 0 else f"it's {k}" for k in range(rows)]
    shares = np.array([np.nan if k % 4 == 0 else k / 10 for k in range(rows)])
    with engine.begin() as conn:
        insert_columns(
            conn,
            TABLE.name,
            [c.name for c in TABLE.columns],
            [
                list(range(rows)),
                pa.array(labels, pa.string()),
                shares,
                np.arange(rows) % 2 == 0,
                constant("o'clock batch", rows),
                constant(None, rows),
                constant(7, rows),
            ],
        )
    with engine.connect() as conn:
        got = conn.execute(sa.select(TABLE).order_by(TABLE.c.n)).all()
    assert [tuple(r) for r in got] == [
        (
            k,
            labels[k],
            None if k % 4 == 0 else pytest.approx(k / 10),
            k % 2 == 0,
            "o'clock batch",
            None,
            7,
        )
        for k in range(rows)
    ]


NULLABLE = sa.Table(
    "bulk_nulls",
    sa.MetaData(),
    sa.Column("n", sa.Integer, primary_key=True),
    sa.Column("a", sa.String(20)),
    sa.Column("b", sa.String(20)),
    sa.Column("c", sa.String(20)),
    sa.Column("d", sa.String(20)),
    sa.Column("e", sa.String(20)),
    sa.Column("count", sa.BigInteger),
    sa.Column("flag", sa.Boolean),
    sa.Column("share", sa.Float),
)


def _nullable_columns(rows: int, nul_text: str) -> tuple[list, list]:
    """Columns with every kind of missing value, and the rows they must read back as."""
    text = [None if k % 3 == 0 else f"t{k}" for k in range(rows)]
    nul = [nul_text if k % 5 == 1 else (None if k % 5 == 2 else "x") for k in range(rows)]
    counts = [None if k % 4 == 0 else (-(2**63) if k % 4 == 1 else k) for k in range(rows)]
    flags = [None if k % 3 == 1 else k % 2 == 0 for k in range(rows)]
    shares = [None if k % 2 else k / 8 for k in range(rows)]
    same = ["same"] * rows
    columns = [
        np.arange(rows),
        pa.array(text, pa.string()),  # text with nulls, bound as a sentinel
        np.array(text, dtype=object),  # the same as Python objects
        pa.array(nul, pa.string()),  # SQLite: holds the sentinel itself, so bound as None
        np.array(same, dtype=object),  # one value in every row: a literal
        pa.array(same, pa.string()),
        pa.array(counts, pa.int64()),  # holds the integer sentinel itself
        pa.array(flags, pa.bool_()),
        pa.array(shares, pa.float64()),
    ]
    expected = [
        (k, text[k], text[k], nul[k], "same", "same", counts[k], flags[k], shares[k])
        for k in range(rows)
    ]
    return columns, expected


@pytest.mark.parametrize("rows", [1, 2, 3 * ROWS_PER_STATEMENT + 1])
def test_insert_columns_keeps_missing_values_apart_from_every_real_value(engine, rows):
    """Missing text, integers, booleans and floats come back as NULL, a value equal to the
    placeholder of a missing value comes back as itself, and a column of one repeated value
    (sent as a literal) is stored in every row. Five text columns: one row per statement."""
    NULLABLE.create(engine)
    # PostgreSQL cannot hold a NUL character in text (the readers drop it).
    columns, expected = _nullable_columns(rows, "\x00" if engine.dialect.name == "sqlite" else "y")
    with engine.begin() as conn:
        insert_columns(conn, NULLABLE.name, [c.name for c in NULLABLE.columns], columns)
    with engine.connect() as conn:
        got = conn.execute(sa.select(NULLABLE).order_by(NULLABLE.c.n)).all()
    assert [tuple(r) for r in got] == expected


def test_a_column_with_one_value_in_some_rows_only_is_not_taken_for_a_constant(engine):
    NULLABLE.create(engine)
    n = 7
    columns = [
        np.arange(n),
        np.array(["x"] * (n - 1) + ["y"], dtype=object),
        pa.array(["x", "y"] + ["x"] * (n - 2), pa.string()),  # first and last agree
        np.array(["x"] * n, dtype=object),
        np.array(["x"] * n, dtype=object),
        np.array(["x"] * n, dtype=object),
        np.array([5, 6, 5, 5, 5, 5, 5]),
        np.array([True] * (n - 1) + [False]),
        np.array([0.5] * n),
    ]
    with engine.begin() as conn:
        insert_columns(conn, NULLABLE.name, [c.name for c in NULLABLE.columns], columns)
    with engine.connect() as conn:
        got = conn.execute(
            sa.select(NULLABLE.c.a, NULLABLE.c.b, NULLABLE.c.count, NULLABLE.c.flag).order_by(
                NULLABLE.c.n
            )
        ).all()
    assert [tuple(r) for r in got] == [
        ("x", "x", 5, True),
        ("x", "y", 6, True),
        *[("x", "x", 5, True)] * 4,
        ("y", "x", 5, False),
    ]
