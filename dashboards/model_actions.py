"""The models page's actions for analysts: train a version (its job's progress polled), compare
two versions side by side, and promote one after a preview of what it would change.

Promotion is two steps: "Preview promotion" asks ``models.preview`` what the selected version
would change (nothing changes), and shows it with "Confirm promotion" and "Cancel"; the version
confirmed is the one previewed (kept in a store), not whatever the version list shows by then.
The rules (who may train, preview or promote) are checked by ``models/`` on every call; the
callbacks only pass the session's user. The preview's rendering is
:mod:`dashboards.promotion_preview`.
"""

from __future__ import annotations

from typing import Any

import dash
import pandas as pd
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboards import model_data
from dashboards.access import guarded
from dashboards.components import table
from dashboards.figures.models import comparison_figure
from dashboards.promotion_preview import metric_cell, metric_name, preview_view
from reintegration.errors import ReintegrationError
from reintegration.i18n import _, format_decimal, format_percent
from reintegration.roles import Capability
from reintegration.users import User

PAGE = "models"
TRAIN_POLL_MS = 1500
HIDDEN = {"display": "none"}


def _kind_name(kind: str) -> str:
    risk, index = model_data.model_names()
    return risk if kind == "risk" else index


def _version_text(version: int | None, versions: list[dict[str, Any]]) -> str:
    for v in versions:
        if int(v["version"]) == version:
            aliases = model_data.alias_names(v.get("aliases"))
            return f"v{version}" + (f" · {aliases}" if aliases else "")
    return f"v{version}"


# -- layout ---------------------------------------------------------------------------------


def train_section() -> html.Section:
    """A button training a new version of the chosen model, and its job's progress."""
    return html.Section(
        className="section model-action",
        children=[
            html.H2(_("Train a new version")),
            html.P(
                _(
                    "Trains the chosen model on the stored data, in the background; the new "
                    "version is registered as challenger. Nothing changes in the figures until "
                    "it is promoted."
                ),
                className="muted",
            ),
            html.Button(_("Train"), id=f"{PAGE}-train-button", n_clicks=0, className="button"),
            dcc.Store(id=f"{PAGE}-train-job"),
            dcc.Interval(id=f"{PAGE}-train-poll", interval=TRAIN_POLL_MS, disabled=True),
            html.Div(id=f"{PAGE}-train-status", role="status", **{"aria-live": "polite"}),
        ],
    )


def compare_section(options: list[dict[str, Any]]) -> html.Section:
    """Two version pickers and the comparison of their metrics, overall and by subgroup."""
    values = [o["value"] for o in options]
    first = values[1] if len(values) > 1 else (values[0] if values else None)
    second = values[0] if values else None

    def picker(which: str, label: str, value: int | None) -> html.Div:
        return html.Div(
            className="filter",
            children=[
                html.Label(label, htmlFor=f"{PAGE}-compare-{which}"),
                dcc.Dropdown(
                    id=f"{PAGE}-compare-{which}",
                    options=options,
                    value=value,
                    clearable=False,
                    placeholder=_("No version registered"),
                ),
            ],
        )

    return html.Section(
        className="section model-action",
        children=[
            html.H2(_("Compare two versions")),
            html.Div(
                className="page-controls",
                children=[
                    picker("first", _("Version"), first),
                    picker("second", _("Against version"), second),
                    html.Button(
                        _("Compare"), id=f"{PAGE}-compare-button", n_clicks=0, className="button"
                    ),
                ],
            ),
            html.Div(id=f"{PAGE}-compare-result"),
        ],
    )


def promote_section() -> html.Section:
    """Preview the promotion of the chosen version, then confirm it or cancel."""
    return html.Section(
        className="section model-action",
        children=[
            html.H2(_("Promote a version")),
            html.P(
                _(
                    "A promotion makes the chosen version the champion. Preview it first: the "
                    "preview shows what would change, overall and by group, and changes nothing."
                ),
                className="muted",
            ),
            html.Button(
                _("Preview promotion"),
                id=f"{PAGE}-promote-preview-button",
                n_clicks=0,
                className="button",
            ),
            dcc.Store(id=f"{PAGE}-promote-pending"),
            dcc.Store(id=f"{PAGE}-promote-applied"),
            html.Div(id=f"{PAGE}-promote-message", role="status", **{"aria-live": "polite"}),
            html.Div(
                id=f"{PAGE}-promote-panel",
                style=HIDDEN,
                children=[
                    html.Div(id=f"{PAGE}-promote-preview"),
                    html.Label(_("Reason for the promotion"), htmlFor=f"{PAGE}-promote-reason"),
                    dcc.Textarea(
                        id=f"{PAGE}-promote-reason",
                        value="",
                        maxLength=2000,
                        style={"width": "100%", "minHeight": "4em"},
                    ),
                    dcc.Checklist(
                        id=f"{PAGE}-promote-force",
                        options=[
                            {"label": _("Override the gate (needs a reason)"), "value": "force"}
                        ],
                        value=[],
                    ),
                    html.Div(
                        className="page-controls",
                        children=[
                            html.Button(
                                _("Confirm promotion"),
                                id=f"{PAGE}-promote-confirm",
                                n_clicks=0,
                                className="button button-primary",
                            ),
                            html.Button(
                                _("Cancel"),
                                id=f"{PAGE}-promote-cancel",
                                n_clicks=0,
                                className="button",
                            ),
                        ],
                    ),
                ],
            ),
        ],
    )


