"""The web application: the API at /api/v1, the dashboards at /dashboard/, health and docs.

:func:`create_app` is the composition root of the server. It takes a :class:`Services`
(tests pass stand-ins; ``reintegration serve`` lets it build the real ones), includes one router
per resource under ``/api/v1`` behind the authorization dependency, refuses to start when a
route has no rule in ``api.access.RULES``, and mounts the Dash app when ``dashboards`` provides
one.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access import api_routes, check_rules, rule_of
from api.deps import ServicesDep, authorize
from api.docs import install_docs
from api.language import Language
from api.limits import BodyGuard
from api.problems import PROBLEM_JSON, ApiProblem, Problem, install_handlers, problem_responses
from api.routes import admin, analytics, batches, casework, models, scoring
from api.security import install as install_security_headers
from api.services import Services, build_services
from reintegration.store.data_version import read_data_version
from reintegration.store.engine import for_reading

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
DASHBOARD_PREFIX = "/dashboard"
# Worker threads for sync routes and dependencies. anyio's default of 40 would queue the
# 41st concurrent request; cached answers take microseconds, so more threads cost little.
THREADS = 128


def _lifespan(owned: bool) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        app.state.services.start_warming()
        yield
        if owned:
            app.state.services.close()

    return lifespan


def create_app(services: Services | None = None, *, dashboard: bool = True) -> FastAPI:
    """Build the application.

    Parameters
    ----------
    services : Services, optional
        What the routes use; built from the settings (and closed at shutdown) when omitted.
    dashboard : bool, default True
        Mount ``dashboards.app.create_dash_app(services)`` at /dashboard/ when importable.

    Returns
    -------
    FastAPI

    Raises
    ------
    api.access.MissingRuleError
        A route without a rule in ``api.access.RULES``.
    """
    owned = services is None
    services = services or build_services()
    app = FastAPI(
        title="Reintegration sustainability API",
        version="1",
        description="Uploads, reports, aggregates, trajectories, worklist, models and jobs. "
        "Send `Authorization: Bearer <token>`; errors are problem documents "
        "(`application/problem+json`) with a sentence in `detail`.",
        # Served by install_docs, from this server's own files.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        generate_unique_id_function=lambda route: route.name,
        # No max_body_size: BodyGuard caps every body, per route, with a problem document.
        lifespan=_lifespan(owned),
    )
    app.state.services = services
    install_handlers(app)
    install_security_headers(app)

    @app.get(
        "/healthz",
        tags=["health"],
        summary="Liveness and store check",
        responses=problem_responses(503),
    )
    def healthz(services: ServicesDep) -> dict[str, Any]:
        """``ok`` and the data version when the store answers; 503 when it does not."""
        try:
            with for_reading(services.engine).connect() as conn:
                version = read_data_version(conn)
        except sa.exc.SQLAlchemyError:
            log.error("healthz: the store does not answer", exc_info=True)
            raise ApiProblem(503, "the store does not answer; see the server's log") from None
        return {"status": "ok", "data_version": version}

    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(authorize)])
    for module in (batches, analytics, casework, scoring, models, admin):
        api.include_router(module.router)
    app.include_router(api)
    check_rules(app.routes)
    install_docs(app)
    sessions = _mount_dashboard(app, services) if dashboard else None

    async def home(request: Request) -> RedirectResponse:
        mounted = any(getattr(r, "path", "") == DASHBOARD_PREFIX for r in app.routes)
        return RedirectResponse(f"{DASHBOARD_PREFIX}/" if mounted else "/docs")

    app.add_route("/", home, include_in_schema=False)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    # Inside the access log, so that its refusals are logged too.
    app.add_middleware(
        BodyGuard,
        services=services,
        dashboard_prefix=DASHBOARD_PREFIX if sessions else None,
        session_user=sessions[0] if sessions else None,
        dashboard_upload_bytes=sessions[1] if sessions else None,
    )
    app.add_middleware(AccessLog)
    app.add_middleware(Language)  # outermost: every answer, refusals included, in one language
    return app


class AccessLog:
    """One log line per request: method, the route's template, status, milliseconds.

    The template (``/api/v1/batches/{batch_id}``), not the path a client sent: a path or a
    query string can hold anything, a case number typed by mistake included, and logs never
    carry case numbers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger("api.access")
        self._paths: dict[int, str] | None = None

    def _templates(self, scope: Scope) -> dict[int, str]:
        # Routes of included routers know only their own part of the path; the app's route
        # table has the whole of it.
        if self._paths is None:
            routes = api_routes(scope["app"].routes)
            self._paths = {id(r.original_route): r.path for r in routes}
        return self._paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            where = self._templates(scope).get(id(route)) or getattr(route, "path", "(no route)")
            self.log.info(
                "%s %s %d %.1fms",
                scope["method"],
                where,
                status,
                (time.perf_counter() - start) * 1000,
            )


def _mount_dashboard(app: FastAPI, services: Services) -> tuple[Any, int] | None:
    """Mount the dashboards; their session check and largest body (for BodyGuard), or None."""
    # Imported by name: the dashboards are optional here, and the type check of api/ stops at
    # this boundary (dashboards/ is not in mypy's packages).
    try:
        dashboards = importlib.import_module("dashboards.app")
    except ImportError:
        log.info("no dashboards to mount (dashboards.app is not there)")
        return None
    from a2wsgi import WSGIMiddleware

    dash_app = dashboards.create_dash_app(services)
    app.mount(DASHBOARD_PREFIX, WSGIMiddleware(dash_app.server))  # type: ignore[arg-type]
    # Dash's renderer and clientside callbacks are inline scripts: the policy allows them by
    # hash (some appear at the app's first request, so they are read for every answer).
    app.state.content_security.allow_scripts(DASHBOARD_PREFIX, lambda _root: dash_app.csp_hashes())
    return dashboards.session_user(dash_app), int(dash_app.server.config["MAX_CONTENT_LENGTH"])


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The schema, with every error documented as the problem document it is."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema()
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    routes = {r.path: r for r in api_routes(app.routes)}
    for path, operations in schema.get("paths", {}).items():
        route = routes.get(path)
        public = route is not None and rule_of(route).public
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            wanted = [422] if public else [401, 403, 422]
            if "requestBody" in operation:
                # Unreadable, or over the cap BodyGuard gives the route.
                wanted.extend([400, 413])
            for status, entry in problem_responses(*wanted).items():
                responses[str(status)] = entry
            for status, entry in responses.items():
                if status.startswith(("4", "5")) and "application/json" in entry.get("content", {}):
                    entry["content"] = {PROBLEM_JSON: entry["content"].pop("application/json")}
            if public:
                operation.pop("security", None)
    app.openapi_schema = schema
    return schema
