"""The login page (public): a token in, a session cookie out (see ``dashboards.auth``).

The form carries the login CSRF token of the browser's cookie (set with this page, or by the
answer that renders it), so another site cannot post a login of its own choosing.
"""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboards.auth import (
    BAD_TOKEN,
    CSRF_FIELD,
    FORM_EXPIRED,
    LOGIN,
    current_user,
    login_csrf_token,
    page_url,
)
from dashboards.labels import role_label
from reintegration.i18n import _

dash.register_page(__name__, path="/login", name="Log in", title="Log in · Reintegration")


def messages() -> dict[str, str]:
    """Why a login was refused, by the code the login route sends back."""
    return {
        BAD_TOKEN: _(
            "This token is not valid (mistyped, or revoked). Paste it again, or ask your "
            "administrator for a new one."
        ),
        FORM_EXPIRED: _(
            "This login form had expired, so nobody was logged in. Paste your token again."
        ),
    }


def layout(error: str | None = None, next: str | None = None, **_query: str) -> html.Div:  # noqa: A002
    user = current_user()
    children: list = [
        html.H1(_("Log in")),
        html.P(
            _(
                "Paste the token your administrator gave you. The session lasts a working day "
                "(10 hours) on this browser."
            )
        ),
    ]
    if user is not None:
        children.append(
            html.P(
                [
                    _(
                        "You are logged in as {name} ({role}). ",
                        name=user.name,
                        role=role_label(user.role.value),
                    ),
                    dcc.Link(_("Continue"), href=page_url("/")),
                ],
                id="login-already",
            )
        )
    if error:
        children.append(
            html.P(
                messages().get(error, messages()[BAD_TOKEN]),
                className="notice notice-refused",
                id="login-error",
            )
        )
    children.append(
        html.Form(
            action=page_url(LOGIN),
            method="POST",
            className="login-form",
            children=[
                html.Label(_("Token"), htmlFor="login-token"),
                # No debounce: Dash's debounced input puts the caret back where it stood one
                # key earlier, so fast typing on a busy page scrambled the token. No callback
                # reads or writes this box either: the browser posts the form as typed.
                dcc.Input(
                    id="login-token",
                    name="token",
                    type="password",
                    autoComplete="current-password",
                    required=True,
                ),
                dcc.Input(id="login-next", name="next", type="hidden", value=next or ""),
                dcc.Input(
                    id="login-csrf", name=CSRF_FIELD, type="hidden", value=login_csrf_token()
                ),
                html.Button(_("Log in"), type="submit", id="login-submit"),
            ],
        )
    )
    return html.Div(className="login", children=children)
