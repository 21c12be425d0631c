"""Row-level data for M&E officers: one returnee, the worklist, the score export.

Everything is pseudonymised (returnee keys, never case numbers). A token limited to some
countries sees only their returnees; one outside them answers 404 like one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from api.deps import CurrentUser, ServicesDep
from api.params import AGE_GROUPS, checked, choices, listed, scoped_countries
from api.problems import ApiProblem, problem_responses
from api.schemas.casework import CaseStatusChange, CaseStatusSet, Returnee, Worklist
from reintegration import casework
from reintegration.case_status import set_case_status, status_history
from reintegration.i18n import _
from reintegration.worklist import RiskBands, RiskSource, ranked

router = APIRouter(tags=["row level"])

BANDS = ("low", "medium", "high")
KeyParam = Annotated[
    str,
    Path(
        description="The returnee's key: 64 hex digits (HMAC of the case number), optionally "
        "prefixed key:.",
        pattern=r"^(key:)?[0-9a-fA-F]{64}$",
    ),
]


@router.get(
    "/returnees/{key}",
    response_model=Returnee,
    summary="A returnee's rounds, scores and risk",
    responses=problem_responses(404, 422),
)
def get_returnee(services: ServicesDep, user: CurrentUser, key: KeyParam) -> Any:
    """A returnee by key: attributes from the latest interview, every round with its scores,
    and risk estimates with the items behind them."""
    found = casework.returnee_detail(
        services.engine, key, user, bands=services.settings.risk_band_limits
    )
    if found is None:
        raise ApiProblem(404, _("there is no returnee with this key that this token may see"))
    return {**found, "statuses": status_history(services.engine, key, user)}


@router.get(
    "/worklist",
    response_model=Worklist,
    summary="Returnees ranked by risk",
    responses=problem_responses(422),
)
def get_worklist(
    services: ServicesDep,
    user: CurrentUser,
    country: Annotated[list[str] | None, Query()] = None,
    sex: Annotated[list[str] | None, Query()] = None,
    age_group: Annotated[list[str] | None, Query()] = None,
    return_type: Annotated[list[str] | None, Query()] = None,
    band: Annotated[list[str] | None, Query(description="low, medium or high risk.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Any:
    """Returnees ranked by the risk champion's probability of not reintegrating sustainably
    (ties: lower first-survey composite, then longest since the last survey), with their
    weakest dimension and the items of that dimension behind it, and their case status;
    ``total`` says how many match. With no promoted risk model, ranked by the baseline rule
    (1 − first-survey composite), as the note says."""
    countries = scoped_countries(listed(country, "country"), user)
    chosen = {
        "sex": checked(listed(sex, "sex"), choices(services, "sex"), "sex"),
        "age_group": checked(listed(age_group, "age_group"), AGE_GROUPS, "age_group"),
        "return_type": checked(
            listed(return_type, "return_type"), choices(services, "return_type"), "return_type"
        ),
        "band": checked(listed(band, "band"), BANDS, "band"),
    }
    index, label, _version = services.champions.index()
    champion = services.champions.risk()
    source = RiskSource() if champion is None else RiskSource(services.risk_model_name, champion[1])
    page = ranked(
        services.engine,
        caller=user,
        source=source,
        index=index,
        index_version=label,
        bands=RiskBands(*services.settings.risk_band_limits),
        countries=countries,
        sex=chosen["sex"],
        age_group=chosen["age_group"],
        return_type=chosen["return_type"],
        band=chosen["band"],
        limit=limit,
        offset=offset,
    )
    note = (
        _("ranked by the baseline rule (1 − first-survey composite): no promoted risk model")
        if champion is None
        else _(
            "ranked by the probability of not reintegrating sustainably; association, "
            "not a judgement of anyone"
        )
    )
    return {
        "model": source.model,
        "model_version": source.model_version,
        "note": note,
        "total": page.total,
        "bands": [
            {"band": name, "low": low, "high": high}
            for name, (low, high) in page.bands.ranges().items()
        ],
        "items": page.items,
    }


@router.put(
    "/worklist/{key}/status",
    response_model=CaseStatusSet,
    summary="Set a returnee's case status (audited)",
    responses=problem_responses(403, 404, 422),
)
def put_case_status(
    services: ServicesDep, user: CurrentUser, key: KeyParam, body: CaseStatusChange
) -> Any:
    """Record that a returnee was contacted, that a follow-up is planned, or neither
    (``none``). For analysts and admins, within their countries; every change is audited and
    kept in the returnee's status history."""
    done = set_case_status(services.engine, key, body.status, user)
    if done is None:
        raise ApiProblem(404, _("there is no returnee with this key that this token may see"))
    return done


@router.get(
    "/exports/scores",
    summary="Export scores as CSV (audited)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "One row per current interview; pseudonymised and formula-safe.",
        },
        **problem_responses(404, 422),
    },
)
def export_scores(
    services: ServicesDep,
    user: CurrentUser,
    country: Annotated[list[str] | None, Query()] = None,
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    index_version: Annotated[str | None, Query(max_length=100)] = None,
) -> StreamingResponse:
    """Every current interview's scores under one index version (default: the champion's),
    as CSV: returnee key, submission, dates, group, figures. The export is audited."""
    countries = scoped_countries(listed(country, "country"), user)
    label = index_version or services.champions.index()[1]
    if label not in services.analytics.index_versions() and label != services.champions.index()[1]:
        raise ApiProblem(404, f"no scores are stored for index version {label!r}")
    detail = {
        "index_version": label,
        "countries": sorted(countries) if countries is not None else None,
        "from": date_from.isoformat() if date_from else None,
        "to": date_to.isoformat() if date_to else None,
    }
    casework.record_export(services.engine, user, "scores", detail)
    chunks = casework.export_scores_csv(
        services.engine,
        index_version=label,
        countries=countries,
        date_from=date_from,
        date_to=date_to,
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return StreamingResponse(
        (chunk.encode("utf-8") for chunk in chunks),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="scores-{stamp}.csv"'},
    )
