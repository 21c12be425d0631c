"""Building blocks the pages share: a figure card (graph, PNG from its toolbar, CSV and Excel
buttons, a sentence saying how to read it), headline numbers, tables, and the sync of a page's
filters into the address bar."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import dash
from dash import Input, dash_table, dcc, html

from reintegration.i18n import _, format_integer

# Writes the page's query into the address without a navigation, so the view can be shared;
# replaceState fires no event, so Dash's router does not re-render the page.
_URL_SYNC = """
function(query) {
    if (typeof query !== "string") { return; }
    var wanted = window.location.pathname + query + window.location.hash;
    var now = window.location.pathname + window.location.search + window.location.hash;
    if (wanted !== now) { window.history.replaceState(window.history.state, "", wanted); }
}
"""


# Toolbar buttons that send a chart to a third party (Plotly's cloud, Chart Studio): figures of
# returnees never leave the server, whatever plotly.js shows by default.
THIRD_PARTY_BUTTONS = ("sendDataToCloud", "sendChartToCloud", "editInChartStudio")


def graph_config(filename: str) -> dict[str, Any]:
    """Plotly's toolbar: PNG download named after the chart; no plotly logo, and no button or
    link that sends the chart anywhere.

    Not ``responsive``: Dash would then drop each figure's own height for its container's. A
    chart takes its card's width when drawn (``autosize``), and cards fit the screen."""
    return {
        "displaylogo": False,
        "showSendToCloud": False,
        "showEditInChartStudio": False,
        "showLink": False,
        "sendData": False,
        "plotlyServerURL": "",
        "modeBarButtonsToRemove": ["lasso2d", "select2d", *THIRD_PARTY_BUTTONS],
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
    }


def graph(element_id: str, filename: str, **kwargs: Any) -> dcc.Graph:
    """A chart with :func:`graph_config`'s toolbar: build every ``dcc.Graph`` through this."""
    return dcc.Graph(id=element_id, config=graph_config(filename), **kwargs)


def figure_card(
    page: str,
    name: str,
    *,
    csv: bool = True,
    wide: bool = False,
    note: str = "",
    excel: bool = False,
) -> html.Section:
    """A chart with its downloads and a sentence saying how to read it: ids
    ``{page}-{name}-graph``, ``-csv-button``, ``-csv``, ``-note``, and with ``excel`` (whose
    callbacks :func:`dashboards.scaffold.register_downloads` registers) ``-xlsx-button`` and
    ``-xlsx``."""
    actions: list[Any] = []
    if csv:
        actions = [
            html.Button(
                _("Download data (CSV)"),
                id=f"{page}-{name}-csv-button",
                className="button-secondary",
                n_clicks=0,
            ),
            dcc.Download(id=f"{page}-{name}-csv"),
        ]
    if csv and excel:
        actions += [
            html.Button(
                _("Download data (Excel, with a read me)"),
                id=f"{page}-{name}-xlsx-button",
                className="button-secondary",
                n_clicks=0,
            ),
            dcc.Download(id=f"{page}-{name}-xlsx"),
        ]
    children: list[Any] = [graph(f"{page}-{name}-graph", f"{page}-{name}", className="figure")]
    if note:
        children.append(html.P(note, className="chart-note", id=f"{page}-{name}-note"))
    children.append(html.Div(className="card-actions", children=actions))
    return html.Section(className="card card-wide" if wide else "card", children=children)


def headline(label: str, value: str, note: str = "", *, element_id: str | None = None) -> html.Div:
    """One headline number with its label and a note (an interval, a suppression)."""
    return html.Div(
        className="headline",
        id=element_id or "",
        children=[
            html.Div(label, className="headline-label"),
            html.Div(value, className="headline-value"),
            html.Div(note, className="headline-note"),
        ],
    )


def table(
    element_id: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    **kwargs: Any,
) -> dash_table.DataTable:
    """A sortable table of ``rows`` with ``columns`` as (key, title)."""
    # Dash announces DataTable's move out of its core package in favour of dash-ag-grid, which
    # is not a dependency here; the warning says nothing a user of this app can act on.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"\s*The dash_table.DataTable", DeprecationWarning)
        return _data_table(element_id, rows, columns, **kwargs)


def _data_table(
    element_id: str,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    **kwargs: Any,
) -> dash_table.DataTable:
    # A caller may override any default (a page sorting on the server sets sort_action).
    options: dict[str, Any] = {
        "sort_action": "native",
        "page_size": 15,
        "style_table": {"overflowX": "auto", "maxWidth": "100%"},
        "style_cell": {
            "textAlign": "left",
            "fontFamily": "inherit",
            "fontSize": "13px",
            "whiteSpace": "normal",
            "height": "auto",
            "maxWidth": "480px",
        },
        "style_header": {"fontWeight": "600"},
        **kwargs,
    }
    return dash_table.DataTable(
        id=element_id,
        data=list(rows),
        columns=[{"id": key, "name": title} for key, title in columns],
        **options,
    )


def url_sync(app: dash.Dash, page: str) -> None:
    """Register the clientside callback that mirrors ``{page}-query`` (a :func:`query_store`)
    into the address bar."""
    app.clientside_callback(_URL_SYNC, Input(f"{page}-query", "data"))


def query_store(page: str) -> dcc.Store:
    """The store holding a page's query string (``?country=SEN...``)."""
    return dcc.Store(id=f"{page}-query")


def muted(text: str, *, element_id: str | None = None) -> html.P:
    """A short explanatory paragraph."""
    if element_id:
        return html.P(text, className="muted", id=element_id)
    return html.P(text, className="muted")


def stage_sentence(stages: dict[str, Any] | None) -> str:
    """Which follow-up rounds the figures mix, e.g. "Latest surveys from round 1 (454), round
    2 (390), round 3 (2,155): a group surveyed later may look better for that alone."."""
    rounds = (stages or {}).get("rounds") or []
    parts = []
    for row in rounds:
        n = _("hidden") if row["returnees"] is None else format_integer(row["returnees"])
        name = row["label"] if row["other"] else _("round {round}", round=row["value"])
        parts.append(f"{name} ({n})")
    if not parts:
        return ""
    if len(parts) == 1:
        return _("All latest surveys are from {round}.", round=parts[0])
    return _(
        "Latest surveys from {rounds}: these figures mix follow-up times, and a group surveyed "
        "later may look better for that alone; the Trajectories page compares returnees round "
        "by round.",
        rounds=", ".join(parts),
    )