# -- what the callbacks show ----------------------------------------------------------------


def _job_view(found: dict[str, Any] | None) -> tuple[list[Any], bool]:
    """A training job as the page shows it, and whether polling should stop."""
    if found is None:
        return [html.P(_("This job is no longer listed."))], True
    status = str(found.get("status"))
    progress = float(found.get("progress") or 0.0)
    said = {
        "queued": _("Queued: waiting to start."),
        "running": _("Training: {percent} done.", percent=format_percent(progress)),
        "done": _("Done."),
        "failed": _("Failed: nothing was registered."),
    }.get(status, status)
    children: list[Any] = [
        html.P([html.Strong(_("Training job {job}", job=found.get("id"))), " · ", said]),
        html.Progress(
            id=f"{PAGE}-train-progress",
            value=str(progress),
            max="1",
            title=format_percent(progress),
        ),
    ]
    if found.get("message"):
        children.append(html.P(str(found["message"]), className="promotion-message"))
    result = found.get("result") or {}
    if status == "done" and isinstance(result, dict) and result.get("version") is not None:
        children.append(
            html.P(
                _(
                    "Version {version} is registered as challenger: pick it above to see it, "
                    "compare it or promote it.",
                    version=result["version"],
                ),
                id=f"{PAGE}-train-done",
            )
        )
    return children, status in ("done", "failed")


def _comparison_view(name: str, first: int, second: int, user: User) -> list[Any]:
    versions = model_data.versions(name, user)
    found = model_data.comparison(name, first, second, user)
    a, b = _version_text(first, versions), _version_text(second, versions)
    metric_rows = [
        {
            "metric": metric_name(row["metric"]),
            "first": metric_cell(row["first"]),
            "second": metric_cell(row["second"]),
            "difference": ""
            if row["difference"] is None or pd.isna(row["difference"])
            # the difference keeps its sign
            else ("+" if row["difference"] > 0 else "") + format_decimal(row["difference"], 3),
        }
        for row in found["metrics"].to_dict("records")
    ]
    subgroups = found["subgroups"]
    children: list[Any] = [
        table(
            f"{PAGE}-compare-metrics",
            metric_rows,
            (
                ("metric", _("Metric")),
                ("first", a),
                ("second", b),
                ("difference", _("Difference")),
            ),
            page_size=20,
        )
    ]
    if not metric_rows:
        children = [html.P(_("Neither version has metrics to compare."))]
    if not subgroups.empty:
        figure = comparison_figure(subgroups, first=a, second=b, index_version="")
        children.append(dcc.Graph(id=f"{PAGE}-compare-graph", figure=figure))
    return children


def _promoted_view(result: dict[str, Any]) -> html.P:
    if result.get("job_id"):
        return html.P(
            _(
                "Promotion of {name} version {version} started (job {job}): every stored "
                "interview is being rescored; its progress shows under Index promotions.",
                name=result["name"],
                version=result["version"],
                job=result["job_id"],
            ),
            id=f"{PAGE}-promote-done",
        )
    return html.P(
        _(
            "{name} version {version} is now the champion.",
            name=result["name"],
            version=result["version"],
        ),
        id=f"{PAGE}-promote-done",
    )


