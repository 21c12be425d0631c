"""Overview: returnees, surveys, mean scores with 95% intervals, share sustainable, the
distribution of the composite, the level bands, unscored records."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, html
from dash.exceptions import PreventUpdate

from dashboards import data
from dashboards.access import guarded, page_layout
from dashboards.components import figure_card, headline, stage_sentence, url_sync
from dashboards.figures.common import empty_figure, suppressed_label
from dashboards.figures.overview import histogram_figure, levels_figure, means_figure
from dashboards.filters import encode_query, filter_inputs
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
from reintegration.questionnaire import load_questionnaire
from reintegration.roles import Capability
from reintegration.users import User

dash.register_page(
    __name__,
    path="/overview",
    name="Overview",
    title="Overview · Reintegration",
    order=1,
    capability=Capability.AGGREGATES,
)

PAGE = "overview"
FIGURES = ("means", "histogram", "levels")


@page_layout(__name__)
def layout(user: User, **query: str) -> html.Div:
    return aggregate_layout(
        PAGE,
        title="Overview",
        intro="How sustainable is reintegration? Each returnee counts once, at their latest "
        "scored survey in the selected period.",
        user=user,
        query=query,
        body=[
            html.Div(id=f"{PAGE}-headlines", className="headlines"),
            html.Div(className="cards", children=[figure_card(PAGE, f) for f in FIGURES]),
        ],
    )


def _number(value: Any, *, min_cell: int) -> str:
    return suppressed_label(min_cell) if value is None else f"{int(value):,}"


def _headlines(summary: dict[str, Any], min_cell: int) -> list[html.Div]:
    composite = summary["means"]["composite"]
    if summary["returnees"] == 0:
        mean, interval = "none", "no scored returnee matches these filters"
    elif composite["mean"] is None:
        mean, interval = suppressed_label(min_cell), "returnees: too few to show"
    else:
        mean = f"{composite['mean']:.2f}"
        interval = f"95% interval {composite['low']:.2f} to {composite['high']:.2f}"
    share = summary["share_sustainable"]
    share_text = suppressed_label(min_cell) if share is None else f"{share:.0%}"
    if summary["returnees"] == 0:
        share_text = "none"
    bounds = summary.get("share_intervals", {}).get("sustainable", {})
    share_note = "composite ≥ 0.66, no dimension below 0.33"
    if share is not None and bounds.get("low") is not None:
        share_note = f"95% interval {bounds['low']:.0%} to {bounds['high']:.0%}; {share_note}"
    return [
        headline(
            "Returnees",
            _number(summary["returnees"], min_cell=min_cell),
            "scored, distinct",
            element_id=f"{PAGE}-returnees",
        ),
        headline(
            "Surveys", _number(summary["surveys"], min_cell=min_cell), "interviews in the period"
        ),
        headline("Mean composite", mean, interval),
        headline("Sustainable", share_text, share_note),
        headline(
            "Unscored",
            _number(summary["unscored"], min_cell=min_cell),
            "returnees with too few answers",
        ),
        html.P(stage_sentence(summary.get("stages")), className="note", id=f"{PAGE}-stages"),
    ]


def _figures(summary: dict[str, Any], version: str, shown: data.Shown) -> list[Any]:
    frames = data.overview_frames(summary)
    index = load_questionnaire().index
    min_cell, protected = shown.min_cell, shown.protected
    return [
        means_figure(
            frames["means"], index_version=version, n=summary["returnees"], protected=protected
        ),
        histogram_figure(
            frames["histogram"],
            index_version=version,
            min_cell=min_cell,
            thresholds=(index.medium_from, index.high_from),
            protected=protected,
        ),
        levels_figure(
            frames["levels"],
            index_version=version,
            min_cell=min_cell,
            n=summary["returnees"],
            protected=protected,
        ),
    ]


def register_callbacks(app: dash.Dash) -> None:
    url_sync(app, PAGE)
    register_figures_note(app, PAGE)

    @app.callback(
        Output(f"{PAGE}-headlines", "children"),
        *(Output(f"{PAGE}-{f}-graph", "figure") for f in FIGURES),
        Output(f"{PAGE}-query", "data"),
        inputs=[publishable_input(PAGE), *filter_inputs(PAGE)],
    )
    @guarded(Capability.AGGREGATES)
    def update(user: User, switch: Any, *values: Any) -> tuple[Any, ...]:
        state, filters, version = view(user, values)
        query = encode_query(state, publishable_query(switch))
        if version is None:
            empty = empty_figure(no_scores(), "none")
            return [html.P(no_scores())], empty, empty, empty, query
        summary, shown = data.overview(user, filters, version, switch=switch)
        return (
            _headlines(summary, shown.min_cell),
            *_figures(summary, version, shown),
            query,
        )

    for name in FIGURES:
        _register_download(app, name)


def _register_download(app: dash.Dash, name: str) -> None:
    @app.callback(
        Output(f"{PAGE}-{name}-csv", "data"),
        Input(f"{PAGE}-{name}-csv-button", "n_clicks"),
        publishable_state(PAGE),
        *filter_states(PAGE),
        prevent_initial_call=True,
    )
    @guarded(Capability.AGGREGATES)
    def download(user: User, clicks: int, switch: Any, *values: Any) -> dict[str, Any]:
        _, filters, version = view(user, values)
        if not clicks or version is None:
            raise PreventUpdate
        summary, shown = data.overview(user, filters, version, switch=switch)
        frame = data.labelled(data.overview_frames(summary)[name], shown)
        return data.csv_download(
            frame.assign(index_version=version), f"overview-{name}-{version}.csv"
        )
