"""The app's tables (DESIGN.md, "Data model"), as SQLAlchemy Core metadata.

The same tables run on SQLite (the embedded default) and PostgreSQL; Alembic migrations in
``reintegration/store/migrations`` create them, and a test checks that the migrations and this
module agree. Answers are kept as the coded canonical answers of the questionnaire spec, so a
change of spec needs no change of table: since the ingest throughput work, one JSON string of the
spec version and every item's code in spec order (``"1.0.0|yes|never||…"``); rows stored before
hold a JSON object of item id to code, and ``reintegration.store.answers.decode_answers`` reads
both (the column's comment, which a migration would have to rebuild the table to change on
SQLite, still names the older form). Scores keep one column per dimension because every
aggregate reads them.

No direct identifier is ever stored: a returnee is known by ``key``, the HMAC-SHA256 of their
case number.
"""

from __future__ import annotations

import sqlalchemy as sa

from reintegration.limits import STORED_TEXT_CHARS

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TIMESTAMP = sa.DateTime(timezone=True)
WEIGHT_COMMENT = "design or retention weight of this interview (positive); NULL when not given"

batch = sa.Table(
    "batch",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True, comment="a new UUID for every upload"),
    sa.Column("uploader", sa.String(200), nullable=False),
    sa.Column("file_name", sa.String(500), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("format", sa.String(20), nullable=True),
    sa.Column("form_version", sa.String(STORED_TEXT_CHARS["form_version"]), nullable=True),
    sa.Column("status", sa.String(20), nullable=False, comment="processing, done or failed"),
    sa.Column("reason", sa.Text, nullable=True, comment="why a batch failed"),
    sa.Column("received", sa.Integer, nullable=False, server_default="0"),
    sa.Column("accepted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rejected", sa.Integer, nullable=False, server_default="0"),
    sa.Column("duplicate", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("report", sa.JSON, nullable=True, comment="errors, warnings and column findings"),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column(
        "pid", sa.Integer, nullable=True, comment="the process ingesting it, while processing"
    ),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("finished_at", TIMESTAMP, nullable=True),
    sa.CheckConstraint("status IN ('processing', 'done', 'failed')", name="status"),
)
sa.Index("ix_batch_status", batch.c.status)
sa.Index("ix_batch_uploader", batch.c.uploader)

rejected_row = sa.Table(
    "rejected_row",
    metadata,
    sa.Column("batch_id", sa.ForeignKey("batch.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("row", sa.Integer, primary_key=True, comment="spreadsheet row number"),
    sa.Column("returnee_key", sa.String(64), nullable=True),
    sa.Column("cells", sa.JSON, nullable=False, comment="the row as sent, identifiers removed"),
    sa.Column("errors", sa.JSON, nullable=False, comment="[{column, value, message}]"),
)
sa.Index("ix_rejected_row_returnee_key", rejected_row.c.returnee_key)

batch_issue = sa.Table(
    "batch_issue",
    metadata,
    sa.Column("batch_id", sa.ForeignKey("batch.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, comment="order of the report, from 0"),
    sa.Column("kind", sa.String(7), nullable=False, comment="error or warning"),
    sa.Column("row", sa.Integer, nullable=True, comment="spreadsheet row; null for the file"),
    sa.Column("column", sa.Text, nullable=True),
    sa.Column("value", sa.Text, nullable=True, comment="the cell as sent (errors only)"),
    sa.Column("message", sa.Text, nullable=False),
    sa.CheckConstraint("kind IN ('error', 'warning')", name="kind"),
)
"""Every error and warning of a done batch's report, one row each, so that a batch of a million
rejected rows is written and read in pages, never held whole (the batch's ``report`` keeps the
first ones and the totals)."""

returnee = sa.Table(
    "returnee",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True, comment="HMAC-SHA256 of the case number"),
    sa.Column("sex", sa.String(20), nullable=True),
    sa.Column("age_at_return", sa.Integer, nullable=True),
    sa.Column("child", sa.Boolean, nullable=True),
    sa.Column("return_type", sa.String(20), nullable=True),
    sa.Column("country", sa.String(3), nullable=True),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
)
sa.Index("ix_returnee_country", returnee.c.country)

tombstone = sa.Table(
    "tombstone",
    metadata,
    sa.Column("returnee_key", sa.String(64), primary_key=True),
    sa.Column("erased_at", TIMESTAMP, nullable=False),
    sa.Column("lifted_at", TIMESTAMP, nullable=True, comment="set when an admin lifts it"),
)

submission = sa.Table(
    "submission",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "submission_id",
        sa.String(STORED_TEXT_CHARS["submission_id"]),
        nullable=False,
        comment="identity of the interview",
    ),
    sa.Column("version", sa.Integer, nullable=False, comment="1, then +1 per edit"),
    sa.Column("current", sa.Boolean, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("batch_id", sa.ForeignKey("batch.id"), nullable=False),
    sa.Column("returnee_key", sa.ForeignKey("returnee.key"), nullable=False),
    sa.Column("interview_date", sa.Date, nullable=False),
    sa.Column("return_date", sa.Date, nullable=False),
    sa.Column("months_since_return", sa.Float, nullable=False),
    sa.Column("survey_round", sa.Integer, nullable=True, comment="rank of the interview date"),
    sa.Column("sex", sa.String(20), nullable=False),
    sa.Column("age_at_return", sa.Integer, nullable=False),
    sa.Column("return_type", sa.String(20), nullable=False),
    sa.Column("country", sa.String(3), nullable=False),
    sa.Column("admin1", sa.String(STORED_TEXT_CHARS["admin1"]), nullable=True),
    sa.Column("enumerator_id", sa.String(STORED_TEXT_CHARS["enumerator_id"]), nullable=True),
    sa.Column("form_version", sa.String(STORED_TEXT_CHARS["form_version"]), nullable=True),
    sa.Column("interview_mode", sa.String(20), nullable=True),
    sa.Column("assistance", sa.String(500), nullable=True, comment="codes, space-separated"),
    sa.Column("answers", sa.JSON, nullable=False, comment="item id -> coded answer"),
    sa.Column("spec_version", sa.String(20), nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    # Added by migration 0005 (issue 12): drawn once when the row is inserted, never changed.
    sa.Column(
        "record_key",
        sa.Integer,
        nullable=False,
        comment="permanent random key of this interview version, for cell-key perturbation "
        "(docs/privacy.md)",
    ),
    # Added by migration 0006 (issue 13): part of the interview's content, NULL when not given.
    sa.Column("weight", sa.Float, nullable=True, comment=WEIGHT_COMMENT),
    sa.UniqueConstraint("submission_id", "version", name="uq_submission_version"),
)
sa.Index("ix_submission_returnee", submission.c.returnee_key, submission.c.interview_date)
sa.Index("ix_submission_batch", submission.c.batch_id)

score = sa.Table(
    "score",
    metadata,
    sa.Column(
        "submission_pk",
        sa.ForeignKey("submission.id", ondelete="CASCADE"),
        primary_key=True,
        comment="submission.id (one version of an interview)",
    ),
    sa.Column("model", sa.String(100), primary_key=True, comment="registered model name"),
    sa.Column(
        "index_version", sa.String(100), primary_key=True, comment="label, e.g. rss-v1-provisional"
    ),
    sa.Column("model_version", sa.Integer, nullable=True, comment="MLflow version, if any"),
    sa.Column("economic", sa.Float, nullable=True),
    sa.Column("social", sa.Float, nullable=True),
    sa.Column("psychosocial", sa.Float, nullable=True),
    sa.Column("composite", sa.Float, nullable=True),
    sa.Column("coverage_economic", sa.Float, nullable=True),
    sa.Column("coverage_social", sa.Float, nullable=True),
    sa.Column("coverage_psychosocial", sa.Float, nullable=True),
    sa.Column("level", sa.String(10), nullable=True),
    sa.Column("weakest_dimension", sa.String(20), nullable=True),
    sa.Column("sustainable", sa.Boolean, nullable=True),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    # On SQLite the primary key is the table itself (no rowid B-tree beside a key index):
    # scores arrive in submission order, so a batch appends to one B-tree instead of two.
    sqlite_with_rowid=False,
)
sa.Index("ix_score_version", score.c.index_version)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", TIMESTAMP, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(50), nullable=False, comment="upload, update, erase, ..."),
    sa.Column("batch_id", sa.String(36), nullable=True),
    sa.Column("target", sa.String(200), nullable=True, comment="a returnee key, a model, ..."),
    sa.Column("detail", sa.JSON, nullable=True, comment="counts and ids, never answers"),
)
sa.Index("ix_audit_at", audit.c.at)

# --- Added by migration 0002: users and tokens, risk rows, jobs, drift, the data version. ---

app_user = sa.Table(
    "app_user",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("role", sa.String(20), nullable=False, comment="enumerator, manager, analyst, admin"),
    sa.Column(
        "countries", sa.JSON, nullable=True, comment="ISO3 codes the token is limited to, or null"
    ),
    sa.Column("token_sha256", sa.String(64), nullable=False, comment="SHA-256 of the token, hex"),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("revoked_at", TIMESTAMP, nullable=True),
    sa.CheckConstraint("role IN ('enumerator', 'manager', 'analyst', 'admin')", name="role"),
    sa.UniqueConstraint("token_sha256", name="uq_app_user_token_sha256"),
)

risk = sa.Table(
    "risk",
    metadata,
    sa.Column(
        "submission_pk",
        sa.ForeignKey("submission.id", ondelete="CASCADE"),
        primary_key=True,
        comment="the first survey the risk was computed from",
    ),
    sa.Column("model", sa.String(100), primary_key=True, comment="registered model name"),
    sa.Column("model_version", sa.Integer, primary_key=True, comment="MLflow version"),
    sa.Column("returnee_key", sa.String(64), nullable=False),
    sa.Column("probability", sa.Float, nullable=False, comment="risk of not being sustainable"),
    sa.Column("band", sa.String(10), nullable=False, comment="low, medium or high"),
    sa.Column("weakest_dimension", sa.String(20), nullable=True),
    sa.Column("reasons", sa.JSON, nullable=False, comment="lowest-scoring items, as item ids"),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sqlite_with_rowid=False,
)
sa.Index("ix_risk_returnee", risk.c.returnee_key)
sa.Index("ix_risk_model_version", risk.c.model, risk.c.model_version, risk.c.probability)

job = sa.Table(
    "job",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False, comment="train-index, train-risk, rescore"),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("progress", sa.Float, nullable=False, server_default="0"),
    sa.Column("message", sa.Text, nullable=True, comment="what it is doing, or why it failed"),
    sa.Column("params", sa.JSON, nullable=True),
    sa.Column("result", sa.JSON, nullable=True, comment="e.g. the registered version"),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("started_at", TIMESTAMP, nullable=True),
    sa.Column("finished_at", TIMESTAMP, nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
)
sa.Index("ix_job_status", job.c.status)

drift = sa.Table(
    "drift",
    metadata,
    sa.Column("batch_id", sa.ForeignKey("batch.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("model", sa.String(100), primary_key=True),
    sa.Column("model_version", sa.Integer, primary_key=True),
    sa.Column("item", sa.String(100), primary_key=True, comment="item id of the spec"),
    sa.Column("psi", sa.Float, nullable=True, comment="population stability index"),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("created_at", TIMESTAMP, nullable=False),
)

data_version = sa.Table(
    "data_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, comment="always 1: a single row"),
    sa.Column(
        "version",
        sa.Integer,
        nullable=False,
        comment="bumped by every write that changes what aggregates show; caches key on it",
    ),
    sa.CheckConstraint("id = 1", name="single_row"),
)

# --- Added by migration 0003: dashboard sessions. ---

dashboard_session = sa.Table(
    "dashboard_session",
    metadata,
    sa.Column(
        "id",
        sa.String(64),
        primary_key=True,
        comment="SHA-256 of the session secret the browser's cookie holds, hex",
    ),
    sa.Column(
        "token_sha256",
        sa.String(64),
        nullable=False,
        comment="the token the session was opened with; its user is read again on every request",
    ),
    sa.Column("created_at", TIMESTAMP, nullable=False),
    sa.Column("expires_at", TIMESTAMP, nullable=False),
    sa.Column("revoked_at", TIMESTAMP, nullable=True, comment="set at logout"),
)
sa.Index("ix_dashboard_session_expires_at", dashboard_session.c.expires_at)

# --- Added by migration 0007: several servers on one database. ---

server_identity = sa.Table(
    "server_identity",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True, comment="what is fingerprinted: secret_key"),
    sa.Column(
        "fingerprint",
        sa.String(64),
        nullable=False,
        comment="HMAC-SHA256 of a fixed label under the key, hex; never the key itself",
    ),
    sa.Column("created_at", TIMESTAMP, nullable=False),
)

work_lease = sa.Table(
    "work_lease",
    metadata,
    sa.Column("kind", sa.String(20), primary_key=True, comment="batch or job"),
    sa.Column("work_id", sa.String(36), primary_key=True, comment="the batch's or job's id"),
    sa.Column("owner", sa.String(300), nullable=False, comment="host, pid and a random tag"),
    sa.Column(
        "lease_until",
        TIMESTAMP,
        nullable=False,
        comment="the work is taken for dead once this passes unrenewed (UTC)",
    ),
)

# --- Added by migration 0009: what each data version changed (issue 14). ---

data_change = sa.Table(
    "data_change",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, comment="the data version this write made"),
    sa.Column(
        "kind",
        sa.String(20),
        nullable=False,
        comment="batch, erasure or other (anything else: readers reload everything)",
    ),
    sa.Column("batch_id", sa.String(36), nullable=True, comment="the stored batch (kind batch)"),
    sa.Column(
        "removed",
        sa.JSON,
        nullable=True,
        comment="submission ids removed (kind erasure); no key, no content",
    ),
)

# --- Added by migration 0010: each user's language (issue 15). ---

user_preference = sa.Table(
    "user_preference",
    metadata,
    sa.Column(
        "name",
        sa.ForeignKey("app_user.name", ondelete="CASCADE"),
        primary_key=True,
        comment="the user",
    ),
    sa.Column("language", sa.String(8), nullable=False, comment="en, fr or ar"),
    sa.Column("updated_at", TIMESTAMP, nullable=False),
)

# --- Added by migration 0011: the worklist's case status of each returnee (issue 15). ---

case_status = sa.Table(
    "case_status",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "returnee_key",
        sa.ForeignKey("returnee.key", ondelete="CASCADE"),
        nullable=False,
        comment="the returnee; erased with them",
    ),
    sa.Column(
        "status", sa.String(20), nullable=False, comment="none, contacted or follow_up_planned"
    ),
    sa.Column("actor", sa.String(200), nullable=False, comment="who set it"),
    sa.Column("at", TIMESTAMP, nullable=False),
    sa.CheckConstraint("status IN ('none', 'contacted', 'follow_up_planned')", name="status"),
)
"""Every status an analyst or admin set, newest last: the latest row is the current status."""
sa.Index("ix_case_status_returnee", case_status.c.returnee_key, case_status.c.id)
