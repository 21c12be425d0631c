"""Who may open which page: each page declares the capabilities that open it (any one is
enough) and whether it needs a session for every country (``every_country``), and
``reintegration.policy`` decides; layouts and callbacks check it on the server, and the
navigation lists only the pages a user may open.

Every callback is wrapped by :func:`guarded`, which marks it with its rule (:data:`GUARD`);
``dashboards.app`` refuses to build an app holding a callback without one. The domain functions
the callbacks call check the caller again (a callback passes the session's user in)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dash
from dash import dcc, html
from dash.exceptions import PreventUpdate

from dashboards.auth import LOGIN, current_user, page_url
from dashboards.labels import role_label
from reintegration.errors import Forbidden
from reintegration.i18n import _
from reintegration.policy import may
from reintegration.roles import Capability
from reintegration.users import User

log = logging.getLogger(__name__)

GUARD = "__dashboard_guard__"
"""The attribute :func:`guarded` sets on the callbacks it wraps, holding their :class:`Guard`."""


@dataclass(frozen=True)
class Guard:
    """A callback's rule: any one of ``needed``, and a session for every country if so."""

    needed: tuple[Capability, ...]
    every_country: bool = False

    def admits(self, user: User | None) -> bool:
        """Whether ``user`` (None: no session) may run the callback."""
        return any(may(user, c, every_country=self.every_country) for c in self.needed)


def guard_of(callback: Callable[..., Any]) -> Guard | None:
    """The rule :func:`guarded` put on ``callback`` (or on what it wraps), or None."""
    seen: Callable[..., Any] | None = callback
    while seen is not None:
        found = getattr(seen, GUARD, None)
        if isinstance(found, Guard):
            return found
        seen = getattr(seen, "__wrapped__", None)
    return None


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
    return Guard(needed, bool(page.get("every_country"))).admits(user)


def navigation(user: User | None) -> list[Mapping[str, Any]]:
    """The pages in the user's navigation: gated pages they may open, in page order (a page
    registered with ``navigation=False``, such as a returnee's, opens from a link only)."""
    pages = [
        p for p in dash.page_registry.values() if capabilities(p) and p.get("navigation", True)
    ]
    return [p for p in pages if may_open(user, p)]


def home_path(user: User) -> str:
    """The first page a user may open (where ``/`` leads them)."""
    pages = navigation(user)
    return str(pages[0]["path"]) if pages else LOGIN


def _role_list(needed: tuple[Capability, ...]) -> str:
    from reintegration.roles import GRANTS

    roles = [role_label(r) for r in sorted({r.value for c in needed for r in GRANTS[c]})]
    if len(roles) == 1:
        return roles[0]
    return _("{roles} or {last}", roles=_(", ").join(roles[:-1]), last=roles[-1])


def not_allowed(page: Mapping[str, Any], user: User) -> html.Div:
    """The message shown instead of a page the user may not open."""
    return html.Div(
        className="notice notice-refused",
        id="page-not-allowed",
        children=[
            html.H1(_("Not allowed")),
            html.P(_refusal(page, user)),
            dcc.Link(_("Go to your first page"), href=page_url(home_path(user))),
        ],
    )


def _refusal(page: Mapping[str, Any], user: User) -> str:
    from dashboards.app import page_name

    name = page_name(page["name"])
    if (
        page.get("every_country")
        and user.countries is not None
        and any(may(user, c) for c in capabilities(page))
    ):
        return _(
            "The {page} page shows every country's data, and your access is limited to "
            "{countries}: it needs a login that is not limited to some countries. Ask an "
            "administrator if you need it.",
            page=name,
            countries=", ".join(sorted(user.countries)),
        )
    return _(
        "The {page} page is not open to your role ({role}): it is for the {roles} roles. "
        "Ask an administrator if you need it.",
        page=name,
        role=role_label(user.role.value),
        roles=_role_list(capabilities(page)),
    )


def session_ended() -> html.Div:
    """The message shown when a page is asked for without a session."""
    return html.Div(
        className="notice",
        id="page-session-ended",
        children=[
            html.H1(_("Please log in")),
            html.P(_("Your session has ended or you have not logged in yet.")),
            html.A(_("Log in"), href=page_url(LOGIN)),
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


def guarded(
    *needed: Capability, every_country: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Check the session again inside a callback: the user must hold one of ``needed`` (and,
    with ``every_country``, have no country limit).

    The wrapped function gets the user as its first argument and passes it to the domain
    functions it calls (which check it again). A callback asked for without the right (a
    crafted request), or refused by the domain (``Forbidden``), changes nothing.
    """
    if not needed:
        raise ValueError("guarded() needs at least one capability")
    rule = Guard(tuple(needed), every_country)

    def decorate(callback: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(callback)
        def run(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None or not rule.admits(user):
                log.warning("callback %s refused", callback.__name__)
                raise PreventUpdate
            try:
                return callback(user, *args, **kwargs)
            except Forbidden:
                log.warning("callback %s refused by the domain", callback.__name__)
                raise PreventUpdate from None

        setattr(run, GUARD, rule)
        return run

    return decorate


DASH_ROUTER = ".._pages_content.children..."
"""How the outputs of Dash's own page router begin in ``app.callback_map``."""


class MissingGuardError(RuntimeError):
    """A dashboard callback was registered without :func:`guarded`."""


def check_callbacks(callback_map: Mapping[str, Mapping[str, Any]]) -> None:
    """Refuse an app holding a server-side callback that :func:`guarded` did not wrap.

    ``callback_map`` is ``app.callback_map``. Clientside callbacks (no Python function) run in
    the browser and reach no data; Dash's own page router (:data:`DASH_ROUTER`, added at the
    first request) renders layouts, which :func:`page_layout` gates.

    Raises
    ------
    MissingGuardError
        Naming the callback's function and outputs.
    """
    for outputs, entry in callback_map.items():
        callback = entry.get("callback")
        if callback is None or outputs.startswith(DASH_ROUTER):
            continue
        if guard_of(callback) is None:
            name = getattr(callback, "__name__", "?")
            raise MissingGuardError(
                f"the dashboard callback {name} ({outputs[:120]}) has no rule: wrap it in "
                "dashboards.access.guarded(<capability>) so it checks the session"
            )
