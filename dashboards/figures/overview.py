"""Figures of the overview page: mean scores with intervals, the composite's distribution and
the level bands."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from dashboards.figures.common import (
    BLUE,
    FIGURE_COLOURS,
    GREY,
    LEVEL_COLOURS,
    SUPPRESSED_GREY,
    base_figure,
    empty_figure,
    figure_name,
    mark_figures,
    suppressed_label,
    value_text,
    vline,
)
from reintegration.aggregate import LEVELS
from reintegration.i18n import _, format_decimal, format_integer, format_percent


def nobody() -> str:
    """What a figure says when no scored returnee matches the filters."""
    return _("No scored returnee matches these filters")


def level_name(level: str) -> str:
    """A level band's name in the current language."""
    return {"low": _("Low"), "medium": _("Medium"), "high": _("High")}.get(level, level)


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
        return mark_figures(
            empty_figure(nobody(), index_version, title=_("Mean scores")), protected
        )
    if known.empty:
        empty = empty_figure(
            _("Too few returnees to show a mean"), index_version, title=_("Mean scores")
        )
        return mark_figures(empty, protected)
    extra = _("n = {n} returnees", n=format_integer(int(n))) if n is not None and n == n else ""
    fig = base_figure(_("Mean scores, with 95% intervals"), index_version, extra=extra)
    labels = [figure_name(f) for f in known["figure"]]
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
        text=[value_text(m, "mean") for m in known["mean"]],
        textposition="auto",
        insidetextanchor="end",
        insidetextfont={"color": "white", "size": 14},
        outsidetextfont={"color": "#1a1a1a", "size": 14},
        customdata=[
            _("{value} (95% interval {low} to {high})", value=format_decimal(m), low=lo, high=hi)
            for m, lo, hi in zip(
                known["mean"],
                [format_decimal(v) for v in known["low"]],
                [format_decimal(v) for v in known["high"]],
                strict=True,
            )
        ],
        hovertemplate="%{x}: %{customdata}<extra></extra>",
        showlegend=False,
    )
    fig.update_yaxes(range=[0, 1], title=_("Score (0 to 1)"))
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
        empty = empty_figure(_("No scored returnees"), index_version, title=_("Composite score"))
        return mark_figures(empty, protected)
    centre = (bins["bin_low"].astype(float) + bins["bin_high"].astype(float)) / 2
    width = bins["bin_high"].astype(float) - bins["bin_low"].astype(float)
    count = pd.to_numeric(bins["count"], errors="coerce")
    shown = count.notna()
    extra = (
        _(
            "adjacent bins merged to at least {min_cell} returnees each",
            min_cell=format_integer(min_cell),
        )
        if protected
        else ""
    )
    fig = base_figure(_("Distribution of the composite score"), index_version, extra=extra)
    fig.add_bar(
        x=centre[shown],
        y=count[shown],
        width=width[shown],
        marker_color=BLUE,
        marker_line={"color": "white", "width": 1},
        name=_("returnees"),
        text=[format_integer(c) for c in count[shown]],
        textposition="outside",
        textfont={"size": 10},
        cliponaxis=False,
        customdata=[
            _(
                "{low} to {high}: {n} returnees",
                low=format_decimal(lo),
                high=format_decimal(hi),
                n=format_integer(c),
            )
            for lo, hi, c in zip(
                bins.loc[shown, "bin_low"], bins.loc[shown, "bin_high"], count[shown], strict=True
            )
        ],
        hovertemplate="%{customdata}<extra></extra>",
    )
    if (~shown).any():
        fig.add_scatter(
            x=centre[~shown],
            y=[0] * int((~shown).sum()),
            mode="markers",
            marker={"symbol": "x", "color": SUPPRESSED_GREY, "size": 10},
            name=suppressed_label(min_cell),
            hovertemplate=_("{fewer} returnees: not shown", fewer=suppressed_label(min_cell))
            + "<extra></extra>",
        )
    for value, level in zip(thresholds, LEVELS[1:], strict=False):
        vline(
            fig,
            value,
            text=_("{level} from {value}", level=level_name(level), value=format_decimal(value)),
        )
    fig.update_xaxes(range=[0, 1], title=_("Composite score"))
    fig.update_yaxes(
        title=_("Returnees in the bin") if protected else _("Returnees"), rangemode="tozero"
    )
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
        return mark_figures(
            empty_figure(nobody(), index_version, title=_("Level bands")), protected
        )
    if levels["share"].isna().all():
        empty = empty_figure(
            _("Suppressed: {fewer} returnees", fewer=suppressed_label(min_cell)),
            index_version,
            title=_("Level bands"),
        )
        return mark_figures(empty, protected)
    extra = _("n = {n} returnees", n=format_integer(int(n))) if n is not None and n == n else ""
    fig = base_figure(_("Returnees by level band"), index_version, extra=extra)
    shares = levels["share"].astype(float)
    fig.add_bar(
        x=[level_name(str(level)) for level in levels["level"]],
        y=shares.fillna(0),
        marker_color=[LEVEL_COLOURS.get(str(level), GREY) for level in levels["level"]],
        marker_pattern_shape=["/" if s != s else "" for s in shares],
        text=[suppressed_label(min_cell) if s != s else format_percent(s) for s in shares],
        textposition="outside",
        hovertemplate="%{x}: %{text}<extra></extra>",
        showlegend=False,
    )
    ticks = [0, 0.25, 0.5, 0.75, 1.0]
    fig.update_yaxes(
        range=[0, 1.05],
        tickvals=ticks,
        ticktext=[format_percent(t) for t in ticks],
        title=_("Share of returnees"),
    )
    return mark_figures(fig, protected)
