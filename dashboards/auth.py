"""The dashboard's session: a token checked once at login, then a session held in the store.

The login page posts the token to ``login`` with the login form's CSRF token; when the CSRF
token matches the browser's cookie and :func:`reintegration.users.authenticate` knows the
token, :func:`reintegration.sessions.open_session` opens a session for a working day and the
answer sets a cookie holding its secret, signed with a key derived from the platform's secret
(itsdangerous: an altered cookie costs no query), HttpOnly, SameSite=Lax, and Secure when the
request came over HTTPS (directly, or through a proxy the server trusts, see
``REINTEGRATION_FORWARDED_ALLOW_IPS``). Every request then reads the session and its user from
the store, so a logout on any server, or revoking the user, ends the session at once.

Logout is a POST from the button in the page's frame, carrying a CSRF token derived from the
session (an HMAC of its id): another site can neither log a user out nor log them in as
someone else (login CSRF: a random token in a SameSite=Strict cookie, repeated in the form).

A gate in front of every request lets through only the login and logout routes, the static
assets and the page router; anything else without a session is sent to the login page (a page)
or refused with 401 (a callback). Callbacks check the user's capability again (see
``dashboards.access``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Any
from urllib.parse import quote, urlsplit

import flask
from itsdangerous import BadSignature, URLSafeTimedSerializer

from reintegration import i18n
from reintegration.preferences import set_user_language, user_language
from reintegration.sessions import (
    SESSION_SECONDS,
    close_session,
    open_session,
    session_id,
    session_user,
)
from reintegration.users import User, authenticate, token_hash

log = logging.getLogger(__name__)

SESSION_COOKIE = "reintegration_session"
LOGIN_CSRF_COOKIE = "reintegration_login_csrf"
LANGUAGE_COOKIE = "reintegration_language"
LANGUAGE_FIELD = "reintegration_language"
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600
CSRF_FIELD = "csrf"
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
FORM_EXPIRED = "form-expired"
LOGOUT_REFUSED = "This page is out of date: reload it, then log out again."
LOGOUT_IS_POST = "Log out with the button at the top of a dashboard page."
_TOKEN_CHARS = 43  # secrets.token_urlsafe(32)


def services() -> Any:
    """The services of the app serving the current request."""
    return flask.current_app.config[SERVICES_KEY]


def _key() -> bytes:
    key: bytes = services().settings.secret_key_bytes()
    return key


def signer(secret: bytes) -> URLSafeTimedSerializer:
    """The serializer that signs and checks session cookies."""
    return URLSafeTimedSerializer(secret, salt=SALT)


def session_value(key: bytes, secret: str) -> str:
    """The cookie value of the session whose secret is ``secret``."""
    return signer(key).dumps({"s": secret})


def session_secret(key: bytes, value: str | None, max_age: int = SESSION_SECONDS) -> str | None:
    """The session secret inside a cookie; None when unsigned, altered or older than a session.

    Examples
    --------
    >>> cookie = session_value(b"k" * 32, "secret")
    >>> session_secret(b"k" * 32, cookie), session_secret(b"x" * 32, cookie)
    ('secret', None)
    """
    if not value:
        return None
    try:
        payload = signer(key).loads(value, max_age=max_age)
    except BadSignature:  # also SignatureExpired, its subclass
        return None
    secret = payload.get("s") if isinstance(payload, dict) else None
    return secret if isinstance(secret, str) else None


def _request_session() -> str | None:
    """The session secret the current request's cookie holds (signature checked, not the
    store)."""
    return session_secret(_key(), flask.request.cookies.get(SESSION_COOKIE))


def current_user() -> User | None:
    """The user of the current request's session (looked up once per request), or None."""
    if "reintegration_user" not in flask.g:
        secret = _request_session()
        flask.g.reintegration_user = (
            session_user(services().engine, secret) if secret is not None else None
        )
    user: User | None = flask.g.reintegration_user
    return user


