"""Data access of the pages: everything a callback loads goes through here, and from here to
the same domain queries as the API (``reintegration.analytics``, ``casework``, ``quality``...).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
from dash import dcc

from dashboards.auth import services
from dashboards.figures.common import PERTURBED
from dashboards.filters import FilterOptions, FilterState, with_version
from reintegration.aggregate import LEVELS, TOTAL
from reintegration.analytics import FIGURES, Filters, protected_for, widened
from reintegration.disclosure import OTHER_LABEL
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
    # Whoever sees only protected figures is offered only the groups they list.
    protected = protected_for(user, False)

    def present(by: str) -> list[str]:
        frame = analytics.aggregates([by], scope, index_version, protected=protected)
        return [v for v in frame[by].iloc[:-1] if v not in (None, TOTAL)]

    first_day, last_day = _interview_span(analytics.frame(index_version), user, protected)
    return FilterOptions(
        countries=tuple(sorted(present("country"))),
        rounds=tuple(sorted(int(r) for r in present("round") if str(r).isdigit())),
        index_versions=versions,
        first_day=first_day,
        last_day=last_day,
    )


def _interview_span(
    frame: pd.DataFrame, user: User, protected: bool
) -> tuple[date | None, date | None]:
    """The first and latest interview dates the user's countries hold (for the period picker);
    whole months for whoever sees only protected figures, as their figures' dates are."""
    days = frame["interview_day"].to_numpy()
    if user.countries is not None:
        days = days[frame["country"].isin(list(user.countries)).to_numpy()]
    days = days[days > -(10**6)]  # blank dates are coded far below any real day
    if not len(days):
        return None, None
    first = date.fromordinal(EPOCH_ORDINAL + int(days.min()))
    last = date.fromordinal(EPOCH_ORDINAL + int(days.max()))
    if protected:
        first = first.replace(day=1)
        last = (pd.Timestamp(last) + pd.offsets.MonthEnd(0)).date()
    return first, last


EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def min_cell() -> int:
    """Smallest cell an aggregate shows."""
    return int(services().analytics.min_cell)


PUBLISHABLE = "publishable"
"""The value of a page's "Publishable figures" switch (a checklist) when it is on."""


@dataclass(frozen=True)
class Shown:
    """Which figures an answer gives: protected or exact, and the filters it used (dates
    widened to whole months when protected)."""

    protected: bool
    filters: Filters
    min_cell: int

    @property
    def other_label(self) -> str:
        """How the row gathering the groups protected figures do not list reads."""
        return OTHER_LABEL.format(min_cell=self.min_cell)

    def period(self) -> tuple[date | None, date | None]:
        """The dates the figures cover (None: no limit on that side)."""
        return self.filters.date_from, self.filters.date_to


def asked(switch: Any) -> bool:
    """Whether a page's "Publishable figures" switch asks for protected figures.

    Examples
    --------
    >>> asked(["publishable"]), asked([]), asked(None), asked("publishable")
    (True, False, False, True)
    """
    if isinstance(switch, (list, tuple)):
        return PUBLISHABLE in switch
    return switch is True or switch == PUBLISHABLE


def shown(caller: User, filters: Filters, switch: Any) -> Shown:
    """The figures ``caller`` gets for ``filters``: protected for a role without row access
    (a manager) whatever the page sent, else protected only when the switch asks."""
    protected = protected_for(caller, asked(switch))
    return Shown(protected, widened(filters) if protected else filters, min_cell())


def aggregates(
    caller: User, by: list[str], filters: Filters, index_version: str, *, switch: Any
) -> tuple[pd.DataFrame, Shown]:
    """Scores per group of ``by``, as :func:`shown` says ``caller`` may see them."""
    view = shown(caller, filters, switch)
    frame = services().analytics.aggregates(
        by, view.filters, index_version, protected=view.protected
    )
    return frame, view


def trajectories(
    caller: User,
    by: list[str],
    filters: Filters,
    index_version: str,
    *,
    axis: str,
    follow: bool,
    switch: Any,
) -> tuple[pd.DataFrame, Shown]:
    """Scores by months since return or cohort, as :func:`shown` says."""
    view = shown(caller, filters, switch)
    frame = services().analytics.trajectories(
        by,
        view.filters,
        index_version,
        axis=axis,  # type: ignore[arg-type]
        follow=follow,
        protected=view.protected,
    )
    return frame, view


def retention(
    caller: User, filters: Filters, index_version: str, *, switch: Any
) -> tuple[list[dict[str, Any]], Shown]:
    """Per survey round, the round-1 returnees surveyed in it, as :func:`shown` says."""
    view = shown(caller, filters, switch)
    rows = services().analytics.retention(view.filters, index_version, protected=view.protected)
    return rows, view


def assistance(
    caller: User, filters: Filters, index_version: str, *, switch: Any
) -> tuple[pd.DataFrame, Shown]:
    """Scores by assistance type received, as :func:`shown` says."""
    view = shown(caller, filters, switch)
    frame = services().analytics.assistance(view.filters, index_version, protected=view.protected)
    return frame, view


def overview(
    caller: User, filters: Filters, index_version: str, *, switch: Any
) -> tuple[dict[str, Any], Shown]:
    """The headline figures and histogram, as :func:`shown` says."""
    view = shown(caller, filters, switch)
    analytics = services().analytics
    summary = analytics.overview(view.filters, index_version, protected=view.protected)
    mix = analytics.stages([], view.filters, index_version, protected=view.protected)
    return {**summary, "stages": mix}, view


def labelled(frame: pd.DataFrame, view: Shown) -> pd.DataFrame:
    """An aggregate frame as its CSV gives it: protected figures get a ``figures`` column
    saying :data:`PERTURBED`, the dates used (``period_from``, ``period_to``) and a ``label``
    naming the row of gathered groups; exact figures are left as they are."""
    if not view.protected:
        return frame
    start, end = view.period()
    other = frame["other"] if "other" in frame else pd.Series(False, index=frame.index)
    return frame.assign(
        label=[view.other_label if o else None for o in other.astype(bool)],
        figures=PERTURBED,
        period_from=start.isoformat() if start else None,
        period_to=end.isoformat() if end else None,
    )


def overview_frames(summary: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The overview's answer as the frames its figures draw: ``means``, ``histogram``,
    ``levels``."""
    parts = ("mean", "low", "high", "deff", "n_effective")
    means = pd.DataFrame(
        [{"figure": f, **{k: summary["means"].get(f, {}).get(k) for k in parts}} for f in FIGURES]
    ).astype(dict.fromkeys(parts, float))
    histogram = pd.DataFrame(summary["histogram"], columns=["bin_low", "bin_high", "count"])
    histogram["count"] = pd.to_numeric(histogram["count"], errors="coerce")
    intervals = summary.get("share_intervals", {})
    levels = pd.DataFrame(
        {
            "level": list(LEVELS),
            "share": [summary["levels"].get(level) for level in LEVELS],
            "share_ci_low": [intervals.get(level, {}).get("low") for level in LEVELS],
            "share_ci_high": [intervals.get(level, {}).get("high") for level in LEVELS],
        }
    ).astype({"share": float, "share_ci_low": float, "share_ci_high": float})
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
