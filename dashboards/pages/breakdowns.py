"""Breakdowns: every score by sex, child or adult, forced or voluntary return, their
intersections, and by country; each bar with n and its 95% interval, small cells suppressed."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, html
from dash.exceptions import PreventUpdate

from dashboards import data
from dashboards.access import guarded, page_layout
from dashboards.components import figure_card, url_sync
from dashboards.controls import (
    SCORES,
    group_picker,
    groups_value,
    parse_choice,
    parse_groups,
    score_picker,
)
from dashboards.figures.breakdowns import breakdown_figure, breakdown_table
from dashboards.figures.common import empty_figure
from dashboards.filters import encode_query, filter_inputs
from dashboards.labels import value_labels
from dashboards.scaffold import (
    aggregate_layout,
    filter_states,
    no_scores,
    publishable_input,
    publishable_query,
    publishable_state,
    register_figures_note,
    view,
)
from reintegration.roles import Capability
from reintegration.users import User

dash.register_page(
    __name__,
    path="/breakdowns",
    name="Breakdowns",
    title="Breakdowns · Reintegration",
    order=2,
    capability=Capability.AGGREGATES,
)

PAGE = "breakdowns"
GROUPS = ("sex", "age_group", "return_type", "country", "round")
DEFAULT_GROUPS = ("sex", "age_group", "return_type")
MOST = 3


@page_layout(__name__)
def layout(user: User, **query: str) -> html.Div:
    problems: list[str] = []
    by = parse_groups(query, GROUPS, DEFAULT_GROUPS, problems, most=MOST)
    score = parse_choice(query, "score", SCORES, "composite", problems)
    return aggregate_layout(
        PAGE,
        title="Breakdowns",
        intro="For whom is reintegration not sustainable? Choose one grouping, or several for "
        "their intersections (for example forced female child returnees). Each bar shows its n "
        "and 95% interval; a group of fewer returnees than the privacy threshold is suppressed "
        "and marked, never shown as zero.",
        user=user,
        query=query,
        problems=problems,
        controls=[
            group_picker(f"{PAGE}-by-control", GROUPS, by, most=MOST),
            score_picker(f"{PAGE}-score-control", score),
        ],
        body=[
            html.Div(
                className="cards",
                children=[
                    figure_card(PAGE, "groups", wide=True),
                    figure_card(PAGE, "country", wide=True),
                ],
            )
        ],
    )


def _frames(user: User, values: tuple[Any, ...]) -> tuple[Any, ...]:
    by_value, score, switch, *filters_values = values
    by = groups_value(by_value, GROUPS, most=MOST)
    state, filters, version = view(user, filters_values)
    return state, by, score if score in SCORES else "composite", switch, filters, version


def register_callbacks(app: dash.Dash) -> None:
    url_sync(app, PAGE)
    register_figures_note(app, PAGE)

    @app.callback(
        Output(f"{PAGE}-groups-graph", "figure"),
        Output(f"{PAGE}-country-graph", "figure"),
        Output(f"{PAGE}-query", "data"),
        Input(f"{PAGE}-by-control", "value"),
        Input(f"{PAGE}-score-control", "value"),
        publishable_input(PAGE),
        *filter_inputs(PAGE),
    )
    @guarded(Capability.AGGREGATES)
    def update(user: User, *values: Any) -> tuple[Any, ...]:
        state, by, score, switch, filters, version = _frames(user, values)
        query = encode_query(
            state, {"by": ",".join(by) or None, "score": score, **publishable_query(switch)}
        )
        if version is None:
            empty = empty_figure(no_scores(), "none")
            return empty, empty, query
        labels = value_labels()
        figures = []
        for groups in (by, ["country"]):
            frame, shown = data.aggregates(user, groups, filters, version, switch=switch)
            figures.append(
                breakdown_figure(
                    frame,
                    by=groups,
                    figure=score,
                    index_version=version,
                    min_cell=shown.min_cell,
                    labels=labels,
                    protected=shown.protected,
                )
            )
        return (*figures, query)

    for name in ("groups", "country"):
        _register_download(app, name)


def _register_download(app: dash.Dash, name: str) -> None:
    @app.callback(
        Output(f"{PAGE}-{name}-csv", "data"),
        Input(f"{PAGE}-{name}-csv-button", "n_clicks"),
        dash.State(f"{PAGE}-by-control", "value"),
        dash.State(f"{PAGE}-score-control", "value"),
        publishable_state(PAGE),
        *filter_states(PAGE),
        prevent_initial_call=True,
    )
    @guarded(Capability.AGGREGATES)
    def download(user: User, clicks: int, *values: Any) -> dict[str, Any]:
        _, by, _, switch, filters, version = _frames(user, values)
        if not clicks or version is None:
            raise PreventUpdate
        groups = by if name == "groups" else ["country"]
        frame, shown = data.aggregates(user, groups, filters, version, switch=switch)
        frame = breakdown_table(data.labelled(frame, shown), groups).assign(index_version=version)
        label = "-".join(groups) or "all"
        return data.csv_download(frame, f"breakdown-{label}-{version}.csv")
