"""The data version: one counter bumped by every write that changes what aggregates show.

Readers that cache (the API's aggregates, the dashboards' frames) key their caches on it, so a
cached answer is never older than the last completed batch, erasure, rescoring or promotion.
It is bumped inside the writer's own transaction, so it moves exactly when the data does.

Each bump also says what it changed, in the ``data_change`` log (migration 0009): a stored
batch (its id), an erasure (the submission ids it removed) or anything else. A reader holding
data of an older version applies the batches and erasures since (:func:`changes_since`)
instead of reading everything again; anything else, or a version missing from the log, means
reading everything again. The log keeps the last :data:`KEPT_CHANGES` versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from reintegration.store.schema import data_change, data_version

BATCH = "batch"
ERASURE = "erasure"
OTHER = "other"
# Versions kept in the change log: a reader further behind than this reloads in full.
KEPT_CHANGES = 1000


@dataclass(frozen=True)
class Change:
    """What one data version changed: ``kind`` (batch, erasure or other), the stored batch's
    id, or the submission ids an erasure removed."""

    version: int
    kind: str
    batch_id: str | None = None
    removed: tuple[int, ...] = ()


def bump_data_version(
    conn: sa.Connection,
    kind: str = OTHER,
    *,
    batch_id: str | None = None,
    removed: Sequence[int] = (),
) -> int:
    """Increment the data version inside the caller's transaction and log what it changed.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        The writer's connection, inside its transaction.
    kind : {"batch", "erasure", "other"}, default "other"
        What the write did; "other" (a rescoring, a promotion) makes readers reload everything.
    batch_id : str, optional
        The stored batch, for ``kind="batch"``.
    removed : sequence of int
        The submission ids an erasure removed, for ``kind="erasure"``.

    Returns
    -------
    int
        The new data version.
    """
    if kind not in (BATCH, ERASURE, OTHER):
        raise ValueError(f"unknown kind of change {kind!r}")
    conn.execute(
        data_version.update()
        .where(data_version.c.id == 1)
        .values(version=data_version.c.version + 1)
    )
    version = read_data_version(conn)
    conn.execute(
        data_change.insert().values(
            version=version,
            kind=kind,
            batch_id=batch_id,
            removed=[int(i) for i in removed] if kind == ERASURE else None,
        )
    )
    conn.execute(data_change.delete().where(data_change.c.version <= version - KEPT_CHANGES))
    return version


def read_data_version(conn: sa.Connection) -> int:
    """The current data version (0 for a store nothing was ever written to)."""
    value = conn.execute(
        sa.select(data_version.c.version).where(data_version.c.id == 1)
    ).scalar_one_or_none()
    return int(value or 0)


def changes_since(conn: sa.Connection, version: int, upto: int) -> list[Change] | None:
    """What the versions after ``version`` up to ``upto`` changed, oldest first.

    Returns None when one of them is missing from the log (written before migration 0009, or
    pruned): the reader cannot tell what changed and must read everything again.

    Examples
    --------
    >>> from reintegration.store.schema import metadata
    >>> engine = sa.create_engine("sqlite://")
    >>> metadata.create_all(engine, tables=[data_version, data_change])
    >>> with engine.begin() as conn:
    ...     _ = conn.execute(data_version.insert().values(id=1, version=0))
    ...     _ = bump_data_version(conn, BATCH, batch_id="b1")
    ...     _ = bump_data_version(conn, ERASURE, removed=[7, 8])
    ...     [c.kind for c in changes_since(conn, 0, 2)], changes_since(conn, 1, 2)[0].removed
    (['batch', 'erasure'], (7, 8))
    """
    rows = conn.execute(
        sa.select(data_change)
        .where(data_change.c.version > version, data_change.c.version <= upto)
        .order_by(data_change.c.version)
    ).all()
    if [row.version for row in rows] != list(range(version + 1, upto + 1)):
        return None
    return [
        Change(row.version, row.kind, row.batch_id, tuple(int(i) for i in row.removed or ()))
        for row in rows
    ]
