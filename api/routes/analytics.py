"""Aggregates, trajectories and the overview, with suppression and country scopes.

Managers always get protected figures; analysts and admins exact ones unless they ask
(``protected=true``); every answer says which (``figures``) and gives the dates it used
(protected figures widen them to whole months).

Answers come from ``reintegration.analytics.Analytics`` and are kept as JSON bytes keyed on the
data version and the question (``api.caches``): a repeated question is answered from the event
loop with a dictionary lookup, without a thread or a database read. The query parameters are
one model per route, validated in one pass. A token limited to some countries sees only them:
the countries asked for are intersected with the token's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Sequence
from datetime import date
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentUser, ServicesDep
from api.params import AGE_GROUPS, checked, choices, listed, scoped_countries
from api.problems import ApiProblem, problem_responses
from api.schemas.analytics import Aggregates, Assistance, IndexVersions, Overview, Trajectories
from api.services import Services
from reintegration.analytics import FIGURES, Filters, protected_for, widened
from reintegration.counting import counted
from reintegration.disclosure import OTHER_LABEL
from reintegration.followup import load_follow_up
from reintegration.panels import trajectory_groups
from reintegration.users import User

router = APIRouter(tags=["aggregates"])

SHARES = ("share_sustainable", "share_low", "share_medium", "share_high")


class FilterQuery(BaseModel):
    """What an aggregate question covers (lists: repeated or comma-separated)."""

    model_config = ConfigDict(populate_by_name=True)

    country: list[str] = Field(
        default_factory=list,
        description="ISO3 codes; narrowed to the token's countries.",
    )
    date_from: date | None = Field(
        default=None, alias="from", description="First interview date (included)."
    )
    date_to: date | None = Field(
        default=None, alias="to", description="Last interview date (included)."
    )
    survey_round: list[str] = Field(
        default_factory=list, alias="round", description="Survey rounds (1, 2, ...)."
    )
    sex: list[str] = Field(default_factory=list)
    age_group: list[str] = Field(default_factory=list, description="child or adult.")
    return_type: list[str] = Field(default_factory=list)
    index_version: str | None = Field(
        default=None, max_length=100, description="Index label (default: the champion's)."
    )
    protected: bool = Field(
        default=False,
        description="Protected figures (perturbed, dates widened to whole months), as may "
        "leave the organisation; managers always get them.",
    )
    at_round: str | None = Field(
        default=None,
        max_length=10,
        description="A comparable stage: only surveys of this round (1, 2, ...), one per "
        "returnee, instead of each returnee's latest survey in the window.",
    )
    at_band: str | None = Field(
        default=None,
        max_length=100,
        description="A comparable stage: only surveys in this months-since-return band (its id "
        "or label: within-4, over-4-under-9, 9-or-more), the one nearest the band's scheduled "
        "month per returnee.",
    )
    exclude_flagged_enumerators: bool = Field(
        default=False,
        description="Leave out every interview of the enumerators the data-quality check flags "
        "(as the Data quality page lists them); the answer then says what that changes "
        "(enumerator_exclusion).",
    )


class BreakdownQuery(FilterQuery):
    """An aggregate question with its groupings."""

    by: list[str] = Field(
        default_factory=list,
        description="Groupings: sex, age_group, return_type, country, round, months_band, "
        "cohort (or assistance alone).",
    )


class AssistanceQuery(FilterQuery):
    """An assistance question: the filters and the figure to compare."""

    figure: Literal["economic", "social", "psychosocial", "composite", "sustainable"] = Field(
        default="composite",
        description="The score whose gaps are compared, or sustainable (gaps in the share "
        "sustainable).",
    )


class TrajectoryQuery(BreakdownQuery):
    """A trajectory question: the axis first, then the groupings."""

    axis: Literal["round", "months", "cohort"] = Field(
        default="round",
        description="round: survey round (the default); months: the months-since-return bands "
        "(within 4 months, over 4 under 9, 9 or more); cohort: the return quarter, compared "
        "band by band (or at at_round / at_band).",
    )
    follow: bool = Field(
        default=False,
        description="Only the returnees scored at every point shown (every round, or every "
        "band, in the window): a balanced panel, the same n at every point.",
    )


def filters_of(services: Services, user: User, query: FilterQuery) -> Filters:
    """The filters of a question, checked, with countries narrowed to the token's.

    Raises
    ------
    ApiProblem
        422 naming the first parameter that is not valid.
    """
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise ApiProblem(
            422, f"query parameter from ({query.date_from}) is after to ({query.date_to})"
        )
    rounds = set()
    for value in listed(query.survey_round, "round"):
        if not value.isdigit() or not 1 <= int(value) <= 1000:
            raise ApiProblem(
                422, f"query parameter round: {value!r} is not a survey round (1, 2, ...)"
            )
        rounds.add(int(value))
    at_round, at_band = _stage(query, rounds)
    return Filters(
        countries=scoped_countries(listed(query.country, "country"), user),
        date_from=query.date_from,
        date_to=query.date_to,
        rounds=frozenset(rounds) if rounds else None,
        sex=checked(listed(query.sex, "sex"), choices(services, "sex"), "sex"),
        age_group=checked(listed(query.age_group, "age_group"), AGE_GROUPS, "age_group"),
        return_type=checked(
            listed(query.return_type, "return_type"),
            choices(services, "return_type"),
            "return_type",
        ),
        at_round=at_round,
        at_band=at_band,
        exclude_flagged_enumerators=query.exclude_flagged_enumerators,
    )


def _stage(query: FilterQuery, rounds: set[int]) -> tuple[int | None, str | None]:
    """The stage asked for (``at_round`` or ``at_band``), checked; the band as its label.

    Raises
    ------
    ApiProblem
        422: both asked, a round that is not one or is outside ``round=``, an unknown band.
    """
    at_round = at_band = None
    if query.at_round is not None and query.at_band is not None:
        raise ApiProblem(
            422, "ask for at_round or at_band, not both: an answer is at one stage or the other"
        )
    if query.at_round is not None:
        value = query.at_round.strip()
        if not value.isdigit() or not 1 <= int(value) <= 1000:
            raise ApiProblem(
                422, f"query parameter at_round: {value!r} is not a survey round (1, 2, ...)"
            )
        at_round = int(value)
        if rounds and at_round not in rounds:
            raise ApiProblem(
                422,
                f"query parameter at_round: round {at_round} is outside round= "
                f"({', '.join(str(r) for r in sorted(rounds))})",
            )
    if query.at_band is not None:
        follow_up = load_follow_up()
        band = follow_up.band(query.at_band)
        if band is None:
            known = "; ".join(f"{b.id} ({b.label})" for b in follow_up.bands)
            raise ApiProblem(
                422,
                f"query parameter at_band: {query.at_band.strip()[:40]!r} is not a months "
                f"band: use one of {known}",
            )
        at_band = band.label
    return at_round, at_band


async def _label(services: Services, asked: str | None) -> str:
    """The index label asked for, or the champion's (known without blocking the loop)."""
    if asked:
        return asked
    label = services.labels.fresh()
    if label is None:
        label = await anyio.to_thread.run_sync(services.labels.read)
    return label


