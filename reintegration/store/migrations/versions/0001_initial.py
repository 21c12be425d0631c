"""The initial tables: batch, rejected_row, returnee, tombstone, submission, score, audit.

Revision ID: 0001
Revises:
Create Date: 2025-11-28

Written to match ``reintegration/store/schema.py`` at the time; a migration is a snapshot, so it
spells out every name and type instead of importing them from there.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batch",
        sa.Column("id", sa.String(36), nullable=False, comment="a new UUID for every upload"),
        sa.Column("uploader", sa.String(200), nullable=False),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("format", sa.String(20), nullable=True),
        sa.Column("form_version", sa.String(100), nullable=True),
        sa.Column("status", sa.String(20), nullable=False, comment="processing, done or failed"),
        sa.Column("reason", sa.Text(), nullable=True, comment="why a batch failed"),
        sa.Column("received", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("accepted", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rejected", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("duplicate", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "report", sa.JSON(), nullable=True, comment="errors, warnings and column findings"
        ),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column(
            "pid", sa.Integer(), nullable=True, comment="the process ingesting it, while processing"
        ),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            "status IN ('processing', 'done', 'failed')", name=op.f("ck_batch_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch")),
    )
    op.create_index(op.f("ix_batch_status"), "batch", ["status"])
    op.create_index(op.f("ix_batch_uploader"), "batch", ["uploader"])

    op.create_table(
        "rejected_row",
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False, comment="spreadsheet row number"),
        sa.Column("returnee_key", sa.String(64), nullable=True),
        sa.Column(
            "cells", sa.JSON(), nullable=False, comment="the row as sent, identifiers removed"
        ),
        sa.Column("errors", sa.JSON(), nullable=False, comment="[{column, value, message}]"),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batch.id"],
            name=op.f("fk_rejected_row_batch_id_batch"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "row", name=op.f("pk_rejected_row")),
    )
    op.create_index(op.f("ix_rejected_row_returnee_key"), "rejected_row", ["returnee_key"])

    op.create_table(
        "returnee",
        sa.Column("key", sa.String(64), nullable=False, comment="HMAC-SHA256 of the case number"),
        sa.Column("sex", sa.String(20), nullable=True),
        sa.Column("age_at_return", sa.Integer(), nullable=True),
        sa.Column("child", sa.Boolean(), nullable=True),
        sa.Column("return_type", sa.String(20), nullable=True),
        sa.Column("country", sa.String(3), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_returnee")),
    )
    op.create_index(op.f("ix_returnee_country"), "returnee", ["country"])

    op.create_table(
        "tombstone",
        sa.Column("returnee_key", sa.String(64), nullable=False),
        sa.Column("erased_at", TIMESTAMP, nullable=False),
        sa.Column("lifted_at", TIMESTAMP, nullable=True, comment="set when an admin lifts it"),
        sa.PrimaryKeyConstraint("returnee_key", name=op.f("pk_tombstone")),
    )

    op.create_table(
        "submission",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(
            "submission_id", sa.String(200), nullable=False, comment="identity of the interview"
        ),
        sa.Column("version", sa.Integer(), nullable=False, comment="1, then +1 per edit"),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("returnee_key", sa.String(64), nullable=False),
        sa.Column("interview_date", sa.Date(), nullable=False),
        sa.Column("return_date", sa.Date(), nullable=False),
        sa.Column("months_since_return", sa.Float(), nullable=False),
        sa.Column(
            "survey_round", sa.Integer(), nullable=True, comment="rank of the interview date"
        ),
        sa.Column("sex", sa.String(20), nullable=False),
        sa.Column("age_at_return", sa.Integer(), nullable=False),
        sa.Column("return_type", sa.String(20), nullable=False),
        sa.Column("country", sa.String(3), nullable=False),
        sa.Column("admin1", sa.String(200), nullable=True),
        sa.Column("enumerator_id", sa.String(200), nullable=True),
        sa.Column("form_version", sa.String(100), nullable=True),
        sa.Column("interview_mode", sa.String(20), nullable=True),
        sa.Column("assistance", sa.String(500), nullable=True, comment="codes, space-separated"),
        sa.Column("answers", sa.JSON(), nullable=False, comment="item id -> coded answer"),
        sa.Column("spec_version", sa.String(20), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batch.id"], name=op.f("fk_submission_batch_id_batch")
        ),
        sa.ForeignKeyConstraint(
            ["returnee_key"], ["returnee.key"], name=op.f("fk_submission_returnee_key_returnee")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission")),
        sa.UniqueConstraint("submission_id", "version", name=op.f("uq_submission_version")),
    )
    op.create_index(
        op.f("ix_submission_returnee"), "submission", ["returnee_key", "interview_date"]
    )
    op.create_index(op.f("ix_submission_batch"), "submission", ["batch_id"])

    op.create_table(
        "score",
        sa.Column(
            "submission_pk",
            sa.Integer(),
            nullable=False,
            comment="submission.id (one version of an interview)",
        ),
        sa.Column("model", sa.String(100), nullable=False, comment="registered model name"),
        sa.Column(
            "index_version",
            sa.String(100),
            nullable=False,
            comment="label, e.g. rss-v1-provisional",
        ),
        sa.Column("model_version", sa.Integer(), nullable=True, comment="MLflow version, if any"),
        sa.Column("economic", sa.Float(), nullable=True),
        sa.Column("social", sa.Float(), nullable=True),
        sa.Column("psychosocial", sa.Float(), nullable=True),
        sa.Column("composite", sa.Float(), nullable=True),
        sa.Column("coverage_economic", sa.Float(), nullable=True),
        sa.Column("coverage_social", sa.Float(), nullable=True),
        sa.Column("coverage_psychosocial", sa.Float(), nullable=True),
        sa.Column("level", sa.String(10), nullable=True),
        sa.Column("weakest_dimension", sa.String(20), nullable=True),
        sa.Column("sustainable", sa.Boolean(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_pk"],
            ["submission.id"],
            name=op.f("fk_score_submission_pk_submission"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_pk", "model", "index_version", name=op.f("pk_score")),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_score_version"), "score", ["index_version"])

    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(50), nullable=False, comment="upload, update, erase, ..."),
        sa.Column("batch_id", sa.String(36), nullable=True),
        sa.Column("target", sa.String(200), nullable=True, comment="a returnee key, a model, ..."),
        sa.Column("detail", sa.JSON(), nullable=True, comment="counts and ids, never answers"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    op.create_index(op.f("ix_audit_at"), "audit", ["at"])


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes.
    op.drop_table("audit")
    op.drop_table("score")
    op.drop_table("submission")
    op.drop_table("tombstone")
    op.drop_table("returnee")
    op.drop_table("rejected_row")
    op.drop_table("batch")
