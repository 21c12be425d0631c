"""Admin: users and their tokens (add or reissue, shown once with a copy button; revoke), and
the audit log."""

from __future__ import annotations

import json
from typing import Any

import dash
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboards.access import guarded, page_layout
from dashboards.auth import services
from dashboards.components import table
from dashboards.labels import role_label
from reintegration import batch_views
from reintegration.errors import UserError
from reintegration.i18n import _, format_integer
from reintegration.roles import Capability, Role
from reintegration.users import User, add_user, list_users, reissue_token, revoke_user

dash.register_page(
    __name__,
    path="/admin",
    name="Admin",
    title="Admin · Reintegration",
    order=9,
    capability=Capability.ADMIN,
    every_country=True,
)

PAGE = "admin"
AUDIT_ROWS = 500


def _user_columns() -> tuple[tuple[str, str], ...]:
    return (("name", _("Name")), ("role", _("Role")), ("countries", _("Countries")))


def _audit_columns() -> tuple[tuple[str, str], ...]:
    return (
        ("at", _("When (UTC)")),
        ("actor", _("Who")),
        ("action", _("Action")),
        ("target", _("On")),
        ("batch_id", _("Batch")),
        ("detail", _("Detail")),
    )


def _users(user: User) -> list[dict[str, Any]]:
    return [
        {
            "name": u.name,
            "role": role_label(u.role.value),
            "countries": ", ".join(sorted(u.countries)) if u.countries else _("all"),
        }
        for u in list_users(services().engine, caller=user)
    ]


def _action(code: str) -> str:
    """An audit action in the reader's language (the code when not listed here)."""
    names = {
        "upload": _("upload"),
        "upload_failed": _("upload failed"),
        "upload_scope_refused": _("rows refused outside the uploader's countries"),
        "update": _("interviews updated"),
        "erase": _("returnee erased"),
        "user_add": _("user added"),
        "user_revoke": _("user revoked"),
        "user_reissue": _("token reissued"),
        "worklist_read": _("worklist read"),
        "returnee_read": _("returnee read"),
        "case_status": _("case status set"),
        "promote": _("version promoted"),
        "promote_requested": _("promotion requested"),
        "promote_refused": _("promotion refused"),
        "promote_failed": _("promotion failed"),
    }
    return names.get(code, code)


def _audit(user: User) -> list[dict[str, Any]]:
    return [
        {
            "at": entry["at"].strftime("%Y-%m-%d %H:%M:%S") if entry["at"] else "",
            "actor": entry["actor"],
            "action": _action(entry["action"]),
            "target": entry["target"] or "",
            "batch_id": entry["batch_id"] or "",
            "detail": json.dumps(entry["detail"], ensure_ascii=False) if entry["detail"] else "",
        }
        for entry in batch_views.audit_entries(services().engine, caller=user, limit=AUDIT_ROWS)
    ]


def _user_options(user: User) -> list[dict[str, str]]:
    return [{"label": f"{u['name']} ({u['role']})", "value": u["name"]} for u in _users(user)]


def _shown_once(text: str, token: str) -> html.Div:
    """A new token with a button that copies it (it is never shown again)."""
    return html.Div(
        className="notice",
        children=[
            html.P(text),
            html.Div(
                className="token-row",
                children=[
                    html.Code(token, className="token", id=f"{PAGE}-new-token"),
                    dcc.Clipboard(
                        target_id=f"{PAGE}-new-token",
                        id=f"{PAGE}-copy-token",
                        title=_("Copy the token"),
                        className="copy-button",
                    ),
                ],
            ),
        ],
    )


