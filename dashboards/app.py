"""The Dash app: multi-page, mounted at ``/dashboard/`` in the API's server, same tokens and roles.

``create_dash_app(services)`` builds it; nothing is loaded at import time. ``services`` carries
``engine``, ``settings``, ``analytics``, ``champions`` and ``uploads`` (see ``api.services``);
pages reach it through ``dashboards.auth.services()`` inside a request. Pages are modules of
``dashboards.pages``, each registering itself with the capability that opens it and binding
its callbacks to the app given.
"""

from __future__ import annotations

import functools
import importlib
import logging
from pathlib import Path
from typing import Any

import dash
from dash import dcc, html

from dashboards import auth
from dashboards.access import check_callbacks, navigation
from dashboards.labels import role_label
from reintegration import i18n
from reintegration.i18n import _

log = logging.getLogger(__name__)

PREFIX = "/dashboard/"
TITLE = "Reintegration monitoring"
PAGES = (
    "login",
    "overview",
    "breakdowns",
    "trajectories",
    "assistance",
    "worklist",
    "returnee",
    "models",
    "quality",
    "upload",
    "admin",
    "glossary",
    "not_found_404",
)
ASSETS = Path(__file__).with_name("assets")


def page_names() -> dict[str, str]:
    """Each page's registered (English) name -> its name in the current language."""
    return {
        "Log in": _("Log in"),
        "Overview": _("Overview"),
        "Breakdowns": _("Breakdowns"),
        "Trajectories": _("Trajectories"),
        "Assistance": _("Assistance"),
        "Worklist": _("Worklist"),
        "Returnee": _("Returnee"),
        "Models": _("Models"),
        "Data quality": _("Data quality"),
        "Upload": _("Upload"),
        "Admin": _("Admin"),
        "Glossary": _("Glossary"),
        "Not found": _("Not found"),
    }


def page_name(name: str) -> str:
    """A page's name in the current language: from the list above, else the catalogue's
    translation of the registered name if a page marks it elsewhere, else the name itself."""
    return page_names().get(name) or i18n.gettext(name)


def _title(name: str) -> Any:
    # Dash asks for a page's title when it serves the page and on every navigation, inside the
    # request, so a function gives the title in the reader's language.
    def title(**_params: Any) -> str:
        return _("{page} · Reintegration", page=page_name(name))

    return title


def _language_switch() -> html.Form:
    """English / Français / العربية: a form without an action posts to the page it sits on
    (see ``dashboards.auth``), which comes back in the chosen language."""
    current = i18n.current()
    return html.Form(
        method="POST",
        className="language-switch",
        id="shell-language",
        children=[
            html.Button(
                i18n.NAMES[code],
                type="submit",
                name=auth.LANGUAGE_FIELD,
                value=code,
                lang=code,
                className="language" + (" language-current" if code == current else ""),
                disabled=code == current,
                id=f"shell-language-{code}",
            )
            for code in i18n.LANGUAGES
        ],
    )


def _shell() -> html.Div:
    """The frame around every page: the title, the user's navigation, who is logged in, the
    language switch."""
    user = auth.current_user()
    links: list[Any] = [
        dcc.Link(
            page_name(page["name"]),
            href=auth.page_url(page["path"]),
            className="nav-link",
            id=f"nav-{page['path'].strip('/')}",
        )
        for page in navigation(user)
    ]
    who: list[Any] = []
    if user is not None:
        scope = f" · {', '.join(sorted(user.countries))}" if user.countries else ""
        who = [
            html.Span(
                f"{user.name} ({role_label(user.role.value)}{scope})",
                className="who",
                id="shell-user",
            ),
            # A form, not a link: logout changes state, so it is a POST with the session's
            # CSRF token (a link could be followed by another site, or prefetched).
            html.Form(
                action=auth.page_url(auth.LOGOUT),
                method="POST",
                className="logout-form",
                children=[
                    dcc.Input(
                        type="hidden",
                        name=auth.CSRF_FIELD,
                        value=auth.logout_csrf_token(),
                        id="shell-logout-csrf",
                    ),
                    html.Button(
                        _("Log out"), type="submit", className="nav-link", id="shell-logout"
                    ),
                ],
            ),
        ]
    return html.Div(
        className="shell",
        children=[
            html.Header(
                className="topbar",
                children=[
                    html.Span(_("Reintegration monitoring"), className="brand"),
                    html.Nav(links, className="nav", id="shell-nav"),
                    _language_switch(),
                    html.Div(who, className="account"),
                ],
            ),
            html.Main(dash.page_container, className="content"),
        ],
    )


def create_dash_app(services: Any, *, requests_pathname_prefix: str = PREFIX) -> dash.Dash:
    """Build the dashboard app over ``services``.

    Parameters
    ----------
    services : object
        With ``engine``, ``settings``, ``analytics``, ``champions``, ``uploads``.
    requests_pathname_prefix : str, default "/dashboard/"
        Where the browser reaches the app; the server mounts it there (its own routes stay at
        ``/``, as a WSGI app mounted under a prefix sees them).

    Returns
    -------
    dash.Dash
        Its Flask server is ``app.server``.
    """
    app = dash.Dash(
        "dashboards",
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        requests_pathname_prefix=requests_pathname_prefix,
        routes_pathname_prefix="/",
        suppress_callback_exceptions=True,
        title=TITLE,
        update_title=None,
        serve_locally=True,
        compress=False,
    )
    app.server.config[auth.SERVICES_KEY] = services
    app.server.config["MAX_CONTENT_LENGTH"] = _upload_bytes(services)
    for name in PAGES:
        module = importlib.import_module(f"dashboards.pages.{name}")
        # Dash reads a page's layout from its module when it imports pages itself; here the
        # pages are imported once per process and bound to each app through register_callbacks.
        page = dash.page_registry[module.__name__]
        page["layout"] = module.layout
        page["title"] = _title(page["name"])
        register = getattr(module, "register_callbacks", None)
        if register is not None:
            register(app)
    # A callback without a rule stops the server, as a route without one does (api/access.py).
    check_callbacks(app.callback_map)
    app.layout = _shell
    auth.install(app.server)
    app.interpolate_index = functools.partial(_index, app.interpolate_index)  # type: ignore[method-assign]
    return app


def _index(render: Any, **parts: Any) -> str:
    """Dash's page with ``lang`` and ``dir`` on the html element, so the browser lays Arabic out
    right to left from the first byte, and the title in the reader's language."""
    html_text: str = render(**{**parts, "title": _("Reintegration monitoring")})
    language = i18n.current()
    return html_text.replace(
        "<html>", f'<html lang="{language}" dir="{i18n.direction(language)}">', 1
    )


def _upload_bytes(services: Any) -> int:
    # A dashboard upload travels base64-encoded inside a callback request: 4/3 of the file, plus
    # the request around it.
    megabytes = int(getattr(services.settings, "max_upload_mb", 50))
    return (megabytes << 20) * 4 // 3 + (1 << 20)


def session_user(dash_app: dash.Dash) -> Any:
    """The dashboard's own session check, as a function of a request's Cookie header.

    The server asks it before it reads a callback's body (``api.limits``): how large a body may
    be depends on who sends it. It runs :func:`dashboards.auth.current_user` in a request
    context of its own, so it stays the one check every dashboard request makes.

    Returns
    -------
    callable
        ``user_of(cookie_header) -> User | None``.
    """
    server = dash_app.server

    def user_of(cookie: str) -> Any:
        with server.test_request_context("/", headers={"Cookie": cookie}):
            return auth.current_user()

    return user_of
