"""Breakdowns: every score by sex, child or adult, forced or voluntary return, their
intersections, and by country; each bar with n and its 95% interval, small cells suppressed."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, html

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
from dashboards.figures.breakdowns import breakdown_figure, breakdown_table, breakdown_title
from dashboards.figures.common import empty_figure
from dashboards.filters import encode_query, filter_inputs
from dashboards.labels import value_labels
from dashboards.scaffold import (
    Export,
    aggregate_layout,
    export_context,
    filter_states,
    no_scores,
    publishable_input,
    publishable_query,
    publishable_state,
    register_downloads,
    register_figures_note,
    stamped,
    view,
)
from reintegration.i18n import _
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
# One grouping by default: intersections are there for whoever asks, not the first view.
DEFAULT_GROUPS = ("sex",)
MOST = 3


@page_layout(__name__)
def layout(user: User, **query: str) -> html.Div:
    problems: list[str] = []
    by = parse_groups(query, GROUPS, DEFAULT_GROUPS, problems, most=MOST)
    score = parse_choice(query, "score", SCORES, "composite", problems)
    note = _(
        "Each bar is a group's score (from 0 to 1, or the share of returnees whose "
        "reintegration is sustainable), printed on the bar; n is the number of returnees in the "
        "group, and the thin line the 95% interval. The dashed line is everyone together."
    )
    return aggregate_layout(
        PAGE,
        title=_("Breakdowns"),
        intro=_(
            "For whom is reintegration not sustainable? Choose one grouping, or several for "
            "their intersections (for example forced female child returnees). Each bar shows "
            "its n and 95% interval; a group of fewer returnees than the privacy threshold is "
            "suppressed and marked, never shown as zero."
        ),
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
                    figure_card(PAGE, "groups", wide=True, note=note, excel=True),
                    figure_card(PAGE, "country", wide=True, note=note, excel=True),
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
            figure = breakdown_figure(
                frame,
                by=groups,
                figure=score,
                index_version=version,
                min_cell=shown.min_cell,
                labels=labels,
                protected=shown.protected,
            )
            figures.append(stamped(figure, shown, version))
        return (*figures, query)

    states = [
        dash.State(f"{PAGE}-by-control", "value"),
        dash.State(f"{PAGE}-score-control", "value"),
        publishable_state(PAGE),
        *filter_states(PAGE),
    ]
    for name in ("groups", "country"):
        register_downloads(app, PAGE, name, states, _export(name))


def _export(name: str) -> Any:
    def build(user: User, *values: Any) -> Export | None:
        _state, by, score, switch, filters, version = _frames(user, values)
        if version is None:
            return None
        groups = by if name == "groups" else ["country"]
        frame, shown = data.aggregates(user, groups, filters, version, switch=switch)
        frame = breakdown_table(data.labelled(frame, shown), groups)
        ctx = export_context(shown, version, [("by", ",".join(groups) or "none")])
        label = "-".join(groups) or "all"
        return frame, ctx, f"breakdown-{label}-{version}", breakdown_title(score, groups)

    return build
