"""Figures of the trajectories page: a score by months since return, or by quarter of return,
one line per group, with 95% intervals; a suppressed point is a gap, never a zero."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from dashboards.figures.common import (
    FIGURE_LABELS,
    GROUP_LABELS,
    OTHER_GROUPS,
    TOTAL,
    base_figure,
    base_figure_note,
    colour,
    empty_figure,
    group_label,
    is_other,
    mark_figures,
    n_text,
    value_columns,
)

MONTHS_BANDS = ("0-3", "3-6", "6-12", "12-18", "18+")
AXIS_COLUMNS = {"months": "months_band", "cohort": "cohort"}


def axis_order(values: Sequence[object], axis: str) -> list[str]:
    """The points of the x axis in reading order: time bands as DESIGN.md orders them, cohorts
    as quarters sort.

    Examples
    --------
    >>> axis_order(["18+", "0-3", "6-12"], "months")
    ['0-3', '6-12', '18+']
    """
    present = {str(v) for v in values if str(v) != TOTAL}
    if axis == "months":
        known = [b for b in MONTHS_BANDS if b in present]
        return known + sorted(present - set(known))
    return sorted(present)


def trajectory_figure(
    frame: pd.DataFrame,
    *,
    axis: str,
    by: Sequence[str],
    figure: str,
    index_version: str,
    min_cell: int,
    follow: bool = False,
    labels: Mapping[str, str] | None = None,
    protected: bool = False,
) -> go.Figure:
    """Mean of ``figure`` along ``axis`` for each group of ``by``.

    Parameters
    ----------
    frame : DataFrame
        A trajectories frame: ``months_band`` or ``cohort`` first, then the ``by`` columns and
        the aggregate columns; the last row is the total.
    axis : {"months", "cohort"}
    by : sequence of str
        Empty: one line for every returnee.
    follow : bool
        Whether the frame follows the same returnees across rounds (said in the subtitle).
    protected : bool, default False
        Whether ``frame`` holds protected figures: its row with ``other`` true (the band and
        group cells it does not list, together) has no place on the axis and is given in a
        note under the plot, "other groups: fewer than 5 each"; the figure says "figures
        perturbed for privacy".
    """
    labels = labels or {}
    x_column = AXIS_COLUMNS[axis]
    name = FIGURE_LABELS.get(figure, figure)
    x_title = GROUP_LABELS[x_column]
    title = f"{name} by {x_title.lower()}"
    if by:
        title += " and " + " × ".join(GROUP_LABELS.get(b, b).lower() for b in by)
    other = frame[[is_other(row) for _, row in frame.iterrows()]] if len(frame) else frame
    points = frame.drop(index=other.index)
    points = points[points[x_column].astype(str) != TOTAL]
    if by:
        points = points[~(points[list(by)].astype(str) == TOTAL).any(axis=1)]
    if points.empty:
        empty = empty_figure("No returnees match these filters", index_version, title=title)
        return mark_figures(empty, protected)
    order = axis_order(points[x_column].tolist(), axis)
    extra = "the same returnees followed across rounds" if follow else "each round's returnees"
    fig = base_figure(
        title, index_version, extra=f"{extra}; gaps: fewer than {min_cell} returnees", height=420
    )
    keyed = points.assign(
        _x=points[x_column].astype(str),
        _group=[group_label(row, by, labels) for _, row in points.iterrows()],
    )
    for number, (trace_name, rows) in enumerate(keyed.groupby("_group", sort=False)):
        rows = rows.set_index("_x").reindex(order)
        mean, low, high = value_columns(rows, figure)
        hidden = rows["suppressed"].fillna(True).astype(bool)
        mean = mean.mask(hidden)
        n = rows["returnees"].mask(hidden)
        fig.add_scatter(
            x=order,
            y=mean,
            mode="lines+markers",
            name=trace_name,
            line={"color": colour(number), "width": 2},
            marker={"size": 7},
            connectgaps=False,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": (high - mean).to_numpy(),
                "arrayminus": (mean - low).to_numpy(),
                "thickness": 1,
            },
            customdata=pd.concat([n, low, high], axis=1).to_numpy(),
            hovertemplate=f"{trace_name}<br>%{{x}}: %{{y:.3f}} (95% interval "
            "%{customdata[1]:.3f} to %{customdata[2]:.3f}), n = %{customdata[0]:,}"
            "<extra></extra>",
        )
    fig.update_xaxes(title=x_title, type="category", categoryorder="array", categoryarray=order)
    fig.update_yaxes(
        range=[0, 1], title=name, tickformat=".0%" if figure == "share_sustainable" else ""
    )
    if len(other):
        base_figure_note(fig, _other_note(other.iloc[0], figure, min_cell))
    return mark_figures(fig, protected)


def _other_note(row: pd.Series, figure: str, min_cell: int) -> str:
    """The gathered row of protected figures in words: its n and mean, or its suppression."""
    name = OTHER_GROUPS.format(min_cell=min_cell)
    n = n_text(row["returnees"], bool(row["suppressed"]), min_cell)
    mean = value_columns(row.to_frame().T, figure)[0].iloc[0]
    told = f", {FIGURE_LABELS.get(figure, figure).lower()} {mean:.2f}" if mean == mean else ""
    return f"Not drawn: {name} ({n}{told}), every band together"
