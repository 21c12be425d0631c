"""Overview: returnees, surveys, mean scores with 95% intervals, share sustainable, the
distribution of the composite, the level bands, unscored records."""

from __future__ import annotations

from typing import Any

import dash
from dash import Output, html

from dashboards import data
from dashboards.access import guarded, page_layout
from dashboards.components import figure_card, headline, stage_sentence, url_sync
from dashboards.figures.common import empty_figure, suppressed_label
from dashboards.figures.overview import histogram_figure, levels_figure, means_figure
from dashboards.filters import encode_query, filter_inputs
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
from reintegration.i18n import _, format_decimal, format_integer, format_percent
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


def _notes() -> dict[str, str]:
    return {
        "means": _(
            "Each bar is the average score from 0 (worst) to 1 (best); the thin line is its 95% "
            "interval, where the true average most likely lies."
        ),
        "histogram": _(
            "How many returnees have each composite score; the dashed lines mark where the "
            "medium and high levels start."
        ),
        "levels": _(
            "The share of returnees whose composite score is low, medium or high; the three "
            "add up to 100%."
        ),
    }


def _titles() -> dict[str, str]:
    return {
        "means": _("Mean scores, with 95% intervals"),
        "histogram": _("Distribution of the composite score"),
        "levels": _("Returnees by level band"),
    }


@page_layout(__name__)
def layout(user: User, **query: str) -> html.Div:
    notes = _notes()
    return aggregate_layout(
        PAGE,
        title=_("Overview"),
        intro=_(
            "How sustainable is reintegration? Each returnee counts once, at their latest "
            "scored survey in the selected period."
        ),
        user=user,
        query=query,
        body=[
            html.Div(id=f"{PAGE}-headlines", className="headlines"),
            html.Div(
                className="cards",
                children=[figure_card(PAGE, f, note=notes[f], excel=True) for f in FIGURES],
            ),
        ],
    )


def _number(value: Any, *, min_cell: int) -> str:
    return suppressed_label(min_cell) if value is None else format_integer(value)


def _headlines(summary: dict[str, Any], min_cell: int) -> list[html.Div]:
    composite = summary["means"]["composite"]
    if summary["returnees"] == 0:
        mean, interval = _("none"), _("no scored returnee matches these filters")
    elif composite["mean"] is None:
        mean, interval = suppressed_label(min_cell), _("returnees: too few to show")
    else:
        mean = format_decimal(composite["mean"])
        interval = _(
            "95% interval {low} to {high}",
            low=format_decimal(composite["low"]),
            high=format_decimal(composite["high"]),
        )
    share = summary["share_sustainable"]
    share_text = suppressed_label(min_cell) if share is None else format_percent(share)
    if summary["returnees"] == 0:
        share_text = _("none")
    bounds = summary.get("share_intervals", {}).get("sustainable", {})
    share_note = _("composite ≥ 0.66, no dimension below 0.33")
    if share is not None and bounds.get("low") is not None:
        share_note = _(
            "95% interval {low} to {high}; {rule}",
            low=format_percent(bounds["low"]),
            high=format_percent(bounds["high"]),
            rule=share_note,
        )
    return [
        headline(
            _("Returnees"),
            _number(summary["returnees"], min_cell=min_cell),
            _("scored, distinct"),
            element_id=f"{PAGE}-returnees",
        ),
        headline(
            _("Surveys"),
            _number(summary["surveys"], min_cell=min_cell),
            _("interviews in the period"),
        ),
        headline(_("Mean composite"), mean, interval),
        headline(_("Sustainable"), share_text, share_note),
        headline(
            _("Unscored"),
            _number(summary["unscored"], min_cell=min_cell),
            _("returnees with too few answers"),
        ),
        html.P(stage_sentence(summary.get("stages")), className="note", id=f"{PAGE}-stages"),
    ]


def _figures(summary: dict[str, Any], version: str, shown: data.Shown) -> list[Any]:
    frames = data.overview_frames(summary)
    index = load_questionnaire().index
    min_cell, protected = shown.min_cell, shown.protected
    figures = [
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
    return [stamped(fig, shown, version) for fig in figures]


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
        register_downloads(
            app, PAGE, name, [publishable_state(PAGE), *filter_states(PAGE)], _export(name)
        )


def _export(name: str) -> Any:
    def build(user: User, switch: Any, *values: Any) -> Export | None:
        _state, filters, version = view(user, values)
        if version is None:
            return None
        summary, shown = data.overview(user, filters, version, switch=switch)
        frame = data.labelled(data.overview_frames(summary)[name], shown)
        ctx = export_context(shown, version)
        return frame, ctx, f"overview-{name}-{version}", _titles()[name]

    return build
