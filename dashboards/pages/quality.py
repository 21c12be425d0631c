"""Data quality: batches with their accepted, rejected and duplicate counts, a batch's error
table and fixable file; for row-level roles, missing answers per item and enumerators who
stand out. An enumerator (upload only) sees their own batches and nothing else.

The answers and enumerators are summaries, so they have the "Publishable figures" switch of the
aggregate pages: exact by default, protected (perturbed for privacy) when it is on, as
:func:`dashboards.data.shown` decides for the user."""

from __future__ import annotations

import functools
from typing import Any

import dash
import pandas as pd
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboards import data, downloads, rows
from dashboards.access import guarded, page_layout
from dashboards.components import figure_card, headline, table, url_sync
from dashboards.figures.common import perturbed_text, stamp
from dashboards.figures.quality import enumerator_figure, icc_sentence, missingness_figure
from dashboards.filters import FilterState
from dashboards.labels import item_labels, value_labels
from dashboards.scaffold import (
    Export,
    publishable_input,
    publishable_state,
    publishable_switch,
    register_downloads,
)
from reintegration.analytics import Filters
from reintegration.batch_views import COUNTS
from reintegration.i18n import _, format_decimal, format_integer, format_percent
from reintegration.interviewer import interviewer_icc
from reintegration.quality import BLANK
from reintegration.questionnaire import load_questionnaire
from reintegration.roles import Capability, allowed
from reintegration.upload_report import translate
from reintegration.users import User

dash.register_page(
    __name__,
    path="/quality",
    name="Data quality",
    title="Data quality · Reintegration",
    order=7,
    capability=(Capability.ROW_LEVEL, Capability.UPLOAD),
)

PAGE = "quality"
ERRORS_SHOWN = 500
WARNINGS_SHOWN = 50
BATCH_COLUMNS = (
    "created_at",
    "file_name",
    "uploader",
    "status",
    "received",
    "accepted",
    "rejected",
    "duplicate",
    "updated",
)
ERROR_COLUMNS = ("row", "column", "value", "message")
ENUMERATOR_COLUMNS = (
    "enumerator_id",
    "country",
    "interviews",
    "share_missing",
    "relative_composite",
    "reasons",
)


def _titles() -> dict[str, str]:
    """The tables' column titles in the current language."""
    return {
        "created_at": _("Uploaded"),
        "file_name": _("File"),
        "uploader": _("Uploader"),
        "status": _("Status"),
        "received": _("Received"),
        "accepted": _("Accepted"),
        "rejected": _("Rejected"),
        "duplicate": _("Duplicate"),
        "updated": _("Updated"),
        "row": _("Row"),
        "column": _("Column"),
        "value": _("Value"),
        "message": _("Problem"),
        "enumerator_id": _("Enumerator"),
        "country": _("Country"),
        "interviews": _("Interviews"),
        "share_missing": _("Missing"),
        "relative_composite": _("Score vs country"),
        "reasons": _("Why flagged"),
    }


def _status(code: Any) -> str:
    """A batch's status in the current language (the code when unknown)."""
    names = {"processing": _("processing"), "done": _("done"), "failed": _("failed")}
    return names.get(str(code), str(code))


def _columns(keys: tuple[str, ...]) -> list[tuple[str, str]]:
    titles = _titles()
    return [(key, titles[key]) for key in keys]


def _batch_rows(user: User) -> list[dict[str, Any]]:
    out = []
    for found in rows.batches(user):
        shown = {key: found.get(key) for key in BATCH_COLUMNS}
        shown["created_at"] = (
            found["created_at"].strftime("%Y-%m-%d %H:%M") if found["created_at"] else ""
        )
        shown["status"] = _status(found.get("status"))
        shown["id"] = found["id"]
        out.append(shown)
    return out


