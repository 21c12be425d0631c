"""Figures of the assistance page: outcomes by type of assistance received, with n and 95%
intervals, and the reminder that they show association, not effect."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

from dashboards.figures.breakdowns import breakdown_figure
from dashboards.figures.common import FIGURE_LABELS, base_figure_note, mark_figures, subtitle

ASSOCIATION_NOTE = (
    "Association, not effect: returnees who receive an assistance type differ from those who "
    "do not in other ways too (who is assisted, where, when)."
)


def assistance_figure(
    frame: pd.DataFrame,
    *,
    figure: str,
    index_version: str,
    min_cell: int,
    labels: Mapping[str, str] | None = None,
    protected: bool = False,
) -> go.Figure:
    """Mean of ``figure`` per assistance type received (a returnee counts under each type).

    Parameters
    ----------
    frame : DataFrame
        An aggregate frame with an ``assistance`` column; the last row is the total.
    protected : bool, default False
        Whether ``frame`` holds protected figures (said in the subtitle).
    """
    fig = breakdown_figure(
        frame,
        by=["assistance"],
        figure=figure,
        index_version=index_version,
        min_cell=min_cell,
        labels=labels,
        protected=protected,
    )
    fig.update_layout(
        title={
            "text": f"{FIGURE_LABELS.get(figure, figure)} by assistance received",
            "subtitle": {"text": subtitle(index_version, "association, not effect")},
        },
        # The note takes the legend's place: suppressed groups read "fewer than 5" anyway.
        showlegend=False,
    )
    base_figure_note(fig, ASSOCIATION_NOTE, below=58, bottom=100)
    return mark_figures(fig, protected)
