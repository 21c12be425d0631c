"""Upload: drag and drop a batch file, follow its progress, then read its report. The ingest
runs in the background through the same ``Uploads`` object as the API's upload route."""

from __future__ import annotations

import base64
import binascii
import shutil
from pathlib import Path
from typing import Any

import dash
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboards import rows
from dashboards.access import guarded, page_layout
from dashboards.auth import page_url, services
from dashboards.components import headline, table
from reintegration.batch_views import COUNTS
from reintegration.errors import ReintegrationError
from reintegration.housekeeping import new_upload_folder
from reintegration.i18n import _, format_integer, format_percent, ngettext
from reintegration.roles import Capability
from reintegration.upload_report import issue_text, outcome, translate
from reintegration.users import User

dash.register_page(
    __name__,
    path="/upload",
    name="Upload",
    title="Upload · Reintegration",
    order=8,
    capability=Capability.UPLOAD,
)

PAGE = "upload"
POLL_MS = 500
ERRORS_SHOWN = 100
WARNINGS_SHOWN = 5
ACCEPTED = ".csv,.txt,.xlsx,.jsonl,.json,.zip"
_SAFE_NAME = 200
ELSEWHERE = "elsewhere"
ELSEWHERE_LABEL = "Consent was recorded outside the form"
DECLARE_WITH = f"tick “{ELSEWHERE_LABEL}” and send the file again"
"""Stored with the batch in English (as every reason is); shown in the reader's language."""


def _error_columns() -> tuple[tuple[str, str], ...]:
    return (
        ("row", _("Row")),
        ("column", _("Column")),
        ("value", _("Value")),
        ("message", _("Problem")),
    )


def _status(found: dict[str, Any]) -> str:
    names = {"processing": _("processing"), "done": _("done"), "failed": _("failed")}
    return names.get(found["status"], found["status"])


def _count_labels() -> dict[str, str]:
    return {
        "received": _("Received"),
        "accepted": _("Accepted"),
        "rejected": _("Rejected"),
        "duplicate": _("Already stored"),
        "updated": _("Updated"),
    }


def _limit_mb() -> int:
    return int(services().settings.max_upload_mb)


@page_layout(__name__)
def layout(user: User, **_query: str) -> html.Div:
    limit = _limit_mb()
    intro = _(
        "A canonical CSV, XLSX or JSON lines file, or a Kobo or ODK Central export of the "
        "shipped form, up to {limit} MB. Rows are checked, scored and stored; the report "
        "lists every rejected row with the reason.",
        limit=format_integer(limit),
    )
    if user.countries:
        intro += " " + _(
            "Rows of countries other than {countries} are rejected.",
            countries=", ".join(sorted(user.countries)),
        )
    return html.Div(
        className=f"page page-{PAGE}",
        children=[
            html.H1(_("Upload a batch")),
            html.P(intro, className="intro"),
            dcc.Checklist(
                id=f"{PAGE}-consent-elsewhere",
                options=[
                    {"label": " " + _("Consent was recorded outside the form"), "value": ELSEWHERE}
                ],
                value=[],
                className="consent-elsewhere",
            ),
            html.P(
                _(
                    "A file without a consent column is refused unless you tick this box; a row "
                    "whose consent is not yes is always rejected, and nothing of it is stored. "
                    "Your declaration is recorded with the batch."
                ),
                className="muted",
            ),
            dcc.Upload(
                id=f"{PAGE}-file",
                className="upload-zone",
                children=html.Div([_("Drag and drop a file here, or "), html.A(_("choose one"))]),
                accept=ACCEPTED,
                max_size=limit << 20,
                multiple=False,
            ),
            html.Div(
                className="section",
                children=[
                    html.Progress(id=f"{PAGE}-progress", max="1", value="0"),
                    html.P(_("No file sent yet."), id=f"{PAGE}-status"),
                ],
            ),
            dcc.Store(id=f"{PAGE}-batch"),
            dcc.Interval(id=f"{PAGE}-poll", interval=POLL_MS, disabled=True),
            html.Div(id=f"{PAGE}-report"),
        ],
    )


def _receive(contents: str, file_name: str) -> Path:
    """Write the uploaded file alone in a new folder (the upload owns and removes both)."""
    encoded = contents.partition(",")[2]
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(_("the file arrived damaged; send it again")) from None
    limit = _limit_mb()
    if len(raw) > limit << 20:
        raise ValueError(
            _(
                "the file is larger than the upload limit of {limit} MB; split it into smaller "
                "batches (or ingest it with the command line, which has no limit)",
                limit=format_integer(limit),
            )
        )
    target = new_upload_folder(services().settings.home / "uploads")
    name = Path(file_name or "batch.csv").name[:_SAFE_NAME] or "batch.csv"
    path = target / name
    try:
        path.write_bytes(raw)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # no batch will end to remove it
        raise
    return path