@page_layout(__name__)
def layout(
    user: User, batch: str | None = None, publishable: str | None = None, **_query: str
) -> html.Div:
    listed = _batch_rows(user)
    selected = [i for i, row in enumerate(listed) if row["id"] == batch]
    row_level = allowed(user.role, Capability.ROW_LEVEL)
    whose = _("every batch") if rows.sees_every_batch(user) else _("the batches you uploaded")
    children: list[Any] = [
        html.H1(_("Data quality")),
        html.P(
            _(
                "Uploads and what became of their rows: {whose}. Select a batch for its error "
                "table and the fixable file (rejected rows with an error column, to correct "
                "and upload again).",
                whose=whose,
            ),
            className="intro",
        ),
        dcc.Store(id=f"{PAGE}-query"),
        html.Section(
            className="section",
            children=[
                html.H2(_("Batches")),
                table(
                    f"{PAGE}-batches-table",
                    listed,
                    _columns(BATCH_COLUMNS),
                    row_selectable="single",
                    selected_rows=selected,
                    page_size=10,
                ),
            ],
        ),
        html.Section(className="section", id=f"{PAGE}-batch-detail"),
        html.Div(
            className="card-actions",
            children=[
                html.Button(
                    _("Download the fixable file (CSV)"),
                    id=f"{PAGE}-fixable-button",
                    className="button-secondary",
                    n_clicks=0,
                ),
                dcc.Download(id=f"{PAGE}-fixable"),
            ],
        ),
    ]
    if row_level:
        children += [
            html.H2(_("Answers and enumerators")),
            html.P(
                _(
                    "Of the selected batch, or of the most recent interviews when none is "
                    "selected. Enumerators are compared with each other; a flag is a prompt for "
                    "a supervisor's check, not a finding."
                ),
                className="muted",
                id=f"{PAGE}-scope-note",
            ),
            html.Div(
                [publishable_switch(PAGE, user, publishable == "1")],
                className="page-controls",
            ),
            html.P(id=f"{PAGE}-figures", className="muted figures-note"),
            html.P(id=f"{PAGE}-icc", className="icc-note"),
            html.Div(
                className="cards",
                children=[
                    figure_card(
                        PAGE,
                        "missingness",
                        wide=True,
                        excel=True,
                        note=_(
                            "For each question, the share of interviews where it was left "
                            "blank or answered with a missing code; a long bar is a question "
                            "worth checking."
                        ),
                    ),
                    figure_card(
                        PAGE,
                        "enumerators",
                        wide=True,
                        excel=True,
                        note=_(
                            "Each point is an enumerator: right of the line, their returnees "
                            "score higher than their country's; higher up, more answers "
                            "missing. Flagged ones deserve a supervisor's look."
                        ),
                    ),
                ],
            ),
            table(f"{PAGE}-enumerators-table", [], _columns(ENUMERATOR_COLUMNS), page_size=10),
        ]
    return html.Div(className=f"page page-{PAGE}", children=children)


def _selected(table_rows: list[dict[str, Any]] | None, selected: list[int] | None) -> str | None:
    if not table_rows or not selected:
        return None
    index = selected[0]
    return str(table_rows[index]["id"]) if 0 <= index < len(table_rows) else None


def _detail(user: User, batch_id: str | None) -> list[Any]:
    found = rows.batch(user, batch_id)
    if found is None:
        return [html.P(_("Select a batch above to see its errors."), className="muted")]
    report = found["report"]
    titles = _titles()
    out: list[Any] = [
        html.H2(_("Batch {file}", file=found["file_name"])),
        html.P(
            _(
                "Id {id} · uploaded by {uploader} · status {status}",
                id=found["id"],
                uploader=found["uploader"],
                status=_status(found["status"]),
            )
        ),
        html.Div(
            className="headlines",
            children=[headline(titles.get(k, k), format_integer(found[k])) for k in COUNTS],
        ),
    ]
    if found.get("reason"):
        out.append(
            html.P(
                _("Why it failed: {reason}", reason=translate(found["reason"])),
                className="notice notice-refused",
            )
        )
    for warning in report["warnings"][:WARNINGS_SHOWN]:
        where = (
            _("row {row}, column {column}: ", row=warning["row"], column=warning["column"])
            if warning.get("row")
            else ""
        )
        out.append(
            html.P(
                _("Warning: {where}{message}", where=where, message=translate(warning["message"])),
                className="notice notice-warning",
            )
        )
    if report["warnings_total"] > WARNINGS_SHOWN:
        hidden = report["warnings_total"] - WARNINGS_SHOWN
        out.append(
            html.P(_("... and {n} more warnings.", n=format_integer(hidden)), className="muted")
        )
    for label, columns in (
        (_("Ignored columns"), report["ignored_columns"]),
        (_("Missing item columns"), report["missing_columns"]),
        (_("Identifier columns dropped"), report["dropped_identifier_columns"]),
    ):
        if columns:
            out.append(html.P(f"{label}: {', '.join(columns)}", className="muted"))
    if report["errors_total"]:
        # Stored in English (the fixable file keeps them so); shown in the reader's language.
        errors = [
            {**e, "message": translate(str(e.get("message") or ""))}
            for e in rows.batch_errors(found["id"], ERRORS_SHOWN)
        ]
        out += [
            html.H2(_("Rejected cells ({n})", n=format_integer(report["errors_total"]))),
            table(f"{PAGE}-errors-table", errors, _columns(ERROR_COLUMNS), page_size=10),
        ]
    else:
        out.append(html.P(_("No row of this batch was rejected."), id=f"{PAGE}-no-errors"))
    return out


