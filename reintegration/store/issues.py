"""A batch's errors and warnings, written as they are found and read back in pages.

A file of a million rejected rows has a million errors: they go to the ``batch_issue`` table a
chunk at a time, inside the batch's transaction (so a failed batch keeps none, like its rows),
and are read back a page at a time, so no step ever holds them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

import sqlalchemy as sa

from reintegration.store.schema import batch_issue

Kind = Literal["error", "warning"]
PAGE = 10_000


class IssueLog:
    """Appends a batch's issues in report order (``seq`` counts errors and warnings together).

    Parameters
    ----------
    conn : sqlalchemy.Connection
        The batch's transaction.
    batch_id : str
    """

    def __init__(self, conn: sa.Connection, batch_id: str) -> None:
        self.conn = conn
        self.batch_id = batch_id
        self.seq = 0

    def add(self, kind: Kind, found: Iterable[Any]) -> None:
        """Store ``found`` (objects with ``row``, ``column``, ``message`` and, for errors,
        ``value``) after those already added."""
        rows = []
        for item in found:
            rows.append(
                {
                    "batch_id": self.batch_id,
                    "seq": self.seq,
                    "kind": kind,
                    "row": item.row,
                    "column": item.column,
                    "value": getattr(item, "value", None) if kind == "error" else None,
                    "message": item.message,
                }
            )
            self.seq += 1
        if rows:
            self.conn.execute(batch_issue.insert(), rows)


def iter_issues(
    engine: sa.Engine, batch_id: str, kind: Kind, *, limit: int | None = None, offset: int = 0
) -> Iterator[dict[str, Any]]:
    """A batch's issues of one kind in report order, read :data:`PAGE` at a time.

    Yields ``{row, column, value, message}`` for errors, ``{row, column, message}`` for
    warnings; ``limit`` and ``offset`` count issues of that kind. Each page is its own short
    read, so a slow consumer (a streamed download) holds no transaction open.
    """
    query = (
        sa.select(batch_issue)
        .where(batch_issue.c.batch_id == batch_id, batch_issue.c.kind == kind)
        .order_by(batch_issue.c.seq)
    )
    after: int | None = None
    left = limit
    while left is None or left > 0:
        size = PAGE if left is None else min(PAGE, left)
        page = query.where(batch_issue.c.seq > after) if after is not None else query.offset(offset)
        with engine.connect() as conn:
            rows = conn.execute(page.limit(size)).all()
        for row in rows:
            yield _plain(row, kind)
        if len(rows) < size:
            return
        if left is not None:
            left -= len(rows)
        after = rows[-1].seq


def _plain(row: Any, kind: Kind) -> dict[str, Any]:
    if kind == "error":
        return {"row": row.row, "column": row.column, "value": row.value, "message": row.message}
    return {"row": row.row, "column": row.column, "message": row.message}
