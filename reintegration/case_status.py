"""The worklist's case status: whether a returnee was contacted or a follow-up is planned.

Analysts and admins (row-level access) set it for returnees within their countries; every
change is a new row (who, when, what), so the returnee's page shows its history, and the audit
notes that a status was set (the key and the row's id, not the status: an erasure removes the
statuses with the rest of the returnee's data, :func:`reintegration.store.batches.erase_returnee`).
A returnee outside the caller's countries is as unknown as one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from reintegration.errors import QueryError
from reintegration.i18n import _
from reintegration.policy import require
from reintegration.roles import Capability
from reintegration.store.engine import for_reading
from reintegration.store.schema import audit, case_status, returnee
from reintegration.users import User

STATUSES = ("none", "contacted", "follow_up_planned")
"""Case statuses, as stored and sent (``none``: nothing done yet, or a status taken back)."""


def normalised_key(key: str) -> str:
    """A returnee key as stored: lower-case hex, without a ``key:`` prefix.

    Examples
    --------
    >>> normalised_key(" key:ABC ")
    'abc'
    """
    return key.strip().lower().removeprefix("key:").strip()


def status_labels() -> dict[str, str]:
    """Each status in the current language."""
    return {
        "none": _("No action yet"),
        "contacted": _("Contacted"),
        "follow_up_planned": _("Follow-up planned"),
    }


def set_case_status(
    engine: sa.Engine, key: str, status: str, caller: User
) -> dict[str, Any] | None:
    """Record a returnee's case status.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    key : str
        The returnee's key (``key:`` prefix allowed).
    status : str
        One of :data:`STATUSES`.
    caller : User
        Who sets it (ROW_LEVEL: analysts and admins); the returnee must be within their
        countries. The change is audited (``case_status``, the key as target).

    Returns
    -------
    dict or None
        ``key, status, actor, at``; None when there is no such returnee within the caller's
        countries (the same answer whether it exists elsewhere or not at all).

    Raises
    ------
    Forbidden
        The caller's role may not see or change row-level data.
    QueryError
        ``status`` is not one of :data:`STATUSES`.
    """
    require(caller, Capability.ROW_LEVEL)
    if status not in STATUSES:
        raise QueryError(
            _(
                "{status} is not a case status: use one of {choices}",
                status=repr(status)[:40],
                choices=", ".join(STATUSES),
            )
        )
    key = normalised_key(key)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        country = conn.execute(sa.select(returnee.c.country).where(returnee.c.key == key)).first()
        if country is None or not caller.sees_country(country[0]):
            return None
        entry = conn.execute(
            case_status.insert()
            .values(returnee_key=key, status=status, actor=caller.name, at=now)
            .returning(case_status.c.id)
        ).scalar_one()
        conn.execute(
            audit.insert().values(
                at=now,
                actor=caller.name,
                action="case_status",
                target=key,
                detail={"entry": int(entry)},
            )
        )
    return {"key": key, "status": status, "actor": caller.name, "at": now}


def status_history(engine: sa.Engine, key: str, caller: User) -> list[dict[str, Any]]:
    """A returnee's case statuses, newest first (empty when none, or not the caller's to see).

    Raises
    ------
    Forbidden
        The caller's role may not see row-level data.
    """
    require(caller, Capability.ROW_LEVEL)
    key = normalised_key(key)
    c, r = case_status.c, returnee.c
    query = (
        sa.select(c.status, c.actor, c.at, r.country)
        .join(returnee, r.key == c.returnee_key)
        .where(c.returnee_key == key)
        .order_by(c.id.desc())
    )
    with for_reading(engine).connect() as conn:
        rows = conn.execute(query).all()
    return [
        {"status": row.status, "actor": row.actor, "at": _aware(row.at)}
        for row in rows
        if caller.sees_country(row.country)
    ]


def latest_statuses() -> Any:
    """A subquery of each returnee's current status: ``returnee_key, status, status_at``."""
    c = case_status.c
    newest = sa.select(sa.func.max(c.id)).group_by(c.returnee_key).scalar_subquery()
    return (
        sa.select(c.returnee_key, c.status, c.at.label("status_at"))
        .where(c.id.in_(newest))
        .subquery("latest_status")
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; they were stored in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