def _version() -> str | None:
    return data.resolve_version(FilterState()).index_version


def register_callbacks(app: dash.Dash) -> None:
    url_sync(app, PAGE)

    @app.callback(
        Output(f"{PAGE}-batch-detail", "children"),
        Output(f"{PAGE}-query", "data"),
        Input(f"{PAGE}-batches-table", "selected_rows"),
        State(f"{PAGE}-batches-table", "data"),
    )
    @guarded(Capability.ROW_LEVEL, Capability.UPLOAD)
    def select(
        user: User, selected: list[int] | None, table_rows: list[dict[str, Any]]
    ) -> tuple[Any, str]:
        batch_id = _selected(table_rows, selected)
        return _detail(user, batch_id), f"?batch={batch_id}" if batch_id else ""

    @app.callback(
        Output(f"{PAGE}-fixable", "data"),
        Input(f"{PAGE}-fixable-button", "n_clicks"),
        State(f"{PAGE}-batches-table", "selected_rows"),
        State(f"{PAGE}-batches-table", "data"),
        prevent_initial_call=True,
    )
    @guarded(Capability.ROW_LEVEL, Capability.UPLOAD)
    def fixable(
        user: User, clicks: int, selected: list[int] | None, table_rows: list[dict[str, Any]]
    ) -> Any:
        found = rows.batch(user, _selected(table_rows, selected))
        if not clicks or found is None:
            raise PreventUpdate
        return dcc.send_string(rows.fixable_file(found["id"]), f"fixable-{found['id']}.csv")

    @app.callback(
        Output(f"{PAGE}-missingness-graph", "figure"),
        Output(f"{PAGE}-enumerators-graph", "figure"),
        Output(f"{PAGE}-enumerators-table", "data"),
        Output(f"{PAGE}-figures", "children"),
        Output(f"{PAGE}-icc", "children"),
        Input(f"{PAGE}-batches-table", "selected_rows"),
        publishable_input(PAGE),
        State(f"{PAGE}-batches-table", "data"),
    )
    @guarded(Capability.ROW_LEVEL)
    def answers(
        user: User, selected: list[int] | None, switch: Any, table_rows: list[dict[str, Any]]
    ) -> tuple[Any, ...]:
        batch_id = _selected(table_rows, selected)
        view = _shown(user, switch)
        missing, enumerators = _frames(user, batch_id, view.protected)
        kinds = [BLANK, *(o.code for o in load_questionnaire().missing_codes)]
        labels = {**value_labels(), **item_labels()}
        version = _version() or "none"
        line = downloads.stamp_text(_context(view, batch_id, version))
        return (
            stamp(
                missingness_figure(
                    missing, missing_columns=kinds, labels=labels, protected=view.protected
                ),
                line,
            ),
            stamp(
                enumerator_figure(
                    enumerators,
                    index_version=version,
                    protected=view.protected,
                    min_cell=view.min_cell,
                ),
                line,
            ),
            _enumerator_rows(enumerators, view),
            _figures_note(view),
            icc_sentence(_icc(user, batch_id, view)),
        )

    states = [
        State(f"{PAGE}-batches-table", "selected_rows"),
        State(f"{PAGE}-batches-table", "data"),
        publishable_state(PAGE),
    ]
    for name in ("missingness", "enumerators"):
        register_downloads(app, PAGE, name, states, _export(name), Capability.ROW_LEVEL)


def _shown(user: User, switch: Any) -> data.Shown:
    """Which figures the answers and enumerators show ``user``: the switch's, as the aggregate
    pages decide it (the summaries have no date filter)."""
    return data.shown(user, Filters(), switch)


