"""Trajectories: mean scores by survey round (the default), by months since return (bands
aligned with the follow-up schedule) or by cohort (quarter of return, compared band by band),
for each group, optionally following the same returnees at every point; and the retention of
the round-1 returnees at each round."""

from __future__ import annotations

from typing import Any

import dash
import pandas as pd
from dash import Input, Output, State, dcc, html

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
from dashboards.figures.trajectories import retention_figure, trajectory_figure
from dashboards.filters import encode_query, filter_inputs
from dashboards.labels import value_labels
from dashboards.scaffold import (
    Export,
    aggregate_layout,
    export_context,
    filter_states,
    no_scores,
    publishable_query,
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
    path="/trajectories",
    name="Trajectories",
    title="Trajectories · Reintegration",
    order=3,
    capability=Capability.AGGREGATES,
)

PAGE = "trajectories"
GROUPS = ("sex", "age_group", "return_type", "country")
AXES = ("round", "months", "cohort")
MOST = 2


@page_layout(__name__)
def layout(user: User, **query: str) -> html.Div:
    problems: list[str] = []
    # One line by default (every returnee): groups are there for whoever asks.
    by = parse_groups(query, GROUPS, (), problems, most=MOST)
    score = parse_choice(query, "score", SCORES, "composite", problems)
    axis = parse_choice(query, "axis", AXES, "round", problems)
    follow = parse_choice(query, "follow", ("0", "1"), "0", problems) == "1"
    return aggregate_layout(
        PAGE,
        title=_("Trajectories"),
        intro=_(
            "Does reintegration become more sustainable with time? Means by survey round, by "
            "months since return (within 4 months, over 4 and under 9, 9 or more: bands "
            "centred on the follow-up rounds) or by quarter of return compared at the same "
            "months since return, per group. By default each point shows the returnees "
            "surveyed at it, and fewer are reached at each round (see the retention below); "
            "following the same returnees keeps only those scored at every point shown, so "
            "each point has the same people and a change is a change in them."
        ),
        user=user,
        query=query,
        problems=problems,
        controls=[
            group_picker(f"{PAGE}-by-control", GROUPS, by, most=MOST),
            score_picker(f"{PAGE}-score-control", score),
            html.Div(
                className="filter",
                children=[
                    html.Label(_("Time axis"), htmlFor=f"{PAGE}-axis-control"),
                    dcc.RadioItems(
                        id=f"{PAGE}-axis-control",
                        options=[
                            {"label": _("Survey round"), "value": "round"},
                            {"label": _("Months since return"), "value": "months"},
                            {
                                "label": _("Quarter of return, by months since return"),
                                "value": "cohort",
                            },
                        ],
                        value=axis,
                        inline=True,
                    ),
                ],
            ),
            dcc.Checklist(
                id=f"{PAGE}-follow-control",
                options=[
                    {
                        "label": _("Follow the same returnees (only those seen at every point)"),
                        "value": "follow",
                    }
                ],
                value=["follow"] if follow else [],
                className="filter",
            ),
        ],
        body=[
            html.Div(
                className="cards",
                children=[
                    figure_card(
                        PAGE,
                        "lines",
                        wide=True,
                        excel=True,
                        note=_(
                            "Each point is the mean score of the returnees at that time, with "
                            "its n; a line going up means reintegration improving. A gap is a "
                            "group too small to show."
                        ),
                    ),
                    figure_card(
                        PAGE,
                        "retention",
                        wide=True,
                        excel=True,
                        note=_(
                            "How many of the returnees surveyed in round 1 were surveyed again "
                            "at each later round."
                        ),
                    ),
                ],
            )
        ],
    )


def _view(user: User, values: tuple[Any, ...]) -> tuple[Any, ...]:
    by_value, score, axis, follow, switch, *filter_values = values
    state, filters, version = view(user, filter_values)
    return (
        state,
        groups_value(by_value, GROUPS, most=MOST),
        score if score in SCORES else "composite",
        axis if axis in AXES else "round",
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
        Output(f"{PAGE}-retention-graph", "figure"),
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
            return empty_figure(no_scores(), "none"), empty_figure(no_scores(), "none"), query
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
        rows, kept = data.retention(user, filters, version, switch=switch)
        retained = retention_figure(rows, min_cell=kept.min_cell, protected=kept.protected)
        return stamped(figure, shown, version), stamped(retained, kept, version), query

    states = [
        *(State(f"{PAGE}-{c}", p) for c, p in zip(CONTROLS, CONTROL_PROPS, strict=True)),
        *filter_states(PAGE),
    ]
    register_downloads(app, PAGE, "lines", states, _lines_export)
    register_downloads(app, PAGE, "retention", states, _retention_export)


def _lines_export(user: User, *values: Any) -> Export | None:
    _state, by, score, axis, follow, switch, filters, version = _view(user, values)
    if version is None:
        return None
    frame, shown = data.trajectories(
        user, by, filters, version, axis=axis, follow=follow, switch=switch
    )
    ctx = export_context(
        shown, version, [("axis", axis), ("by", ",".join(by)), ("follow", "1" if follow else "")]
    )
    title = _("Scores over time ({axis})", axis=axis)
    stem = f"trajectories-{axis}-{'-'.join(by) or 'all'}-{version}"
    return data.labelled(frame, shown).assign(followed=follow), ctx, stem, title


def _retention_export(user: User, *values: Any) -> Export | None:
    _state, _by, _score, _axis, _follow, switch, filters, version = _view(user, values)
    if version is None:
        return None
    rows, shown = data.retention(user, filters, version, switch=switch)
    frame = pd.DataFrame(rows, columns=["round", "returnees", "percent_of_round_1", "suppressed"])
    title = _("Retention: round-1 returnees surveyed at each round")
    ctx = export_context(shown, version)
    return data.labelled(frame, shown), ctx, f"retention-{version}", title
