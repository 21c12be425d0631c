"""Dashboard sessions held in the store.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

A snapshot of ``reintegration/store/schema.py``'s ``dashboard_session`` at the time: a logout
ends a session on every worker and server sharing the store, not only in the browser that
dropped its cookie.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dashboard_session",
        sa.Column(
            "id",
            sa.String(64),
            nullable=False,
            comment="SHA-256 of the session secret the browser's cookie holds, hex",
        ),
        sa.Column(
            "token_sha256",
            sa.String(64),
            nullable=False,
            comment="the token the session was opened with; its user is read again on every "
            "request",
        ),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True, comment="set at logout"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_session")),
    )
    op.create_index(op.f("ix_dashboard_session_expires_at"), "dashboard_session", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_dashboard_session_expires_at"), table_name="dashboard_session")
    op.drop_table("dashboard_session")