# -- callbacks ------------------------------------------------------------------------------


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(
        Output(f"{PAGE}-train-job", "data"),
        Output(f"{PAGE}-train-poll", "disabled"),
        Output(f"{PAGE}-train-status", "children"),
        Input(f"{PAGE}-train-button", "n_clicks"),
        State(f"{PAGE}-model-control", "value"),
        prevent_initial_call=True,
    )
    @guarded(Capability.MODELS, every_country=True)
    def start_training(user: User, clicks: int | None, kind: str) -> tuple[Any, ...]:
        if not clicks:
            raise PreventUpdate
        try:
            job_id = model_data.train(_kind_name(kind), user)
        except ReintegrationError as exc:
            return None, True, html.P(str(exc), className="warning")
        return job_id, False, [html.P(_("Training job {job} queued.", job=job_id))]

    @app.callback(
        Output(f"{PAGE}-train-status", "children", allow_duplicate=True),
        Output(f"{PAGE}-train-poll", "disabled", allow_duplicate=True),
        Output(f"{PAGE}-version-control", "options", allow_duplicate=True),
        Input(f"{PAGE}-train-poll", "n_intervals"),
        State(f"{PAGE}-train-job", "data"),
        State(f"{PAGE}-model-control", "value"),
        prevent_initial_call=True,
    )
    @guarded(Capability.MODELS, every_country=True)
    def follow_training(user: User, _n: int | None, job_id: str | None, kind: str) -> Any:
        if not job_id:
            return dash.no_update, True, dash.no_update
        shown, over = _job_view(model_data.job(job_id, user))
        if not over:
            return shown, False, dash.no_update
        from dashboards.pages.models import version_options

        return shown, True, version_options(kind, user)[0]

    @app.callback(
        Output(f"{PAGE}-compare-first", "options"),
        Output(f"{PAGE}-compare-second", "options"),
        Input(f"{PAGE}-version-control", "options"),
    )
    @guarded(Capability.MODELS, every_country=True)
    def compare_options(user: User, options: list[dict[str, Any]] | None) -> tuple[Any, ...]:
        return options or [], options or []

    @app.callback(
        Output(f"{PAGE}-compare-result", "children"),
        Input(f"{PAGE}-compare-button", "n_clicks"),
        State(f"{PAGE}-compare-first", "value"),
        State(f"{PAGE}-compare-second", "value"),
        State(f"{PAGE}-model-control", "value"),
        prevent_initial_call=True,
    )
    @guarded(Capability.MODELS, every_country=True)
    def compare(user: User, clicks: int | None, first: Any, second: Any, kind: str) -> Any:
        if not clicks:
            raise PreventUpdate
        if first is None or second is None:
            return html.P(_("Choose two versions to compare."))
        if int(first) == int(second):
            return html.P(_("Choose two different versions."))
        return _comparison_view(_kind_name(kind), int(first), int(second), user)

    @app.callback(
        Output(f"{PAGE}-promote-panel", "style"),
        Output(f"{PAGE}-promote-preview", "children"),
        Output(f"{PAGE}-promote-pending", "data"),
        Output(f"{PAGE}-promote-message", "children"),
        Input(f"{PAGE}-promote-preview-button", "n_clicks"),
        Input(f"{PAGE}-promote-cancel", "n_clicks"),
        State(f"{PAGE}-version-control", "value"),
        State(f"{PAGE}-model-control", "value"),
        prevent_initial_call=True,
    )
    @guarded(Capability.MODELS, every_country=True)
    def ask_preview(
        user: User, clicks: int | None, cancel: int | None, version: Any, kind: str
    ) -> tuple[Any, ...]:
        if dash.ctx.triggered_id == f"{PAGE}-promote-cancel":
            return HIDDEN, [], None, html.P(_("Promotion cancelled: nothing changed."))
        if not clicks:
            raise PreventUpdate
        if version is None:
            return HIDDEN, [], None, html.P(_("Choose a version to promote."))
        name = _kind_name(kind)
        try:
            found = model_data.preview(name, int(version), user)
        except ReintegrationError as exc:
            return HIDDEN, [], None, html.P(str(exc), className="warning")
        pending = {"name": name, "version": int(version), "kind": found["kind"]}
        return {}, preview_view(found), pending, []

    @app.callback(
        Output(f"{PAGE}-promote-message", "children", allow_duplicate=True),
        Output(f"{PAGE}-promote-panel", "style", allow_duplicate=True),
        Output(f"{PAGE}-promote-pending", "data", allow_duplicate=True),
        Output(f"{PAGE}-versions-table", "data", allow_duplicate=True),
        Input(f"{PAGE}-promote-confirm", "n_clicks"),
        State(f"{PAGE}-promote-pending", "data"),
        State(f"{PAGE}-promote-reason", "value"),
        State(f"{PAGE}-promote-force", "value"),
        State(f"{PAGE}-model-control", "value"),
        prevent_initial_call=True,
    )
    @guarded(Capability.MODELS, every_country=True)
    def confirm(
        user: User,
        clicks: int | None,
        pending: dict[str, Any] | None,
        reason: Any,
        force: Any,
        kind: str,
    ) -> tuple[Any, ...]:
        if not clicks or not pending:
            raise PreventUpdate
        why = str(reason or "").strip() or None
        try:
            result = model_data.promote(
                pending["name"], int(pending["version"]), why, "force" in (force or []), user
            )
        except ReintegrationError as exc:
            # The preview stays open: the reason can be given, or the promotion cancelled.
            error = html.P(str(exc), className="warning", id=f"{PAGE}-promote-error")
            return error, {}, pending, dash.no_update
        from dashboards.pages.models import version_rows

        # A risk model is champion at once: the table says so (an index when its job is done).
        return _promoted_view(result), HIDDEN, None, version_rows(kind, user)

    @app.callback(
        Output(f"{PAGE}-versions-table", "data", allow_duplicate=True),
        Output(f"{PAGE}-promote-applied", "data"),
        Input(f"{PAGE}-promotions-poll", "n_intervals"),
        State(f"{PAGE}-promote-applied", "data"),
        State(f"{PAGE}-model-control", "value"),
        prevent_initial_call=True,
    )
    @guarded(Capability.MODELS, every_country=True)
    def applied(user: User, _n: int | None, seen: list[str] | None, kind: str) -> Any:
        """Refresh the versions table when an index promotion's job has ended since the
        last look (its champion moved)."""
        from dashboards.pages.models import version_rows
        from models.jobs import RESCORE

        ended = sorted(
            str(j["id"])
            for j in model_data.jobs(user)
            if j.get("kind") == RESCORE and j.get("status") == "done"
        )
        if seen is None or set(ended) <= set(seen):
            return dash.no_update, ended
        return version_rows(kind, user), ended
