"""What an unknown address shows."""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboards.auth import page_url
from reintegration.i18n import _

dash.register_page(__name__, path="/404", name="Not found", title="Not found · Reintegration")


def layout(**_query: str) -> html.Div:
    return html.Div(
        className="notice",
        id="page-not-found",
        children=[
            html.H1(_("Page not found")),
            html.P(_("There is no dashboard page at this address.")),
            dcc.Link(_("Go to the first page"), href=page_url("/")),
        ],
    )
