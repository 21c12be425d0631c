"""An optional design or retention weight on every stored interview version.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

A snapshot of ``reintegration/store/schema.py``'s ``submission.weight`` at the time (issue 13).
The canonical batch format gained an optional ``weight`` column (a positive number per
interview) that every estimate uses when present. The weight is part of an interview's
content: a changed weight is an edit. Rows stored before this revision have none (NULL), and
their content hashes are unchanged: a blank weight is not hashed (``reintegration.prepare``),
so re-uploading the file they came from finds them as duplicates. Adding a nullable column
touches no row, on SQLite and PostgreSQL alike; the downgrade drops it (SQLite rebuilds the
table for that), losing the weights stored meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMMENT = "design or retention weight of this interview (positive); NULL when not given"


def upgrade() -> None:
    op.add_column("submission", sa.Column("weight", sa.Float(), nullable=True, comment=COMMENT))


def downgrade() -> None:
    with op.batch_alter_table("submission") as batch:
        batch.drop_column("weight")
