"""Figures of the models page: the risk model's calibration, its metric by subgroup, drift
of each item against the data the index version was built on, two versions compared by
subgroup, and what a promotion would change (before and after, by group)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboards.figures.common import (
    BLUE,
    GREY,
    ORANGE,
    SUPPRESSED_GREY,
    VERMILLION,
    base_figure,
    empty_figure,
    vline,
)
from reintegration.drift import MIN_ROWS, SHIFT_FROM, STABLE_BELOW, TOO_FEW, status
from reintegration.i18n import _, format_decimal, format_percent

PSI_MODERATE = STABLE_BELOW
PSI_MAJOR = SHIFT_FROM
BAR_PX = 24
METRIC_NAMES = {
    "roc_auc": "ROC AUC",
    "average_precision": "Average precision",
    "brier": "Brier score",
}


def calibration_figure(table: pd.DataFrame, *, model_version: str, index_version: str) -> go.Figure:
    """Observed against predicted risk per bin of predicted probability, with the diagonal.

    Parameters
    ----------
    table : DataFrame
        ``bin_low``, ``bin_high``, ``n``, ``mean_predicted``, ``observed`` (None for an empty
        bin).
    model_version : str
        How the risk model version reads (``reintegration-risk v3``).
    index_version : str
        The index version whose outcomes the model predicts.
    """
    title = _("Calibration: predicted and observed risk")
    known = table.dropna(subset=["mean_predicted", "observed"])
    if known.empty:
        return empty_figure(_("No evaluation data for this version"), index_version, title=title)
    fig = base_figure(title, index_version, extra=model_version, height=400)
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash", "color": GREY}, name=_("perfect")
    )
    fig.add_scatter(
        x=known["mean_predicted"],
        y=known["observed"],
        mode="lines+markers",
        name=_("this version"),
        line={"color": BLUE},
        marker={"size": 8},
        customdata=known["n"],
        # Plotly's %{...} fields are not gettext placeholders: the text is translated unfilled.
        hovertemplate=_("predicted %{x:.0%}, observed %{y:.0%} (n = %{customdata:,})")
        + "<extra></extra>",
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title=_("Predicted risk"))
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title=_("Observed share not sustainable"))
    return fig


def subgroup_figure(
    rows: pd.DataFrame, *, metric: str, model_version: str, index_version: str
) -> go.Figure:
    """A metric overall and per subgroup; groups too small to judge are marked, not drawn.

    Parameters
    ----------
    rows : DataFrame
        ``group`` (``overall`` first), ``n`` (as people may see it), and ``metric`` (None when
        insufficient).
    """
    title = _("{metric} by subgroup", metric=METRIC_NAMES.get(metric, metric))
    if rows.empty:
        return empty_figure(_("No evaluation data for this version"), index_version, title=title)
    fig = base_figure(
        title,
        index_version,
        extra=_("{model}; grey: too few returnees to judge", model=model_version),
        height=max(320, 120 + BAR_PX * len(rows)),
    )
    values = pd.to_numeric(rows[metric], errors="coerce")
    shown = values.notna()
    rows = rows.assign(group=rows["group"].map(_group_text))
    fig.add_bar(
        y=rows.loc[shown, "group"],
        x=values[shown],
        orientation="h",
        marker_color=BLUE,
        text=[_n(n) for n in rows.loc[shown, "n"]],
        textposition="outside",
        cliponaxis=False,
        hovertemplate="%{y}: %{x:.3f}, %{text}<extra></extra>",
        showlegend=False,
    )
    if (~shown).any():
        fig.add_scatter(
            y=rows.loc[~shown, "group"],
            x=[0] * int((~shown).sum()),
            mode="markers+text",
            marker={"symbol": "square-open", "color": SUPPRESSED_GREY},
            text=[_("insufficient data")] * int((~shown).sum()),
            textposition="middle right",
            name=_("insufficient data"),
            hoverinfo="skip",
        )
    fig.update_xaxes(
        range=[0, 1.15], tickvals=[0, 0.25, 0.5, 0.75, 1], title=METRIC_NAMES.get(metric, metric)
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def _group_text(group: object) -> str:
    """A group's name as shown: ``overall`` in the reader's language, codes as they are."""
    return _("overall") if group == "overall" else str(group)


def _n(n: object) -> str:
    """A group size as sent (a count, or the models' suppression words) beside its bar."""
    text = str(n)
    if text.isdigit():
        return f"n = {int(text):,}"
    return _("n suppressed") if text == "suppressed" else text


def drift_figure(table: pd.DataFrame, *, index_version: str, labels: dict[str, str]) -> go.Figure:
    """Population stability index of each item in the latest batch, against the reference.

    Parameters
    ----------
    table : DataFrame
        As :func:`reintegration.quality.drift_by_item` returns it. Items whose ``status`` is
        "too few rows" (computed from ``psi_latest`` and ``n_latest``, or ``n``, when the
        table has no ``status``) get no bar but a grey mark saying so.
    labels : dict
        Item id to a short label.
    """
    title = _("Drift of each item in the latest batch")
    if table.empty:
        return empty_figure(
            _("No drift measured yet: it is computed after each upload"), index_version, title=title
        )
    fig = base_figure(
        title,
        index_version,
        extra=_(
            "PSI; {moderate} moderate, {major} major shift; items with fewer than {rows} "
            "answers: too few rows",
            moderate=PSI_MODERATE,
            major=PSI_MAJOR,
            rows=MIN_ROWS,
        ),
        height=140 + BAR_PX * len(table),
    )
    if "status" in table:
        states = table["status"].tolist()
    else:
        sizes = table["n_latest"] if "n_latest" in table else table["n"]
        states = [status(p, n) for p, n in zip(table["psi_latest"], sizes, strict=True)]
    few = pd.Series([s == TOO_FEW for s in states], index=table.index)
    psi = table["psi_latest"].astype(float).where(~few)
    colours = [
        VERMILLION if v >= PSI_MAJOR else ORANGE if v >= PSI_MODERATE else BLUE
        for v in psi.fillna(0)
    ]
    fig.add_bar(
        y=[labels.get(i, i) for i in table["item"]],
        x=psi,
        orientation="h",
        marker_color=colours,
        customdata=table[["psi_mean", "psi_max", "batches"]].to_numpy(),
        hovertemplate=_(
            "%{y}: PSI %{x:.3f} (mean %{customdata[0]:.3f}, max %{customdata[1]:.3f} over "
            "%{customdata[2]} batches)"
        )
        + "<extra></extra>",
        showlegend=False,
    )
    if few.any():
        sizes = table["n_latest"] if "n_latest" in table else table["n"]
        fig.add_scatter(
            y=[labels.get(i, i) for i in table.loc[few, "item"]],
            x=[0] * int(few.sum()),
            mode="markers+text",
            marker={"symbol": "square-open", "color": SUPPRESSED_GREY},
            text=[_("too few rows (n = {n})", n=int(n)) for n in sizes[few]],
            textposition="middle right",
            name=TOO_FEW,
            hoverinfo="skip",
            showlegend=False,
        )
    for value in (PSI_MODERATE, PSI_MAJOR):
        vline(fig, value)
    fig.update_xaxes(title=_("Population stability index"), rangemode="tozero")
    fig.update_yaxes(autorange="reversed")
    return fig


def comparison_figure(
    rows: pd.DataFrame, *, first: str, second: str, index_version: str
) -> go.Figure:
    """Two versions' ROC AUC overall and per subgroup, side by side.

    Parameters
    ----------
    rows : DataFrame
        ``group``, ``first``, ``second`` (None when insufficient or not evaluated).
    first, second : str
        How each version reads (``v1 · champion``).
    """
    title = _("Two versions by subgroup: ROC AUC")
    values = rows.assign(
        first=pd.to_numeric(rows["first"], errors="coerce"),
        second=pd.to_numeric(rows["second"], errors="coerce"),
    )
    if values.empty or values[["first", "second"]].isna().all().all():
        return empty_figure(
            _("Neither version has an evaluation by subgroup"), index_version, title=title
        )
    fig = base_figure(title, index_version, height=max(320, 140 + 2 * BAR_PX * len(rows)))
    for column, name, colour in (("first", first, GREY), ("second", second, BLUE)):
        fig.add_bar(
            y=values["group"].map(_group_text),
            x=values[column],
            orientation="h",
            name=name,
            marker_color=colour,
            text=[format_decimal(v, 3) if pd.notna(v) else "" for v in values[column]],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{text}<extra>" + name + "</extra>",
        )
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.15})
    fig.update_xaxes(range=[0, 1.15], title=METRIC_NAMES["roc_auc"])
    fig.update_yaxes(autorange="reversed")
    return fig


