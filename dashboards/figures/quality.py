"""Figures of the data-quality page: missing answers per item, enumerators who stand out.

Both take ``protected``: a chart of protected figures says so in its subtitle (and its PNG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboards.figures.common import (
    BLUE,
    GREY,
    ORANGE,
    OTHER_GROUPS,
    SKY_BLUE,
    VERMILLION,
    base_figure,
    empty_figure,
    is_other,
    mark_figures,
    vline,
)

ITEM_BAR_PX = 22


def missingness_figure(
    frame: pd.DataFrame,
    *,
    missing_columns: Sequence[str],
    labels: Mapping[str, str] | None = None,
    protected: bool = False,
) -> go.Figure:
    """Share of interviews where each item is missing, stacked by kind of missing.

    Parameters
    ----------
    frame : DataFrame
        One row per item: ``item``, ``interviews``, and a count column for each of
        ``missing_columns``.
    missing_columns : sequence of str
        The kinds of missing to stack (``blank`` and the spec's missing codes).
    labels : mapping, optional
        Display names of the kinds and of the items.
    protected : bool
        Whether ``frame`` holds protected figures (its hidden counts missing).
    """
    labels = labels or {}
    title = "Missing answers per item"
    most = frame["interviews"].max() if len(frame) else None
    if pd.isna(most) or not most:
        message = "Too few interviews to show" if protected and len(frame) else "No interviews yet"
        return mark_figures(empty_figure(message, None, title=title), protected)
    n = int(most)
    fig = base_figure(
        title, None, extra=f"{n:,} most recent interviews", height=140 + ITEM_BAR_PX * len(frame)
    )
    names = [labels.get(i, i) for i in frame["item"]]
    for number, kind in enumerate(missing_columns):
        share = frame[kind] / frame["interviews"]
        fig.add_bar(
            y=names,
            x=share,
            orientation="h",
            name=labels.get(kind, kind),
            marker_color=(GREY, ORANGE, SKY_BLUE, VERMILLION)[number % 4],
            customdata=frame[kind],
            hovertemplate="%{y}: %{x:.1%} (%{customdata:,} interviews)<extra>"
            + labels.get(kind, kind)
            + "</extra>",
        )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(tickformat=".0%", title="Share of interviews", rangemode="tozero")
    fig.update_yaxes(autorange="reversed")
    return mark_figures(fig, protected)


def enumerator_figure(
    frame: pd.DataFrame, *, index_version: str, protected: bool = False, min_cell: int = 5
) -> go.Figure:
    """Each enumerator: scores against their country's (x), missing answers (y), flagged ones
    in vermillion; size grows with interviews.

    Parameters
    ----------
    frame : DataFrame
        As :func:`reintegration.quality.enumerator_anomalies` returns it.
    protected : bool
        Whether ``frame`` holds protected figures; its row of gathered enumerators (``other``)
        has no score against a country and is named :data:`OTHER_GROUPS` in the hover text.
    min_cell : int
        The smallest number of interviews of a named enumerator (for that name).
    """
    title = "Enumerators: scores and missing answers"
    if frame.empty:
        empty = empty_figure("No interviews name an enumerator", index_version, title=title)
        return mark_figures(empty, protected)
    names = [
        OTHER_GROUPS.format(min_cell=min_cell) if is_other(row) else row["enumerator_id"]
        for row in frame.to_dict("records")
    ]
    interviews = frame["interviews"].astype(float).fillna(0.0)
    fig = base_figure(
        title,
        index_version,
        extra="flagged in vermillion, for a supervisor's check",
        height=420,
    )
    size = 6 + 14 * (interviews / max(interviews.max(), 1.0)) ** 0.5
    for flagged, name, marker_colour in (
        (False, "not flagged", BLUE),
        (True, "flagged", VERMILLION),
    ):
        rows = frame["flagged"].astype(bool) == flagged
        if not rows.any():
            continue
        reasons = ["<br>".join(r) if len(r) else "" for r in frame.loc[rows, "reasons"]]
        fig.add_scatter(
            x=frame.loc[rows, "relative_composite"],
            y=frame.loc[rows, "share_missing"],
            mode="markers",
            name=name,
            marker={
                "size": size[rows],
                "color": marker_colour,
                "symbol": "diamond" if flagged else "circle",
                "line": {"width": 1, "color": "white"},
            },
            text=[n for n, shown in zip(names, rows, strict=True) if shown],
            customdata=list(zip(frame.loc[rows, "interviews"], reasons, strict=True)),
            hovertemplate="%{text}: %{customdata[0]:,} interviews<br>%{customdata[1]}"
            "<extra></extra>",
            cliponaxis=False,
        )
    vline(fig, 0, dash="dot")
    fig.update_xaxes(title="Mean composite minus the country's mean", zeroline=False)
    top = frame["share_missing"].max()
    top = 0.0 if pd.isna(top) else float(top)
    # A little room below zero: enumerators with no missing answer sit on the axis, in view.
    fig.update_yaxes(
        title="Share of answers missing",
        tickformat=".0%",
        range=[-0.05 * top - 0.002, 1.1 * top + 0.002],
    )
    return mark_figures(fig, protected)


def icc_sentence(answer: Mapping[str, Any] | None) -> str:
    """The interviewer intra-class correlation (:func:`reintegration.interviewer.interviewer_icc`)
    in words.

    Examples
    --------
    >>> icc_sentence({"icc": 0.18, "low": 0.12, "high": 0.26, "groups": 40, "n": 7600,
    ...               "n0": 190.0, "design_effect": 34.2, "note": None})  # doctest: +ELLIPSIS
    'Interviewer intra-class correlation of the composite: 0.18 (95% interval 0.12 to 0.26), ...
    >>> icc_sentence(None)
    'Interviewer intra-class correlation: nothing is scored yet.'
    """
    if answer is None:
        return "Interviewer intra-class correlation: nothing is scored yet."
    if answer.get("icc") is None:
        return (
            f"Interviewer intra-class correlation: not computed. {answer.get('note') or ''}".strip()
        )
    text = (
        f"Interviewer intra-class correlation of the composite: {answer['icc']:.2f} "
        f"(95% interval {answer['low']:.2f} to {answer['high']:.2f}), from "
        f"{answer['groups']:,} enumerators and {answer['n']:,} scored interviews. Design "
        f"effect {answer['design_effect']:.1f} at {answer['n0']:.0f} interviews per "
        "enumerator: a mean over these interviews is as precise as one over that many times "
        "fewer independent ones."
    )
    return f"{text} {answer['note']}" if answer.get("note") else text
