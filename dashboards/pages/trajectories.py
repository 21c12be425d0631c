"""Trajectories: mean scores by months since return for each group, or by cohort (quarter of
return), optionally following the same returnees across rounds."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dcc, html
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
from dashboards.figures.common import empty_figure
from dashboards.figures.trajectories import trajectory_figure
from dashboards.filters import encode_query, filter_inputs
from dashboards.labels import value_labels
from dashboards.scaffold import (
    aggregate_layout,
    filter_states,
    no_scores,
    publishable_query,
    register_figures_note,
    view,
)
from reintegration.roles import Capability
from reintegration.users import User

dash.register_page(
    __name__,
    path="/trajectories",
    name="Trajectories",
    title="Trajectories · Reintegration",
    order=3,
    capability=Capability.AGGREGATES,
)

PAGE = "trajectories"
GROUPS = ("sex", "age_group", "return_type", "country")
AXES = ("months", "cohort")
MOST = 2


@page_layout(__name__)
def layout(user: User, **query: str) -> html.Div:
    problems: list[str] = []
    by = parse_groups(query, GROUPS, ("sex",), problems, most=MOST)
    score = parse_choice(query, "score", SCORES, "composite", problems)
    axis = parse_choice(query, "axis", AXES, "months", problems)
    follow = parse_choice(query, "follow", ("0", "1"), "0", problems) == "1"
    return aggregate_layout(
        PAGE,
        title="Trajectories",
        intro="Does reintegration become more sustainable with time? Means by months since "
        "return (or by quarter of return), per group. By default each band shows the returnees "
        "surveyed in it; following the same returnees keeps only those surveyed in every round, "
        "so a change is a change in the same people.",
        user=user,
        query=query,
        problems=problems,
        controls=[
            group_picker(f"{PAGE}-by-control", GROUPS, by, most=MOST),
            score_picker(f"{PAGE}-score-control", score),
            html.Div(
                className="filter",
                children=[
                    html.Label("Time axis", htmlFor=f"{PAGE}-axis-control"),
                    dcc.RadioItems(
                        id=f"{PAGE}-axis-control",
                        options=[
                            {"label": "Months since return", "value": "months"},
                            {"label": "Quarter of return", "value": "cohort"},
                        ],
                        value=axis,
                        inline=True,
                    ),
                ],
            ),
            dcc.Checklist(
                id=f"{PAGE}-follow-control",
                options=[{"label": "Follow the same returnees across rounds", "value": "follow"}],
                value=["follow"] if follow else [],
                className="filter",
            ),
        ],
        body=[html.Div(className="cards", children=[figure_card(PAGE, "lines", wide=True)])],
    )


def _view(user: User, values: tuple[Any, ...]) -> tuple[Any, ...]:
    by_value, score, axis, follow, switch, *filter_values = values
    state, filters, version = view(user, filter_values)
    return (
        state,
        groups_value(by_value, GROUPS, most=MOST),
        score if score in SCORES else "composite",
        axis if axis in AXES else "months",
        bool(follow),
        switch,
        filters,
        version,
    )


CONTROLS = ("by-control", "score-control", "axis-control", "follow-control", "publishable")
CONTROL_PROPS = ("value", "value", "value", "value", "value")


def register_callbacks(app: dash.Dash) -> None:
    url_sync(app, PAGE)
    register_figures_note(app, PAGE)

    @app.callback(
        Output(f"{PAGE}-lines-graph", "figure"),
        Output(f"{PAGE}-query", "data"),
        *(Input(f"{PAGE}-{c}", p) for c, p in zip(CONTROLS, CONTROL_PROPS, strict=True)),
        *filter_inputs(PAGE),
    )
    @guarded(Capability.AGGREGATES)
    def update(user: User, *values: Any) -> tuple[Any, ...]:
        state, by, score, axis, follow, switch, filters, version = _view(user, values)
        query = encode_query(
            state,
            {
                "by": ",".join(by) or None,
                "score": score,
                "axis": axis,
                "follow": "1" if follow else None,
                **publishable_query(switch),
            },
        )
        if version is None:
            return empty_figure(no_scores(), "none"), query
        frame, shown = data.trajectories(
            user, by, filters, version, axis=axis, follow=follow, switch=switch
        )
        figure = trajectory_figure(
            frame,
            axis=axis,
            by=by,
            figure=score,
            index_version=version,
            min_cell=shown.min_cell,
            follow=follow,
            labels=value_labels(),
            protected=shown.protected,
        )
        return figure, query

    @app.callback(
        Output(f"{PAGE}-lines-csv", "data"),
        Input(f"{PAGE}-lines-csv-button", "n_clicks"),
        *(State(f"{PAGE}-{c}", p) for c, p in zip(CONTROLS, CONTROL_PROPS, strict=True)),
        *filter_states(PAGE),
        prevent_initial_call=True,
    )
    @guarded(Capability.AGGREGATES)
    def download(user: User, clicks: int, *values: Any) -> dict[str, Any]:
        _, by, _, axis, follow, switch, filters, version = _view(user, values)
        if not clicks or version is None:
            raise PreventUpdate
        frame, shown = data.trajectories(
            user, by, filters, version, axis=axis, follow=follow, switch=switch
        )
        return data.csv_download(
            data.labelled(frame, shown).assign(index_version=version, followed=follow),
            f"trajectories-{axis}-{'-'.join(by) or 'all'}-{version}.csv",
        )
