"""Administration: users and their tokens, the audit trail; and who the caller is."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from api.deps import CurrentUser, ServicesDep
from api.problems import ApiProblem, problem_responses
from api.schemas.admin import AuditEntry, Me, TokenReissued, UserCreate, UserCreated, UserOut
from reintegration import batch_views
from reintegration.errors import UserError
from reintegration.i18n import _
from reintegration.roles import Capability, allowed
from reintegration.users import User, add_user, list_users, reissue_token, revoke_user

router = APIRouter(tags=["administration"])

# Wider than the names that can be made now: names stored before the rule stay revocable.
UserName = Annotated[str, Path(min_length=1, max_length=200)]


def _out(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "countries": sorted(user.countries) if user.countries is not None else None,
    }


@router.get("/me", response_model=Me, summary="Who this token belongs to")
def whoami(user: CurrentUser) -> Any:
    """The token's user, role, countries, and the capabilities of the role."""
    return {**_out(user), "capabilities": [c.value for c in Capability if allowed(user.role, c)]}


@router.get("/users", response_model=list[UserOut], summary="Users", name="list_users")
def list_users_route(services: ServicesDep, user: CurrentUser) -> Any:
    """Every user with their role and countries (tokens are never shown again)."""
    return [_out(u) for u in list_users(services.engine, caller=user)]


@router.post(
    "/users",
    status_code=201,
    response_model=UserCreated,
    summary="Add a user and make their token",
    name="add_user",
    responses=problem_responses(409, 422),
)
def add_user_route(services: ServicesDep, user: CurrentUser, body: UserCreate) -> Any:
    """Add a user; the answer holds their token, shown this once (only its hash is stored).

    ``countries`` is a non-empty list of ISO3 codes, or ``"all"``: an empty list is refused
    (it once made a token for every country)."""
    name = body.name
    if any(u.name == name for u in list_users(services.engine, caller=user)):
        raise ApiProblem(
            409, _("a user named {name} already exists: revoke it first", name=repr(name))
        )
    codes = body.country_codes()
    try:
        token = add_user(services.engine, name, body.role, codes, caller=user)
    except UserError as exc:
        status = 409 if "already exists" in str(exc) else 422
        raise ApiProblem(status, str(exc)) from None
    countries = None if codes is None else sorted({c.strip().upper() for c in codes})
    return {
        "name": name,
        "role": body.role,
        "countries": countries,
        "token": token,
        "note": _("the token is shown this once; only its hash is stored"),
    }


@router.delete(
    "/users/{name}",
    status_code=204,
    response_class=Response,
    summary="Revoke a user's token",
    name="revoke_user",
    responses=problem_responses(404),
)
def revoke_user_route(services: ServicesDep, user: CurrentUser, name: UserName) -> Response:
    """Remove a user; their token stops working at once."""
    if not any(u.name == name for u in list_users(services.engine, caller=user)):
        raise ApiProblem(404, _("there is no user named {name}", name=repr(name)))
    try:
        revoke_user(services.engine, name, caller=user)
    except UserError as exc:
        raise ApiProblem(404, str(exc)) from None
    services.tokens.clear()  # the token stops working here at once, not a second later
    return Response(status_code=204)


@router.post(
    "/users/{name}/token",
    response_model=TokenReissued,
    summary="Reissue a user's token",
    name="reissue_token",
    responses=problem_responses(404),
)
def reissue_token_route(services: ServicesDep, user: CurrentUser, name: UserName) -> Any:
    """Give a user a new token, shown this once: the old token (and any dashboard session
    opened with it) stops working at once; role and countries stay. Audited."""
    try:
        token = reissue_token(services.engine, name, caller=user)
    except UserError:
        raise ApiProblem(404, _("there is no user named {name}", name=repr(name))) from None
    services.tokens.clear()  # the old token stops working here at once, not a second later
    return {
        "name": name,
        "token": token,
        "note": _("the token is shown this once; only its hash is stored"),
    }


@router.get("/audit", response_model=list[AuditEntry], summary="The audit trail")
def list_audit(
    services: ServicesDep,
    user: CurrentUser,
    action: Annotated[str | None, Query(max_length=50)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Any:
    """Who did what, when, on which batch or model, newest first (never answers)."""
    return batch_views.audit_entries(
        services.engine, caller=user, action=action, actor=actor, limit=limit, offset=offset
    )
