"""Data access of the pages: everything a callback loads goes through here, and from here to
the same domain queries as the API (``reintegration.analytics``, ``casework``, ``quality``...).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from dash import dcc

from dashboards.auth import services
from dashboards.filters import FilterOptions, FilterState, with_version
from reintegration.aggregate import LEVELS, TOTAL
from reintegration.analytics import FIGURES, Filters
from reintegration.errors import ReintegrationError
from reintegration.people_csv import csv_text
from reintegration.users import User

log = logging.getLogger(__name__)


def champion_label() -> str | None:
    """The label of the champion index version, or None when it cannot be told."""
    try:
        _, label, _ = services().champions.index()
    except ReintegrationError as exc:
        log.warning("champion index unavailable: %s", type(exc).__name__)
        return None
    return str(label)


def index_versions() -> list[str]:
    """Index labels with stored scores."""
    return list(services().analytics.index_versions())


def resolve_version(state: FilterState) -> FilterState:
    """``state`` with an index version that has stored scores: the one asked for if it has,
    else the champion's, else the newest label."""
    versions = index_versions()
    if state.index_version in versions:
        return state
    champion = champion_label()
    if champion in versions:
        return with_version(state, champion)
    return with_version(state, versions[-1] if versions else None)


def filter_options(user: User, index_version: str | None) -> FilterOptions:
    """Countries and rounds present in the user's data, and the index versions stored."""
    versions = tuple(index_versions())
    if index_version is None:
        return FilterOptions(
            countries=tuple(sorted(user.countries or ())), rounds=(), index_versions=versions
        )
    analytics = services().analytics
    scope = Filters(countries=user.countries)

    def present(by: str) -> list[str]:
        frame = analytics.aggregates([by], scope, index_version)
        return [v for v in frame[by].iloc[:-1] if v not in (None, TOTAL)]

    return FilterOptions(
        countries=tuple(sorted(present("country"))),
        rounds=tuple(sorted(int(r) for r in present("round") if str(r).isdigit())),
        index_versions=versions,
    )


def min_cell() -> int:
    """Smallest cell an aggregate shows."""
    return int(services().analytics.min_cell)


def aggregates(by: list[str], filters: Filters, index_version: str) -> pd.DataFrame:
    return services().analytics.aggregates(by, filters, index_version)


def trajectories(
    by: list[str], filters: Filters, index_version: str, *, axis: str, follow: bool
) -> pd.DataFrame:
    return services().analytics.trajectories(
        by,
        filters,
        index_version,
        axis=axis,  # type: ignore[arg-type]
        follow=follow,
    )


def assistance(filters: Filters, index_version: str) -> pd.DataFrame:
    return services().analytics.assistance(filters, index_version)


def overview(filters: Filters, index_version: str) -> dict[str, Any]:
    return services().analytics.overview(filters, index_version)


def overview_frames(summary: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The overview's answer as the frames its figures draw: ``means``, ``histogram``,
    ``levels``."""
    means = pd.DataFrame(
        [
            {
                "figure": f,
                **{k: summary["means"].get(f, {}).get(k) for k in ("mean", "low", "high")},
            }
            for f in FIGURES
        ]
    ).astype({"mean": float, "low": float, "high": float})
    histogram = pd.DataFrame(summary["histogram"], columns=["bin_low", "bin_high", "count"])
    histogram["count"] = pd.to_numeric(histogram["count"], errors="coerce")
    levels = pd.DataFrame(
        {"level": list(LEVELS), "share": [summary["levels"].get(level) for level in LEVELS]}
    ).astype({"share": float})
    return {"means": means, "histogram": histogram, "levels": levels}


def csv_download(frame: pd.DataFrame, filename: str) -> dict[str, Any]:
    """A ``dcc.Download`` payload of ``frame`` as CSV: suppressed values stay empty cells (the
    ``suppressed`` column says why), written by :mod:`reintegration.people_csv` (formula-safe)."""
    text = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            text[column] = frame[column].astype(str)  # as to_csv wrote them: dates alone
    cells = text.astype(object).where(frame.notna(), None)
    rows = [[str(c) for c in frame.columns], *cells.itertuples(index=False, name=None)]
    return dcc.send_string(csv_text(rows), filename)
