"""Figures of the models page: the risk model's calibration, its metric by subgroup, and drift
of each item against the data the index version was built on."""

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
    title = "Calibration: predicted and observed risk"
    known = table.dropna(subset=["mean_predicted", "observed"])
    if known.empty:
        return empty_figure("No evaluation data for this version", index_version, title=title)
    fig = base_figure(title, index_version, extra=model_version, height=400)
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash", "color": GREY}, name="perfect"
    )
    fig.add_scatter(
        x=known["mean_predicted"],
        y=known["observed"],
        mode="lines+markers",
        name="this version",
        line={"color": BLUE},
        marker={"size": 8},
        customdata=known["n"],
        hovertemplate="predicted %{x:.0%}, observed %{y:.0%} (n = %{customdata:,})<extra></extra>",
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title="Predicted risk")
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title="Observed share not sustainable")
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
    title = f"{METRIC_NAMES.get(metric, metric)} by subgroup"
    if rows.empty:
        return empty_figure("No evaluation data for this version", index_version, title=title)
    fig = base_figure(
        title,
        index_version,
        extra=f"{model_version}; grey: too few returnees to judge",
        height=max(320, 120 + BAR_PX * len(rows)),
    )
    values = pd.to_numeric(rows[metric], errors="coerce")
    shown = values.notna()
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
            text=["insufficient data"] * int((~shown).sum()),
            textposition="middle right",
            name="insufficient data",
            hoverinfo="skip",
        )
    fig.update_xaxes(
        range=[0, 1.15], tickvals=[0, 0.25, 0.5, 0.75, 1], title=METRIC_NAMES.get(metric, metric)
    )
    fig.update_yaxes(autorange="reversed")
    return fig


def _n(n: object) -> str:
    """A group size as sent (a count, or the models' suppression words) beside its bar."""
    text = str(n)
    if text.isdigit():
        return f"n = {int(text):,}"
    return "n suppressed" if text == "suppressed" else text


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
    title = "Drift of each item in the latest batch"
    if table.empty:
        return empty_figure(
            "No drift measured yet: it is computed after each upload", index_version, title=title
        )
    fig = base_figure(
        title,
        index_version,
        extra=f"PSI; {PSI_MODERATE} moderate, {PSI_MAJOR} major shift; items with fewer "
        f"than {MIN_ROWS} answers: too few rows",
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
        hovertemplate="%{y}: PSI %{x:.3f} (mean %{customdata[0]:.3f}, max %{customdata[1]:.3f} "
        "over %{customdata[2]} batches)<extra></extra>",
        showlegend=False,
    )
    if few.any():
        sizes = table["n_latest"] if "n_latest" in table else table["n"]
        fig.add_scatter(
            y=[labels.get(i, i) for i in table.loc[few, "item"]],
            x=[0] * int(few.sum()),
            mode="markers+text",
            marker={"symbol": "square-open", "color": SUPPRESSED_GREY},
            text=[f"too few rows (n = {int(n)})" for n in sizes[few]],
            textposition="middle right",
            name=TOO_FEW,
            hoverinfo="skip",
            showlegend=False,
        )
    for value in (PSI_MODERATE, PSI_MAJOR):
        vline(fig, value)
    fig.update_xaxes(title="Population stability index", rangemode="tozero")
    fig.update_yaxes(autorange="reversed")
    return fig
