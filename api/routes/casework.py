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
from api.schemas.casework import Returnee, Worklist
from reintegration import casework
from reintegration.baseline_worklist import BASELINE_NOTE, baseline_worklist

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
    found = casework.returnee_detail(services.engine, key, user)
    if found is None:
        raise ApiProblem(404, "there is no returnee with this key that this token may see")
    return found


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
    """Returnees ranked by the risk champion's probability of not reintegrating sustainably,
    with their weakest dimension and the items behind it; filter by country and group. With no
    promoted risk model, ranked by the baseline rule (1 − first-survey composite), as the note
    says."""
    countries = scoped_countries(listed(country, "country"), user)
    chosen = {
        "sex": checked(listed(sex, "sex"), choices(services, "sex"), "sex"),
        "age_group": checked(listed(age_group, "age_group"), AGE_GROUPS, "age_group"),
        "return_type": checked(
            listed(return_type, "return_type"), choices(services, "return_type"), "return_type"
        ),
        "band": checked(listed(band, "band"), BANDS, "band"),
    }
    champion = services.champions.risk()
    if champion is None:
        index, label, _ = services.champions.index()
        return {
            "model": None,
            "model_version": None,
            "note": BASELINE_NOTE,
            "items": baseline_worklist(
                services.engine,
                caller=user,
                index=index,
                index_version=label,
                bands=services.settings.risk_band_limits,
                countries=countries,
                limit=limit,
                offset=offset,
                **chosen,
            ),
        }
    _, version = champion
    items = casework.worklist(
        services.engine,
        caller=user,
        model=services.risk_model_name,
        model_version=version,
        countries=countries,
        limit=limit,
        offset=offset,
        **chosen,
    )
    return {
        "model": services.risk_model_name,
        "model_version": version,
        "note": "ranked by the probability of not reintegrating sustainably; association, "
        "not a judgement of anyone",
        "items": items,
    }


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
