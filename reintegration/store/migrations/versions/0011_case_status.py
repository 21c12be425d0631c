"""The worklist's case status: "contacted" or "follow-up planned", set by analysts and admins.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

A snapshot of ``reintegration/store/schema.py``'s ``case_status`` at the time (issue 15). One
row per change, newest last, so the returnee's page shows who set what and when; the rows are
the returnee's data, removed by an erasure (explicitly, and by the foreign key's cascade). The
downgrade drops the table and the statuses with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "case_status",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(
            "returnee_key",
            sa.String(length=64),
            nullable=False,
            comment="the returnee; erased with them",
        ),
        sa.Column(
            "status",
            sa.String(length=20),
            nullable=False,
            comment="none, contacted or follow_up_planned",
        ),
        sa.Column("actor", sa.String(length=200), nullable=False, comment="who set it"),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "status IN ('none', 'contacted', 'follow_up_planned')",
            name=op.f("ck_case_status_status"),
        ),
        sa.ForeignKeyConstraint(
            ["returnee_key"],
            ["returnee.key"],
            name=op.f("fk_case_status_returnee_key_returnee"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_status")),
    )
    op.create_index("ix_case_status_returnee", "case_status", ["returnee_key", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_case_status_returnee", table_name="case_status")
    op.drop_table("case_status")
