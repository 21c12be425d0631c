"""A returnee's page (row-level), opened from the worklist: their rounds (dates, months since
return), scores per round and their trajectory, the current risk with its band and the model
version, the weakest dimension and its items, and the case status with its history, which an
analyst or admin sets here. A returnee outside the user's countries is "not found", exactly as
one that does not exist."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboards import casework_data as data_access
from dashboards.access import guarded, page_layout
from dashboards.auth import page_url
from dashboards.components import table
from dashboards.figures.common import figure_name
from dashboards.figures.returnee import FIGURES, returnee_trajectory_figure
from dashboards.labels import country_label, dimension_labels, item_labels, value_labels
from dashboards.pages.worklist import band_names, bands_sentence, ranked_by
from reintegration.case_status import STATUSES, status_labels
from reintegration.i18n import _, format_date, format_decimal, format_integer, format_percent
from reintegration.roles import Capability
from reintegration.users import User

dash.register_page(
    __name__,
    path="/returnee",
    name="Returnee",
    title="Returnee · Reintegration",
    order=6,
    capability=Capability.ROW_LEVEL,
    navigation=False,
)

PAGE = "returnee"


def _not_found() -> html.Div:
    return html.Div(
        className=f"page page-{PAGE}",
        children=[
            html.H1(_("Returnee not found")),
            html.P(
                _(
                    "There is no returnee with this key that you may see. Open a returnee "
                    "from the worklist."
                ),
                id=f"{PAGE}-not-found",
            ),
            dcc.Link(_("Back to the worklist"), href=page_url("/worklist")),
        ],
    )


def _scores(found: dict[str, Any], version: str) -> list[dict[str, Any]]:
    out = []
    for r in found["rounds"]:
        chosen = next((s for s in r["scores"] if s["index_version"] == version), None)
        chosen = chosen or (r["scores"][0] if r["scores"] else {})
        out.append(
            {
                "survey_round": r["survey_round"],
                "months_since_return": r["months_since_return"],
                "interview_date": r["interview_date"],
                **{f: chosen.get(f) for f in FIGURES},
            }
        )
    return out


def _rounds_table(rows: list[dict[str, Any]]) -> Any:
    shown = [
        {
            "survey_round": format_integer(r["survey_round"]) if r["survey_round"] else "–",
            "interview_date": format_date(r["interview_date"]),
            "months": format_decimal(r["months_since_return"], 1),
            **{f: "–" if r[f] is None else format_decimal(r[f], 3) for f in FIGURES},
        }
        for r in rows
    ]
    titles = [
        ("survey_round", _("Round")),
        ("interview_date", _("Interview date")),
        ("months", _("Months since return")),
        *((f, figure_name(f)) for f in FIGURES),
    ]
    return table(f"{PAGE}-rounds-table", shown, titles, page_size=12)


def _risk_block(found: dict[str, Any]) -> html.Div:
    current = found["current"]
    if current is None:
        return html.Div(
            id=f"{PAGE}-risk",
            children=[
                html.H2(_("Risk")),
                html.P(
                    _(
                        "Not on the worklist: their first interview was not within 4 months of "
                        "return, or it could not be scored."
                    )
                ),
            ],
        )
    short, dimensions = item_labels(), dimension_labels()
    weakest = current["weakest_dimension"]
    return html.Div(
        id=f"{PAGE}-risk",
        children=[
            html.H2(_("Risk")),
            html.P(
                _(
                    "Risk {risk}, {band} band; rank {rank} on the worklist, {ranked}.",
                    risk=format_percent(current["ranked_risk"], 1),
                    band=band_names()[current["band"]],
                    rank=format_integer(current["rank"]),
                    ranked=ranked_by(found["source"]),
                ),
                id=f"{PAGE}-risk-sentence",
            ),
            html.P(bands_sentence(found["bands"]), className="muted"),
            html.P(
                _(
                    "Weakest dimension: {dimension}.",
                    dimension=dimensions.get(weakest or "", weakest or "–"),
                ),
                id=f"{PAGE}-weakest",
            ),
            html.Ul(
                [
                    html.Li(short.get(r["item"], r["question"] or r["item"]))
                    for r in current["reasons"]
                ],
                id=f"{PAGE}-reasons",
            ),
        ],
    )


def _history(statuses: list[dict[str, Any]]) -> Any:
    labels = status_labels()
    rows = [
        {
            "status": labels.get(s["status"], s["status"]),
            "actor": s["actor"],
            "at": format_date(s["at"].date()) + s["at"].strftime(" %H:%M UTC"),
        }
        for s in statuses
    ]
    if not rows:
        return html.P(_("No status set yet."), id=f"{PAGE}-status-history", className="muted")
    titles = [("status", _("Status")), ("actor", _("Set by")), ("at", _("When"))]
    return table(f"{PAGE}-status-history", rows, titles, page_size=10)


def _status_block(found: dict[str, Any]) -> html.Div:
    labels = status_labels()
    current = found["statuses"][0]["status"] if found["statuses"] else "none"
    return html.Div(
        id=f"{PAGE}-status-card",
        children=[
            html.H2(_("Case status")),
            html.Label(_("Status"), htmlFor=f"{PAGE}-status"),
            dcc.Dropdown(
                id=f"{PAGE}-status",
                options=[{"label": labels[s], "value": s} for s in STATUSES],
                value=current,
                clearable=False,
                style={"maxWidth": "320px"},
            ),
            html.Button(
                _("Save the status"), id=f"{PAGE}-status-save", className="button", n_clicks=0
            ),
            dcc.Store(id=f"{PAGE}-key", data=found["key"]),
            html.P(id=f"{PAGE}-status-message", className="muted"),
            html.Div(_history(found["statuses"]), id=f"{PAGE}-status-history-box"),
        ],
    )


@page_layout(__name__)
def layout(user: User, **query: str) -> html.Div:
    key = str(query.get("key") or "").strip()
    found = data_access.returnee(user, key) if key else None
    if found is None:
        return _not_found()
    labels = value_labels()
    version = found["index_version"]
    rows = _scores(found, version)
    age = found["age_at_return"]
    return html.Div(
        className=f"page page-{PAGE}",
        children=[
            dcc.Link(_("← Back to the worklist"), href=page_url("/worklist")),
            html.H1(_("Returnee {key}", key=found["key"][:12] + "…")),
            html.P(
                _(
                    "{country} · {sex} · {age} at return · {return_type} return · key {key}",
                    country=country_label(found["country"] or "–"),
                    sex=labels.get(found["sex"] or "", found["sex"] or "–"),
                    age="–" if age is None else format_integer(age),
                    return_type=labels.get(found["return_type"] or "", found["return_type"] or "–"),
                    key=found["key"],
                ),
                id=f"{PAGE}-who",
                className="muted",
            ),
            _risk_block(found),
            _status_block(found),
            html.H2(_("Rounds and scores")),
            _rounds_table(rows),
            dcc.Graph(
                id=f"{PAGE}-trajectory",
                figure=returnee_trajectory_figure(rows, index_version=version),
                config={"displaylogo": False},
            ),
        ],
    )


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(
        Output(f"{PAGE}-status-message", "children"),
        Output(f"{PAGE}-status-history-box", "children"),
        Input(f"{PAGE}-status-save", "n_clicks"),
        State(f"{PAGE}-key", "data"),
        State(f"{PAGE}-status", "value"),
        prevent_initial_call=True,
    )
    @guarded(Capability.ROW_LEVEL)
    def save(user: User, clicks: int, key: str | None, status: str | None) -> tuple[Any, ...]:
        if not clicks or not key or status not in STATUSES:
            raise PreventUpdate
        done = data_access.set_status(user, key, status)
        if done is None:
            return _("There is no returnee with this key that you may see."), dash.no_update
        found = data_access.returnee(user, key)
        message = _("Status saved: {status}.", status=status_labels()[status])
        return message, _history(found["statuses"] if found else [])
