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
    SKY_BLUE,
    VERMILLION,
    base_figure,
    empty_figure,
    is_other,
    mark_figures,
    other_groups,
    vline,
)
from reintegration.i18n import _, format_decimal, format_integer, format_percent

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
    title = _("Missing answers per item")
    most = frame["interviews"].max() if len(frame) else None
    if pd.isna(most) or not most:
        message = (
            _("Too few interviews to show") if protected and len(frame) else _("No interviews yet")
        )
        return mark_figures(empty_figure(message, None, title=title), protected)
    n = int(most)
    fig = base_figure(
        title,
        None,
        extra=_("{n} most recent interviews", n=format_integer(n)),
        height=140 + ITEM_BAR_PX * len(frame),
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
            # Printed where the segment is wide enough to hold it.
            text=["" if not s >= 0.03 else format_percent(s) for s in share],
            textposition="inside",
            insidetextanchor="middle",
            textfont={"size": 10},
            customdata=[
                ""
                if c != c or s != s
                else _("{share} ({n} interviews)", share=format_percent(s, 1), n=format_integer(c))
                for s, c in zip(share, frame[kind], strict=True)
            ],
            hovertemplate="%{y}: %{customdata}<extra>" + labels.get(kind, kind) + "</extra>",
        )
    fig.update_layout(barmode="stack")
    ticks = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    fig.update_xaxes(
        tickvals=ticks,
        ticktext=[format_percent(t) for t in ticks],
        title=_("Share of interviews"),
        rangemode="tozero",
    )
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
    title = _("Enumerators: scores and missing answers")
    if frame.empty:
        empty = empty_figure(_("No interviews name an enumerator"), index_version, title=title)
        return mark_figures(empty, protected)
    names = [
        other_groups(min_cell) if is_other(row) else row["enumerator_id"]
        for row in frame.to_dict("records")
    ]
    interviews = frame["interviews"].astype(float).fillna(0.0)
    fig = base_figure(
        title,
        index_version,
        extra=_("flagged in vermillion, for a supervisor's check"),
        height=420,
    )
    size = 6 + 14 * (interviews / max(interviews.max(), 1.0)) ** 0.5
    for flagged, name, marker_colour in (
        (False, _("not flagged"), BLUE),
        (True, _("flagged"), VERMILLION),
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
            customdata=list(
                zip(
                    [format_integer(n) for n in frame.loc[rows, "interviews"].fillna(0)],
                    reasons,
                    strict=True,
                )
            ),
            hovertemplate="%{text}: "
            + _("{n} interviews", n="%{customdata[0]}")
            + "<br>%{customdata[1]}<extra></extra>",
            cliponaxis=False,
        )
    vline(fig, 0, dash="dot")
    fig.update_xaxes(title=_("Mean composite minus the country's mean"), zeroline=False)
    top = frame["share_missing"].max()
    top = 0.0 if pd.isna(top) else float(top)
    # A little room below zero: enumerators with no missing answer sit on the axis, in view.
    fig.update_yaxes(
        title=_("Share of answers missing"),
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
        return _("Interviewer intra-class correlation: nothing is scored yet.")
    if answer.get("icc") is None:
        return _(
            "Interviewer intra-class correlation: not computed. {note}",
            note=answer.get("note") or "",
        ).strip()
    text = _(
        "Interviewer intra-class correlation of the composite: {icc} (95% interval {low} to "
        "{high}), from {groups} enumerators and {n} scored interviews. Design effect {deff} at "
        "{n0} interviews per enumerator: a mean over these interviews is as precise as one "
        "over that many times fewer independent ones.",
        icc=format_decimal(answer["icc"]),
        low=format_decimal(answer["low"]),
        high=format_decimal(answer["high"]),
        groups=format_integer(answer["groups"]),
        n=format_integer(answer["n"]),
        deff=format_decimal(answer["design_effect"], 1),
        n0=format_integer(round(answer["n0"])),
    )
    return f"{text} {answer['note']}" if answer.get("note") else text
