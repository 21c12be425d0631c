"""What every figure shares: the colour-blind-safe palette, titles that name the index version,
the mark of a suppressed cell, and the figure shown when there is nothing to draw.

The palette is Okabe and Ito's (2008), distinguishable under the common colour-vision
deficiencies; order carries meaning only where a legend also spells it out.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from reintegration.i18n import _, format_decimal, format_integer, format_percent
from reintegration.intervals import wilson_interval

BLACK = "#000000"
ORANGE = "#E69F00"
SKY_BLUE = "#56B4E9"
GREEN = "#009E73"
YELLOW = "#F0E442"
BLUE = "#0072B2"
VERMILLION = "#D55E00"
PURPLE = "#CC79A7"
GREY = "#999999"
SUPPRESSED_GREY = "#BBBBBB"

COLORWAY = (BLUE, ORANGE, GREEN, VERMILLION, SKY_BLUE, PURPLE, BLACK, YELLOW)
DARK_GREY = "#4D4D4D"
FIGURE_COLOURS = {"economic": BLUE, "social": ORANGE, "psychosocial": GREEN, "composite": DARK_GREY}
LEVEL_COLOURS = {"low": VERMILLION, "medium": ORANGE, "high": BLUE}

FIGURE_LABELS = {
    "economic": "Economic",
    "social": "Social",
    "psychosocial": "Psychosocial",
    "composite": "Composite",
    "share_sustainable": "Share sustainable",
}
GROUP_LABELS = {
    "sex": "Sex",
    "age_group": "Child or adult",
    "return_type": "Return type",
    "country": "Country",
    "round": "Round",
    "months_band": "Months since return",
    "cohort": "Quarter of return",
    "assistance": "Assistance",
}
"""English names of the scores and groupings (files and code); screens use
:func:`figure_name` and :func:`group_name`, in the user's language."""
TOTAL = "all"
PERTURBED = "figures perturbed for privacy"
"""What every export of protected figures says (a chart says it in the user's language)."""
OTHER_GROUPS = "other groups: fewer than {min_cell} each"
"""The name of the row gathering the groups protected figures do not list (as
``reintegration.disclosure.OTHER_LABEL``)."""
Z_95 = 1.959963984540054


def figure_name(code: str) -> str:
    """A score's name in the current language (``composite`` -> ``Composite``)."""
    names = {
        "economic": _("Economic"),
        "social": _("Social"),
        "psychosocial": _("Psychosocial"),
        "composite": _("Composite"),
        "share_sustainable": _("Share sustainable"),
    }
    return names.get(code, code)


def group_name(code: str) -> str:
    """A grouping's name in the current language (``age_group`` -> ``Child or adult``)."""
    names = {
        "sex": _("Sex"),
        "age_group": _("Child or adult"),
        "return_type": _("Return type"),
        "country": _("Country"),
        "round": _("Round"),
        "months_band": _("Months since return"),
        "cohort": _("Quarter of return"),
        "assistance": _("Assistance"),
    }
    return names.get(code, code)


def perturbed_text() -> str:
    """:data:`PERTURBED` in the current language."""
    return _("figures perturbed for privacy")


def other_groups(min_cell: int) -> str:
    """The name of the row gathering the groups protected figures do not list."""
    return _("other groups: fewer than {min_cell} each", min_cell=format_integer(min_cell))


def value_text(value: float, figure: str) -> str:
    """A figure as printed on a bar or a point: a share as a percentage, a mean to 2 decimals.

    Examples
    --------
    >>> value_text(0.169, "share_sustainable"), value_text(0.4167, "composite")
    ('17%', '0.42')
    """
    if value != value:
        return ""
    return format_percent(value) if "share" in figure else format_decimal(value, 2)


def with_n(name: str, n: object, suppressed: bool, min_cell: int) -> str:
    """A group's name with its n, as an axis shows it: ``Female (n = 1,234)``."""
    return _("{group} ({n})", group=name, n=n_text(n, suppressed, min_cell))


SUBTITLE_CHARACTERS = 50
"""Longest subtitle line of a stamped chart: about what a phone's screen holds."""


def wrapped(text: str, width: int = SUBTITLE_CHARACTERS) -> list[str]:
    """``text`` in lines of about ``width`` characters, broken between its `` · `` parts, and
    within a part only when it is longer than a line.

    Examples
    --------
    >>> wrapped("Index version v1 · n = 1,200 returnees · figures perturbed for privacy", 40)
    ['Index version v1 · n = 1,200 returnees', 'figures perturbed for privacy']
    """
    lines: list[str] = []
    for part in text.split(" · "):
        first, *rest = textwrap.wrap(part, width, break_long_words=False) or [part]
        if lines and len(lines[-1]) + 3 + len(first) <= width:
            lines[-1] = f"{lines[-1]} · {first}"
        else:
            lines.append(first)
        lines.extend(rest)
    return lines


