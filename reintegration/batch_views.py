"""What people and other systems may read about uploads: batches, their errors, rejected rows,
and the audit trail.

Read-only queries over the store, shared by the API and the dashboards. They run through
:func:`reintegration.store.engine.for_reading`, so on SQLite they never wait for an ingest
that holds the write lock. Nothing here returns answers or case numbers: batch reports carry
rows, columns and sentences, rejected rows carry the returnee's key in place of the case
number.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from reintegration.policy import User, require
from reintegration.roles import Capability
from reintegration.store.batches import rejected_rows
from reintegration.store.engine import for_reading
from reintegration.store.issues import iter_issues
from reintegration.store.schema import audit, batch

COUNTS = ("received", "accepted", "rejected", "duplicate", "updated")
_SUMMARY = (
    batch.c.id,
    batch.c.uploader,
    batch.c.file_name,
    batch.c.format,
    batch.c.form_version,
    batch.c.status,
    batch.c.reason,
    *(batch.c[name] for name in COUNTS),
    batch.c.created_at,
    batch.c.finished_at,
)


def _summary(row: Any) -> dict[str, Any]:
    out = {column.name: getattr(row, column.name) for column in _SUMMARY}
    out["created_at"] = _aware(out["created_at"])
    out["finished_at"] = _aware(out["finished_at"])
    return out


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without their zone; they were stored in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def list_batches(
    engine: sa.Engine, *, uploader: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """Batches, newest first: who uploaded what, its status and counts.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    uploader : str, optional
        Only this uploader's batches (an enumerator sees their own).
    limit, offset : int
        The page.

    Returns
    -------
    list of dict
        ``id, uploader, file_name, format, form_version, status, reason, received, accepted,
        rejected, duplicate, updated, created_at, finished_at``.
    """
    query = sa.select(*_SUMMARY).order_by(batch.c.created_at.desc(), batch.c.id)
    if uploader is not None:
        query = query.where(batch.c.uploader == uploader)
    with for_reading(engine).connect() as conn:
        rows = conn.execute(query.limit(limit).offset(offset)).all()
    return [_summary(row) for row in rows]


def get_batch(engine: sa.Engine, batch_id: str) -> dict[str, Any] | None:
    """One batch with its report, or None when there is no such batch.

    Returns
    -------
    dict or None
        As :func:`list_batches`, plus ``report``: ``errors`` and ``warnings`` (the first
        ones; :func:`batch_errors` reads them all), ``errors_total``, ``warnings_total``,
        ``ignored_columns``, ``missing_columns``, ``dropped_identifier_columns`` (empty
        until the batch is done).
    """
    with for_reading(engine).connect() as conn:
        row = conn.execute(
            sa.select(*_SUMMARY, batch.c.report).where(batch.c.id == batch_id)
        ).first()
    if row is None:
        return None
    out = _summary(row)
    out["report"] = _report(row.report)
    return out


def _report(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    stored = stored or {}
    errors = list(stored.get("errors") or [])
    warnings = list(stored.get("warnings") or [])
    return {
        "errors": errors,
        "errors_total": int(stored.get("errors_total", len(errors))),
        "warnings": warnings,
        "warnings_total": int(stored.get("warnings_total", len(warnings))),
        "ignored_columns": list(stored.get("ignored_columns") or []),
        "missing_columns": list(stored.get("missing_columns") or []),
        "dropped_identifier_columns": list(stored.get("dropped_identifier_columns") or []),
    }


def batch_errors(
    engine: sa.Engine, batch_id: str, *, limit: int | None = None, offset: int = 0
) -> Iterator[dict[str, Any]]:
    """A batch's rejected cells in report order, ``{row, column, value, message}``, read from
    the store a page at a time (a batch may have a million).

    ``limit`` and ``offset`` pick a page. An unknown batch, or one still processing, has none.
    """
    return iter_issues(for_reading(engine), batch_id, "error", limit=limit, offset=offset)


def batch_warnings(
    engine: sa.Engine, batch_id: str, *, limit: int | None = None, offset: int = 0
) -> Iterator[dict[str, Any]]:
    """A batch's warnings in report order, ``{row, column, message}``, as :func:`batch_errors`."""
    return iter_issues(for_reading(engine), batch_id, "warning", limit=limit, offset=offset)


def json_array(items: Iterable[Any]) -> Iterator[str]:
    """A JSON array written an item at a time (for answers streamed as they are read).

    Examples
    --------
    >>> "".join(json_array(iter([{"row": 2}, {"row": 3}])))
    '[{"row": 2},{"row": 3}]'
    """
    yield "["
    for position, item in enumerate(items):
        yield ("," if position else "") + json.dumps(item, ensure_ascii=False)
    yield "]"


def report_json(engine: sa.Engine, report: Mapping[str, Any]) -> Iterator[str]:
    """A batch report as JSON with every error and warning read from the store, written a
    piece at a time (``reintegration ingest --json``: all of them, in bounded memory).

    Parameters
    ----------
    engine : sqlalchemy.Engine
    report : mapping
        :meth:`reintegration.ingest.BatchReport.to_json` of a done batch.
    """
    # Every one is listed, so the totals (which say how many the kept lists cut) are left out.
    cut = ("errors", "warnings", "errors_total", "warnings_total")
    head = {k: v for k, v in report.items() if k not in cut}
    yield json.dumps(head, ensure_ascii=False)[:-1]
    batch_id = str(report["batch_id"])
    for key, items in (
        ("errors", batch_errors(engine, batch_id)),
        ("warnings", batch_warnings(engine, batch_id)),
    ):
        yield f', "{key}": '
        yield from json_array(items)
    yield "}"


def batch_rejected(engine: sa.Engine, batch_id: str) -> list[Any]:
    """A batch's kept rejected rows (``row``, ``cells``, ``errors``), for the fixable file."""
    with for_reading(engine).connect() as conn:
        return rejected_rows(conn, batch_id)


def audit_entries(
    engine: sa.Engine,
    *,
    caller: User,
    action: str | None = None,
    actor: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The audit trail, newest first: who did what, when, on which batch or model.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    caller : User
        Who reads: an administrator without a country limit (the trail spans every country).
    action, actor : str, optional
        Only entries of this action (``upload``, ``erase``, ``user_add``, ...) or actor.
    limit, offset : int
        The page.

    Returns
    -------
    list of dict
        ``id, at, actor, action, batch_id, target, detail``; ``detail`` holds counts and ids,
        never answers.

    Raises
    ------
    Forbidden
        The caller is not an administrator for every country.
    """
    require(caller, Capability.ADMIN, every_country=True)
    query = sa.select(audit).order_by(audit.c.id.desc())
    if action is not None:
        query = query.where(audit.c.action == action)
    if actor is not None:
        query = query.where(audit.c.actor == actor)
    with for_reading(engine).connect() as conn:
        rows = conn.execute(query.limit(limit).offset(offset)).all()
    return [
        {
            "id": row.id,
            "at": _aware(row.at),
            "actor": row.actor,
            "action": row.action,
            "batch_id": row.batch_id,
            "target": row.target,
            "detail": row.detail,
        }
        for row in rows
    ]
