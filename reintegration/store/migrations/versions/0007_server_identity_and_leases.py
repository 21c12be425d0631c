"""Several servers on one database: the secret key's fingerprint and leases of running work.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

A snapshot of ``reintegration/store/schema.py``'s ``server_identity`` and ``work_lease`` at the
time (issue 14).

- ``server_identity`` holds the fingerprint of the key that pseudonymises case numbers
  (HMAC-SHA256 of a fixed label under the key; never the key). The first server or command
  that uses the key on this database writes it; one whose key differs refuses to start
  (:mod:`reintegration.store.identity`). A store upgraded from 0006 has none until then.
- ``work_lease`` holds a lease per running batch or job, renewed by the process doing it
  (:mod:`reintegration.store.leases`); work whose lease passed is marked failed by any server.
  Batches left ``processing`` and jobs left unfinished by 0006 have no lease: they count as
  leased until ``created_at`` plus the lease time, so a live one of an older version is given
  that long, then failed.

The downgrade drops both tables: the fingerprint is written again on the next start, the leases
are forgotten (and an older version goes back to host names and process ids).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "server_identity",
        sa.Column("name", sa.String(40), comment="what is fingerprinted: secret_key"),
        sa.Column(
            "fingerprint",
            sa.String(64),
            nullable=False,
            comment="HMAC-SHA256 of a fixed label under the key, hex; never the key itself",
        ),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_identity")),
    )
    op.create_table(
        "work_lease",
        sa.Column("kind", sa.String(20), comment="batch or job"),
        sa.Column("work_id", sa.String(36), comment="the batch's or job's id"),
        sa.Column("owner", sa.String(300), nullable=False, comment="host, pid and a random tag"),
        sa.Column(
            "lease_until",
            TIMESTAMP,
            nullable=False,
            comment="the work is taken for dead once this passes unrenewed (UTC)",
        ),
        sa.PrimaryKeyConstraint("kind", "work_id", name=op.f("pk_work_lease")),
    )


def downgrade() -> None:
    op.drop_table("work_lease")
    op.drop_table("server_identity")
