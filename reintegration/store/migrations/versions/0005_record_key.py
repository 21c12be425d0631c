"""A permanent random record key for every stored interview version.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

A snapshot of ``reintegration/store/schema.py``'s ``submission.record_key`` at the time (issue
12). Published figures are protected by cell-key perturbation: a cell's noise is a function of
the keys of the records in it, so the same cell always gets the same answer and the difference
of two nearly equal answers is noise, not a person. Each row inserted from now on draws its key
when it is stored; the rows stored before get theirs here, each its own
``secrets.randbits(31)``, a page of rows at a time so that a store of a million interviews is
never held in memory. The column is made NOT NULL once every row has a key (SQLite rebuilds
the table for that).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMMENT = (
    "permanent random key of this interview version, for cell-key perturbation (docs/privacy.md)"
)
PAGE = 20_000  # rows given their keys per round trip
BITS = 31  # reintegration.store.record_keys.RECORD_KEY_BITS at the time


def upgrade() -> None:
    op.add_column(
        "submission", sa.Column("record_key", sa.Integer(), nullable=True, comment=COMMENT)
    )
    _draw_keys()
    with op.batch_alter_table("submission") as batch:
        batch.alter_column(
            "record_key", existing_type=sa.Integer(), existing_comment=COMMENT, nullable=False
        )


def _draw_keys() -> None:
    conn = op.get_bind()
    submission = sa.table("submission", sa.column("id", sa.Integer))
    last = 0
    while True:
        ids = (
            conn.execute(
                sa.select(submission.c.id)
                .where(submission.c.id > last)
                .order_by(submission.c.id)
                .limit(PAGE)
            )
            .scalars()
            .all()
        )
        if not ids:
            return
        _set_keys(conn, ids, [secrets.randbits(BITS) for _ in ids])
        last = ids[-1]


def _set_keys(conn: sa.Connection, ids: Sequence[int], keys: list[int]) -> None:
    if conn.dialect.name == "postgresql":  # one statement per page, not a round trip per row
        conn.execute(
            sa.text(
                "UPDATE submission SET record_key = k.key"
                " FROM unnest(CAST(:ids AS integer[]), CAST(:keys AS integer[])) AS k(id, key)"
                # the page's range, so that the join reads the page, not the table
                " WHERE submission.id = k.id AND submission.id BETWEEN :first AND :last"
            ),
            {"ids": ids, "keys": keys, "first": ids[0], "last": ids[-1]},
        )
    else:  # SQLite's executemany loops in C
        conn.exec_driver_sql(
            "UPDATE submission SET record_key = ? WHERE id = ?", list(zip(keys, ids, strict=True))
        )


def downgrade() -> None:
    with op.batch_alter_table("submission") as batch:
        batch.drop_column("record_key")
