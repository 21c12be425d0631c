"""Data access of the row-level pages (worklist, data quality, upload, admin): the domain's
queries, called with the user's scope."""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd

from dashboards.auth import services
from reintegration import batch_views, casework, i18n, quality
from reintegration.baseline_worklist import baseline_worklist
from reintegration.fixable import fixable_csv
from reintegration.questionnaire import load_questionnaire
from reintegration.roles import Capability, allowed
from reintegration.users import User

WORKLIST_ROWS = 500
EXPORT_ROWS = 10_000


def sees_every_batch(user: User) -> bool:
    """Whether ``user`` sees every batch: row-level access for every country (the API's rule);
    anyone else sees their own uploads."""
    return allowed(user.role, Capability.ROW_LEVEL) and user.countries is None


def risk_champion() -> tuple[str, int] | None:
    """The registered name and version of the risk champion, or None when there is none."""
    svc = services()
    champion = svc.champions.risk()
    if champion is None:
        return None
    name = getattr(svc, "risk_model_name", None)
    if name is None:
        from models.registry import RISK_MODEL

        name = RISK_MODEL
    return str(name), int(champion[1])


def worklist(
    user: User, chosen: dict[str, Any], *, limit: int = WORKLIST_ROWS
) -> tuple[tuple[str, int] | None, list[dict[str, Any]]]:
    """The risk champion and its ranked rows within the user's countries (the domain keeps to
    them) and ``chosen`` filters (``countries``, ``sex``, ``age_group``, ``return_type``,
    ``band``). Without a risk champion (None), the rows are ranked by the baseline rule
    (:mod:`reintegration.baseline_worklist`)."""
    champion = risk_champion()
    if champion is None:
        svc = services()
        index, label, _ = svc.champions.index()
        return None, baseline_worklist(
            svc.engine,
            caller=user,
            index=index,
            index_version=label,
            bands=svc.settings.risk_band_limits,
            countries=chosen.get("countries"),
            sex=chosen.get("sex"),
            age_group=chosen.get("age_group"),
            return_type=chosen.get("return_type"),
            band=chosen.get("band"),
            limit=limit,
        )
    rows = casework.worklist(
        services().engine,
        caller=user,
        model=champion[0],
        model_version=champion[1],
        countries=chosen.get("countries"),
        sex=chosen.get("sex"),
        age_group=chosen.get("age_group"),
        return_type=chosen.get("return_type"),
        band=chosen.get("band"),
        limit=limit,
    )
    return champion, rows


def record_export(user: User, what: str, detail: dict[str, Any]) -> None:
    """Audit a row-level export (who, what, which filters; never the rows)."""
    casework.record_export(services().engine, user, what, detail)


def batches(user: User, *, limit: int = 200) -> list[dict[str, Any]]:
    """The batches ``user`` may see, newest first."""
    uploader = None if sees_every_batch(user) else user.name
    return batch_views.list_batches(services().engine, uploader=uploader, limit=limit)


def batch(user: User, batch_id: str | None) -> dict[str, Any] | None:
    """One batch with its report, or None when absent or not the user's to see."""
    if not batch_id:
        return None
    found = batch_views.get_batch(services().engine, batch_id)
    if found is None or not (sees_every_batch(user) or found["uploader"] == user.name):
        return None
    return found


def batch_errors(batch_id: str, limit: int) -> list[dict[str, Any]]:
    """The batch's first ``limit`` rejected cells (a batch may have a million)."""
    return list(batch_views.batch_errors(services().engine, batch_id, limit=limit))


def fixable_file(batch_id: str) -> str:
    """The batch's rejected rows as a fixable CSV (formula-safe)."""
    return fixable_csv(batch_views.batch_rejected(services().engine, batch_id))


# Keyed on the engine, the data version and which figures: an answer is never older than the
# last write, and exact and protected answers are cached apart.
@functools.lru_cache(maxsize=32)
def _missingness(
    engine: Any,
    data_version: int,
    countries: frozenset[str] | None,
    batch_id: str | None,
    protected: bool,
) -> pd.DataFrame:
    analytics = services().analytics
    return quality.missingness(
        engine,
        load_questionnaire(),
        countries=countries,
        batch_id=batch_id,
        protected=protected,
        min_cell=int(analytics.min_cell),
        protection=analytics.protection,
    )


@functools.lru_cache(maxsize=32)
def _anomalies(
    engine: Any,
    data_version: int,
    countries: frozenset[str] | None,
    batch_id: str | None,
    version: str,
    protected: bool,
    language: str,
) -> pd.DataFrame:
    # ``language`` is part of the key: the flags' reasons are sentences in the reader's language.
    analytics = services().analytics
    return quality.enumerator_anomalies(
        engine,
        load_questionnaire(),
        index_version=version,
        countries=countries,
        batch_id=batch_id,
        protected=protected,
        min_cell=int(analytics.min_cell),
        protection=analytics.protection,
    )


def missingness(user: User, batch_id: str | None, *, protected: bool = False) -> pd.DataFrame:
    """Missing answers per item, of one batch or the recent interviews, in the user's countries
    (cached until the data changes); ``protected`` as :func:`dashboards.data.shown` decides."""
    svc = services()
    return _missingness(
        svc.engine, svc.analytics.data_version(), user.countries, batch_id, protected
    )


def anomalies(
    user: User, batch_id: str | None, index_version: str, *, protected: bool = False
) -> pd.DataFrame:
    """Per-enumerator anomalies, as :func:`missingness` scopes them."""
    svc = services()
    version = svc.analytics.data_version()
    return _anomalies(
        svc.engine, version, user.countries, batch_id, index_version, protected, i18n.current()
    )