def csrf_for(key: bytes, secret: str) -> str:
    """The logout form's CSRF token of the session whose secret is ``secret``.

    Derived from the session's stored id, so every server sharing the key agrees on it and
    nothing more is stored; a page of another site cannot read it.

    Examples
    --------
    >>> token = csrf_for(b"k" * 32, "one")
    >>> token == csrf_for(b"k" * 32, "one"), token == csrf_for(b"k" * 32, "two")
    (True, False)
    """
    return hmac.new(key, f"logout:{session_id(secret)}".encode(), hashlib.sha256).hexdigest()


def logout_csrf_token() -> str:
    """The CSRF token the logout form of the current request's session carries ("" without
    a session)."""
    secret = _request_session()
    return csrf_for(_key(), secret) if secret is not None else ""


def login_csrf_token() -> str:
    """The login form's CSRF token: the one in the browser's cookie, else a new one that this
    request's answer sets as that cookie."""
    token = flask.request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if len(token) == _TOKEN_CHARS:
        return token
    if "reintegration_login_csrf" not in flask.g:
        flask.g.reintegration_login_csrf = secrets.token_urlsafe(32)
    new: str = flask.g.reintegration_login_csrf
    return new


def page_url(path: str) -> str:
    """``path`` (``/overview``) as the browser addresses it, under the mount point."""
    return f"{flask.request.script_root}{path}"


def _cookie_path() -> str:
    return flask.request.script_root or "/"


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


def _same(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(str(given), str(expected))


def _back_to_login(error: str, wanted: str) -> flask.Response:
    return flask.redirect(page_url(f"{LOGIN}?error={error}&next={quote(wanted, safe='')}"), 303)


def _login() -> flask.Response:
    form = flask.request.form
    wanted = _safe_next(form.get("next"))
    if not _same(form.get(CSRF_FIELD), flask.request.cookies.get(LOGIN_CSRF_COOKIE)):
        log.info("dashboard login refused: the form's CSRF token does not match")
        return _back_to_login(FORM_EXPIRED, wanted)
    token = (form.get("token") or "").strip()
    user = authenticate(services().engine, token)
    if user is None:
        log.info("dashboard login refused")
        return _back_to_login(BAD_TOKEN, wanted)
    chosen_here = i18n.supported(flask.request.cookies.get(LANGUAGE_COOKIE))
    if chosen_here and user_language(services().engine, user) is None:
        # The language picked on the login page becomes the user's own choice.
        set_user_language(services().engine, user, chosen_here)
    secret = open_session(services().engine, token_hash(token))
    log.info("dashboard login: %s (%s)", user.name, user.role.value)
    response = flask.redirect(wanted, 303)
    response.set_cookie(
        SESSION_COOKIE,
        session_value(_key(), secret),
        max_age=SESSION_SECONDS,
        path=_cookie_path(),
        httponly=True,
        samesite="Lax",
        secure=flask.request.scheme == "https",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=_cookie_path())
    return response


def _refusals() -> dict[str, str]:
    # The English sentences stay importable constants (tests assert them); these are what the
    # reader sees, in their language.
    return {
        LOGOUT_REFUSED: i18n.gettext("This page is out of date: reload it, then log out again."),
        LOGOUT_IS_POST: i18n.gettext("Log out with the button at the top of a dashboard page."),
    }


def _logout() -> flask.Response:
    if flask.request.method != "POST":
        return flask.Response(
            _refusals()[LOGOUT_IS_POST], 405, {"Allow": "POST"}, mimetype="text/plain"
        )
    secret = _request_session()
    if secret is not None:
        if not _same(flask.request.form.get(CSRF_FIELD), csrf_for(_key(), secret)):
            log.info("dashboard logout refused: the form's CSRF token does not match")
            return flask.Response(_refusals()[LOGOUT_REFUSED], 403, mimetype="text/plain")
        close_session(services().engine, secret)
        log.info("dashboard logout")
    response = flask.redirect(page_url(LOGIN), 303)
    response.delete_cookie(SESSION_COOKIE, path=_cookie_path())
    return response


def _set_login_csrf_cookie(response: flask.Response) -> flask.Response:
    token = flask.g.get("reintegration_login_csrf")
    if token is not None:
        # A cookie of the browser's session, sent only by pages of this site (Strict): the
        # form repeats it, and another site can neither read it nor send it.
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            path=_cookie_path(),
            httponly=True,
            samesite="Strict",
            secure=flask.request.scheme == "https",
        )
    return response


