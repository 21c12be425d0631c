"""Figures of the breakdowns page: a score by group and by intersections of groups, each bar
with its n and 95% interval, small cells visibly suppressed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from dashboards.figures.common import (
    FIGURE_COLOURS,
    GREY,
    SUPPRESSED_GREY,
    base_figure,
    cells,
    empty_figure,
    figure_name,
    group_label,
    group_name,
    is_other,
    mark_figures,
    suppressed_label,
    value_columns,
    value_text,
    vline,
    with_n,
    wrap_label,
)
from reintegration.counting import RETURNEE_ROUNDS, counted
from reintegration.i18n import _, format_integer, format_percent

BAR_HEIGHT_PX = 30


def breakdown_title(figure: str, by: Sequence[str]) -> str:
    """``Composite by sex × return type`` in the current language."""
    name = figure_name(figure)
    if not by:
        return _("{figure}, all returnees", figure=name)
    groups = " × ".join(group_name(b).lower() for b in by)
    return _("{figure} by {groups}", figure=name, groups=groups)


def breakdown_figure(
    frame: pd.DataFrame,
    *,
    by: Sequence[str],
    figure: str,
    index_version: str,
    min_cell: int,
    labels: Mapping[str, str] | None = None,
    protected: bool = False,
) -> go.Figure:
    """Mean of ``figure`` per group of ``by`` (horizontal bars), each bar with its value
    printed on it, its n beside the group's name and its 95% interval.

    Parameters
    ----------
    frame : DataFrame
        An aggregate frame: the ``by`` columns, ``returnees``, ``{figure}_mean``,
        ``{figure}_low``, ``{figure}_high`` (or ``share_sustainable``), ``suppressed``; the
        last row is the total.
    by : sequence of str
        The grouping columns; several make intersections (female · child · forced).
    figure : str
        A score (``composite``, ``economic``...) or ``share_sustainable``.
    labels : mapping, optional
        Display names of group values (``female`` -> ``Female``).
    protected : bool, default False
        Whether ``frame`` holds protected figures: its row with ``other`` true (the groups it
        does not list) is drawn as "other groups: fewer than 5 each", in grey, and the figure
        says "figures perturbed for privacy".

    By round, a returnee counts once in each round they were surveyed in: the note under the
    title and the "all" line say the counts are returnee-rounds, not distinct returnees.
    """
    labels = labels or {}
    per_survey = counted(by) == RETURNEE_ROUNDS
    name = figure_name(figure)
    title = breakdown_title(figure, by)
    groups_frame = cells(frame) if by else frame
    if groups_frame.empty:
        empty = empty_figure(_("No returnees match these filters"), index_version, title=title)
        return mark_figures(empty, protected)
    mean, low, high = value_columns(groups_frame, figure)
    suppressed = groups_frame["suppressed"].astype(bool)
    rows = [row for _row, row in groups_frame.iterrows()]
    other = pd.Series([is_other(row) for row in rows], index=groups_frame.index)
    names = [
        # The gathered row already says "fewer than 5 each": hidden, it needs no n.
        wrap_label(
            group_label(row, by, labels, min_cell=min_cell)
            if o and s
            else with_n(group_label(row, by, labels, min_cell=min_cell), n, s, min_cell)
        )
        for row, n, s, o in zip(rows, groups_frame["returnees"], suppressed, other, strict=True)
    ]
    cell = format_integer(min_cell)
    rule = (
        _("groups under {min_cell} returnees gathered into one row", min_cell=cell)
        if protected
        else _("cells under {min_cell} returnees suppressed", min_cell=cell)
    )
    unit = (
        _("; n and the total count returnee-rounds (a returnee once in each round)")
        if per_survey
        else ""
    )
    fig = base_figure(
        title,
        index_version,
        extra=_("bars with 95% intervals; {rule}", rule=rule) + unit,
        height=max(320, 140 + BAR_HEIGHT_PX * len(groups_frame)),
    )
    shown = ~suppressed & mean.notna()
    hover = [
        _(
            "{value} (95% interval {low} to {high})",
            value=value_text(m, figure),
            low=value_text(lo, figure),
            high=value_text(hi, figure),
        )
        for m, lo, hi in zip(mean[shown], low[shown], high[shown], strict=True)
    ]
    fig.add_bar(
        y=[n for n, s in zip(names, shown, strict=True) if s],
        x=mean[shown],
        orientation="h",
        marker_color=_colours(figure, other[shown]),
        error_x={
            "type": "data",
            "symmetric": False,
            "array": (high - mean)[shown],
            "arrayminus": (mean - low)[shown],
            "color": GREY,
        },
        # The value is printed at the bar's base, clear of the interval's whisker at its end;
        # a bar too short to hold it has it printed beside it instead.
        text=[value_text(m, figure) for m in mean[shown]],
        textposition="auto",
        insidetextanchor="start",
        insidetextfont={"color": "white"},
        outsidetextfont={"color": "#1a1a1a"},
        customdata=hover,
        hovertemplate="%{y}: %{customdata}<extra></extra>",
        name=name,
        showlegend=False,
    )
    hidden = ~shown
    if hidden.any():
        fig.add_scatter(
            y=[n for n, h in zip(names, hidden, strict=True) if h],
            x=[0] * int(hidden.sum()),
            mode="markers",
            marker={"symbol": "square-open", "color": SUPPRESSED_GREY, "size": 10},
            name=_("suppressed ({fewer} returnees)", fewer=suppressed_label(min_cell)),
            hovertemplate="%{y}: "
            + _("{fewer} returnees, not shown", fewer=suppressed_label(min_cell))
            + "<extra></extra>",
        )
    total = frame.iloc[-1]
    total_mean = value_columns(frame.iloc[[-1]], figure)[0].iloc[0]
    if not bool(total["suppressed"]) and total_mean == total_mean:
        every = _("all returnee-rounds") if per_survey else _("all")
        vline(fig, total_mean, text=f"{every}: {value_text(total_mean, figure)}", align="right")
    ticks = [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    fig.update_xaxes(
        range=[0, 1.05],
        tickvals=ticks,
        ticktext=[format_percent(t) for t in ticks] if "share" in figure else None,
        title=name,
    )
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=names)
    return mark_figures(fig, protected)


def breakdown_table(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """A breakdown as its CSV gives it: by round, the count column is ``returnee_rounds``.

    A returnee counts once in each round they were surveyed in, so the total row is a number
    of returnee-rounds, not of distinct returnees; the column's name says so.

    Examples
    --------
    >>> frame = pd.DataFrame({"round": ["1", "2", "all"], "returnees": [10, 8, 18]})
    >>> list(breakdown_table(frame, ["round"]).columns)
    ['round', 'returnee_rounds']
    """
    if counted(by) == RETURNEE_ROUNDS:
        return frame.rename(columns={"returnees": "returnee_rounds"})
    return frame


def _colours(figure: str, other: pd.Series) -> str | list[str]:
    """The bars' colour: the score's, and grey for the row of gathered groups if shown."""
    colour = FIGURE_COLOURS.get(figure, FIGURE_COLOURS["composite"])
    return [GREY if o else colour for o in other] if other.any() else colour
