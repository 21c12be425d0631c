"""Who may open which page: each page declares the capabilities that open it (any one is
enough), the role matrix of ``reintegration.roles`` decides; layouts and callbacks check it on
the server, and the navigation lists only the pages a user may open."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import dash
from dash import dcc, html
from dash.exceptions import PreventUpdate

from dashboards.auth import LOGIN, current_user, page_url
from reintegration.roles import Capability, allowed
from reintegration.users import User

log = logging.getLogger(__name__)


def capabilities(page: Mapping[str, Any]) -> tuple[Capability, ...]:
    """The capabilities that open ``page`` (a ``dash.page_registry`` entry); () for public."""
    declared = page.get("capability")
    if declared is None:
        return ()
    if isinstance(declared, Capability):
        return (declared,)
    return tuple(declared)


def may_open(user: User | None, page: Mapping[str, Any]) -> bool:
    """Whether ``user`` may open ``page``; public pages (no capability) are open to all."""
    needed = capabilities(page)
    if not needed:
        return True
    return user is not None and any(allowed(user.role, c) for c in needed)


def navigation(user: User | None) -> list[Mapping[str, Any]]:
    """The pages in the user's navigation: gated pages they may open, in page order."""
    pages = [p for p in dash.page_registry.values() if capabilities(p)]
    return [p for p in pages if may_open(user, p)]


def home_path(user: User) -> str:
    """The first page a user may open (where ``/`` leads them)."""
    pages = navigation(user)
    return str(pages[0]["path"]) if pages else LOGIN


def _role_list(needed: tuple[Capability, ...]) -> str:
    from reintegration.roles import GRANTS

    roles = sorted({r.value for c in needed for r in GRANTS[c]})
    return ", ".join(roles[:-1]) + f" or {roles[-1]}" if len(roles) > 1 else roles[0]


def not_allowed(page: Mapping[str, Any], user: User) -> html.Div:
    """The message shown instead of a page the user may not open."""
    return html.Div(
        className="notice notice-refused",
        id="page-not-allowed",
        children=[
            html.H1("Not allowed"),
            html.P(
                f"The {page['name']} page is not open to your role ({user.role.value}): it is "
                f"for the {_role_list(capabilities(page))} roles. Ask an administrator if you "
                "need it."
            ),
            dcc.Link("Go to your first page", href=page_url(home_path(user))),
        ],
    )


def session_ended() -> html.Div:
    """The message shown when a page is asked for without a session."""
    return html.Div(
        className="notice",
        id="page-session-ended",
        children=[
            html.H1("Please log in"),
            html.P("Your session has ended or you have not logged in yet."),
            html.A("Log in", href=page_url(LOGIN)),
        ],
    )


def page_layout(module: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Gate a page's layout: ``build(user, **query)`` runs only for a user who may open it.

    ``module`` is the page's module name, under which it registered its capability.
    """

    def decorate(build: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(build)
        def layout(**query: str) -> Any:
            page = dash.page_registry[module]
            user = current_user()
            if user is None:
                return session_ended()
            if not may_open(user, page):
                log.info("page refused: %s for role %s", page["path"], user.role.value)
                return not_allowed(page, user)
            return build(user, **query)

        return layout

    return decorate


def guarded(*needed: Capability) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Check the session again inside a callback: the user must hold one of ``needed``.

    The wrapped function gets the user as its first argument. A callback asked for without
    the right (a crafted request) changes nothing.
    """

    def decorate(callback: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(callback)
        def run(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None or not any(allowed(user.role, c) for c in needed):
                log.warning("callback %s refused", callback.__name__)
                raise PreventUpdate
            return callback(user, *args, **kwargs)

        return run

    return decorate
