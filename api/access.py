"""Who may call which route: one rule per route, in one table.

The capability of each rule is a row of DESIGN.md's role matrix (``reintegration.roles``); this
table only says which row each route belongs to. :func:`check_rules` refuses to build an app
with a route the table does not name, and the authorization test walks the app's own route
table against it, so a new route without a rule fails both the server and the suite.

Routes whose data spans every country and cannot be narrowed to some (models trained and
promoted for all, the audit trail, users and tokens) need a token for every country: a token
limited to some countries is refused there, so it can neither read other countries' figures
through a model card nor make itself an unlimited token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from reintegration.roles import Capability


@dataclass(frozen=True)
class Rule:
    """What a route needs: nothing (public), any valid token, or a capability."""

    capability: Capability | None
    public: bool = False
    every_country: bool = False

    def describe(self) -> str:
        """The rule as the authorization test and the docs show it."""
        if self.public:
            return "public"
        scope = ", token for every country" if self.every_country else ""
        return f"{self.capability.value if self.capability else 'any token'}{scope}"


PUBLIC = Rule(None, public=True)
ANY_TOKEN = Rule(None)


def _needs(capability: Capability, *, every_country: bool = False) -> Rule:
    return Rule(capability, every_country=every_country)


UPLOAD = _needs(Capability.UPLOAD)
AGGREGATES = _needs(Capability.AGGREGATES)
ROW_LEVEL = _needs(Capability.ROW_LEVEL)
MODELS = _needs(Capability.MODELS, every_country=True)
ADMIN = _needs(Capability.ADMIN, every_country=True)

# Keyed by the route's name (its function name, which is also its OpenAPI operationId).
RULES: dict[str, Rule] = {
    "healthz": PUBLIC,
    "whoami": ANY_TOKEN,
    # batches: an enumerator sees their own; ROW_LEVEL without a country limit sees every batch
    "upload_batch": UPLOAD,
    "list_batches": UPLOAD,
    "get_batch": UPLOAD,
    "get_batch_errors": UPLOAD,
    "get_batch_rejected": UPLOAD,
    "score_records": UPLOAD,
    # aggregates
    "get_aggregates": AGGREGATES,
    "get_trajectories": AGGREGATES,
    "get_overview": AGGREGATES,
    "get_assistance": AGGREGATES,
    "list_index_versions": AGGREGATES,
    # row level
    "get_returnee": ROW_LEVEL,
    "get_worklist": ROW_LEVEL,
    "put_case_status": ROW_LEVEL,
    "export_scores": ROW_LEVEL,
    # models and jobs
    "list_models": MODELS,
    "list_model_versions": MODELS,
    "get_model_card": MODELS,
    "train_model": MODELS,
    "promote_model_version": MODELS,
    "list_jobs": MODELS,
    "get_job": MODELS,
    # administration
    "list_audit": ADMIN,
    "list_users": ADMIN,
    "add_user": ADMIN,
    "revoke_user": ADMIN,
    "reissue_token": ADMIN,
}


class MissingRuleError(RuntimeError):
    """A route was added without a rule in :data:`RULES`."""


def api_routes(routes: Sequence[BaseRoute]) -> list[Any]:
    """Every API route of an app, routers included, with its full path (``.path``,
    ``.name``, ``.methods``)."""
    return [r for r in iter_route_contexts(routes) if isinstance(r.original_route, APIRoute)]


def rule_of(route: Any) -> Rule:
    """The rule of an API route.

    Raises
    ------
    MissingRuleError
        When :data:`RULES` does not name the route.
    """
    name = getattr(route, "name", None)
    if name not in RULES:
        path = getattr(route, "path", "?")
        raise MissingRuleError(
            f"route {name!r} ({path}) has no rule in api/access.py RULES: say which capability "
            "of reintegration.roles it needs"
        )
    return RULES[name]


def check_rules(routes: Sequence[BaseRoute]) -> None:
    """Refuse routes without a rule, and rules naming no route (a renamed function).

    Raises
    ------
    MissingRuleError
    """
    found = api_routes(routes)
    for route in found:
        rule_of(route)
    names = {r.name for r in found}
    stale = sorted(set(RULES) - names)
    if stale:
        raise MissingRuleError(f"RULES names routes that do not exist: {', '.join(stale)}")
