"""Figures of the breakdowns page: a score by group and by intersections of groups, each bar
with its n and 95% interval, small cells visibly suppressed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from dashboards.figures.common import (
    FIGURE_COLOURS,
    FIGURE_LABELS,
    GREY,
    GROUP_LABELS,
    SUPPRESSED_GREY,
    base_figure,
    cells,
    empty_figure,
    group_label,
    is_other,
    mark_figures,
    n_text,
    suppressed_label,
    value_columns,
    vline,
)
from reintegration.counting import RETURNEE_ROUNDS, counted

BAR_HEIGHT_PX = 30
N_COLUMN_X = 1.02


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
    """Mean of ``figure`` per group of ``by`` (horizontal bars), with n and 95% intervals.

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
    name = FIGURE_LABELS.get(figure, figure)
    groups = " × ".join(GROUP_LABELS.get(b, b).lower() for b in by)
    title = f"{name} by {groups}" if by else f"{name}, all returnees"
    groups_frame = cells(frame) if by else frame
    if groups_frame.empty:
        empty = empty_figure("No returnees match these filters", index_version, title=title)
        return mark_figures(empty, protected)
    mean, low, high = value_columns(groups_frame, figure)
    suppressed = groups_frame["suppressed"].astype(bool)
    rows = [row for _, row in groups_frame.iterrows()]
    names = [group_label(row, by, labels, min_cell=min_cell) for row in rows]
    other = pd.Series([is_other(row) for row in rows], index=groups_frame.index)
    texts = [
        n_text(n, s, min_cell) for n, s in zip(groups_frame["returnees"], suppressed, strict=True)
    ]
    rule = (
        f"groups under {min_cell} returnees gathered into one row"
        if protected
        else f"cells under {min_cell} returnees suppressed"
    )
    unit = (
        "; n and the total count returnee-rounds (a returnee once in each round)"
        if per_survey
        else ""
    )
    fig = base_figure(
        title,
        index_version,
        extra=f"bars with 95% intervals; {rule}{unit}",
        height=max(320, 120 + BAR_HEIGHT_PX * len(groups_frame)),
    )
    shown = ~suppressed & mean.notna()
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
        customdata=pd.concat([low, high], axis=1)[shown].to_numpy(),
        hovertemplate="%{y}: %{x:.3f} (95% interval %{customdata[0]:.3f} to "
        "%{customdata[1]:.3f})<extra></extra>",
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
            name=f"suppressed ({suppressed_label(min_cell)} returnees)",
            hovertemplate="%{y}: "
            + suppressed_label(min_cell)
            + " returnees, not shown<extra></extra>",
        )
    # n in a column of its own at the right, clear of the bars and their intervals.
    fig.add_scatter(
        y=names,
        x=[N_COLUMN_X] * len(names),
        mode="text",
        text=texts,
        textposition="middle right",
        showlegend=False,
        hoverinfo="skip",
        cliponaxis=False,
    )
    total = frame.iloc[-1]
    total_mean = value_columns(frame.iloc[[-1]], figure)[0].iloc[0]
    if not bool(total["suppressed"]) and total_mean == total_mean:
        every = "all returnee-rounds" if per_survey else "all"
        vline(fig, total_mean, text=f"{every}: {total_mean:.2f}", align="right")
    fig.update_xaxes(
        range=[0, N_COLUMN_X + 0.2],
        tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0],
        title=name,
        tickformat=".0%" if "share" in figure else "",
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
