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
    GREY,
    base_figure,
    base_figure_note,
    empty_figure,
    figure_name,
    mark_figures,
    subtitle,
    vline,
)
from reintegration.i18n import _, format_decimal, format_integer

ASSOCIATION_NOTE = (
    "Association, not effect: returnees who receive an assistance type differ from those who "
    "do not in other ways too (who is assisted, where, when)."
)
"""The note in English (files); screens use :func:`association_note`."""
ADJUSTED_FOR = "sex, age group, return type, country and months since return"
"""What the adjusted gap is adjusted for, in English (the gaps' CSV column ``adjusted_for``)."""
GAPS_NOTE = (
    "Each type against returnees who received none, with 95% intervals. Adjusted: for "
    f"{ADJUSTED_FOR};<br>what else differs stays. Poor overlap: the two groups hardly share "
    "covariates, so the adjusted gap leans on the model."
)
"""The note under the gaps chart in English; screens use :func:`gaps_note`."""
GAP_KINDS = (("raw", GREY, "circle"), ("adjusted", BLUE, "diamond"))


def association_note() -> str:
    """:data:`ASSOCIATION_NOTE` in the current language."""
    return _(
        "Association, not effect: returnees who receive an assistance type differ from those "
        "who do not in other ways too (who is assisted, where, when)."
    )


def adjusted_for() -> str:
    """:data:`ADJUSTED_FOR` in the current language."""
    return _("sex, age group, return type, country and months since return")


def gaps_note() -> str:
    """The note under the gaps chart."""
    return _(
        "Each type against returnees who received none, with 95% intervals. Adjusted: for "
        "{adjusted};<br>what else differs stays. Poor overlap: the two groups hardly share "
        "covariates, so the adjusted gap leans on the model.",
        adjusted=adjusted_for(),
    )


def _gap_legend(kind: str) -> str:
    return _("Raw gap") if kind == "raw" else _("Adjusted gap")


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
            "text": _("{figure} by assistance received", figure=figure_name(figure)),
            "subtitle": {"text": subtitle(index_version, _("association, not effect"))},
        },
        # The note takes the legend's place: suppressed groups read "fewer than 5" anyway.
        showlegend=False,
    )
    base_figure_note(fig, association_note(), below=58, bottom=100)
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
    name = figure_name(figure)
    title = _("{figure}: gap against no assistance, raw and adjusted", figure=name)
    if frame.empty or frame["raw_difference"].isna().all():
        fig = empty_figure(
            _(
                "No assistance type has {min_cell} or more returnees beside {min_cell} or more "
                "with none.",
                min_cell=format_integer(min_cell),
            ),
            index_version,
            title=title,
        )
        return mark_figures(fig, protected)
    rows = frame.iloc[::-1]  # plotly draws categories bottom up: keep the table's order
    names = [_type_label(row, labels) for row in rows.to_dict("records")]
    fig = base_figure(
        title,
        index_version,
        extra=_("association, not effect; adjusted for {adjusted}", adjusted=adjusted_for()),
        height=max(360, 90 + 42 * len(rows)),
    )
    for kind, colour, symbol in GAP_KINDS:
        legend = _gap_legend(kind)
        gap = rows[f"{kind}_difference"].to_numpy(np.float64)
        low = rows[f"{kind}_low"].to_numpy(np.float64)
        high = rows[f"{kind}_high"].to_numpy(np.float64)
        hover = [
            _(
                "{kind}: {gap} [{low}, {high}]<br>n = {treated} with it, {untreated} with none",
                kind=legend,
                gap=_signed(g),
                low=_signed(lo),
                high=_signed(hi),
                treated=_count(t),
                untreated=_count(u),
            )
            for g, lo, hi, t, u in zip(
                gap, low, high, rows["treated"], rows["untreated"], strict=True
            )
        ]
        fig.add_trace(
            go.Scatter(
                x=gap,
                y=names,
                mode="markers+text",
                orientation="h",  # side by side within each type's row (scattermode group)
                name=legend,
                marker={"color": colour, "symbol": symbol, "size": 10},
                text=[_signed(g) for g in gap],
                textposition="top center",
                textfont={"size": 11, "color": colour},
                error_x={
                    "type": "data",
                    "array": np.nan_to_num(high - gap),
                    "arrayminus": np.nan_to_num(gap - low),
                    "color": colour,
                },
                customdata=hover,
                hovertemplate="%{y}<br>%{customdata}<extra></extra>",
            )
        )
    vline(fig, 0.0, text=_("no difference"), dash="dot")
    fig.update_layout(scattermode="group", scattergap=0.5)
    title_x = (
        _("Difference in share sustainable (with it - none)")
        if "sustainable" in figure
        else _("Difference in mean {figure} score (with it - none)", figure=name.lower())
    )
    fig.update_xaxes(title_text=title_x)
    base_figure_note(fig, gaps_note(), below=62, bottom=150)
    return mark_figures(fig, protected)


def _signed(value: float) -> str:
    if value != value:
        return ""
    return ("+" if value > 0 else "") + format_decimal(value, 2)


def _count(value: object) -> str:
    return "" if pd.isna(value) else format_integer(float(value))  # type: ignore[arg-type]


def _type_label(row: Mapping[str, object], labels: Mapping[str, str]) -> str:
    """A type's name on the axis, with its n when it was compared, and its state."""
    code = str(row["assistance"])
    label = labels.get(code, code)
    if pd.isna(row["raw_difference"]):  # type: ignore[call-overload]
        return _("{type} (not compared)", type=label)
    named = _("{type} (n = {n})", type=label, n=_count(row["treated"]))
    if row["overlap"] == "limited":
        return _("{type} (poor overlap)", type=named)
    if pd.isna(row["adjusted_difference"]):  # type: ignore[call-overload]
        return _("{type} (not adjustable)", type=named)
    return named


def gaps_table(frame: pd.DataFrame, *, figure: str) -> pd.DataFrame:
    """The gaps as their CSV gives them: the figure compared and what the gaps are, beside
    the columns of ``Analytics.assistance_associations``."""
    return frame.assign(
        figure=figure,
        comparison="received it minus received none",
        adjusted_for=ADJUSTED_FOR,
        reading="association, not effect",
    )
