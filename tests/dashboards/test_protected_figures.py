"""Figure builders and helpers on small frames of protected figures (issue 12): each chart says
"figures perturbed for privacy" in its subtitle (so its PNG does) and exact ones do not, the
row gathering the unlisted groups is drawn and named, merged histogram bins keep their widths,
and the CSV of protected figures carries the label, the dates used and the gathered row's name.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboards import data
from dashboards.figures.assistance import assistance_figure
from dashboards.figures.breakdowns import breakdown_figure
from dashboards.figures.common import GREY, PERTURBED, mark_figures
from dashboards.figures.overview import histogram_figure, levels_figure, means_figure
from dashboards.figures.trajectories import trajectory_figure
from dashboards.scaffold import figures_note
from reintegration.aggregate import breakdown
from reintegration.analytics import Filters
from tests.dashboards.conftest import response_text_of
from tests.dashboards.test_figures import FIGURES, bars, records

VERSION = "rss-v2-derived"
OTHER = "other groups: fewer than 5 each"


def subtitle(fig: go.Figure) -> str:
    return str(fig.layout.title.subtitle.text)


def with_other(frame: pd.DataFrame, by: list[str], count: float | None) -> pd.DataFrame:
    """``frame`` (an exact breakdown, total last) with a gathered row before its total: group
    values missing, ``other`` true, ``count`` returnees (None: suppressed) and means of 0.3."""
    body, total = frame.iloc[:-1], frame.iloc[[-1]]
    row = dict.fromkeys(frame.columns)
    row.update(dict.fromkeys(by))
    for f in FIGURES:
        row.update({f"{f}_mean": 0.3, f"{f}_low": 0.2, f"{f}_high": 0.4})
    row.update(
        returnees=count,
        unscored=0,
        share_sustainable=0.1,
        suppressed=count is None,
        unscored_suppressed=False,
        other=True,
    )
    if count is None:
        row.update({f"{f}_mean": None for f in FIGURES})
    gathered = pd.DataFrame([row])
    out = pd.concat([body.assign(other=False), gathered, total.assign(other=False)])
    return out.reset_index(drop=True)


@pytest.fixture
def protected_by_sex() -> pd.DataFrame:
    rows = records(
        {("female",): [0.2, 0.4, 0.6, 0.8, 0.5, 0.5], ("male",): [0.3, 0.5, 0.7, 0.4, 0.6]},
        ["sex"],
    )
    return with_other(breakdown(rows, ["sex"], figures=FIGURES, min_cell=5), ["sex"], 7.0)


# -- the label ----------------------------------------------------------------------------------


def test_marking_a_figure_protected_says_so_in_its_subtitle_once():
    fig = go.Figure(layout={"title": {"text": "t", "subtitle": {"text": "Index version v"}}})

    mark_figures(fig, True)
    mark_figures(fig, True)

    assert subtitle(fig) == f"Index version v · {PERTURBED}"
    assert fig.layout.meta["figures"] == "protected"


def test_exact_figures_say_nothing_extra():
    fig = go.Figure(layout={"title": {"text": "t", "subtitle": {"text": "Index version v"}}})

    mark_figures(fig, False)

    assert subtitle(fig) == "Index version v"
    assert fig.layout.meta["figures"] == "exact"


# -- breakdowns and assistance -----------------------------------------------------------------


def test_a_protected_breakdown_draws_the_gathered_row_named_and_grey(protected_by_sex):
    fig = breakdown_figure(
        protected_by_sex,
        by=["sex"],
        figure="composite",
        index_version=VERSION,
        min_cell=5,
        labels={"female": "Female", "male": "Male"},
        protected=True,
    )

    bar = bars(fig)
    assert [y.replace("<br>", " ") for y in bar.y] == [
        "Female (n = 6)",
        "Male (n = 5)",
        f"{OTHER} (n = 7)",
    ]
    assert bar.x[2] == pytest.approx(0.3)
    assert list(bar.marker.color)[2] == GREY and list(bar.marker.color)[0] != GREY
    assert PERTURBED in subtitle(fig)
    assert "gathered into one row" in subtitle(fig)


def test_a_suppressed_gathered_row_is_marked_not_drawn(protected_by_sex):
    frame = with_other(protected_by_sex.iloc[[0, 1, 3]].reset_index(drop=True), ["sex"], None)

    fig = breakdown_figure(
        frame, by=["sex"], figure="composite", index_version=VERSION, min_cell=5, protected=True
    )

    assert not any(OTHER in y for y in bars(fig).y)
    (marks,) = [t for t in fig.data if t.type == "scatter" and t.mode == "markers"]
    assert [y.replace("<br>", " ") for y in marks.y] == [OTHER]  # it says "fewer than 5" already
    assert list(marks.x) == [0]


def test_an_exact_breakdown_names_no_other_row(protected_by_sex):
    exact = protected_by_sex[~protected_by_sex["other"]].reset_index(drop=True)

    fig = breakdown_figure(exact, by=["sex"], figure="composite", index_version=VERSION, min_cell=5)

    assert not any(OTHER in y for y in bars(fig).y)
    assert PERTURBED not in subtitle(fig)
    assert "cells under 5 returnees suppressed" in subtitle(fig)


def test_protected_assistance_says_both_association_and_perturbation(protected_by_sex):
    frame = protected_by_sex.rename(columns={"sex": "assistance"})

    fig = assistance_figure(
        frame, figure="economic", index_version=VERSION, min_cell=5, protected=True
    )

    assert "association, not effect" in subtitle(fig) and PERTURBED in subtitle(fig)
    assert f"{OTHER} (n = 7)" in [y.replace("<br>", " ") for y in bars(fig).y]


# -- overview -----------------------------------------------------------------------------------


def test_merged_bins_are_drawn_with_their_real_widths():
    merged = pd.DataFrame(
        {"bin_low": [0.0, 0.3, 0.5, 0.8], "bin_high": [0.3, 0.5, 0.8, 1.0], "count": [6, 12, 9, 5]}
    )

    fig = histogram_figure(merged, index_version=VERSION, min_cell=5, protected=True)

    bar = bars(fig)
    assert list(bar.width) == pytest.approx([0.3, 0.2, 0.3, 0.2])
    assert list(bar.x) == pytest.approx([0.15, 0.4, 0.65, 0.9])
    assert list(bar.y) == [6, 12, 9, 5]
    assert not [t for t in fig.data if t.type == "scatter"]  # nothing hidden, no zero drawn
    assert PERTURBED in subtitle(fig) and "merged to at least 5" in subtitle(fig)


def test_means_and_levels_of_protected_figures_say_so():
    means = pd.DataFrame({"figure": list(FIGURES), "mean": 0.5, "low": 0.4, "high": 0.6}).astype(
        {"mean": float, "low": float, "high": float}
    )
    levels = pd.DataFrame({"level": ["low", "medium", "high"], "share": [0.2, 0.5, 0.3]})

    shown = [
        means_figure(means, index_version=VERSION, n=40, protected=True),
        levels_figure(levels, index_version=VERSION, min_cell=5, n=40, protected=True),
        means_figure(means, index_version=VERSION, n=0, protected=True),  # an empty figure
    ]
    exact = means_figure(means, index_version=VERSION, n=40)

    assert all(PERTURBED in subtitle(f) for f in shown)
    assert PERTURBED not in subtitle(exact)


# -- trajectories -------------------------------------------------------------------------------


def test_a_trajectorys_gathered_row_is_told_under_the_plot_not_drawn():
    rows = records(
        {
            ("within 4 months", "female"): [0.2, 0.4, 0.6, 0.8, 0.5],
            ("over 4, under 9 months", "female"): [0.3, 0.5, 0.7, 0.4, 0.6],
        },
        ["months_band", "sex"],
    )
    exact = breakdown(rows, ["months_band", "sex"], figures=FIGURES, min_cell=5)
    frame = with_other(exact, ["months_band", "sex"], 6.0)

    fig = trajectory_figure(
        frame,
        axis="months",
        by=["sex"],
        figure="composite",
        index_version=VERSION,
        min_cell=5,
        protected=True,
    )

    (line,) = fig.data
    assert list(line.x) == ["within 4 months", "over 4, under 9 months"]
    notes = [a.text for a in fig.layout.annotations]
    assert any(OTHER in n and "n = 6" in n and "composite 0.30" in n for n in notes), notes
    assert PERTURBED in subtitle(fig)


# -- the CSV and the page note -------------------------------------------------------------------


def test_the_csv_frame_of_protected_figures_says_so_on_every_row(protected_by_sex):
    view = data.Shown(True, Filters(date_from=date(2025, 6, 1), date_to=date(2025, 6, 30)), 5)

    table = data.labelled(protected_by_sex, view)

    assert (table["figures"] == PERTURBED).all()
    assert (table["period_from"] == "2025-06-01").all()
    assert (table["period_to"] == "2025-06-30").all()
    assert [None if pd.isna(v) else v for v in table["label"]] == [None, None, OTHER, None]


def test_the_csv_frame_of_exact_figures_is_left_as_it_is(protected_by_sex):
    view = data.Shown(False, Filters(), 5)

    assert data.labelled(protected_by_sex, view) is protected_by_sex


@pytest.mark.parametrize(
    ("switch", "asked"),
    [(["publishable"], True), ([], False), (None, False), (True, True), ("yes", False)],
)
def test_the_switch_asks_for_protected_figures_only_when_on(switch, asked):
    assert data.asked(switch) is asked


def test_the_page_note_gives_the_dates_used():
    view = data.Shown(True, Filters(date_from=date(2025, 6, 1), date_to=date(2025, 6, 30)), 5)
    only_end = data.Shown(True, Filters(date_to=date(2024, 2, 29)), 5)

    text = response_text_of_list(figures_note(view))

    assert "Figures for 2025-06-01 to 2025-06-30." in text
    assert "Figures perturbed for privacy" in text and OTHER in text
    assert "Figures to 2024-02-29." in response_text_of_list(figures_note(only_end))
    assert response_text_of_list(figures_note(data.Shown(False, Filters(), 5))).startswith(
        "Exact figures"
    )


def response_text_of_list(children: list) -> str:
    """What a list of Dash children reads."""
    return response_text_of(
        [c.to_plotly_json() if hasattr(c, "to_plotly_json") else c for c in children]
    )
