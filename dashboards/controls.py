"""Page-specific controls whose values also live in the URL: the grouping, the score shown, the
time axis, and whether to follow the same returnees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dash import dcc, html

from dashboards.figures.common import figure_name, group_name
from reintegration.analytics import FIGURES
from reintegration.i18n import _

SCORES = (*FIGURES[::-1], "share_sustainable")  # composite first
MAX_GROUPS = 3


def parse_choice(
    query: Mapping[str, Any], name: str, allowed: Sequence[str], default: str, problems: list[str]
) -> str:
    """One value of ``allowed`` from the query (``default`` when absent or unknown)."""
    value = str(query.get(name) or "")
    if not value:
        return default
    if value not in allowed:
        problems.append(
            _(
                "{name}: {value} is not one of {allowed}",
                name=name,
                value=repr(value),
                allowed=", ".join(allowed),
            )
        )
        return default
    return value


def parse_groups(
    query: Mapping[str, Any],
    allowed: Sequence[str],
    default: Sequence[str],
    problems: list[str],
    *,
    most: int = MAX_GROUPS,
) -> list[str]:
    """The ``by`` groupings from the query: known names, no repeats, at most ``most``."""
    raw = query.get("by")
    if raw is None:
        return list(default)
    wanted = [b.strip() for b in str(raw).split(",") if b.strip()]
    kept = []
    for name in wanted:
        if name not in allowed:
            problems.append(
                _(
                    "{name}: {value} is not one of {allowed}",
                    name="by",
                    value=repr(name),
                    allowed=", ".join(allowed),
                )
            )
        elif name not in kept:
            kept.append(name)
    if len(kept) > most:
        problems.append(_("by: at most {most} groupings at once", most=most))
    return kept[:most]


def score_picker(element_id: str, value: str) -> html.Div:
    """Radio items choosing the score a figure shows."""
    return html.Div(
        className="filter",
        children=[
            html.Label(_("Score"), htmlFor=element_id),
            dcc.RadioItems(
                id=element_id,
                options=[{"label": figure_name(s), "value": s} for s in SCORES],
                value=value,
                inline=True,
            ),
        ],
    )


def group_picker(
    element_id: str, allowed: Sequence[str], value: Sequence[str], *, most: int
) -> html.Div:
    """A multi-choice of groupings (intersections when several)."""
    return html.Div(
        className="filter filter-wide",
        children=[
            html.Label(
                _("Break down by (up to {most}: intersections)", most=most), htmlFor=element_id
            ),
            dcc.Dropdown(
                id=element_id,
                options=[{"label": group_name(g), "value": g} for g in allowed],
                value=list(value),
                multi=True,
                placeholder=_("No grouping"),
            ),
        ],
    )


def groups_value(value: Any, allowed: Sequence[str], *, most: int) -> list[str]:
    """The groupings a picker holds, known ones only, at most ``most``."""
    values = value if isinstance(value, list) else ([value] if value else [])
    kept: list[str] = []
    for name in values:
        if name in allowed and name not in kept:
            kept.append(name)
    return kept[:most]