def _known_label(services: Services, label: str) -> None:
    """404 for a label with no stored scores, unless it is the champion's (an empty store)."""
    stored_labels = services.analytics.index_versions()
    if label not in stored_labels and label != services.labels.current():
        stored = ", ".join(stored_labels) or "none yet"
        raise ApiProblem(
            404, f"no scores are stored for index version {label!r} (stored: {stored})"
        )


async def _answer(
    services: Services, key: tuple[Hashable, ...], compute: Callable[[int], Any]
) -> Response:
    """The answer to a question, as JSON bytes kept per data version.

    A kept answer is sent from the event loop without a thread or a database read; a new one
    is computed in a worker thread.
    """
    version = services.versions.fresh()
    if version is None:
        version = await anyio.to_thread.run_sync(services.versions.read)
    full = (version, *key)
    body = services.answers.peek(full)
    if body is None:

        def render() -> bytes:
            with services.analytics.pinned():  # every part of the answer from one frame
                answer = compute(version)
            return json.dumps(answer, separators=(",", ":"), allow_nan=False).encode()

        body = await anyio.to_thread.run_sync(services.answers.get, full, render)
    return Response(body, media_type="application/json")


def _used(filters: Filters, protected: bool) -> Filters:
    """The filters an answer uses: dates widened to whole months for protected figures."""
    return widened(filters) if protected else filters


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _count(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def cells(table: Any, by: Sequence[str], min_cell: int) -> list[dict[str, Any]]:
    """The rows of an analytics frame as cells (the last row is the total; a row with
    ``other`` true gathers the groups protected figures do not list)."""
    out = []
    records = table.to_dict("records")
    for position, row in enumerate(records):
        other = bool(row.get("other", False))
        out.append(
            {
                "group": {b: (None if row[b] is None else str(row[b])) for b in by},
                "total": position == len(records) - 1,
                "other": other,
                "label": OTHER_LABEL.format(min_cell=min_cell) if other else None,
                "returnees": _count(row["returnees"]),
                "unscored": _count(row["unscored"]),
                "suppressed": bool(row["suppressed"]),
                "unscored_suppressed": bool(row["unscored_suppressed"]),
                "figures": {f: _figure(row, f) for f in FIGURES},
                **{share: _number(row.get(share)) for share in SHARES},
                "share_intervals": {
                    share.removeprefix("share_"): {
                        "low": _number(row.get(f"{share}_ci_low")),
                        "high": _number(row.get(f"{share}_ci_high")),
                    }
                    for share in SHARES
                    if f"{share}_ci_low" in row
                },
            }
        )
    return out


def _figure(row: dict[str, Any], figure: str) -> dict[str, float | None]:
    parts = ("mean", "sd", "low", "high", "deff", "n_effective")
    return {part: _number(row.get(f"{figure}_{part}")) for part in parts}


def _applied(filters: Filters) -> dict[str, Any]:
    def _sorted(values: frozenset[Any] | None) -> list[Any] | None:
        return None if values is None else sorted(values)

    return {
        "countries": _sorted(filters.countries),
        "date_from": filters.date_from.isoformat() if filters.date_from else None,
        "date_to": filters.date_to.isoformat() if filters.date_to else None,
        "rounds": _sorted(filters.rounds),
        "sex": _sorted(filters.sex),
        "age_group": _sorted(filters.age_group),
        "return_type": _sorted(filters.return_type),
        "at_round": filters.at_round,
        "at_band": filters.at_band,
        "exclude_flagged_enumerators": filters.exclude_flagged_enumerators,
    }


def exclusion(
    services: Services, filters: Filters, label: str, protected: bool
) -> dict[str, Any] | None:
    """What leaving out the flagged enumerators changes (None when the filter is off)."""
    if not filters.exclude_flagged_enumerators:
        return None
    return services.analytics.enumerator_exclusion(filters, label, protected=protected)


def _frame(
    services: Services,
    version: int,
    label: str,
    by: list[str],
    filters: Filters,
    protected: bool,
) -> dict[str, Any]:
    min_cell = services.analytics.min_cell
    if protected:
        suppression = (
            f"figures perturbed for privacy; groups with fewer than {min_cell} returnees (after "
            "perturbation) are not listed but gathered into one cell (other true), itself "
            "hidden when it is that small; dates widened to whole months"
        )
    else:
        suppression = (
            f"cells with fewer than {min_cell} returnees are hidden (null, suppressed true), and "
            "so are complementary cells, so that no hidden value can be recovered from the others"
        )
    return {
        "index_version": label,
        "figures": "protected" if protected else "exact",
        "by": by,
        "counted": counted(by),
        "min_cell": min_cell,
        "suppression": suppression,
        "data_version": version,
        "filters": _applied(filters),
    }


@router.get(
    "/aggregates",
    response_model=Aggregates,
    summary="Scores per group, with suppression",
    responses=problem_responses(404, 422),
)
async def get_aggregates(
    services: ServicesDep,
    user: CurrentUser,
    query: Annotated[BreakdownQuery, Query()],
) -> Response:
    """Per group: distinct returnees (each one's latest scored survey in the window; by round
    or months band, once per round or band, so the total counts returnee-rounds, as
    ``counted`` says), unscored records, mean, sd and 95% interval of each dimension and the
    composite, the share sustainable and per level; the last cell is the total. Protected
    figures (managers always) list no group under min_cell: those are gathered into one cell,
    ``other`` true."""
    protected = protected_for(user, query.protected)
    filters = _used(filters_of(services, user, query), protected)
    groups = listed(query.by, "by")
    label = await _label(services, query.index_version)

    def compute(version: int) -> dict[str, Any]:
        _known_label(services, label)
        table = services.analytics.aggregates(groups, filters, label, protected=protected)
        names = [c for c in table.columns if c in groups] or groups
        return {
            **_frame(services, version, label, names, filters, protected),
            "cells": cells(table, names, services.analytics.min_cell),
            "enumerator_exclusion": exclusion(services, filters, label, protected),
            "stages": services.analytics.stages(groups, filters, label, protected=protected),
        }

    key = ("aggregates", tuple(groups), filters, label, protected)
    return await _answer(services, key, compute)


@router.get(
    "/trajectories",
    response_model=Trajectories,
    summary="Scores by survey round, months since return or return cohort",
    responses=problem_responses(404, 422),
)
async def get_trajectories(
    services: ServicesDep,
    user: CurrentUser,
    query: Annotated[TrajectoryQuery, Query()],
) -> Response:
    """As /aggregates, broken out first by survey round (the default axis), months band or
    return cohort (then months band: cohorts compared at the same months since return), a
    returnee counting once per point; ``follow`` keeps the returnees scored at every point
    shown (the same n at each); ``retention`` gives, per round, the round-1 returnees surveyed
    in it and their percentage of round 1."""
    protected = protected_for(user, query.protected)
    filters = _used(filters_of(services, user, query), protected)
    groups = listed(query.by, "by")
    label = await _label(services, query.index_version)
    axis, follow = query.axis, query.follow
    staged = filters.at_round is not None or filters.at_band is not None
    names, _ = trajectory_groups(axis, groups, staged)

    def compute(version: int) -> dict[str, Any]:
        _known_label(services, label)
        table = services.analytics.trajectories(
            groups, filters, label, axis=axis, follow=follow, protected=protected
        )
        return {
            **_frame(services, version, label, names, filters, protected),
            "axis": axis,
            "follow": follow,
            "cells": cells(table, names, services.analytics.min_cell),
            "retention": services.analytics.retention(filters, label, protected=protected),
            "enumerator_exclusion": exclusion(services, filters, label, protected),
        }

    key = ("trajectories", tuple(groups), filters, label, axis, follow, protected)
    return await _answer(services, key, compute)


@router.get(
    "/overview",
    response_model=Overview,
    summary="Headline figures",
    responses=problem_responses(404, 422),
)
async def get_overview(
    services: ServicesDep,
    user: CurrentUser,
    query: Annotated[FilterQuery, Query()],
) -> Response:
    """Returnees, surveys, unscored, means with intervals, shares per level and a histogram
    of the composite (exact figures: bins under min_cell shown as null; protected figures:
    adjacent bins merged until each has at least min_cell)."""
    protected = protected_for(user, query.protected)
    filters = _used(filters_of(services, user, query), protected)
    label = await _label(services, query.index_version)

    def compute(version: int) -> dict[str, Any]:
        _known_label(services, label)
        answer = services.analytics.overview(filters, label, protected=protected)
        return {
            **answer,
            "filters": _applied(filters),
            "enumerator_exclusion": exclusion(services, filters, label, protected),
            "stages": services.analytics.stages([], filters, label, protected=protected),
        }

    return await _answer(services, ("overview", filters, label, protected), compute)


ASSISTANCE_COMPARISON = (
    "each assistance type against none: the returnees who received it (whatever else they "
    "received) against those with no assistance recorded, each at their latest scored survey "
    "in the window; associations, not effects: who receives assistance differs in ways no "
    "adjustment can see"
)
ASSISTANCE_METHOD = (
    "raw: the difference of the two means; adjusted: least squares of the score on the "
    "assistance indicator, sex, age group, return type, country and a linear spline of months "
    "since return (knots at 3, 6, 12 and 18); 95% intervals from standard errors clustered by "
    "enumerator (Student-t, enumerators - 1 degrees of freedom; protected figures: the raw "
    "gap's interval is Welch's, from the published means, sds and counts); overlap: a "
    "logistic model of receiving the type on the same covariates, poor when more than 10% of "
    "either group lies outside the common support of the propensities"
)


def associations(table: Any) -> list[dict[str, Any]]:
    """The rows of an associations frame (``Analytics.assistance_associations``) as the API
    gives them."""

    def gap(row: dict[str, Any], kind: str) -> dict[str, float | None]:
        return {
            "difference": _number(row[f"{kind}_difference"]),
            "low": _number(row[f"{kind}_low"]),
            "high": _number(row[f"{kind}_high"]),
        }

    return [
        {
            "assistance": str(row["assistance"]),
            "treated": _count(row["treated"]),
            "untreated": _count(row["untreated"]),
            "raw": gap(row, "raw"),
            "adjusted": gap(row, "adjusted"),
            "overlap": row["overlap"] if isinstance(row["overlap"], str) else None,
            "treated_outside_support": _number(row["treated_outside_support"]),
            "untreated_outside_support": _number(row["untreated_outside_support"]),
            "note": row["note"] if isinstance(row["note"], str) else None,
        }
        for row in table.to_dict("records")
    ]


@router.get(
    "/assistance",
    response_model=Assistance,
    summary="Scores by assistance received, and each type against none, raw and adjusted",
    responses=problem_responses(404, 422),
)
async def get_assistance(
    services: ServicesDep,
    user: CurrentUser,
    query: Annotated[AssistanceQuery, Query()],
) -> Response:
    """The cells of /aggregates?by=assistance (a returnee counts under each type received),
    then, per listed type, its gap in ``figure`` against the returnees with no assistance:
    raw (the difference of the two means) and adjusted for sex, age group, return type,
    country and months since return, each with a 95% interval, and an overlap check. They
    are associations, not effects. A type is compared only when it and ``none`` each show at
    least min_cell returnees; protected figures (managers always) give perturbed counts, the
    gap of the published means and every association figure rounded to 2 decimals."""
    protected = protected_for(user, query.protected)
    filters = _used(filters_of(services, user, query), protected)
    label = await _label(services, query.index_version)
    figure = query.figure

    def compute(version: int) -> dict[str, Any]:
        _known_label(services, label)
        table = services.analytics.assistance(filters, label, protected=protected)
        found = services.analytics.assistance_associations(
            filters, label, figure=figure, protected=protected
        )
        return {
            **_frame(services, version, label, ["assistance"], filters, protected),
            "cells": cells(table, ["assistance"], services.analytics.min_cell),
            "enumerator_exclusion": exclusion(services, filters, label, protected),
            "figure": figure,
            "comparison": ASSISTANCE_COMPARISON,
            "adjusted_for": ["sex", "age_group", "return_type", "country", "months_since_return"],
            "method": ASSISTANCE_METHOD,
            "associations": associations(found),
        }

    return await _answer(services, ("assistance", filters, label, figure, protected), compute)


@router.get("/index-versions", response_model=IndexVersions, summary="Index versions")
def list_index_versions(services: ServicesDep, user: CurrentUser) -> IndexVersions:
    """The index labels with stored scores, and the champion's, which aggregates use by default."""
    return IndexVersions(
        champion=services.champions.index()[1], stored=services.analytics.index_versions()
    )
