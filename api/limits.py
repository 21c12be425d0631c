"""Request bodies are bounded: the caller is known before a body is read, and none is read past
its cap.

:class:`BodyGuard` sits in front of the whole app (API and dashboards). For a request that
carries a body:

* when it addresses an API route that is not public, the bearer token is checked first, by the
  check the route's own dependency makes (``api.deps.check_access``): 401 or 403 is answered
  without reading a byte of the body;
* the body gets a cap that depends on where it goes: an upload's file limit, ``/score``'s
  (``REINTEGRATION_MAX_SCORE_MB``), a dashboard callback's (the base64-encoded upload limit for
  a session that may upload, 1 MB for other sessions, 64 kB without a session: the page router
  answers the login page to those), 1 MB for every other API body, 64 kB for the rest;
* past its cap the request is answered 413 (a problem document naming the limit), at once when
  the declared length is over it, else as soon as the bytes received pass it: a body without a
  ``Content-Length``, or with one that lies, is cut there. The app behind sees the client leave
  and whatever it answers then goes nowhere.

Before this guard, a 60 MB JSON body was read (and parsed) before the route's dependency could
refuse the missing token: 1.4 GB of memory for a 401.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access import api_routes, rule_of
from api.deps import bearer, check_access
from api.problems import ApiProblem, problem_response
from api.receive import ENVELOPE_BYTES, too_large
from api.schemas.scoring import MAX_RECORDS
from api.services import Services
from reintegration.roles import Capability, allowed
from reintegration.users import User

KB = 1 << 10
MB = 1 << 20
# A login form, a logout, a page-router callback without a session, a stray POST.
SMALL_BYTES = 64 * KB
# Every API body but an upload's and /score's: a user, a promotion, training parameters.
JSON_BYTES = 1 * MB
# Dashboard callbacks of a session that may not upload: their largest state is a table of at
# most 200 batches (about 100 kB).
CALLBACK_BYTES = 1 * MB
CALLBACK_PATH = "/_dash-update-component"

SessionUser = Callable[[str], User | None]
"""The user of a dashboard session, from the request's Cookie header (None: no session)."""


def size_text(n: int) -> str:
    """A byte count as the limits are stated.

    Examples
    --------
    >>> size_text(16 << 20), size_text(64 << 10), size_text(1_500_000)
    ('16 MB', '64 kB', '1,500,000 bytes')
    """
    if n % MB == 0:
        return f"{n // MB} MB"
    if n % KB == 0:
        return f"{n // KB} kB"
    return f"{n:,} bytes"


@dataclass(frozen=True)
class Cap:
    """How many bytes a body may hold, and the answer past that."""

    limit: int
    detail: str
    status: int = 413
    headers: dict[str, str] | None = None

    def answer(self) -> Any:
        extensions = {"limit_bytes": self.limit} if self.status == 413 else {}
        return problem_response(self.status, self.detail, headers=self.headers, **extensions)


def _general(limit: int) -> Cap:
    return Cap(limit, f"the request body is larger than {size_text(limit)}, this request's limit")


def has_body(scope: Scope) -> bool:
    """Whether the request declares a body (a length other than 0, or a transfer coding)."""
    headers = Headers(scope=scope)
    if "transfer-encoding" in headers:
        return True
    return headers.get("content-length", "0").strip() not in ("", "0")


def declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length", "").strip()
    return int(value) if value.isdigit() else None


@dataclass(frozen=True)
class _ApiRoute:
    pattern: re.Pattern[str]
    methods: frozenset[str]
    name: str


