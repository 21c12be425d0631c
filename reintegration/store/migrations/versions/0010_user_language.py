"""Each user's language: the dashboards' language switch remembered across sessions and servers.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

A snapshot of ``reintegration/store/schema.py``'s ``user_preference`` at the time (issue 15).
A table of its own rather than a column of ``app_user``: SQLite would rebuild the users' table
to add a foreign-keyed column, and a user without a row simply has no choice yet (the browser's
language applies). The downgrade drops it: users fall back to their browser's language.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "user_preference",
        sa.Column("name", sa.String(length=200), nullable=False, comment="the user"),
        sa.Column("language", sa.String(length=8), nullable=False, comment="en, fr or ar"),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["name"],
            ["app_user.name"],
            name=op.f("fk_user_preference_name_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_user_preference")),
    )


def downgrade() -> None:
    op.drop_table("user_preference")
