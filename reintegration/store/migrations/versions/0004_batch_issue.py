"""A batch's errors and warnings in a table of their own.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

A snapshot of ``reintegration/store/schema.py``'s ``batch_issue`` at the time. A batch report
kept every rejected cell inside the batch record's JSON, so a file of a million rejected rows
made a report of a million objects, held whole in memory. Each issue is now a row, written and
read in pages; the record keeps the first :data:`KEPT` of each kind and the totals. The reports
of batches stored before are moved over here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEPT = 100  # reintegration.ingest.REPORT_KEPT at the time


def upgrade() -> None:
    op.create_table(
        "batch_issue",
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False, comment="order of the report, from 0"),
        sa.Column("kind", sa.String(7), nullable=False, comment="error or warning"),
        sa.Column("row", sa.Integer(), nullable=True, comment="spreadsheet row; null for the file"),
        sa.Column("column", sa.Text(), nullable=True),
        sa.Column("value", sa.Text(), nullable=True, comment="the cell as sent (errors only)"),
        sa.Column("message", sa.Text(), nullable=False),
        sa.CheckConstraint("kind IN ('error', 'warning')", name=op.f("ck_batch_issue_kind")),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batch.id"],
            name=op.f("fk_batch_issue_batch_id_batch"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "seq", name=op.f("pk_batch_issue")),
    )
    _move_reports()


def _move_reports() -> None:
    conn = op.get_bind()
    batch = sa.table("batch", sa.column("id", sa.String), sa.column("report", sa.JSON))
    issue = sa.table(
        "batch_issue",
        *(sa.column(c) for c in ("batch_id", "seq", "kind", "row", "column", "value", "message")),
    )
    ids = conn.execute(sa.select(batch.c.id).where(batch.c.report.is_not(None))).scalars().all()
    for batch_id in ids:  # one report in memory at a time
        report = _loaded(conn.execute(sa.select(batch.c.report).where(batch.c.id == batch_id)))
        errors, warnings = report.get("errors") or [], report.get("warnings") or []
        rows = [_issue(batch_id, i, "error", e) for i, e in enumerate(errors)]
        rows += [_issue(batch_id, len(errors) + i, "warning", w) for i, w in enumerate(warnings)]
        if rows:
            conn.execute(issue.insert(), rows)
        kept = report | {
            "errors": errors[:KEPT],
            "errors_total": len(errors),
            "warnings": warnings[:KEPT],
            "warnings_total": len(warnings),
        }
        conn.execute(batch.update().where(batch.c.id == batch_id).values(report=kept))


def _loaded(result: Any) -> dict[str, Any]:
    value = result.scalar_one()
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def _issue(batch_id: str, seq: int, kind: str, found: dict[str, Any]) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "seq": seq,
        "kind": kind,
        "row": found.get("row"),
        "column": found.get("column"),
        "value": found.get("value") if kind == "error" else None,
        "message": str(found.get("message") or ""),
    }


def downgrade() -> None:
    conn = op.get_bind()
    batch = sa.table("batch", sa.column("id", sa.String), sa.column("report", sa.JSON))
    issue = sa.table(
        "batch_issue",
        *(sa.column(c) for c in ("batch_id", "seq", "kind", "row", "column", "value", "message")),
    )
    ids = conn.execute(sa.select(issue.c.batch_id).distinct()).scalars().all()
    for batch_id in ids:  # the reports get their whole lists back
        found = conn.execute(
            sa.select(issue).where(issue.c.batch_id == batch_id).order_by(issue.c.seq)
        ).all()
        report = _loaded(conn.execute(sa.select(batch.c.report).where(batch.c.id == batch_id)))
        for key in ("errors_total", "warnings_total"):
            report.pop(key, None)
        report["errors"] = [
            {"row": r.row, "column": r.column, "value": r.value, "message": r.message}
            for r in found
            if r.kind == "error"
        ]
        report["warnings"] = [
            {"row": r.row, "column": r.column, "message": r.message}
            for r in found
            if r.kind == "warning"
        ]
        conn.execute(batch.update().where(batch.c.id == batch_id).values(report=report))
    op.drop_table("batch_issue")
