"""What the aggregate pages (overview, breakdowns, trajectories, assistance) share: the page frame
with its filter bar and its "Publishable figures" switch, the note saying which figures the page
shows, and turning the controls' values into the view to load.

Managers always see protected figures (the switch is shown on and cannot be turned off, and
:func:`dashboards.data.shown` gives them protected figures whatever a request says); analysts
and admins see exact figures unless they turn the switch on. With protected figures the dates
are widened to whole months: the period picker shows months and the note the dates used."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dash
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboards import data, downloads
from dashboards.access import guarded
from dashboards.auth import page_url
from dashboards.components import query_store
from dashboards.figures.common import other_groups, perturbed_text, stamp
from dashboards.filters import (
    CONTROLS,
    FilterState,
    filter_bar,
    parse_query,
    problems_note,
    register_period_presets,
    scoped,
    state_from_values,
)
from reintegration.analytics import Filters, protected_for
from reintegration.i18n import _
from reintegration.roles import Capability
from reintegration.users import User

DAY_FORMAT = "YYYY-MM-DD"
MONTH_FORMAT = "YYYY-MM"


def aggregate_layout(
    page: str,
    *,
    title: str,
    intro: str,
    user: User,
    query: Mapping[str, Any],
    controls: Sequence[Any] = (),
    body: Sequence[Any] = (),
    problems: Sequence[str] = (),
) -> html.Div:
    """An aggregate page: title, intro, the filters from ``query``, page ``controls``, ``body``."""
    state, found = parse_query(query)
    state = data.resolve_version(state)
    switch = publishable_switch(page, user, str(query.get("publishable") or "") == "1")
    options = data.filter_options(user, state.index_version)
    scope = (
        html.P(
            _("Your access covers {countries} only.", countries=", ".join(sorted(user.countries))),
            className="muted",
            id=f"{page}-scope",
        )
        if user.countries
        else None
    )
    return html.Div(
        className=f"page page-{page}",
        children=[
            html.H1(title),
            html.P(
                [
                    intro,
                    " ",
                    dcc.Link(
                        _("What the words mean (glossary)"),
                        href=page_url("/glossary"),
                        id=f"{page}-glossary-link",
                    ),
                ],
                className="intro",
            ),
            scope,
            filter_bar(page, state, options),
            html.Div([*controls, switch], className="page-controls"),
            html.P(id=f"{page}-figures", className="muted figures-note"),
            html.P(id=f"{page}-exclusion", className="muted exclusion-note"),
            problems_note(page, [*found, *problems]),
            query_store(page),
            *body,
        ],
    )


def filter_states(page: str) -> list[State]:
    """The filter controls as callback states (for downloads)."""
    return [State(f"{page}-{name}-filter", prop) for name, prop in CONTROLS]


def view(user: User, values: Sequence[Any]) -> tuple[FilterState, Filters, str | None]:
    """The state of the controls, its analytics filters within the user's countries, and the
    index version to show (None when nothing is scored yet)."""
    state = data.resolve_version(state_from_values(values))
    return state, scoped(state, user), state.index_version


def no_scores() -> str:
    return _("No scores are stored yet: upload a batch first.")


def publishable_switch(page: str, user: User, on: bool) -> html.Div:
    """The "Publishable figures" switch (``{page}-publishable``, a checklist): on and fixed
    for a user who sees only protected figures."""
    always = protected_for(user, False)
    label = (
        _("Publishable figures (perturbed for privacy; always, for your role)")
        if always
        else _("Publishable figures (perturbed for privacy, whole months)")
    )
    return html.Div(
        className="filter",
        children=[
            dcc.Checklist(
                id=f"{page}-publishable",
                options=[{"label": label, "value": data.PUBLISHABLE, "disabled": always}],
                value=[data.PUBLISHABLE] if always or on else [],
            )
        ],
    )


def publishable_input(page: str) -> Input:
    """The switch as a callback input."""
    return Input(f"{page}-publishable", "value")


def publishable_state(page: str) -> State:
    """The switch as a callback state (for downloads)."""
    return State(f"{page}-publishable", "value")


def publishable_query(switch: Any) -> dict[str, str | None]:
    """The switch's part of a page's address."""
    return {"publishable": "1" if data.asked(switch) else None}


def figures_note(shown: data.Shown) -> list[Any]:
    """Which figures a page shows, and for protected ones the rules and the dates used."""
    if not shown.protected:
        return [_("Exact figures, for use within the organisation.")]
    start, end = shown.period()
    if start and end:
        period = _("Figures for {start} to {end}.", start=start.isoformat(), end=end.isoformat())
    elif start:
        period = _("Figures from {start}.", start=start.isoformat())
    elif end:
        period = _("Figures to {end}.", end=end.isoformat())
    else:
        period = _("Figures for every date.")
    said = perturbed_text()
    rules = _(
        '{perturbed}; groups too small to list are gathered into one row, "{other}"; dates '
        "widened to whole months. ",
        perturbed=said[:1].upper() + said[1:],
        other=other_groups(shown.min_cell),
    )
    return [
        html.Strong(_("Publishable figures.") + " "),
        rules,
        html.Span(period, className="period"),
    ]


def register_figures_note(app: dash.Dash, page: str) -> None:
    """The callback writing the page's figures note and turning the period picker into a
    month picker when the figures are protected."""

    @app.callback(
        Output(f"{page}-figures", "children"),
        Output(f"{page}-period-filter", "display_format"),
        publishable_input(page),
        Input(f"{page}-period-filter", "start_date"),
        Input(f"{page}-period-filter", "end_date"),
    )
    @guarded(Capability.AGGREGATES)
    def note(user: User, switch: Any, start: Any, end: Any) -> tuple[Any, str]:
        period = state_from_values([None, start, end, None, None, None, None, None])
        shown = data.shown(
            user, Filters(date_from=period.date_from, date_to=period.date_to), switch
        )
        return figures_note(shown), MONTH_FORMAT if shown.protected else DAY_FORMAT

    register_exclusion_note(app, page)
    register_period_presets(app, page)


def exclusion_note(user: User, switch: Any, values: Sequence[Any]) -> list[Any]:
    """What leaving out the flagged enumerators changes, as the page's figures show it
    (nothing when the switch is off)."""
    state, filters, version = view(user, values)
    if not state.exclude_flagged or version is None:
        return []
    shown = data.shown(user, filters, switch)
    answer = data.services().analytics.enumerator_exclusion(
        shown.filters, version, protected=shown.protected
    )
    return [html.Strong(_("Flagged enumerators left out.") + " "), answer["summary"]]


def register_exclusion_note(app: dash.Dash, page: str) -> None:
    """The callback writing :func:`exclusion_note` under the page's filters."""

    @app.callback(
        Output(f"{page}-exclusion", "children"),
        publishable_input(page),
        *(Input(f"{page}-{name}-filter", prop) for name, prop in CONTROLS),
    )
    @guarded(Capability.AGGREGATES)
    def note(user: User, switch: Any, *values: Any) -> list[Any]:
        return exclusion_note(user, switch, values)


