"""Readable figures (issue 15): every bar and point prints its value (shares as %, means to 2
decimals) in the user's language, n sits beside each group's name, and a chart can carry its
filters and day under its title so its PNG does too."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboards.figures.breakdowns import breakdown_figure
from dashboards.figures.common import stamp, value_text, with_n
from dashboards.figures.overview import histogram_figure, levels_figure, means_figure
from dashboards.figures.trajectories import trajectory_figure
from reintegration.aggregate import breakdown
from reintegration.i18n import use_language
from tests.dashboards.test_figures import FIGURES, bars, records, trajectory_frame

VERSION = "rss-v2-derived"


def by_sex() -> pd.DataFrame:
    data = records(
        {("female",): [0.2, 0.4, 0.6, 0.8, 0.5, 0.5], ("male",): [0.7, 0.8, 0.9, 0.7, 0.8]},
        ["sex"],
    )
    return breakdown(data, ["sex"], figures=FIGURES, min_cell=5)


def test_a_share_prints_as_a_percentage_and_a_mean_to_two_decimals():
    assert value_text(0.169, "share_sustainable") == "17%"
    assert value_text(0.41666, "economic") == "0.42"
    with use_language("fr"):
        assert value_text(0.41666, "economic") == "0,42"
    assert value_text(float("nan"), "economic") == ""


def test_every_breakdown_bar_prints_its_value_and_its_group_its_n():
    fig = breakdown_figure(
        by_sex(), by=["sex"], figure="share_sustainable", index_version=VERSION, min_cell=5
    )

    bar = bars(fig)
    assert list(bar.y) == ["female (n = 6)", "male (n = 5)"]
    assert list(bar.text) == ["17%", "100%"]
    assert bar.textposition == "auto"  # inside, or beside a bar too short to hold it
    assert fig.layout.xaxis.ticktext[-1] == "100%"  # a share's axis in %, as its values


def test_the_n_of_a_large_group_is_grouped_in_the_users_language():
    assert with_n("Women", 1234, False, 5) == "Women (n = 1,234)"
    assert with_n("Women", None, True, 5) == "Women (fewer than 5)"
    with use_language("fr"):
        assert "1\u202f234" in with_n("Femmes", 1234, False, 5)


def test_the_overview_bars_print_their_values():
    means = pd.DataFrame({"figure": list(FIGURES), "mean": 0.5, "low": 0.45, "high": 0.55}).astype(
        {"mean": float}
    )
    assert list(bars(means_figure(means, index_version=VERSION, n=100)).text) == ["0.50"] * 4

    bins = pd.DataFrame({"bin_low": [0.0, 0.5], "bin_high": [0.5, 1.0], "count": [1234, 60]})
    histogram = histogram_figure(bins, index_version=VERSION, min_cell=5)
    assert list(bars(histogram).text) == ["1,234", "60"]

    levels = pd.DataFrame({"level": ["low", "medium", "high"], "share": [0.169, 0.5, 0.331]})
    fig = levels_figure(levels, index_version=VERSION, min_cell=5, n=300)
    assert list(bars(fig).text) == ["17%", "50%", "33%"]
    assert "n = 300 returnees" in fig.layout.title.subtitle.text


def test_each_trajectory_point_prints_its_value_and_n():
    fig = trajectory_figure(
        trajectory_frame(),
        axis="months",
        by=["sex"],
        figure="composite",
        index_version=VERSION,
        min_cell=5,
    )

    male = next(t for t in fig.data if t.name == "male")
    assert "text" in male.mode
    assert list(male.text) == ["0.48 (n = 5)", "", "0.73 (n = 7)"]  # a gap prints nothing


def test_a_stamp_puts_the_filters_and_day_under_the_title_once():
    fig = means_figure(
        pd.DataFrame({"figure": ["composite"], "mean": [0.5], "low": [0.4], "high": [0.6]}),
        index_version=VERSION,
        n=np.float64(50),
    )
    before = fig.layout.margin.t

    stamp(stamp(fig, "Filters: country SEN · extracted 5 Dec 2026"), "again")

    subtitle = fig.layout.title.subtitle.text
    assert subtitle.startswith(f"Index version {VERSION}")
    assert "Filters: country SEN · extracted 5 Dec 2026" in subtitle and "again" not in subtitle
    assert fig.layout.meta["stamp"] == "Filters: country SEN · extracted 5 Dec 2026"
    assert fig.layout.margin.t > before