LABEL_CHARACTERS = 28
"""Longest line of a group's name on an axis: long names wrap, so a phone keeps room for
the bars."""


def wrap_label(text: str, width: int = LABEL_CHARACTERS) -> str:
    """``text`` broken into lines of about ``width`` characters, between words.

    Examples
    --------
    >>> wrap_label("Female · Child (under 18) · Forced (n = 24)")
    'Female · Child (under 18) ·<br>Forced (n = 24)'
    >>> wrap_label("Female · Child · Forced (n = 5)")
    'Female · Child · Forced<br>(n = 5)'
    """
    # A parenthesis (the n, "fewer than 5") stays whole: textwrap breaks at ASCII spaces only.
    glued = re.sub(r"\([^()]*\)", lambda m: m.group(0).replace(" ", "\u00a0"), text)
    lines = textwrap.wrap(glued, width, break_long_words=False)
    return "<br>".join(lines).replace("\u00a0", " ") if lines else text


def stamp(fig: go.Figure, text: str) -> go.Figure:
    """Add ``text`` (the filters and day of extraction) as a line under the title, so the PNG
    the toolbar saves names them too; ``layout.meta.stamp`` holds it. The subtitle is broken
    into short lines, so a phone shows all of it."""
    meta = dict(fig.layout.meta or {})
    if meta.get("stamp"):
        return fig
    meta["stamp"] = text
    lines = wrapped(fig.layout.title.subtitle.text or "")
    small = [f"<span style='font-size:11px'>{line}</span>" for line in wrapped(text)]
    top = fig.layout.margin.t if fig.layout.margin.t is not None else 80
    # The base margin holds the title and one line under it; each further line needs ~18 px.
    # The title is pinned to the top, under the toolbar (by default Plotly centres it in the
    # margin, which would push the lines under it onto the plot).
    fig.update_layout(
        meta=meta,
        title={"yref": "container", "y": 1, "yanchor": "top", "pad": {"t": 30}},
        title_subtitle_text="<br>".join([*lines, *small]),
        margin={"t": top + 18 * (len(lines) + len(small) - 1) + 22},
    )
    return fig


def colour(index: int) -> str:
    """The ``index``-th colour of the palette, cycling."""
    return COLORWAY[index % len(COLORWAY)]


def suppressed_label(min_cell: int) -> str:
    """How a suppressed cell reads: never a zero."""
    return _("fewer than {min_cell}", min_cell=format_integer(min_cell))


def subtitle(index_version: str | None, extra: str = "") -> str:
    """The line under every title: which index version the figure shows, then ``extra``.

    ``None`` is for figures of answers as received, which no index version touches."""
    text = (
        _("Index version {version}", version=index_version)
        if index_version
        else _("Answers as received, no index")
    )
    return f"{text} · {extra}" if extra else text


def base_figure(
    title: str, index_version: str | None, *, extra: str = "", height: int = 380
) -> go.Figure:
    """An empty figure with the shared look, its title and the index version under it."""
    # The axes are styled here rather than through a named template: a template is copied and
    # validated into every figure, which cost more than all else a filter change does.
    axis = {
        "showline": True,
        "linecolor": "#444444",
        "ticks": "outside",
        "tickcolor": "#444444",
        "showgrid": False,
        "zeroline": False,
        "automargin": True,
    }
    return go.Figure(
        layout={
            "title": {
                "text": title,
                "subtitle": {"text": subtitle(index_version, extra)},
                "x": 0.01,
            },
            "colorway": list(COLORWAY),
            "template": {},
            "plot_bgcolor": "white",
            "paper_bgcolor": "white",
            "xaxis": axis,
            "yaxis": axis,
            "height": height,
            "margin": {"l": 10, "r": 20, "t": 80, "b": 80},
            "font": {
                "family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif",
                "size": 13,
            },
            # Below the plot, clear of the title and its subtitle whatever their length.
            "legend": {
                "orientation": "h",
                "yref": "container",
                "y": 0.0,
                "yanchor": "bottom",
                "x": 0.0,
                "xanchor": "left",
            },
            "meta": {"index_version": index_version},
        }
    )


