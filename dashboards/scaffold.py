"""What the aggregate pages (overview, breakdowns, trajectories, assistance) share: the page frame
with its filter bar, and turning the controls' values into the view to load."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dash import State, html

from dashboards import data
from dashboards.components import query_store
from dashboards.filters import (
    CONTROLS,
    FilterState,
    filter_bar,
    parse_query,
    problems_note,
    scoped,
    state_from_values,
)
from reintegration.analytics import Filters
from reintegration.users import User


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
    options = data.filter_options(user, state.index_version)
    scope = (
        html.P(
            f"Your access covers {', '.join(sorted(user.countries))} only.",
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
            html.P(intro, className="intro"),
            scope,
            filter_bar(page, state, options),
            html.Div(list(controls), className="page-controls") if controls else None,
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
    return "No scores are stored yet: upload a batch first."
