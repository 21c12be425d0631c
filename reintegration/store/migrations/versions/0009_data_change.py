"""What each data version changed: a small change log for incremental readers.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-05

A snapshot of ``reintegration/store/schema.py``'s ``data_change`` at the time (issue 14).
Every write that bumps the data version (``reintegration.store.data_version``) adds a row in
the same transaction: a stored batch (its id), an erasure (the submission ids it removed, never
the returnee's key) or anything else (a rescoring). The analytics frame applies batches and
erasures to its copy instead of reading a million rows again; a version without a row (the
writes before this revision, or rows pruned as the log is kept short) makes it reload in full.
The downgrade drops the table: readers then reload after every write, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_change",
        sa.Column(
            "version",
            sa.Integer(),
            nullable=False,
            comment="the data version this write made",
        ),
        sa.Column(
            "kind",
            sa.String(length=20),
            nullable=False,
            comment="batch, erasure or other (anything else: readers reload everything)",
        ),
        sa.Column(
            "batch_id",
            sa.String(length=36),
            nullable=True,
            comment="the stored batch (kind batch)",
        ),
        sa.Column(
            "removed",
            sa.JSON(),
            nullable=True,
            comment="submission ids removed (kind erasure); no key, no content",
        ),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_data_change")),
    )


def downgrade() -> None:
    op.drop_table("data_change")
