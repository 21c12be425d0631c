"""Figures of the overview page: mean scores with intervals, the composite's distribution and
the level bands."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from dashboards.figures.common import (
    BLUE,
    FIGURE_COLOURS,
    FIGURE_LABELS,
    GREY,
    LEVEL_COLOURS,
    SUPPRESSED_GREY,
    base_figure,
    empty_figure,
    mark_figures,
    suppressed_label,
    vline,
)
from reintegration.aggregate import LEVELS

NOBODY = "No scored returnee matches these filters"


def means_figure(
    means: pd.DataFrame, *, index_version: str, n: float | None, protected: bool = False
) -> go.Figure:
    """Mean of each score with its 95% interval.

    Parameters
    ----------
    means : DataFrame
        Columns ``figure``, ``mean``, ``low``, ``high``; one row per score. A suppressed mean
        is NaN.
    index_version : str
    n : float or None
        Returnees behind the means (None or NaN when suppressed).
    protected : bool, default False
        Whether the means are protected figures (said in the subtitle).
    """
    known = means.dropna(subset=["mean"])
    if n == 0:
        return mark_figures(empty_figure(NOBODY, index_version, title="Mean scores"), protected)
    if known.empty:
        empty = empty_figure("Too few returnees to show a mean", index_version, title="Mean scores")
        return mark_figures(empty, protected)
    extra = f"n = {int(n):,} returnees" if n is not None and n == n else ""
    fig = base_figure("Mean scores, with 95% intervals", index_version, extra=extra)
    labels = [FIGURE_LABELS.get(f, f) for f in known["figure"]]
    fig.add_bar(
        x=labels,
        y=known["mean"],
        marker_color=[FIGURE_COLOURS.get(f, GREY) for f in known["figure"]],
        error_y={
            "type": "data",
            "symmetric": False,
            "array": known["high"] - known["mean"],
            "arrayminus": known["mean"] - known["low"],
            "color": GREY,
        },
        text=[f"{m:.2f}" for m in known["mean"]],
        textposition="inside",
        customdata=known[["low", "high"]].to_numpy(),
        hovertemplate="%{x}: %{y:.3f} (95% interval %{customdata[0]:.3f} to "
        "%{customdata[1]:.3f})<extra></extra>",
        showlegend=False,
    )
    fig.update_yaxes(range=[0, 1], title="Score (0 to 1)")
    return mark_figures(fig, protected)


def histogram_figure(
    bins: pd.DataFrame,
    *,
    index_version: str,
    min_cell: int,
    thresholds: Sequence[float] = (),
    protected: bool = False,
) -> go.Figure:
    """The distribution of the composite score; bins below ``min_cell`` marked, not drawn.

    Protected figures come with adjacent bins merged until each holds at least ``min_cell``
    returnees: each bar then spans its merged bin's real width, and the figure says so.

    Parameters
    ----------
    bins : DataFrame
        Columns ``bin_low``, ``bin_high``, ``count`` (NaN or None for a suppressed bin).
    thresholds : sequence of float
        Scores where a level band starts, drawn as dashed lines.
    protected : bool, default False
        Whether the bins are protected figures (merged bins, perturbed counts).
    """
    if bins.empty:
        empty = empty_figure("No scored returnees", index_version, title="Composite score")
        return mark_figures(empty, protected)
    centre = (bins["bin_low"].astype(float) + bins["bin_high"].astype(float)) / 2
    width = bins["bin_high"].astype(float) - bins["bin_low"].astype(float)
    count = pd.to_numeric(bins["count"], errors="coerce")
    shown = count.notna()
    extra = f"adjacent bins merged to at least {min_cell} returnees each" if protected else ""
    fig = base_figure("Distribution of the composite score", index_version, extra=extra)
    fig.add_bar(
        x=centre[shown],
        y=count[shown],
        width=width[shown],
        marker_color=BLUE,
        marker_line={"color": "white", "width": 1},
        name="returnees",
        customdata=bins.loc[shown, ["bin_low", "bin_high"]].to_numpy(),
        hovertemplate="%{customdata[0]:.2f} to %{customdata[1]:.2f}: %{y:,} returnees"
        "<extra></extra>",
    )
    if (~shown).any():
        fig.add_scatter(
            x=centre[~shown],
            y=[0] * int((~shown).sum()),
            mode="markers",
            marker={"symbol": "x", "color": SUPPRESSED_GREY, "size": 10},
            name=suppressed_label(min_cell),
            hovertemplate=f"{suppressed_label(min_cell)} returnees: not shown<extra></extra>",
        )
    for value, level in zip(thresholds, LEVELS[1:], strict=False):
        vline(fig, value, text=f"{level} from {value:.2f}")
    fig.update_xaxes(range=[0, 1], title="Composite score")
    fig.update_yaxes(title="Returnees in the bin" if protected else "Returnees", rangemode="tozero")
    return mark_figures(fig, protected)


def levels_figure(
    levels: pd.DataFrame,
    *,
    index_version: str,
    min_cell: int,
    n: float | None = None,
    protected: bool = False,
) -> go.Figure:
    """Share of returnees in each level band (low, medium, high).

    Parameters
    ----------
    levels : DataFrame
        Columns ``level`` and ``share`` (0 to 1; NaN when suppressed), in band order.
    n : float, optional
        Returnees behind the shares (0: nobody matches).
    protected : bool, default False
        Whether the shares are protected figures (said in the subtitle).
    """
    if n == 0:
        return mark_figures(empty_figure(NOBODY, index_version, title="Level bands"), protected)
    if levels["share"].isna().all():
        empty = empty_figure(
            f"Suppressed: {suppressed_label(min_cell)} returnees",
            index_version,
            title="Level bands",
        )
        return mark_figures(empty, protected)
    fig = base_figure("Returnees by level band", index_version)
    shares = levels["share"].astype(float)
    fig.add_bar(
        x=[str(level).capitalize() for level in levels["level"]],
        y=shares.fillna(0),
        marker_color=[LEVEL_COLOURS.get(str(level), GREY) for level in levels["level"]],
        marker_pattern_shape=["/" if s != s else "" for s in shares],
        text=[suppressed_label(min_cell) if s != s else f"{s:.0%}" for s in shares],
        textposition="outside",
        hovertemplate="%{x}: %{text}<extra></extra>",
        showlegend=False,
    )
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", title="Share of returnees")
    return mark_figures(fig, protected)