@page_layout(__name__)
def layout(user: User, **_query: str) -> html.Div:
    return html.Div(
        className=f"page page-{PAGE}",
        children=[
            html.H1(_("Admin")),
            html.Section(
                className="section",
                children=[
                    html.H2(_("Users")),
                    table(f"{PAGE}-users-table", _users(user), _user_columns(), page_size=10),
                    html.H2(_("Add a user")),
                    html.Div(
                        className="page-controls",
                        children=[
                            html.Div(
                                className="filter",
                                children=[
                                    html.Label(_("Name"), htmlFor=f"{PAGE}-name-input"),
                                    dcc.Input(id=f"{PAGE}-name-input", type="text", maxLength=64),
                                ],
                            ),
                            html.Div(
                                className="filter",
                                children=[
                                    html.Label(_("Role"), htmlFor=f"{PAGE}-role-input"),
                                    dcc.Dropdown(
                                        id=f"{PAGE}-role-input",
                                        options=[
                                            {"label": role_label(r.value), "value": r.value}
                                            for r in Role
                                        ],
                                        value=Role.MANAGER.value,
                                        clearable=False,
                                    ),
                                ],
                            ),
                            html.Div(
                                className="filter",
                                children=[
                                    html.Label(
                                        _(
                                            "Countries (ISO codes, comma-separated; "
                                            "empty: every country)"
                                        ),
                                        htmlFor=f"{PAGE}-countries-input",
                                    ),
                                    dcc.Input(id=f"{PAGE}-countries-input", type="text"),
                                ],
                            ),
                            html.Button(_("Add user"), id=f"{PAGE}-add-button", n_clicks=0),
                        ],
                    ),
                    html.Div(id=f"{PAGE}-add-result"),
                    html.H2(_("Reissue a token")),
                    html.P(
                        _(
                            "For a token that was lost or may have been seen: the user gets a "
                            "new one, their old token stops working at once."
                        ),
                        className="muted",
                    ),
                    html.Div(
                        className="page-controls",
                        children=[
                            dcc.Dropdown(id=f"{PAGE}-reissue-input", options=_user_options(user)),
                            dcc.ConfirmDialogProvider(
                                html.Button(_("Reissue token"), className="button-secondary"),
                                id=f"{PAGE}-reissue-confirm",
                                message=_(
                                    "Give this user a new token? Their current token stops "
                                    "working at once."
                                ),
                            ),
                        ],
                    ),
                    html.Div(id=f"{PAGE}-reissue-result"),
                    html.H2(_("Revoke a user")),
                    html.Div(
                        className="page-controls",
                        children=[
                            dcc.Dropdown(id=f"{PAGE}-revoke-input", options=_user_options(user)),
                            dcc.ConfirmDialogProvider(
                                html.Button(_("Revoke"), className="button-secondary"),
                                id=f"{PAGE}-revoke-confirm",
                                message=_("Revoke this user? Their token stops working at once."),
                            ),
                        ],
                    ),
                    html.Div(id=f"{PAGE}-revoke-result"),
                ],
            ),
            html.Section(
                className="section",
                children=[
                    html.H2(_("Audit log")),
                    html.P(
                        _(
                            "The {n} most recent entries: who did what, when; never answers.",
                            n=format_integer(AUDIT_ROWS),
                        ),
                        className="muted",
                    ),
                    table(
                        f"{PAGE}-audit-table",
                        _audit(user),
                        _audit_columns(),
                        page_size=15,
                        filter_action="native",
                    ),
                ],
            ),
        ],
    )


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(
        Output(f"{PAGE}-add-result", "children"),
        Output(f"{PAGE}-users-table", "data"),
        Output(f"{PAGE}-revoke-input", "options"),
        Output(f"{PAGE}-reissue-input", "options", allow_duplicate=True),
        Output(f"{PAGE}-audit-table", "data"),
        Input(f"{PAGE}-add-button", "n_clicks"),
        State(f"{PAGE}-name-input", "value"),
        State(f"{PAGE}-role-input", "value"),
        State(f"{PAGE}-countries-input", "value"),
        prevent_initial_call=True,
    )
    @guarded(Capability.ADMIN, every_country=True)
    def add(
        user: User, clicks: int, name: str | None, role: str | None, countries: str | None
    ) -> tuple[Any, ...]:
        if not clicks:
            raise PreventUpdate
        codes = [c for c in (countries or "").replace(";", ",").split(",") if c.strip()]
        try:
            # The form's blank field means every country; add_user checks the caller.
            token = add_user(services().engine, name or "", role or "", codes or None, caller=user)
        except UserError as exc:
            message: Any = html.P(
                _("Not added: {reason}.", reason=str(exc)),
                className="notice notice-refused",
                id=f"{PAGE}-add-error",
            )
        else:
            message = _shown_once(
                _(
                    "{name} can log in with this token. Copy it now: it is shown only once.",
                    name=name,
                ),
                token,
            )
        options = _user_options(user)
        return message, _users(user), options, options, _audit(user)

    @app.callback(
        Output(f"{PAGE}-reissue-result", "children"),
        Output(f"{PAGE}-audit-table", "data", allow_duplicate=True),
        Input(f"{PAGE}-reissue-confirm", "submit_n_clicks"),
        State(f"{PAGE}-reissue-input", "value"),
        prevent_initial_call=True,
    )
    @guarded(Capability.ADMIN, every_country=True)
    def reissue(user: User, clicks: int | None, name: str | None) -> tuple[Any, ...]:
        if not clicks or not name:
            raise PreventUpdate
        try:
            token = reissue_token(services().engine, name, caller=user)
        except UserError as exc:
            message: Any = html.P(
                _("Not reissued: {reason}.", reason=str(exc)),
                className="notice notice-refused",
                id=f"{PAGE}-reissue-error",
            )
        else:
            services().tokens.clear()  # the API here refuses the old token at once too
            message = _shown_once(
                _(
                    "{name} has a new token; the old one no longer works. Copy it now: it is "
                    "shown only once.",
                    name=name,
                ),
                token,
            )
        return message, _audit(user)

    @app.callback(
        Output(f"{PAGE}-revoke-result", "children"),
        Output(f"{PAGE}-users-table", "data", allow_duplicate=True),
        Output(f"{PAGE}-revoke-input", "options", allow_duplicate=True),
        Output(f"{PAGE}-reissue-input", "options", allow_duplicate=True),
        Output(f"{PAGE}-audit-table", "data", allow_duplicate=True),
        Input(f"{PAGE}-revoke-confirm", "submit_n_clicks"),
        State(f"{PAGE}-revoke-input", "value"),
        prevent_initial_call=True,
    )
    @guarded(Capability.ADMIN, every_country=True)
    def revoke(user: User, clicks: int | None, name: str | None) -> tuple[Any, ...]:
        if not clicks or not name:
            raise PreventUpdate
        if name == user.name:
            message: Any = html.P(
                _(
                    "You cannot revoke your own token here: ask another administrator, or use "
                    "`reintegration users revoke`."
                ),
                className="notice notice-refused",
            )
        else:
            try:
                revoke_user(services().engine, name, caller=user)
            except UserError as exc:
                message = html.P(
                    _("Not revoked: {reason}.", reason=str(exc)), className="notice notice-refused"
                )
            else:
                message = html.P(
                    _("{name} is revoked: their token no longer works.", name=name),
                    className="notice",
                )
        options = _user_options(user)
        return message, _users(user), options, options, _audit(user)
