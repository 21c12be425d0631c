"""Models and jobs: registered models and versions, training in the background, promotion.

``{name}`` is the registered name (``rss-index``, ``reintegration-risk``; the CLI's short names
``index`` and ``risk`` are accepted too). Promotion goes through the gate of the models issue:
a refusal answers 409 with the sentence naming the metric and the group.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse, PlainTextResponse

from api.deps import CurrentUser, ServicesDep
from api.problems import ApiProblem, problem_responses
from api.schemas.models import (
    Job,
    JobAccepted,
    ModelSummary,
    ModelVersion,
    PromoteRequest,
    Promotion,
    PromotionPreview,
    TrainRequest,
)
from api.services import Services
from reintegration.errors import ReintegrationError
from reintegration.i18n import _
from reintegration.users import User

router = APIRouter(tags=["models"])

Name = Annotated[
    str,
    Path(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Registered name (rss-index, reintegration-risk) or short name (index, risk).",
    ),
]
Version = Annotated[int, Path(ge=1, le=2**31 - 1, description="The registry's version number.")]
JobId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[0-9A-Za-z-]+$")]
CHAMPION = "champion"


def _registered(services: Services, name: str) -> str:
    """The registered name of ``name``; 404 with the registry's sentence when unknown."""
    try:
        return services.lifecycle.resolve_name(name)
    except ReintegrationError as exc:
        raise ApiProblem(404, str(exc)) from None


def _version(services: Services, user: User, registered: str, version: int) -> dict[str, Any]:
    """A registered version's entry; 404 when the model has no such version."""
    for entry in services.lifecycle.list_versions(registered, caller=user):
        if entry["version"] == version:
            return entry
    raise ApiProblem(404, _("{name} has no version {version}", name=registered, version=version))


@router.get("/models", response_model=list[ModelSummary], summary="Registered models")
def list_models(services: ServicesDep, user: CurrentUser) -> Any:
    """The registered models, with their champion and challenger versions."""
    return services.lifecycle.list_models(caller=user)


@router.get(
    "/models/{name}/versions",
    response_model=list[ModelVersion],
    summary="Versions of a model",
    responses=problem_responses(404, 422),
)
def list_model_versions(services: ServicesDep, user: CurrentUser, name: Name) -> Any:
    """Every version of a model: label, aliases (champion, challenger), metrics, run."""
    return services.lifecycle.list_versions(_registered(services, name), caller=user)


@router.get(
    "/models/{name}/versions/{version}/card",
    response_class=PlainTextResponse,
    summary="A version's model card (Markdown)",
    responses={
        200: {"content": {"text/markdown": {"schema": {"type": "string"}}}},
        **problem_responses(404, 422),
    },
)
def get_model_card(
    services: ServicesDep, user: CurrentUser, name: Name, version: Version
) -> PlainTextResponse:
    """The model card of a version: data, metrics overall and per subgroup (small groups
    suppressed), intended use."""
    registered = _registered(services, name)
    _version(services, user, registered, version)
    card = services.lifecycle.model_card(registered, version, caller=user)
    return PlainTextResponse(card, media_type="text/markdown; charset=utf-8")


@router.post(
    "/models/{name}/train",
    status_code=202,
    response_model=JobAccepted,
    summary="Train a new version (background job)",
    responses=problem_responses(404, 409, 422),
)
def train_model(
    services: ServicesDep,
    user: CurrentUser,
    name: Name,
    body: Annotated[TrainRequest | None, Body()] = None,
) -> Any:
    """Queue a training run of the model; it registers a new version as challenger. Answers
    202 with the job's id; follow it at ``/jobs/{id}``."""
    registered = _registered(services, name)
    job_id = services.lifecycle.train(
        registered, caller=user, params=(body or TrainRequest()).params
    )
    accepted = JobAccepted(job_id=job_id, status_url=f"/api/v1/jobs/{job_id}")
    return JSONResponse(
        accepted.model_dump(), status_code=202, headers={"Location": accepted.status_url}
    )


@router.post(
    "/models/{name}/versions/{version}/promote",
    response_model=Promotion,
    summary="Promote a version to champion",
    responses={
        202: {"model": JobAccepted, "description": "An index version: its rescoring job."},
        **problem_responses(404, 409, 422),
    },
)
def promote_model_version(
    services: ServicesDep,
    user: CurrentUser,
    name: Name,
    version: Version,
    body: PromoteRequest,
    dry_run: Annotated[
        bool, Query(description="Only say what promoting would change; change nothing.")
    ] = False,
) -> Any:
    """Make a version champion, through the gate: a risk model must not lose ROC AUC beyond
    the tolerance overall or in any subgroup (409 names the metric and the group unless
    ``force``); an index version needs a reason and records how figures would move.

    An index version answers 202 at once with its rescoring job (``job_id``, ``status_url``
    and ``Location``): the stored interviews are rescored in the background and the version
    becomes champion only when all of them are, so answers keep the previous champion's scores
    until then; a failed job leaves the previous champion and says why. A second index
    promotion while one is under way is refused (422, naming the job).

    With ``dry_run`` (``?dry_run=true`` or ``"dry_run": true`` in the body) nothing changes:
    the answer (200, :class:`PromotionPreview`) says what promoting would change: an index
    version's mean of each dimension and of the composite and its share sustainable, overall
    and by sex, child or adult, return type and country, before and after; a risk model's
    worklist bands before and after, and whether the gate would refuse it (``refusal``). It
    needs no reason, and is computed in the request (about a second at 5,000 returnees for an
    index; it reads every stored interview, so a store of a million takes minutes). The
    promotion then returns the same figures (``preview``; an index's in its job's result)
    unless the data changed meanwhile."""
    registered = _registered(services, name)
    if CHAMPION in _version(services, user, registered, version).get("aliases", []):
        raise ApiProblem(
            409,
            _(
                "{name} version {version} is already the champion",
                name=registered,
                version=version,
            ),
        )
    if dry_run or body.dry_run:
        preview = services.lifecycle.preview(registered, version, caller=user)
        return PromotionPreview.model_validate(preview).model_dump(mode="json")
    reason = body.reason.strip() if body.reason else None
    result = services.lifecycle.promote(
        registered, version, reason=reason or None, force=body.force, caller=user
    )
    if result.get("job_id"):
        status_url = f"/api/v1/jobs/{result['job_id']}"
        return JSONResponse(
            {**result, "status_url": status_url}, status_code=202, headers={"Location": status_url}
        )
    services.champions.refresh()
    services.versions.invalidate()  # a new index champion changes the default answers
    services.labels.invalidate()
    return result


@router.get("/jobs", response_model=list[Job], summary="Jobs, newest first")
def list_jobs(services: ServicesDep, user: CurrentUser) -> Any:
    """Training and rescoring jobs with their status and progress."""
    return services.lifecycle.list_jobs(caller=user)


@router.get(
    "/jobs/{job_id}",
    response_model=Job,
    summary="A job's status and progress",
    responses=problem_responses(404, 422),
)
def get_job(services: ServicesDep, user: CurrentUser, job_id: JobId) -> Any:
    """Status (queued, running, done, failed), progress from 0 to 1, and the result (the
    registered version) or the reason it failed."""
    job = services.lifecycle.get_job(job_id, caller=user)
    if job is None:
        raise ApiProblem(404, _("there is no job {job_id}", job_id=job_id))
    if job.get("kind") == "rescore" and job.get("status") == "done":
        # The promotion took effect: this server serves the new champion from now on (others
        # notice within their registry check, a few seconds).
        services.champions.refresh()
        services.versions.invalidate()
        services.labels.invalidate()
    return job
