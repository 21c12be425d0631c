"""Users and tokens, risk rows, jobs, drift per batch, and the data version.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

A snapshot of ``reintegration/store/schema.py``'s tables of that name at the time.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column(
            "role", sa.String(20), nullable=False, comment="enumerator, manager, analyst, admin"
        ),
        sa.Column(
            "countries",
            sa.JSON(),
            nullable=True,
            comment="ISO3 codes the token is limited to, or null",
        ),
        sa.Column(
            "token_sha256", sa.String(64), nullable=False, comment="SHA-256 of the token, hex"
        ),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            "role IN ('enumerator', 'manager', 'analyst', 'admin')", name=op.f("ck_app_user_role")
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_app_user")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_app_user_token_sha256")),
    )

    op.create_table(
        "risk",
        sa.Column(
            "submission_pk",
            sa.Integer(),
            nullable=False,
            comment="the first survey the risk was computed from",
        ),
        sa.Column("model", sa.String(100), nullable=False, comment="registered model name"),
        sa.Column("model_version", sa.Integer(), nullable=False, comment="MLflow version"),
        sa.Column("returnee_key", sa.String(64), nullable=False),
        sa.Column(
            "probability", sa.Float(), nullable=False, comment="risk of not being sustainable"
        ),
        sa.Column("band", sa.String(10), nullable=False, comment="low, medium or high"),
        sa.Column("weakest_dimension", sa.String(20), nullable=True),
        sa.Column(
            "reasons", sa.JSON(), nullable=False, comment="lowest-scoring items, as item ids"
        ),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_pk"],
            ["submission.id"],
            name=op.f("fk_risk_submission_pk_submission"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_pk", "model", "model_version", name=op.f("pk_risk")),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_risk_returnee"), "risk", ["returnee_key"])
    op.create_index(
        op.f("ix_risk_model_version"), "risk", ["model", "model_version", "probability"]
    )

    op.create_table(
        "job",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column(
            "kind", sa.String(40), nullable=False, comment="train-index, train-risk, rescore"
        ),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False, server_default="0"),
        sa.Column(
            "message", sa.Text(), nullable=True, comment="what it is doing, or why it failed"
        ),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True, comment="e.g. the registered version"),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_job_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
    )
    op.create_index(op.f("ix_job_status"), "job", ["status"])

    op.create_table(
        "drift",
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("item", sa.String(100), nullable=False, comment="item id of the spec"),
        sa.Column("psi", sa.Float(), nullable=True, comment="population stability index"),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batch.id"], name=op.f("fk_drift_batch_id_batch"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "batch_id", "model", "model_version", "item", name=op.f("pk_drift")
        ),
    )

    op.create_table(
        "data_version",
        sa.Column("id", sa.Integer(), nullable=False, comment="always 1: a single row"),
        sa.Column(
            "version",
            sa.Integer(),
            nullable=False,
            comment="bumped by every write that changes what aggregates show; caches key on it",
        ),
        sa.CheckConstraint("id = 1", name=op.f("ck_data_version_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_version")),
    )
    op.execute("INSERT INTO data_version (id, version) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("data_version")
    op.drop_table("drift")
    op.drop_table("job")
    op.drop_table("risk")
    op.drop_table("app_user")
