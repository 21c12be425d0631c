"""Figures of the trajectories page: a score by survey round, months since return or quarter of
return (one line per months band: cohorts compared at the same time since return), one line
per group, with 95% intervals, a suppressed point a gap, never a zero; and the retention of
the round-1 returnees at each round."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboards.figures.common import (
    TOTAL,
    base_figure,
    base_figure_note,
    colour,
    empty_figure,
    figure_name,
    group_label,
    group_name,
    is_other,
    mark_figures,
    n_text,
    other_groups,
    value_columns,
    value_text,
)
from reintegration.followup import load_follow_up
from reintegration.i18n import _, format_integer, format_percent
from reintegration.panels import AXIS_COLUMNS

MONTHS_BANDS = tuple(load_follow_up().labels)
"""The months-since-return bands in time order (``reintegration/spec/follow-up.yaml``)."""


def axis_order(values: Sequence[object], axis: str) -> list[str]:
    """The points of the x axis in reading order: rounds by number, time bands in time order,
    cohorts as quarters sort.

    Examples
    --------
    >>> axis_order(["9 or more months", "within 4 months"], "months")
    ['within 4 months', '9 or more months']
    >>> axis_order(["10", "2", "1"], "round")
    ['1', '2', '10']
    """
    present = {str(v) for v in values if str(v) != TOTAL}
    if axis == "months":
        known = [b for b in MONTHS_BANDS if b in present]
        return known + sorted(present - set(known))
    if axis == "round":
        return sorted(present, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
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
        A trajectories frame: ``round``, ``months_band`` or ``cohort`` (then ``months_band``)
        first, then the ``by`` columns and the aggregate columns; the last row is the total.
    axis : {"round", "months", "cohort"}
    by : sequence of str
        Empty: one line for every returnee (on the cohort axis, one per months band).
    follow : bool
        Whether the frame follows the same returnees at every point (said in the subtitle).
    protected : bool, default False
        Whether ``frame`` holds protected figures: its row with ``other`` true (the band and
        group cells it does not list, together) has no place on the axis and is given in a
        note under the plot, "other groups: fewer than 5 each"; the figure says "figures
        perturbed for privacy".
    """
    labels = labels or {}
    x_column = AXIS_COLUMNS[axis]
    if axis == "cohort" and "months_band" in frame:
        by = ["months_band", *(b for b in by if b != "months_band")]  # a line per band
    name = figure_name(figure)
    x_title = group_name(x_column)
    title = _("{figure} by {axis}", figure=name, axis=x_title.lower())
    if by:
        title = _(
            "{figure} by {axis} and {groups}",
            figure=name,
            axis=x_title.lower(),
            groups=" × ".join(group_name(b).lower() for b in by),
        )
    other = frame[[is_other(row) for _i, row in frame.iterrows()]] if len(frame) else frame
    points = frame.drop(index=other.index)
    points = points[points[x_column].astype(str) != TOTAL]
    if by:
        points = points[~(points[list(by)].astype(str) == TOTAL).any(axis=1)]
    if points.empty:
        empty = empty_figure(_("No returnees match these filters"), index_version, title=title)
        return mark_figures(empty, protected)
    order = axis_order(points[x_column].tolist(), axis)
    extra = (
        _("the same returnees at every point (seen at each)")
        if follow
        else _("each point's returnees")
    )
    fig = base_figure(
        title,
        index_version,
        extra=_(
            "{extra}; gaps: fewer than {min_cell} returnees",
            extra=extra,
            min_cell=format_integer(min_cell),
        ),
        height=440,
    )
    keyed = points.assign(
        _x=points[x_column].astype(str),
        _group=[group_label(row, by, labels) for _i, row in points.iterrows()],
    )
    groups = keyed.groupby("_group", sort=False)
    single = groups.ngroups == 1
    ticks = order
    for number, (trace_name, rows) in enumerate(groups):
        rows = rows.set_index("_x").reindex(order)
        mean, low, high = value_columns(rows, figure)
        hidden = rows["suppressed"].fillna(True).astype(bool)
        mean = mean.mask(hidden)
        n = rows["returnees"].mask(hidden)
        # Each point prints its value and n. One line: the n goes under each point's name on
        # the axis, the value beside the point. Several: both beside the point, the labels of
        # alternate lines above and below their points so they do not overlap.
        if single:
            labels_at = ["" if m != m else value_text(m, figure) for m in mean]
            ticks = [
                f"{x}<br>{n_text(k, False, min_cell)}" if k == k else str(x)
                for x, k in zip(order, n, strict=True)
            ]
        else:
            labels_at = [
                ""
                if m != m
                else _("{value} (n = {n})", value=value_text(m, figure), n=format_integer(k))
                for m, k in zip(mean, n, strict=True)
            ]
        hover = [
            ""
            if m != m
            else _(
                "{value} (95% interval {low} to {high}), n = {n}",
                value=value_text(m, figure),
                low=value_text(lo, figure),
                high=value_text(hi, figure),
                n=format_integer(k),
            )
            for m, lo, hi, k in zip(mean, low, high, n, strict=True)
        ]
        fig.add_scatter(
            x=order,
            y=mean,
            mode="lines+markers+text",
            name=str(trace_name),
            line={"color": colour(number), "width": 2},
            marker={"size": 7},
            text=labels_at,
            textposition="top right" if number % 2 == 0 else "bottom right",
            textfont={"size": 11, "color": colour(number)},
            cliponaxis=False,
            connectgaps=False,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": (high - mean).to_numpy(),
                "arrayminus": (mean - low).to_numpy(),
                "thickness": 1,
            },
            customdata=hover,
            hovertemplate=f"{trace_name}<br>%{{x}}: %{{customdata}}<extra></extra>",
        )
    fig.update_xaxes(
        title=x_title,
        type="category",
        categoryorder="array",
        categoryarray=order,
        tickvals=order,
        ticktext=ticks,
    )
    ticks = [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    fig.update_yaxes(
        range=[0, 1],
        title=name,
        tickvals=ticks,
        ticktext=[format_percent(t) for t in ticks] if figure == "share_sustainable" else None,
    )
    if len(other):
        base_figure_note(fig, _other_note(other.iloc[0], figure, min_cell))
    return mark_figures(fig, protected)


def _other_note(row: pd.Series, figure: str, min_cell: int) -> str:
    """The gathered row of protected figures in words: its n and mean, or its suppression."""
    name = other_groups(min_cell)
    n = n_text(row["returnees"], bool(row["suppressed"]), min_cell)
    mean = value_columns(row.to_frame().T, figure)[0].iloc[0]
    told = f", {figure_name(figure).lower()} {value_text(mean, figure)}" if mean == mean else ""
    return _("Not drawn: {name} ({n}{told}), every band together", name=name, n=n, told=told)


def retention_figure(
    rows: Sequence[Mapping[str, Any]], *, min_cell: int, protected: bool = False
) -> go.Figure:
    """Returnees of round 1 surveyed at each round: bars of n, labelled with % of round 1.

    Parameters
    ----------
    rows : sequence of mapping
        :meth:`reintegration.analytics.Analytics.retention`: ``round``, ``returnees`` (None when
        withheld), ``percent_of_round_1``, ``suppressed``.
    """
    title = _("Retention: round-1 returnees surveyed at each round")
    if not rows:
        return mark_figures(
            empty_figure(_("No returnees match these filters"), None, title=title), protected
        )
    fig = base_figure(
        title,
        None,
        extra=_(
            "every round, whatever the round filter; no bar: fewer than {min_cell}",
            min_cell=format_integer(min_cell),
        ),
        height=340,
    )
    rounds = [_("Round {round}", round=r["round"]) for r in rows]
    counts = [r["returnees"] for r in rows]
    text = [
        n_text(r["returnees"], bool(r["suppressed"]), min_cell)
        + (
            "<br>"
            + _(
                "({percent} of round 1)",
                percent=format_percent(r["percent_of_round_1"] / 100, 1),
            )
            if r["percent_of_round_1"] is not None
            else ""
        )
        for r in rows
    ]
    fig.add_bar(
        x=rounds,
        y=counts,  # a withheld count is no bar, never a zero
        text=text,
        textposition="outside",
        constraintext="none",
        cliponaxis=False,
        marker={"color": colour(0)},
        hovertemplate="%{x}: %{text}<extra></extra>",
        name=_("returnees"),
    )
    fig.update_xaxes(title=_("Survey round"), type="category")
    fig.update_yaxes(title=_("Returnees"), rangemode="tozero")
    return mark_figures(fig, protected)