class BodyGuard:
    """Authenticate, then cap, every request body (see the module's docstring).

    Parameters
    ----------
    app : ASGI app
    services : Services
        Their settings give the upload and /score limits; their engine and token cache the
        callers.
    dashboard_prefix : str, optional
        Where the dashboards are mounted (``/dashboard``), when they are.
    session_user : callable, optional
        The dashboard's own session check (``dashboards.app.session_user``); without it every
        dashboard body gets the small cap.
    dashboard_upload_bytes : int, optional
        The largest callback a session that may upload can send (the file, base64-encoded).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        services: Services,
        dashboard_prefix: str | None = None,
        session_user: SessionUser | None = None,
        dashboard_upload_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.services = services
        self.dashboard_prefix = dashboard_prefix
        self.session_user = session_user
        self.dashboard_upload_bytes = dashboard_upload_bytes
        self._routes: list[_ApiRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_body(scope):
            await self.app(scope, receive, send)
            return
        try:
            cap = await self.cap_of(scope)
        except ApiProblem as exc:
            refusal = problem_response(exc.status, exc.detail, headers=exc.headers)
            await refusal(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > cap.limit:
            await cap.answer()(scope, receive, send)
            return
        await _Bounded(self.app, cap)(scope, receive, send)

    async def cap_of(self, scope: Scope) -> Cap:
        """The cap of the request's body, once the caller may send it.

        Raises
        ------
        ApiProblem
            401 or 403 for an API route whose rule the caller's token does not meet.
        """
        path = _route_path(scope)
        prefix = self.dashboard_prefix
        if prefix and (path == prefix or path.startswith(prefix + "/")):
            if path[len(prefix) :] == CALLBACK_PATH:
                return await self._callback_cap(scope)
            return _general(SMALL_BYTES)
        route = self._route(scope, path)
        if route is None:
            # No route answers it, and a 404 or 405 reads no body.
            return _general(SMALL_BYTES)
        rule = rule_of(route)
        if not rule.public:
            credentials = await bearer(Request(scope))
            await check_access(
                self.services, rule, credentials.credentials if credentials else None
            )
        settings = self.services.settings
        if route.name == "upload_batch":
            return Cap(
                (settings.max_upload_mb << 20) + ENVELOPE_BYTES,
                too_large(settings.max_upload_mb).detail,
            )
        if route.name == "score_records":
            limit = settings.max_score_mb << 20
            return Cap(
                limit,
                f"the body is larger than {size_text(limit)}, the limit of a scoring request; "
                f"send the records in several requests (at most {MAX_RECORDS:,} records each)",
            )
        return _general(JSON_BYTES)

    async def _callback_cap(self, scope: Scope) -> Cap:
        declared = declared_length(scope)
        if self.session_user is None or (declared is not None and declared <= SMALL_BYTES):
            # Every caller may send this much: most callbacks cost no session lookup here.
            return _general(SMALL_BYTES)
        cookie = Headers(scope=scope).get("cookie", "")
        user = await anyio.to_thread.run_sync(self.session_user, cookie) if cookie else None
        if user is None:
            return Cap(
                SMALL_BYTES,
                "your session has ended: log in again (a dashboard request larger than "
                f"{size_text(SMALL_BYTES)} needs a session)",
                status=401,
            )
        if self.dashboard_upload_bytes and allowed(user.role, Capability.UPLOAD):
            limit = self.dashboard_upload_bytes
            mb = self.services.settings.max_upload_mb
            return Cap(
                limit,
                f"the request is larger than {size_text(limit)}, the dashboard's limit (a file of "
                f"at most {mb} MB, as the browser encodes it); split the file into smaller "
                "batches",
            )
        return Cap(
            CALLBACK_BYTES,
            f"the request is larger than {size_text(CALLBACK_BYTES)}, the limit of a dashboard "
            "request",
        )

    def _route(self, scope: Scope, path: str) -> Any:
        if self._routes is None:
            self._routes = [
                _ApiRoute(compile_path(r.path)[0], frozenset(r.methods or ()), r.name)
                for r in api_routes(scope["app"].routes)
            ]
        method = scope["method"]
        for route in self._routes:
            if method in route.methods and route.pattern.match(path):
                return route
        return None


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


class _Bounded:
    """Run the app with a receive that stops at the cap and answers 413 there."""

    def __init__(self, app: ASGIApp, cap: Cap) -> None:
        self.app = app
        self.cap = cap
        self.received = 0
        self.refused = False
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def bounded_receive() -> Message:
            if self.refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.cap.limit:
                    self.refused = True
                    if not self.started:
                        await self.cap.answer()(scope, receive, send)
                    # The app behind sees a client that left: it stops reading and its own
                    # answer is dropped below.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if self.refused:
                return
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        await self.app(scope, bounded_receive, guarded_send)
