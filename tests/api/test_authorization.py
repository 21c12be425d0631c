"""Every route of the app × every role × a country-limited token × no token, against DESIGN.md.

The expectations below are DESIGN.md's "Roles" matrix written out per route, independently of
``api.access.RULES``: the test walks the app's own route table, so a route added without a
rule (or without an expectation here) fails the suite.
"""

from __future__ import annotations

import re

import pytest
from fastapi import APIRouter

from api.access import RULES, MissingRuleError, api_routes, check_rules

ALL = {"enumerator", "manager", "analyst", "admin"}
UPLOADERS = {"enumerator", "analyst", "admin"}  # upload, own batches and errors, score
VIEWERS = {"manager", "analyst", "admin"}  # aggregates, trajectories
ROW_LEVEL = {"analyst", "admin"}  # every batch, row-level data, exports
MODELS = {"analyst", "admin"}  # train, promote, jobs, models
ADMIN = {"admin"}  # users, tokens, audit

# route name -> (roles allowed, whether a token limited to some countries may call it)
EXPECTED: dict[str, tuple[set[str] | None, bool]] = {
    "healthz": (None, True),  # public
    "whoami": (ALL, True),
    "upload_batch": (UPLOADERS, True),
    "list_batches": (UPLOADERS, True),
    "get_batch": (UPLOADERS, True),
    "get_batch_errors": (UPLOADERS, True),
    "get_batch_rejected": (UPLOADERS, True),
    "score_records": (UPLOADERS, True),
    "get_aggregates": (VIEWERS, True),
    "get_trajectories": (VIEWERS, True),
    "get_overview": (VIEWERS, True),
    "get_assistance": (VIEWERS, True),
    "list_index_versions": (VIEWERS, True),
    "get_returnee": (ROW_LEVEL, True),
    "get_worklist": (ROW_LEVEL, True),
    "put_case_status": (ROW_LEVEL, True),
    "export_scores": (ROW_LEVEL, True),
    "list_models": (MODELS, False),
    "list_model_versions": (MODELS, False),
    "get_model_card": (MODELS, False),
    "train_model": (MODELS, False),
    "promote_model_version": (MODELS, False),
    "list_jobs": (MODELS, False),
    "get_job": (MODELS, False),
    "list_audit": (ADMIN, False),
    "list_users": (ADMIN, False),
    "add_user": (ADMIN, False),
    "revoke_user": (ADMIN, False),
    "reissue_token": (ADMIN, False),
}
# Path parameters that name nothing stored, so allowed calls end in 404 or 422 without effect.
DUMMY = {
    "batch_id": "00000000-0000-4000-8000-000000000000",
    "key": "0" * 64,
    "name": "no-such-model",
    "version": "7",
    "job_id": "no-such-job",
}
CALLERS = ["enumerator", "manager", "analyst", "admin", "analyst_sen", "manager_sen", None]
ROLE_OF = {"analyst_sen": "analyst", "manager_sen": "manager"}


def _calls(panel):
    for route in api_routes(panel.app.routes):
        path = re.sub(r"\{(\w+)\}", lambda m: DUMMY[m.group(1)], route.path)
        for method in sorted(route.methods - {"HEAD"}):
            yield route.name, method, path


def test_every_route_has_an_expectation_and_a_rule(panel):
    names = {name for name, _, _ in _calls(panel)}
    assert names == set(EXPECTED), "routes and EXPECTED differ: write DESIGN.md's rule here"
    assert names == set(RULES)


def test_every_route_answers_every_caller_as_the_matrix_says(panel):
    wrong = []
    for name, method, path in _calls(panel):
        roles, scoped_ok = EXPECTED[name]
        for caller in CALLERS:
            response = panel.client.request(method, path, headers=panel.auth(caller, {}))
            if roles is None:
                expected = "allowed"
            elif caller is None:
                expected = 401
            else:
                role = ROLE_OF.get(caller, caller)
                limited = caller in ROLE_OF
                if role not in roles or (limited and not scoped_ok):
                    expected = 403
                else:
                    expected = "allowed"
            got = response.status_code
            if (expected == "allowed" and got in (401, 403)) or (
                expected != "allowed" and got != expected
            ):
                wrong.append(f"{method} {path} as {caller}: {got}, expected {expected}")
            assert got < 500, f"{method} {path} as {caller}: {response.text}"
    assert wrong == []


def test_refusals_are_problem_documents_naming_what_is_missing(panel):
    none = panel.client.get("/api/v1/aggregates")
    role = panel.get("/api/v1/batches", "manager")
    scope = panel.get("/api/v1/models", "analyst_sen")

    assert none.status_code == 401 and none.headers["www-authenticate"] == "Bearer"
    assert none.headers["content-type"] == "application/problem+json"
    assert none.json()["detail"] == (
        "this request needs a token: send the header Authorization: Bearer <token>."
    )
    assert role.json() == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "the manager role may not upload batches, see batches or score records.",
    }
    assert scope.status_code == 403
    assert scope.json()["detail"].startswith("this token is limited to SEN")


def test_an_unknown_or_revoked_token_is_refused(panel):
    response = panel.client.get(
        "/api/v1/me", headers={"Authorization": "Bearer not-a-token-anyone-holds"}
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "the token is not valid: it is unknown or was revoked."


def test_a_token_in_another_scheme_is_refused(panel):
    token = panel.tokens["admin"]
    response = panel.client.get("/api/v1/me", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 401


def test_public_routes_need_no_token(panel):
    assert panel.client.get("/healthz").json()["status"] == "ok"
    assert panel.client.get("/openapi.json").status_code == 200
    assert panel.client.get("/docs").status_code == 200


def test_an_app_with_a_route_without_a_rule_does_not_build(panel):
    extra = APIRouter()

    @extra.get("/api/v1/unruled")
    def unruled() -> dict[str, str]:
        return {}

    with pytest.raises(MissingRuleError, match="route 'unruled' .* has no rule"):
        check_rules([*panel.app.router.routes, *extra.routes])