def _is_router_callback() -> bool:
    body = flask.request.get_json(silent=True, cache=True) or {}
    return ROUTER_OUTPUT in str(body.get("output", ""))


def _gate() -> flask.Response | tuple[Any, int] | None:
    path = flask.request.path
    if path == LOGIN:
        if flask.request.method == "GET":
            login_csrf_token()  # the page's form will need it: set the cookie now
        return None
    if path == LOGOUT or path.startswith(PUBLIC_PREFIXES):
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


def request_language() -> str:
    """The language of the current request: the user's stored choice, else the language cookie
    (a choice made before logging in), else the browser's ``Accept-Language``."""
    if "reintegration_language" not in flask.g:
        user = current_user()
        chosen = user_language(services().engine, user) if user is not None else None
        flask.g.reintegration_language = (
            chosen
            or i18n.supported(flask.request.cookies.get(LANGUAGE_COOKIE))
            or i18n.negotiate(flask.request.headers.get("Accept-Language"))
        )
    language: str = flask.g.reintegration_language
    return language


def _switch_language() -> flask.Response | None:
    # The switch is a form without an action: it posts to the page it sits on (whatever that
    # page is, login included), and the answer sends the browser back there. The session cookie
    # is SameSite=Lax, so another site's form cannot change a user's stored choice.
    request = flask.request
    if request.method != "POST" or request.mimetype != "application/x-www-form-urlencoded":
        return None
    wanted = request.form.get(LANGUAGE_FIELD)
    if wanted is None:
        return None
    chosen = i18n.supported(wanted) or i18n.DEFAULT
    user = current_user()
    if user is not None:
        set_user_language(services().engine, user, chosen)
    response = flask.redirect(_safe_back(request.full_path.rstrip("?")), 303)
    _set_language_cookie(response, chosen)
    return response


def _safe_back(path: str) -> str:
    target = page_url(path)
    # The login page's own address, unlike _safe_next's targets, is a fine place to return to.
    return target if path.startswith(LOGIN) else _safe_next(target)


def _set_language_cookie(response: flask.Response, language: str) -> None:
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=LANGUAGE_COOKIE_SECONDS,
        path=_cookie_path(),
        httponly=True,
        samesite="Lax",
        secure=flask.request.scheme == "https",
    )


def _use_language() -> None:
    path = flask.request.path
    if path.startswith(PUBLIC_PREFIXES) and path != "/_dash-layout":
        return  # scripts and styles: no text, no query
    # Entered here, left when the request ends: a thread that serves several requests (or
    # calls the app in-process) never carries one reader's language into the next.
    scope = i18n.use_language(request_language())
    scope.__enter__()
    flask.g.reintegration_language_scope = scope


def _leave_language(_error: BaseException | None) -> None:
    scope = flask.g.pop("reintegration_language_scope", None)
    if scope is not None:
        scope.__exit__(None, None, None)


def _keep_language_cookie(response: flask.Response) -> flask.Response:
    # The cookie follows the user's stored choice, so the login page after a logout speaks it.
    language = flask.g.get("reintegration_language")
    if language is not None:
        response.headers["Content-Language"] = language
        response.vary.add("Cookie")
    if (
        language is not None
        and current_user() is not None
        and flask.request.cookies.get(LANGUAGE_COOKIE) != language
        and LANGUAGE_COOKIE not in str(response.headers.getlist("Set-Cookie"))
    ):
        _set_language_cookie(response, language)
    return response


def install(server: flask.Flask) -> None:
    """Add the login and logout routes, the language switch and the gate to a Dash app's Flask
    server; every request runs in its user's language."""
    server.add_url_rule(LOGIN, "reintegration_login", _login, methods=["POST"])
    # GET is routed here too, to be refused: Dash would otherwise answer it with a page.
    server.add_url_rule(LOGOUT, "reintegration_logout", _logout, methods=["GET", "POST"])
    server.before_request(_switch_language)
    server.before_request(_gate)
    server.before_request(_use_language)
    server.after_request(_set_login_csrf_cookie)
    server.after_request(_keep_language_cookie)
    server.teardown_request(_leave_language)
