"""The data version: one counter bumped by every write that changes what aggregates show.

Readers that cache (the API's aggregates, the dashboards' frames) key their caches on it, so a
cached answer is never older than the last completed batch, erasure, rescoring or promotion.
It is bumped inside the writer's own transaction, so it moves exactly when the data does.
"""

from __future__ import annotations

import sqlalchemy as sa

from reintegration.store.schema import data_version


def bump_data_version(conn: sa.Connection) -> None:
    """Increment the data version inside the caller's transaction."""
    conn.execute(
        data_version.update()
        .where(data_version.c.id == 1)
        .values(version=data_version.c.version + 1)
    )


def read_data_version(conn: sa.Connection) -> int:
    """The current data version (0 for a store nothing was ever written to)."""
    value = conn.execute(
        sa.select(data_version.c.version).where(data_version.c.id == 1)
    ).scalar_one_or_none()
    return int(value or 0)
