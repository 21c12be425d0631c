"""Data access of the worklist and the returnee's page: the domain's functions, called with the
session's user (the domain checks their role and countries) and the current champions."""

from __future__ import annotations

from typing import Any

from dashboards.auth import services
from reintegration import casework
from reintegration.case_status import set_case_status, status_history
from reintegration.users import User
from reintegration.worklist import RiskBands, RiskSource, WorklistPage, ranked

PAGE_ROWS = 25


def risk_source() -> RiskSource:
    """The risk champion (registered name and version), or the baseline rule without one."""
    svc = services()
    champion = svc.champions.risk()
    if champion is None:
        return RiskSource()
    name = getattr(svc, "risk_model_name", None)
    if name is None:
        from models.registry import RISK_MODEL

        name = RISK_MODEL
    return RiskSource(str(name), int(champion[1]))


def bands() -> RiskBands:
    """The analyst's risk bands (``REINTEGRATION_RISK_BANDS``)."""
    return RiskBands(*services().settings.risk_band_limits)


def worklist(
    user: User,
    chosen: dict[str, Any],
    *,
    limit: int | None = PAGE_ROWS,
    offset: int = 0,
    key: str | None = None,
) -> WorklistPage:
    """A page of the worklist (``limit=None``: all of it) within the user's countries and the
    ``chosen`` filters (``countries``, ``sex``, ``age_group``, ``return_type``, ``band``)."""
    svc = services()
    index, label, _version = svc.champions.index()
    return ranked(
        svc.engine,
        caller=user,
        source=risk_source(),
        index=index,
        index_version=label,
        bands=bands(),
        countries=chosen.get("countries"),
        sex=chosen.get("sex"),
        age_group=chosen.get("age_group"),
        return_type=chosen.get("return_type"),
        band=chosen.get("band"),
        key=key,
        limit=limit,
        offset=offset,
    )


def returnee(user: User, key: str) -> dict[str, Any] | None:
    """A returnee's rounds and scores, current risk (a worklist row, or None when they are not
    on it), status history and the champion index's label; None when not the user's to see."""
    svc = services()
    found = casework.returnee_detail(svc.engine, key, user, bands=svc.settings.risk_band_limits)
    if found is None:
        return None
    current = worklist(user, {}, limit=1, key=found["key"])
    return {
        **found,
        "current": current.items[0] if current.items else None,
        "source": current.source,
        "bands": current.bands,
        "index_version": svc.champions.index()[1],
        "statuses": status_history(svc.engine, found["key"], user),
    }


def set_status(user: User, key: str, status: str) -> dict[str, Any] | None:
    """Record a case status (None when the returnee is not the user's to see)."""
    return set_case_status(services().engine, key, status, user)


def record_export(user: User, what: str, detail: dict[str, Any]) -> None:
    """Audit a row-level export (who, what, which filters; never the rows)."""
    casework.record_export(services().engine, user, what, detail)
