"""Figures of the assistance page: outcomes by type of assistance received, with n and 95%
intervals; each type's gap against no assistance, raw and adjusted side by side; and the
reminder that they show association, not effect."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboards.figures.breakdowns import breakdown_figure
from dashboards.figures.common import (
    BLUE,
    FIGURE_LABELS,
    GREY,
    base_figure,
    base_figure_note,
    empty_figure,
    mark_figures,
    subtitle,
    vline,
)

ASSOCIATION_NOTE = (
    "Association, not effect: returnees who receive an assistance type differ from those who "
    "do not in other ways too (who is assisted, where, when)."
)
ADJUSTED_FOR = "sex, age group, return type, country and months since return"
GAPS_NOTE = (
    "Each type against returnees who received none, with 95% intervals. Adjusted: for "
    f"{ADJUSTED_FOR};<br>what else differs stays. Poor overlap: the two groups hardly share "
    "covariates, so the adjusted gap leans on the model."
)
GAP_KINDS = (("raw", "Raw gap", GREY, "circle"), ("adjusted", "Adjusted gap", BLUE, "diamond"))


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


def gaps_figure(
    frame: pd.DataFrame,
    *,
    figure: str,
    index_version: str,
    min_cell: int,
    labels: Mapping[str, str] | None = None,
    protected: bool = False,
) -> go.Figure:
    """Each assistance type's gap in ``figure`` against no assistance: raw and adjusted side
    by side, with 95% intervals, a line at no difference, and the types not compared or with
    poor overlap named as such.

    Parameters
    ----------
    frame : DataFrame
        From ``Analytics.assistance_associations``: ``assistance``, ``treated``,
        ``untreated``, ``raw_``/``adjusted_difference``, ``_low``, ``_high``, ``overlap``,
        ``note``.
    protected : bool, default False
        Whether ``frame`` holds protected figures (said in the subtitle).
    """
    labels = labels or {}
    name = FIGURE_LABELS.get(figure, figure)
    title = f"{name}: gap against no assistance, raw and adjusted"
    if frame.empty or frame["raw_difference"].isna().all():
        fig = empty_figure(
            f"No assistance type has {min_cell} or more returnees beside {min_cell} or more "
            "with none.",
            index_version,
            title=title,
        )
        return mark_figures(fig, protected)
    rows = frame.iloc[::-1]  # plotly draws categories bottom up: keep the table's order
    names = [_type_label(row, labels) for row in rows.to_dict("records")]
    fig = base_figure(
        title,
        index_version,
        extra=f"association, not effect; adjusted for {ADJUSTED_FOR}",
        height=max(360, 90 + 42 * len(rows)),
    )
    for kind, legend, colour, symbol in GAP_KINDS:
        gap = rows[f"{kind}_difference"].to_numpy(np.float64)
        low = rows[f"{kind}_low"].to_numpy(np.float64)
        high = rows[f"{kind}_high"].to_numpy(np.float64)
        fig.add_trace(
            go.Scatter(
                x=gap,
                y=names,
                mode="markers",
                orientation="h",  # side by side within each type's row (scattermode group)
                name=legend,
                marker={"color": colour, "symbol": symbol, "size": 10},
                error_x={
                    "type": "data",
                    "array": np.nan_to_num(high - gap),
                    "arrayminus": np.nan_to_num(gap - low),
                    "color": colour,
                },
                customdata=np.column_stack([low, high, rows["treated"], rows["untreated"]]),
                hovertemplate=(
                    f"%{{y}}<br>{legend}: %{{x:+.3f}} [%{{customdata[0]:.3f}}, "
                    "%{customdata[1]:.3f}]<br>n = %{customdata[2]:,.0f} with it, "
                    "%{customdata[3]:,.0f} with none<extra></extra>"
                ),
            )
        )
    vline(fig, 0.0, text="no difference", dash="dot")
    fig.update_layout(scattermode="group", scattergap=0.5)
    measured = "share sustainable" if "sustainable" in figure else f"mean {name.lower()} score"
    fig.update_xaxes(title_text=f"Difference in {measured} (with it - none)")
    base_figure_note(fig, GAPS_NOTE, below=62, bottom=150)
    return mark_figures(fig, protected)


def _type_label(row: Mapping[str, object], labels: Mapping[str, str]) -> str:
    code = str(row["assistance"])
    label = labels.get(code, code)
    if pd.isna(row["raw_difference"]):  # type: ignore[call-overload]
        return f"{label} (not compared)"
    if row["overlap"] == "limited":
        return f"{label} (poor overlap)"
    if pd.isna(row["adjusted_difference"]):  # type: ignore[call-overload]
        return f"{label} (not adjustable)"
    return label


def gaps_table(frame: pd.DataFrame, *, figure: str) -> pd.DataFrame:
    """The gaps as their CSV gives them: the figure compared and what the gaps are, beside
    the columns of ``Analytics.assistance_associations``."""
    return frame.assign(
        figure=figure,
        comparison="received it minus received none",
        adjusted_for=ADJUSTED_FOR,
        reading="association, not effect",
    )