def vline(
    fig: go.Figure, x: float, *, text: str = "", dash: str = "dash", align: str = "left"
) -> None:
    """A vertical reference line across the plot at ``x``, with an optional label above it.

    Cheaper than ``Figure.add_vline``, which resolves every axis of the figure for each line.
    """
    fig.add_shape(
        type="line",
        x0=x,
        x1=x,
        xref="x",
        y0=0,
        y1=1,
        yref="paper",
        layer="above",
        line={"dash": dash, "color": GREY, "width": 1},
    )
    if text:
        fig.add_annotation(
            x=x,
            xref="x",
            y=1,
            yref="paper",
            yanchor="bottom",
            xanchor="right" if align == "left" else "left",
            text=text,
            showarrow=False,
            font={"size": 11, "color": GREY},
        )


def empty_figure(message: str, index_version: str | None, *, title: str = "") -> go.Figure:
    """A figure that says why there is nothing to draw (no data, every cell suppressed)."""
    fig = base_figure(title or _("No data"), index_version, height=260)
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 15}
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def mark_figures(fig: go.Figure, protected: bool) -> go.Figure:
    """Say in ``fig`` which figures it draws: protected ones get :data:`PERTURBED` (in the
    user's language) at the end of the subtitle (so the PNG export carries it too);
    ``layout.meta.figures`` is ``"protected"`` or ``"exact"``. Marking twice adds nothing."""
    meta = dict(fig.layout.meta or {})
    meta["figures"] = "protected" if protected else "exact"
    fig.update_layout(meta=meta)
    if protected:
        text = fig.layout.title.subtitle.text or ""
        said = perturbed_text()
        if said not in text:
            fig.update_layout(title_subtitle_text=f"{text} · {said}" if text else said)
    return fig


def base_figure_note(fig: go.Figure, text: str, *, below: int = 70, bottom: int = 110) -> None:
    """A line of text under the plot, left-aligned, ``below`` pixels under the plot area (past
    the axis title and the legend's row), in a bottom margin of ``bottom`` pixels."""
    fig.add_annotation(
        text=text,
        xref="paper",
        yref="paper",
        x=0,
        y=0,
        yshift=-below,
        yanchor="top",
        xanchor="left",
        showarrow=False,
        font={"size": 11},
    )
    fig.update_layout(margin={"b": bottom})


def is_other(row: Mapping[str, object]) -> bool:
    """Whether an aggregate row is the one gathering the groups protected figures do not
    list."""
    value = row.get("other", False)
    return bool(value) and value == value  # NaN (a frame without the column) is not True


def group_label(
    row: Mapping[str, object],
    by: Sequence[str],
    labels: Mapping[str, str],
    *,
    min_cell: int = 5,
) -> str:
    """A group's name on an axis: its values in ``by`` order, each through ``labels``; the row
    of gathered groups (protected figures) reads :data:`OTHER_GROUPS`."""
    if is_other(row):
        return other_groups(min_cell)
    parts = []
    for name in by:
        value = row[name]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            parts.append(_("not recorded"))
        else:
            parts.append(labels.get(str(value), str(value)))
    return " · ".join(parts) if parts else _("All returnees")


def cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The group rows of an aggregate frame: every row but the total (the last)."""
    return frame.iloc[:-1] if len(frame) else frame


def value_columns(frame: pd.DataFrame, figure: str) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Mean, low and high of ``figure`` per row; a share's interval is the one its answer
    gives (Wilson's, on the effective n: ``reintegration.intervals``), or Wilson's on n for a
    frame that has none.

    Examples
    --------
    >>> frame = pd.DataFrame({"share_sustainable": [0.5], "returnees": [10]})
    >>> [round(float(s.iloc[0]), 4) for s in value_columns(frame, "share_sustainable")]
    [0.5, 0.2366, 0.7634]
    """
    if figure == "share_sustainable":
        mean = frame["share_sustainable"].astype(float)
        if "share_sustainable_ci_low" in frame:
            low = frame["share_sustainable_ci_low"].astype(float)
            high = frame["share_sustainable_ci_high"].astype(float)
            return mean, low, high
        n = frame["returnees"].astype(float).to_numpy()
        bounds = wilson_interval(mean.to_numpy(), n)
        return (
            mean,
            pd.Series(bounds[0], index=frame.index),
            pd.Series(bounds[1], index=frame.index),
        )
    return (
        frame[f"{figure}_mean"].astype(float),
        frame[f"{figure}_low"].astype(float),
        frame[f"{figure}_high"].astype(float),
    )


def n_text(n: object, suppressed: bool, min_cell: int) -> str:
    """The n printed beside a bar: a count, or the suppression mark."""
    if suppressed:
        return suppressed_label(min_cell)
    if n is None or (isinstance(n, float) and np.isnan(n)):
        return _("n unknown")
    return _("n = {n}", n=format_integer(int(n)))
