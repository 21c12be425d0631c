"""What an unknown address shows."""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboards.auth import page_url

dash.register_page(__name__, path="/404", name="Not found", title="Not found · Reintegration")


def layout(**_: str) -> html.Div:
    return html.Div(
        className="notice",
        id="page-not-found",
        children=[
            html.H1("Page not found"),
            html.P("There is no dashboard page at this address."),
            dcc.Link("Go to the first page", href=page_url("/")),
        ],
    )