# -- what a chart's downloads and PNG say about where they come from ------------------------


def export_context(
    shown: data.Shown, version: str | None, choices: Sequence[tuple[str, str]] = ()
) -> downloads.ExportContext:
    """The context of figures the page showed: the filters as applied (within the user's
    countries, dates as the figures used them), the page's choices, the index version."""
    return downloads.context(shown.filters, version, protected=shown.protected, choices=choices)


def stamped(fig: go.Figure, shown: data.Shown, version: str | None) -> go.Figure:
    """``fig`` naming its filters and the day under its title, so its PNG does too."""
    return stamp(fig, downloads.stamp_text(export_context(shown, version)))


Export = tuple[pd.DataFrame, downloads.ExportContext, str, str]
"""What a chart's download holds: the frame, its context, the file's stem and the chart's
title (for the read me)."""


def register_downloads(
    app: dash.Dash,
    page: str,
    name: str,
    states: Sequence[State],
    build: Callable[..., Export | None],
    *capabilities: Capability,
) -> None:
    """The CSV and Excel downloads of the chart ``{page}-{name}``: ``build(user, *states)``
    loads the frame through the page's own data access (so the same rules apply) and says its
    context; None when there is nothing to download."""
    needed = capabilities or (Capability.AGGREGATES,)
    for kind in ("csv", "xlsx"):
        _register_download(app, page, name, kind, states, build, needed)


def _register_download(
    app: dash.Dash,
    page: str,
    name: str,
    kind: str,
    states: Sequence[State],
    build: Callable[..., Export | None],
    needed: tuple[Capability, ...],
) -> None:
    @app.callback(
        Output(f"{page}-{name}-{kind}", "data"),
        Input(f"{page}-{name}-{kind}-button", "n_clicks"),
        *states,
        prevent_initial_call=True,
    )
    @guarded(*needed)
    def download(user: User, clicks: int, *values: Any) -> dict[str, Any]:
        if not clicks:
            raise PreventUpdate
        built = build(user, *values)
        if built is None:
            raise PreventUpdate
        frame, ctx, stem, title = built
        if kind == "csv":
            return downloads.csv_download(frame, ctx, f"{stem}.csv")
        return downloads.xlsx_download(frame, ctx, f"{stem}.xlsx", title)