def preview_figure(
    rows: pd.DataFrame,
    *,
    measure: str,
    title: str,
    before: str,
    after: str,
    index_version: str,
    share: bool,
) -> go.Figure:
    """A measure before and after a promotion, overall and per group: one line per group
    from its value before (grey) to its value after (blue).

    Parameters
    ----------
    rows : DataFrame
        ``label`` (the group as people read it), ``<measure>_before``, ``<measure>_after``.
    measure : str
        ``sustainable`` or a dimension or ``composite``.
    title, before, after : str
        The title and how the two versions read.
    share : bool
        Whether the measure is a share (percentages) or a mean (decimals).
    """
    shown = rows.dropna(subset=[f"{measure}_before", f"{measure}_after"])
    if shown.empty:
        return empty_figure(_("No group to compare"), index_version, title=title)
    fig = base_figure(title, index_version, height=max(300, 120 + BAR_PX * len(shown)))

    def text(value: float) -> str:
        return format_percent(value, 1) if share else format_decimal(value, 3)

    a, b = shown[f"{measure}_before"].astype(float), shown[f"{measure}_after"].astype(float)
    for (_row, label), x0, x1 in zip(shown["label"].items(), a, b, strict=True):
        fig.add_scatter(
            x=[x0, x1],
            y=[label, label],
            mode="lines",
            line={"color": SUPPRESSED_GREY, "width": 3},
            hoverinfo="skip",
            showlegend=False,
        )
    fig.add_scatter(
        x=a,
        y=shown["label"],
        mode="markers",
        name=before,
        marker={"color": GREY, "size": 10},
        text=[text(v) for v in a],
        hovertemplate="%{y}: %{text}<extra>" + before + "</extra>",
    )
    fig.add_scatter(
        x=b,
        y=shown["label"],
        mode="markers",
        name=after,
        marker={"color": BLUE, "size": 10, "symbol": "diamond"},
        text=[text(v) for v in b],
        hovertemplate="%{y}: %{text}<extra>" + after + "</extra>",
    )
    fig.update_layout(legend={"orientation": "h", "y": -0.2})
    fig.update_xaxes(tickformat=".0%" if share else ".2f")
    fig.update_yaxes(autorange="reversed")
    return fig
