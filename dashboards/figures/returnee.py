"""Figure of a returnee's page: their scores round by round (pure, no Dash, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from dashboards.figures.common import FIGURE_COLOURS, base_figure, empty_figure, figure_name
from reintegration.i18n import _, format_decimal

FIGURES = ("economic", "social", "psychosocial", "composite")


def returnee_trajectory_figure(
    rounds: Sequence[Mapping[str, Any]], *, index_version: str | None
) -> go.Figure:
    """One line per score (economic, social, psychosocial, composite) against months since
    return, a point per round; a round without a score is a gap.

    Parameters
    ----------
    rounds : sequence of mappings
        ``months_since_return``, ``survey_round`` and the four scores (None when missing),
        in interview order.
    index_version : str or None
        The index whose scores they are (shown under the title).
    """
    title = _("Scores round by round")
    if not rounds:
        return empty_figure(_("No scored interview"), index_version, title=title)
    fig = base_figure(title, index_version)
    months = [r["months_since_return"] for r in rounds]
    labels = [_("round {n}", n=r["survey_round"] or "?") for r in rounds]
    for name in FIGURES:
        values = [r.get(name) for r in rounds]
        fig.add_trace(
            go.Scatter(
                x=months,
                y=values,
                mode="lines+markers",
                marker={"size": 8},
                name=figure_name(name),
                line={"color": FIGURE_COLOURS[name], "width": 3 if name == "composite" else 2},
                connectgaps=False,
                text=[
                    f"{label}: {'–' if v is None else format_decimal(v, 2)}"
                    for label, v in zip(labels, values, strict=True)
                ],
                hoverinfo="text+name",
            )
        )
    # A little room past the last round and below 0, so a point on an edge stays visible.
    last = max((m for m in months if m is not None), default=0.0)
    fig.update_xaxes(title={"text": _("Months since return")}, range=[0, last + 1])
    fig.update_yaxes(title={"text": _("Score (0 to 1)")}, range=[-0.03, 1.03])
    return fig
