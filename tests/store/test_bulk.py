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
