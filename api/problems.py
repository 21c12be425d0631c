"""Errors as problem details (RFC 9457): ``application/problem+json`` with a human sentence.

Routes raise :class:`ApiProblem` (or let a domain error through); the handlers installed by
:func:`install_handlers` turn every error into a problem document. Domain errors are mapped by
class in :data:`DOMAIN_STATUS`. Anything unexpected is logged with its traceback and answered
with a 500 problem that says nothing about the request: the test suite and schemathesis make
sure no request a client can send ends there.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.champions import ChampionUnavailable
from reintegration import errors
from reintegration.i18n import _

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# Domain errors that reach a handler; the most specific class wins. A route that knows better
# (an unknown user is a 404 when deleting) raises an ApiProblem itself.
DOMAIN_STATUS: dict[type[Exception], int] = {
    ChampionUnavailable: 503,
    errors.UnreadableFileError: 422,
    errors.MissingColumnsError: 422,
    errors.QueryError: 422,
    errors.UserError: 422,
    errors.IndexParameterError: 422,
    errors.ConfigurationError: 503,
    errors.Forbidden: 403,
}
for _name, _status in (("PromotionRefused", 409), ("ModelError", 422), ("JobError", 422)):
    # Added to reintegration.errors by the models issue; mapped once they exist.
    if hasattr(errors, _name):
        DOMAIN_STATUS[getattr(errors, _name)] = _status


class Problem(BaseModel):
    """A problem document: what went wrong, as a sentence a person can act on."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str


class ApiProblem(Exception):
    """An answer other than success, raised by a route or a dependency."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.extensions = extensions


def problem_response(
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem document response; ``detail`` ends with a full stop (``title`` stays the
    status's English phrase, a code clients may match on; ``detail`` is in the request's
    language)."""
    if detail and not detail.endswith((".", "?", "!", "。", "؟")):
        detail += "."
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extensions,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def domain_status(exc: Exception) -> int:
    """The HTTP status of a domain error (422 for one not listed)."""
    for cls in type(exc).__mro__:
        if cls in DOMAIN_STATUS:
            return DOMAIN_STATUS[cls]
    return 422


def _where(loc: tuple[Any, ...]) -> str:
    if not loc:
        return _("the request")
    kind, *rest = loc
    path = ".".join(str(part) for part in rest)
    if kind == "body":
        return _("body field {name}", name=path) if path else _("the body")
    if kind == "query":
        return _("query parameter {name}", name=path)
    if kind == "path":
        return _("path parameter {name}", name=path)
    if kind == "header":
        return _("header {name}", name=path)
    if kind == "cookie":
        return _("cookie {name}", name=path)
    return ".".join(str(part) for part in loc)


def _message(error: dict[str, Any]) -> str:
    """Pydantic's sentence for the usual kinds of invalid input, in the request's language;
    its own English for the rest (and a validator's own sentence, which is the domain's)."""
    ctx = error.get("ctx") or {}
    kind = error.get("type", "")
    known = {
        "missing": lambda: _("is required"),
        "extra_forbidden": lambda: _("is not a field of this request"),
        "int_parsing": lambda: _("must be a whole number"),
        "int_type": lambda: _("must be a whole number"),
        "int_from_float": lambda: _("must be a whole number"),
        "float_parsing": lambda: _("must be a number"),
        "float_type": lambda: _("must be a number"),
        "bool_parsing": lambda: _("must be true or false"),
        "bool_type": lambda: _("must be true or false"),
        "string_type": lambda: _("must be text"),
        "list_type": lambda: _("must be a list"),
        "dict_type": lambda: _("must be an object"),
        "model_attributes_type": lambda: _("must be an object"),
        "date_parsing": lambda: _("must be a date (YYYY-MM-DD)"),
        "date_from_datetime_parsing": lambda: _("must be a date (YYYY-MM-DD)"),
        "date_type": lambda: _("must be a date (YYYY-MM-DD)"),
        "string_too_short": lambda: _(
            "must have at least {min_length} characters", min_length=ctx.get("min_length")
        ),
        "string_too_long": lambda: _(
            "must have at most {max_length} characters", max_length=ctx.get("max_length")
        ),
        "too_short": lambda: _(
            "must have at least {min_length} items", min_length=ctx.get("min_length")
        ),
        "too_long": lambda: _(
            "must have at most {max_length} items", max_length=ctx.get("max_length")
        ),
        "greater_than_equal": lambda: _("must be at least {limit}", limit=ctx.get("ge")),
        "greater_than": lambda: _("must be more than {limit}", limit=ctx.get("gt")),
        "less_than_equal": lambda: _("must be at most {limit}", limit=ctx.get("le")),
        "less_than": lambda: _("must be less than {limit}", limit=ctx.get("lt")),
        "literal_error": lambda: _("must be one of {choices}", choices=ctx.get("expected")),
        "enum": lambda: _("must be one of {choices}", choices=ctx.get("expected")),
        "string_pattern_mismatch": lambda: _("is not in the expected form"),
    }
    build = known.get(kind)
    return build() if build is not None else str(error["msg"])


def _finding(error: dict[str, Any]) -> dict[str, str]:
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        where = error.get("loc", ("body", 0))[-1]
        return {
            "location": _("the body"),
            "message": _("is not valid JSON ({reason} at {where})", reason=reason, where=where),
        }
    return {"location": _where(tuple(error.get("loc", ()))), "message": _message(error)}


def validation_sentence(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    """One sentence naming every invalid parameter, and the list behind it.

    Input values are not echoed: a rejected field may hold an answer or a case number.
    """
    found = [_finding(e) for e in exc.errors()]
    sentence = ""
    for f in found[:5]:
        said = _("{location}: {message}", location=f["location"], message=f["message"])
        sentence = _("{said}; {more}", said=sentence, more=said) if sentence else said
    if len(found) > 5:
        sentence += _("; and {count} more", count=len(found) - 5)
    return sentence or _("the request is not valid"), found


async def _api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(exc.status, exc.detail, headers=exc.headers, **exc.extensions)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status == 404:
        detail = _(
            "there is nothing at {path}; the API lives under /api/v1 (see /docs)",
            path=request.url.path,
        )
    elif status == 405:
        detail = _(
            "{method} is not allowed on {path}", method=request.method, path=request.url.path
        )
    elif status == 400:
        # FastAPI's answer to a body it cannot decode at all (not UTF-8, cut short).
        detail = _("the body cannot be read: send UTF-8 JSON as the Content-Type says")
    else:
        detail = str(exc.detail) if exc.detail else HTTPStatus(status).phrase
    return problem_response(status, detail, headers=getattr(exc, "headers", None))


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    sentence, found = validation_sentence(exc)
    return problem_response(422, sentence, errors=found)


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    status = domain_status(exc)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, type(exc).__name__)
    return problem_response(status, str(exc))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log, never to the client; the path has no answers in it
    # (returnee keys are pseudonyms), the query string is left out.
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500, _("an unexpected error stopped this request; it has been logged for the maintainers")
    )


def install_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with a problem document."""
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(errors.ReintegrationError, _domain)
    app.add_exception_handler(Exception, _unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem documents a route may answer with."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
