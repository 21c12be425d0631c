"""Assistance: outcomes by type of assistance received, with n; each type's gap against no
assistance, raw and adjusted for who receives it; and the note that this is association, not
effect."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, html

from dashboards import data
from dashboards.access import guarded, page_layout
from dashboards.auth import services
from dashboards.components import figure_card, url_sync
from dashboards.controls import SCORES, parse_choice, score_picker
from dashboards.figures.assistance import (
    assistance_figure,
    association_note,
    gaps_figure,
    gaps_table,
)
from dashboards.figures.common import empty_figure, figure_name
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
    path="/assistance",
    name="Assistance",
    title="Assistance · Reintegration",
    order=4,
    capability=Capability.AGGREGATES,
)

PAGE = "assistance"


@page_layout(__name__)
def layout(user: User, **query: str) -> html.Div:
    problems: list[str] = []
    score = parse_choice(query, "score", SCORES, "composite", problems)
    return aggregate_layout(
        PAGE,
        title=_("Assistance"),
        intro=_(
            "Outcomes of returnees by the assistance they received since return. A returnee "
            "who received several types counts under each. The second chart sets each type "
            "against the returnees who received none: the raw gap beside the gap adjusted for "
            "sex, age group, return type, country and months since return."
        ),
        user=user,
        query=query,
        problems=problems,
        controls=[score_picker(f"{PAGE}-score-control", score)],
        body=[
            html.P(
                association_note(),
                className="notice notice-warning",
                id=f"{PAGE}-association-note",
            ),
            html.Div(
                className="cards",
                children=[
                    figure_card(
                        PAGE,
                        "types",
                        wide=True,
                        excel=True,
                        note=_(
                            "Each bar is the score of the returnees who received that type of "
                            "assistance, printed on the bar, with n beside the type."
                        ),
                    ),
                    figure_card(
                        PAGE,
                        "gaps",
                        wide=True,
                        excel=True,
                        note=_(
                            "A point right of the dotted line: returnees with that assistance "
                            "score higher than those with none; left: lower. If the thin line "
                            "crosses the dotted line, the gap may be chance."
                        ),
                    ),
                ],
            ),
        ],
    )


def register_callbacks(app: dash.Dash) -> None:
    url_sync(app, PAGE)
    register_figures_note(app, PAGE)

    @app.callback(
        Output(f"{PAGE}-types-graph", "figure"),
        Output(f"{PAGE}-query", "data"),
        Input(f"{PAGE}-score-control", "value"),
        publishable_input(PAGE),
        *filter_inputs(PAGE),
    )
    @guarded(Capability.AGGREGATES)
    def update(user: User, score: str, switch: Any, *values: Any) -> tuple[Any, ...]:
        state, filters, version = view(user, values)
        score = score if score in SCORES else "composite"
        query = encode_query(state, {"score": score, **publishable_query(switch)})
        if version is None:
            return empty_figure(no_scores(), "none"), query
        frame, shown = data.assistance(user, filters, version, switch=switch)
        figure = assistance_figure(
            frame,
            figure=score,
            index_version=version,
            min_cell=shown.min_cell,
            labels=value_labels(),
            protected=shown.protected,
        )
        return stamped(figure, shown, version), query

    @app.callback(
        Output(f"{PAGE}-gaps-graph", "figure"),
        Input(f"{PAGE}-score-control", "value"),
        publishable_input(PAGE),
        *filter_inputs(PAGE),
    )
    @guarded(Capability.AGGREGATES)
    def update_gaps(user: User, score: str, switch: Any, *values: Any) -> Any:
        _state, filters, version = view(user, values)
        score = score if score in SCORES else "composite"
        if version is None:
            return empty_figure(no_scores(), "none")
        frame, shown = _gaps(user, filters, version, score, switch)
        figure = gaps_figure(
            frame,
            figure=score,
            index_version=version,
            min_cell=shown.min_cell,
            labels=value_labels(),
            protected=shown.protected,
        )
        return stamped(figure, shown, version)

    states = [
        State(f"{PAGE}-score-control", "value"),
        publishable_state(PAGE),
        *filter_states(PAGE),
    ]
    register_downloads(app, PAGE, "types", states, _types_export)
    register_downloads(app, PAGE, "gaps", states, _gaps_export)


def _types_export(user: User, score: Any, switch: Any, *values: Any) -> Export | None:
    _state, filters, version = view(user, values)
    if version is None:
        return None
    frame, shown = data.assistance(user, filters, version, switch=switch)
    title = _("Scores by assistance received")
    ctx = export_context(shown, version)
    return data.labelled(frame, shown), ctx, f"assistance-{version}", title


def _gaps_export(user: User, score: Any, switch: Any, *values: Any) -> Export | None:
    _state, filters, version = view(user, values)
    if version is None:
        return None
    score = score if score in SCORES else "composite"
    frame, shown = _gaps(user, filters, version, score, switch)
    frame = data.labelled(gaps_table(frame, figure=score), shown)
    title = _("{figure}: gap against no assistance, raw and adjusted", figure=figure_name(score))
    ctx = export_context(shown, version, [("score", score)])
    return frame, ctx, f"assistance-gaps-{score}-{version}", title


def _gaps(
    user: User, filters: Any, version: str, score: str, switch: Any
) -> tuple[Any, data.Shown]:
    """Each type against none, as :func:`dashboards.data.shown` says ``user`` may see it."""
    shown = data.shown(user, filters, switch)
    figure = "sustainable" if score == "share_sustainable" else score
    frame = services().analytics.assistance_associations(
        shown.filters, version, figure=figure, protected=shown.protected
    )
    return frame, shown
