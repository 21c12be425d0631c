"""The dependencies every route shares: the services, and who is calling.

:func:`authorize` runs on every route of the API router: it finds the route's rule in
``api.access.RULES`` and checks the bearer token against it. Routes that need the caller
declare ``user: CurrentUser`` (FastAPI runs the dependency once per request).
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.access import Rule, rule_of
from api.problems import ApiProblem
from api.services import Services
from reintegration.policy import refusal
from reintegration.roles import Capability, allowed
from reintegration.users import User, authenticate, token_hash

bearer = HTTPBearer(
    auto_error=False,
    description="A token from `reintegration users add` (or POST /api/v1/users).",
)

CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def get_services(request: Request) -> Services:
    """The services of the app serving this request (async: no thread for a lookup)."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def authorize(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User | None:
    """Check the caller's token against the route's rule; the caller, or None on a public route.

    Raises
    ------
    ApiProblem
        As :func:`check_access`.
    """
    rule = rule_of(request.scope["route"])
    token = credentials.credentials if credentials is not None else None
    user = await check_access(services, rule, token)
    if user is not None:
        request.state.user = user
    return user


async def check_access(services: Services, rule: Rule, token: str | None) -> User | None:
    """The holder of ``token`` when ``rule`` lets them in; None on a public rule.

    A token seen in the last second is known without a database read (``api.caches``). The
    route dependency and the body guard (``api.limits``, which runs before a body is read) both
    ask here, so they cannot disagree.

    Raises
    ------
    ApiProblem
        401 without a valid token; 403 when the role lacks the rule's capability, or when
        a token limited to some countries calls a route that spans every country.
    """
    if rule.public:
        return None
    if token is None:
        raise ApiProblem(
            401,
            "this request needs a token: send the header Authorization: Bearer <token>",
            headers=CHALLENGE,
        )
    digest = token_hash(token)
    user = services.tokens.get(digest)
    if user is None:
        user = await anyio.to_thread.run_sync(authenticate, services.engine, token)
        if user is None:
            raise ApiProblem(
                401, "the token is not valid: it is unknown or was revoked", headers=CHALLENGE
            )
        services.tokens.put(digest, user)
    if rule.capability is not None:
        # The domain's own sentence: the API and the domain functions behind it say the same.
        why = refusal(user, rule.capability, every_country=rule.every_country)
        if why is not None:
            raise ApiProblem(403, why)
    return user


async def current_user(user: Annotated[User | None, Depends(authorize)]) -> User:
    """The caller of a route that is not public."""
    assert user is not None, "current_user on a public route"
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def sees_every_batch(user: User) -> bool:
    """Whether ``user`` may read every batch (row-level access for every country)."""
    return allowed(user.role, Capability.ROW_LEVEL) and user.countries is None
