"""Audit rows of the model lifecycle (promotions, refused promotions): who, when, which model.

The audit is append-only and never holds answers; a promotion's row holds the comparison that
was shown (aggregates and metrics, small groups already suppressed) and the reason given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from reintegration.store.schema import audit


def audit_model(
    conn: sa.Connection, *, actor: str, action: str, target: str, detail: dict[str, Any]
) -> None:
    """Append an audit row inside the caller's transaction (``target``: ``name@version``)."""
    conn.execute(
        audit.insert().values(
            at=datetime.now(UTC), actor=actor, action=action, target=target, detail=detail
        )
    )