def _report(user: User, batch_id: str) -> list[Any]:
    found = rows.batch(user, batch_id)
    if found is None:
        return [html.P(_("This batch is not known here."), className="notice notice-refused")]
    failed = found["status"] == "failed"
    # The outcome first, in one sentence: what a field worker needs to know before any count
    # (a failed batch: that nothing was stored, and why).
    out: list[Any] = [
        html.P(
            outcome(found),
            className="outcome notice" + (" notice-refused" if failed else ""),
            id=f"{PAGE}-outcome",
        ),
        html.H2(_("Report of {file}", file=found["file_name"])),
        html.P(
            _("Batch {batch} · status {status}", batch=found["id"], status=_status(found)),
            id=f"{PAGE}-batch-status",
        ),
    ]
    if failed:
        return out
    labels = _count_labels()
    out.append(
        html.Div(
            className="headlines",
            id=f"{PAGE}-counts",
            children=[headline(labels[k], format_integer(found[k])) for k in COUNTS],
        )
    )
    warnings = found["report"]["warnings"]
    for warning in warnings[:WARNINGS_SHOWN]:
        text = issue_text(warning.get("row"), warning.get("column"), warning["message"])
        out.append(html.P(_("Warning: {text}", text=text), className="notice notice-warning"))
    warnings_total = found["report"]["warnings_total"]
    if warnings_total > WARNINGS_SHOWN:
        more = warnings_total - WARNINGS_SHOWN
        out.append(
            html.P(
                ngettext("... and {n} more warning.", "... and {n} more warnings.", more),
                className="muted",
            )
        )
    errors_total = found["report"]["errors_total"]
    if errors_total:
        errors = [
            {**e, "message": translate(e["message"])}
            for e in rows.batch_errors(found["id"], ERRORS_SHOWN)
        ]
        out += [
            html.H2(_("Rejected cells ({n})", n=format_integer(errors_total))),
            table(f"{PAGE}-errors-table", errors, _error_columns(), page_size=10),
        ]
    out.append(
        dcc.Link(
            _("See this batch on the data quality page (and download the fixable file)"),
            href=page_url(f"/quality?batch={found['id']}"),
        )
    )
    return out


def register_callbacks(app: dash.Dash) -> None:
    @app.callback(
        Output(f"{PAGE}-batch", "data"),
        Output(f"{PAGE}-poll", "disabled"),
        Output(f"{PAGE}-status", "children"),
        Output(f"{PAGE}-progress", "value"),
        Output(f"{PAGE}-report", "children"),
        Input(f"{PAGE}-file", "contents"),
        State(f"{PAGE}-file", "filename"),
        State(f"{PAGE}-consent-elsewhere", "value"),
        prevent_initial_call=True,
    )
    @guarded(Capability.UPLOAD)
    def send(
        user: User, contents: str | None, file_name: str | None, elsewhere: list[str] | None
    ) -> tuple[Any, ...]:
        if not contents:
            raise PreventUpdate
        try:
            path = _receive(contents, file_name or "batch.csv")
            batch_id = services().uploads.submit(
                path,
                path.name,
                user,
                consent_recorded_elsewhere=isinstance(elsewhere, list) and ELSEWHERE in elsewhere,
                declare_with=DECLARE_WITH,
            )
        except (ValueError, ReintegrationError) as exc:
            return None, True, _("Not uploaded: {reason}", reason=translate(str(exc))), "0", []
        return batch_id, False, _("Processing {file}...", file=path.name), "0", []

    @app.callback(
        Output(f"{PAGE}-progress", "value", allow_duplicate=True),
        Output(f"{PAGE}-status", "children", allow_duplicate=True),
        Output(f"{PAGE}-poll", "disabled", allow_duplicate=True),
        Output(f"{PAGE}-report", "children", allow_duplicate=True),
        Input(f"{PAGE}-poll", "n_intervals"),
        State(f"{PAGE}-batch", "data"),
        prevent_initial_call=True,
    )
    @guarded(Capability.UPLOAD)
    def poll(user: User, _ticks: int, batch_id: str | None) -> tuple[Any, ...]:
        if not batch_id:
            raise PreventUpdate
        progress = services().uploads.progress(batch_id)
        if progress is not None and progress < 1.0:
            status = _("Processing: {share} of the rows read.", share=format_percent(progress))
            return f"{progress:.3f}", status, False, []
        if progress is None:  # started by another server process: its record tells
            found = rows.batch(user, batch_id)
            if found is not None and found["status"] == "processing":
                return "0", _("Processing..."), False, []
        return "1", _("Done."), True, _report(user, batch_id)