def _percent(value: Any) -> str:
    return "" if pd.isna(value) else format_percent(value, 1)


def _enumerator_rows(enumerators: pd.DataFrame, view: data.Shown) -> list[dict[str, Any]]:
    """The enumerators table, its figures as text; the row gathering the enumerators too few
    to name (protected figures) is named as such."""
    other = (
        enumerators["other"].astype(bool)
        if "other" in enumerators
        else pd.Series(False, index=enumerators.index)
    )
    shown = enumerators.assign(
        enumerator_id=enumerators["enumerator_id"].where(~other, view.other_label),
        share_missing=enumerators["share_missing"].map(_percent),
        relative_composite=enumerators["relative_composite"].map(
            lambda v: "" if pd.isna(v) else ("+" if v > 0 else "") + format_decimal(v)
        ),
        reasons=enumerators["reasons"].map("; ".join),
    )
    columns = list(ENUMERATOR_COLUMNS)
    records: list[dict[str, Any]] = shown[columns].to_dict("records")
    return records


def _figures_note(view: data.Shown) -> list[Any]:
    """Which figures the answers and enumerators are."""
    if not view.protected:
        return [_("Exact figures, for use within the organisation.")]
    said = perturbed_text()
    return [
        html.Strong(_("Publishable figures.") + " "),
        _(
            "{perturbed}; counts from 1 to {below} are not shown, and enumerators too few to "
            'name are gathered into one row, "{other}".',
            perturbed=said[:1].upper() + said[1:],
            below=format_integer(view.min_cell - 1),
            other=view.other_label,
        ),
    ]


def _frames(
    user: User, batch_id: str | None, protected: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if batch_id is not None and rows.batch(user, batch_id) is None:
        batch_id = None
    version = _version()
    missing = rows.missingness(user, batch_id, protected=protected)
    enumerators = (
        rows.anomalies(user, batch_id, version, protected=protected)
        if version
        else pd.DataFrame(
            columns=[
                "enumerator_id",
                "country",
                "interviews",
                "share_missing",
                "relative_composite",
                "reasons",
                "flagged",
            ]
        )
    )
    return missing, enumerators


def _icc(user: User, batch_id: str | None, view: data.Shown) -> dict[str, Any] | None:
    """The interviewer ICC of the composite over the interviews the page summarises (None
    before anything is scored), cached until the data changes."""
    if batch_id is not None and rows.batch(user, batch_id) is None:
        batch_id = None
    version = _version()
    if version is None:
        return None
    svc = data.services()
    return _cached_icc(
        svc.engine,
        svc.analytics.data_version(),
        user.countries,
        batch_id,
        version,
        view.protected,
        view.min_cell,
    )


@functools.lru_cache(maxsize=32)
def _cached_icc(
    engine: Any,
    data_version: int,
    countries: frozenset[str] | None,
    batch_id: str | None,
    version: str,
    protected: bool,
    min_cell: int,
) -> dict[str, Any]:
    return interviewer_icc(
        engine,
        index_version=version,
        countries=countries,
        batch_id=batch_id,
        protected=protected,
        min_cell=min_cell,
        protection=data.services().analytics.protection,
    )


def _context(view: data.Shown, batch_id: str | None, version: str | None) -> Any:
    """What the answers and enumerators cover: the batch chosen, or the latest interviews."""
    return downloads.context(
        Filters(),
        version,
        protected=view.protected,
        choices=[("batch", batch_id or "latest interviews")],
    )


def _export(name: str) -> Any:
    def build(
        user: User, selected: list[int] | None, table_rows: list[dict[str, Any]], switch: Any
    ) -> Export:
        view = _shown(user, switch)
        batch_id = _selected(table_rows, selected)
        if batch_id is not None and rows.batch(user, batch_id) is None:
            batch_id = None
        missing, enumerators = _frames(user, batch_id, view.protected)
        frame = (
            missing
            if name == "missingness"
            else enumerators.assign(reasons=enumerators["reasons"].map("; ".join))
        )
        title = (
            _("Missing answers per item")
            if name == "missingness"
            else _("Enumerators: scores and missing answers")
        )
        ctx = _context(view, batch_id, _version())
        return data.labelled(frame, view), ctx, f"quality-{name}", title

    return build
