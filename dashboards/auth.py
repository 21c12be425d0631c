"""The dashboard's session: a token checked once at login, then a signed cookie for a working day.

The login page posts the token to ``login``; when :func:`reintegration.users.authenticate`
knows it, the answer sets a cookie holding the token's SHA-256, signed with a key derived from
the platform's secret (itsdangerous), HttpOnly and SameSite=Lax, valid for ten hours. Every
request then re-reads the user by that hash, so revoking a user ends their sessions at once,
and nothing in the cookie can be replayed as a token.

A gate in front of every request lets through only the login page, the static assets and the
page router; anything else without a session is sent to the login page (a page) or refused
with 401 (a callback). Callbacks check the user's capability again (see ``dashboards.access``).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote, urlsplit

import flask
from itsdangerous import BadSignature, URLSafeTimedSerializer

from reintegration.users import User, authenticate, token_hash, user_by_token_hash

log = logging.getLogger(__name__)

SESSION_COOKIE = "reintegration_session"
SESSION_SECONDS = 10 * 60 * 60  # a working day
SALT = "reintegration.dashboard.session"
SERVICES_KEY = "REINTEGRATION_SERVICES"
LOGIN = "/login"
LOGOUT = "/logout"
PUBLIC_PREFIXES = (
    "/_dash-component-suites/",
    "/_dash-layout",
    "/_dash-dependencies",
    "/_reload-hash",
    "/_favicon.ico",
    "/assets/",
)
ROUTER_OUTPUT = "_pages_content.children"
BAD_TOKEN = "bad-token"


def services() -> Any:
    """The services of the app serving the current request."""
    return flask.current_app.config[SERVICES_KEY]


def signer(secret: bytes) -> URLSafeTimedSerializer:
    """The serializer that signs and checks session cookies."""
    return URLSafeTimedSerializer(secret, salt=SALT)


def session_value(secret: bytes, digest: str) -> str:
    """The cookie value of a session for the token whose SHA-256 is ``digest``."""
    return signer(secret).dumps({"t": digest})


def session_digest(secret: bytes, value: str | None, max_age: int = SESSION_SECONDS) -> str | None:
    """The token hash inside a session cookie; None when unsigned, altered or expired.

    Examples
    --------
    >>> cookie = session_value(b"k" * 32, "ab" * 32)
    >>> session_digest(b"k" * 32, cookie) == "ab" * 32, session_digest(b"x" * 32, cookie)
    (True, None)
    """
    if not value:
        return None
    try:
        payload = signer(secret).loads(value, max_age=max_age)
    except BadSignature:  # also SignatureExpired, its subclass
        return None
    digest = payload.get("t") if isinstance(payload, dict) else None
    return digest if isinstance(digest, str) else None


def current_user() -> User | None:
    """The user of the current request's session (looked up once per request), or None."""
    if "reintegration_user" not in flask.g:
        svc = services()
        digest = session_digest(
            svc.settings.secret_key_bytes(), flask.request.cookies.get(SESSION_COOKIE)
        )
        flask.g.reintegration_user = (
            user_by_token_hash(svc.engine, digest) if digest is not None else None
        )
    user: User | None = flask.g.reintegration_user
    return user


def page_url(path: str) -> str:
    """``path`` (``/overview``) as the browser addresses it, under the mount point."""
    return f"{flask.request.script_root}{path}"


def _safe_next(target: str | None) -> str:
    """Where to go after login: a path of this app, never another site."""
    home = page_url("/")
    if not target:
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(home) or "\\" in target:
        return home
    if parts.path == page_url(LOGIN):
        return home
    return target


def _login() -> flask.Response:
    form = flask.request.form
    token = (form.get("token") or "").strip()
    wanted = _safe_next(form.get("next"))
    user = authenticate(services().engine, token)
    if user is None:
        log.info("dashboard login refused")
        return flask.redirect(
            page_url(f"{LOGIN}?error={BAD_TOKEN}&next={quote(wanted, safe='')}"), 303
        )
    log.info("dashboard login: %s (%s)", user.name, user.role.value)
    response = flask.redirect(wanted, 303)
    response.set_cookie(
        SESSION_COOKIE,
        session_value(services().settings.secret_key_bytes(), token_hash(token)),
        max_age=SESSION_SECONDS,
        path=flask.request.script_root or "/",
        httponly=True,
        samesite="Lax",
        secure=flask.request.scheme == "https",
    )
    return response


def _logout() -> flask.Response:
    response = flask.redirect(page_url(LOGIN), 303)
    response.delete_cookie(SESSION_COOKIE, path=flask.request.script_root or "/")
    return response


def _is_router_callback() -> bool:
    body = flask.request.get_json(silent=True, cache=True) or {}
    return ROUTER_OUTPUT in str(body.get("output", ""))


def _gate() -> flask.Response | tuple[Any, int] | None:
    path = flask.request.path
    if path in (LOGIN, LOGOUT) or path.startswith(PUBLIC_PREFIXES):
        return None
    user = current_user()
    if path == "/_dash-update-component":
        if user is None and not _is_router_callback():
            return flask.jsonify({"error": "your session has ended: log in again"}), 401
        return None
    if user is None:
        wanted = flask.request.full_path.rstrip("?")
        target = quote(page_url(wanted), safe="")
        return flask.redirect(page_url(f"{LOGIN}?next={target}"), 302)
    if path == "/":
        from dashboards.access import home_path

        return flask.redirect(page_url(home_path(user)), 302)
    return None


def install(server: flask.Flask) -> None:
    """Add the login and logout routes and the gate to a Dash app's Flask server."""
    server.add_url_rule(LOGIN, "reintegration_login", _login, methods=["POST"])
    server.add_url_rule(LOGOUT, "reintegration_logout", _logout, methods=["GET", "POST"])
    server.before_request(_gate)
