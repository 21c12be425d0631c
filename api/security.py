"""Headers every answer of the server carries, and the content security policy of each part.

Every response (the API, ``/docs``, the dashboards, redirects, 401, 404 and 500 alike) says
``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``,
over HTTPS ``Strict-Transport-Security``, and a ``Content-Security-Policy`` chosen by path prefix
in :data:`POLICIES`, the one place that
says what each part of the site may load. Every policy forbids framing (``frame-ancestors
'none'``) and loading anything from another host.

Inline scripts are allowed by hash only, never wholesale: the dashboards' (Dash's renderer and
clientside callbacks, from ``dash.Dash.csp_hashes``), registered by the part that owns them
with :meth:`ContentSecurity.allow_scripts`. ``/docs`` has none (``api.docs`` starts Swagger UI
from a file of this server).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
HSTS = "max-age=31536000"
"""Sent over HTTPS only (a TLS proxy trusted by REINTEGRATION_FORWARDED_ALLOW_IPS makes the
scheme https): browsers then refuse plain HTTP to this host for a year."""
DASHBOARD = "/dashboard"
DOCS = "/docs"
# The policy of each part of the site: the first prefix that matches the path (a prefix
# matches itself and what lies under it). Script hashes registered for a prefix are added to
# its script-src.
POLICIES: tuple[tuple[str, dict[str, str]], ...] = (
    (
        DASHBOARD,
        {
            "default-src": "'self'",
            "script-src": "'self'",
            # Plotly and Dash style elements through style attributes and <style> elements.
            "style-src": "'self' 'unsafe-inline'",
            # Plotly's PNG export draws through data: and blob: images.
            "img-src": "'self' data: blob:",
            "font-src": "'self' data:",
            "connect-src": "'self'",
            "object-src": "'none'",
            "base-uri": "'self'",
            "form-action": "'self'",
            "frame-ancestors": "'none'",
        },
    ),
    (
        DOCS,
        {
            "default-src": "'self'",
            "script-src": "'self'",
            "style-src": "'self'",
            "img-src": "'self' data:",
            "connect-src": "'self'",
            "object-src": "'none'",
            "base-uri": "'self'",
            "form-action": "'self'",
            "frame-ancestors": "'none'",
        },
    ),
    (
        # JSON, problem documents, redirects: nothing to load, nothing to run.
        "",
        {
            "default-src": "'none'",
            "base-uri": "'none'",
            "form-action": "'none'",
            "frame-ancestors": "'none'",
        },
    ),
)

ScriptHashes = Callable[[str], Iterable[str]]


def script_hash(script: str) -> str:
    """The CSP source that allows one inline script: ``'sha256-<base64>'``.

    Examples
    --------
    >>> script_hash("alert(1)")
    "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"
    """
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def _under(path: str, prefix: str) -> bool:
    return not prefix or path == prefix or path.startswith(f"{prefix}/")


class ContentSecurity:
    """The policies of :data:`POLICIES` with the script hashes each part registered."""

    def __init__(self) -> None:
        self._scripts: dict[str, list[ScriptHashes]] = {}

    def allow_scripts(self, prefix: str, hashes: ScriptHashes) -> None:
        """Allow the inline scripts ``hashes(root_path)`` names under ``prefix``.

        ``hashes`` is called for each response under the prefix, so a part whose scripts
        appear late (Dash registers some at its first request) is covered once they exist.
        """
        self._scripts.setdefault(prefix, []).append(hashes)

    def policy(self, path: str, root_path: str = "") -> str:
        """The ``Content-Security-Policy`` of a response to ``path``."""
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        prefix, directives = next((p, d) for p, d in POLICIES if _under(path, p))
        sources = dict(directives)
        hashes: list[str] = []
        for provider in self._scripts.get(prefix, ()):
            hashes.extend(h for h in provider(root_path) if h not in hashes)
        if hashes:
            sources["script-src"] = " ".join([sources.get("script-src", "'self'"), *hashes])
        return "; ".join(f"{name} {value}" for name, value in sources.items())


class SecurityHeaders:
    """ASGI middleware: :data:`HEADERS` and the path's policy on every HTTP response."""

    def __init__(self, app: ASGIApp, policies: ContentSecurity) -> None:
        self.app = app
        self.policies = policies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # Read now: routing rewrites the scope's root path on the way to a mounted app.
        path, root_path = scope["path"], scope.get("root_path", "")
        secure = scope.get("scheme") == "https"

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
                headers["Content-Security-Policy"] = self.policies.policy(path, root_path)
                if secure:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        await self.app(scope, receive, sending)


def install(app: FastAPI) -> ContentSecurity:
    """Put :class:`SecurityHeaders` around everything ``app`` answers, its 500s included.

    Starlette answers an unhandled error outside the middleware added with
    ``add_middleware``, so the headers wrap the whole stack instead.

    Returns
    -------
    ContentSecurity
        Also ``app.state.content_security``, for parts that register their script hashes.
    """
    policies = ContentSecurity()
    build = app.build_middleware_stack

    def build_with_headers() -> ASGIApp:
        return SecurityHeaders(build(), policies)

    app.build_middleware_stack = build_with_headers  # type: ignore[method-assign]
    app.state.content_security = policies
    return policies
