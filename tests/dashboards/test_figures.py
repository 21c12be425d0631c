"""Figure builders on small frames: what each draws, its intervals, its n, suppression shown as
such (never a bar at zero), and the index version named under every title."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy import stats

from dashboards.figures.assistance import ASSOCIATION_NOTE, assistance_figure
from dashboards.figures.breakdowns import breakdown_figure
from dashboards.figures.common import (
    COLORWAY,
    FIGURE_COLOURS,
    LEVEL_COLOURS,
    PERTURBED,
)
from dashboards.figures.overview import histogram_figure, levels_figure, means_figure
from dashboards.figures.quality import enumerator_figure, missingness_figure
from dashboards.figures.trajectories import axis_order, retention_figure, trajectory_figure
from reintegration.aggregate import breakdown
from reintegration.intervals import wilson_interval

VERSION = "rss-v2-derived"
FIGURES = ("economic", "social", "psychosocial", "composite")


def records(groups: dict[tuple[str, ...], list[float]], by: list[str]) -> pd.DataFrame:
    """One row per returnee: the group values, and every figure equal to the given composite."""
    rows = []
    for key, values in groups.items():
        for value in values:
            row = dict(zip(by, key, strict=True))
            row.update(dict.fromkeys(FIGURES, value))
            row["sustainable"] = value >= 0.66
            row["level"] = "high" if value >= 0.66 else ("medium" if value >= 0.33 else "low")
            rows.append(row)
    return pd.DataFrame(rows)


def bars(fig: go.Figure) -> go.Bar:
    (bar,) = [t for t in fig.data if t.type == "bar"]
    return bar


def texts(fig: go.Figure) -> list[str]:
    return [str(t) for trace in fig.data for t in (trace.text or ()) if t is not None]


# -- breakdowns -------------------------------------------------------------------------------


@pytest.fixture
def by_sex() -> pd.DataFrame:
    data = records(
        {
            ("female",): [0.2, 0.4, 0.6, 0.8, 0.5, 0.5],
            ("male",): [0.3, 0.5, 0.7, 0.4, 0.6, 0.2, 0.9],
            ("other",): [0.9, 0.1],  # two returnees: suppressed, and its complement with it
        },
        ["sex"],
    )
    return breakdown(data, ["sex"], figures=FIGURES, min_cell=5)


def test_a_breakdown_draws_each_shown_group_with_its_95_percent_interval(by_sex):
    fig = breakdown_figure(
        by_sex, by=["sex"], figure="composite", index_version=VERSION, min_cell=5
    )
    bar = bars(fig)
    male = by_sex[by_sex["sex"] == "male"].iloc[0]
    assert list(bar.y) == ["male (n = 7)"]  # without labels, the code is the name; n beside it
    assert list(bar.text) == ["0.51"]  # the value printed on the bar
    assert bar.x[0] == pytest.approx(np.mean([0.3, 0.5, 0.7, 0.4, 0.6, 0.2, 0.9]))
    values = [0.3, 0.5, 0.7, 0.4, 0.6, 0.2, 0.9]
    half = stats.t.ppf(0.975, 6) * np.std(values, ddof=1) / np.sqrt(7)  # Student's t, n - 1 df
    assert bar.error_x.array[0] == pytest.approx(half)
    assert bar.error_x.arrayminus[0] == pytest.approx(half)
    assert male["composite_high"] - male["composite_mean"] == pytest.approx(half)


def test_a_suppressed_group_is_marked_never_drawn_as_a_bar(by_sex):
    # "other" has 2 returnees; the next smallest group (female, 6) is suppressed with it, or the
    # total would give it away.
    assert by_sex.set_index("sex").loc[["other", "female"], "suppressed"].all()
    fig = breakdown_figure(
        by_sex, by=["sex"], figure="composite", index_version=VERSION, min_cell=5
    )
    assert list(bars(fig).y) == ["male (n = 7)"]
    (marks,) = [t for t in fig.data if t.type == "scatter" and t.mode == "markers"]
    assert sorted(marks.y) == ["female (fewer than 5)", "other (fewer than 5)"]
    assert list(marks.x) == [0, 0]
    assert marks.name == "suppressed (fewer than 5 returnees)"


def test_a_breakdown_names_its_index_version_and_groups(by_sex):
    fig = breakdown_figure(
        by_sex,
        by=["sex"],
        figure="economic",
        index_version=VERSION,
        min_cell=5,
        labels={"male": "Male"},
    )
    assert fig.layout.title.text == "Economic by sex"
    assert fig.layout.title.subtitle.text.startswith(f"Index version {VERSION}")
    assert "Male (n = 7)" in bars(fig).y
    assert bars(fig).marker.color == FIGURE_COLOURS["economic"]


def test_intersections_name_every_group_value():
    by = ["sex", "age_group", "return_type"]
    data = records(
        {
            ("female", "child", "forced"): [0.1, 0.2, 0.3, 0.4, 0.5],
            ("male", "adult", "voluntary"): [0.5, 0.6, 0.7, 0.8, 0.9, 0.6],
        },
        by,
    )
    frame = breakdown(data, by, figures=FIGURES, min_cell=5)
    fig = breakdown_figure(
        frame,
        by=by,
        figure="composite",
        index_version=VERSION,
        min_cell=5,
        labels={"female": "Female", "child": "Child", "forced": "Forced"},
    )
    assert "Female · Child · Forced<br>(n = 5)" in bars(fig).y  # long names wrap
    assert fig.layout.title.text == "Composite by sex × child or adult × return type"


def test_the_share_sustainable_draws_the_interval_its_answer_gives(by_sex):
    fig = breakdown_figure(
        by_sex, by=["sex"], figure="share_sustainable", index_version=VERSION, min_cell=5
    )
    male = by_sex[by_sex["sex"] == "male"].iloc[0]
    low, high = wilson_interval(np.array([2 / 7]), np.array([7.0]))  # no clusters: Wilson's
    assert male["share_sustainable_ci_low"] == pytest.approx(low[0])
    assert bars(fig).x[0] == pytest.approx(2 / 7)
    assert bars(fig).error_x.arrayminus[0] == pytest.approx(2 / 7 - low[0])
    assert bars(fig).error_x.array[0] == pytest.approx(high[0] - 2 / 7)


def test_wilson_interval_is_unknown_without_n():
    assert np.isnan(wilson_interval(np.array([0.5]), np.array([0.0]))).all()
    assert np.isnan(wilson_interval(np.array([np.nan]), np.array([10.0]))).all()


def test_a_breakdown_without_rows_says_so():
    frame = breakdown(
        records({}, ["sex"]).reindex(columns=["sex", *FIGURES, "sustainable", "level"]),
        ["sex"],
        figures=FIGURES,
    )
    fig = breakdown_figure(frame, by=["sex"], figure="composite", index_version=VERSION, min_cell=5)
    assert fig.layout.annotations[0].text == "No returnees match these filters"


# -- overview ---------------------------------------------------------------------------------


def test_means_are_drawn_with_their_intervals_and_n():
    means = pd.DataFrame(
        {
            "figure": list(FIGURES),
            "mean": [0.5, 0.6, np.nan, 0.55],
            "low": [0.45, 0.5, np.nan, 0.5],
            "high": [0.55, 0.7, np.nan, 0.6],
        }
    )
    fig = means_figure(means, index_version=VERSION, n=1234)
    bar = bars(fig)
    assert list(bar.x) == ["Economic", "Social", "Composite"]
    assert list(bar.error_y.array) == pytest.approx([0.05, 0.1, 0.05])
    assert list(bar.error_y.arrayminus) == pytest.approx([0.05, 0.1, 0.05])
    assert fig.layout.title.subtitle.text == f"Index version {VERSION} · n = 1,234 returnees"


def test_suppressed_means_say_so():
    means = pd.DataFrame({"figure": list(FIGURES), "mean": np.nan, "low": np.nan, "high": np.nan})
    fig = means_figure(means, index_version=VERSION, n=None)
    assert fig.layout.annotations[0].text == "Too few returnees to show a mean"
    assert VERSION in fig.layout.title.subtitle.text


def test_histogram_marks_suppressed_bins_without_drawing_them():
    bins = pd.DataFrame({"bin_low": [0.0, 0.5], "bin_high": [0.5, 1.0], "count": [12, None]})
    fig = histogram_figure(bins, index_version=VERSION, min_cell=5, thresholds=(0.33, 0.66))
    assert list(bars(fig).y) == [12]
    (marks,) = [t for t in fig.data if t.type == "scatter"]
    assert list(marks.x) == [0.75] and marks.name == "fewer than 5"
    assert [s.x0 for s in fig.layout.shapes] == [0.33, 0.66]


def test_levels_show_shares_in_band_colours_and_suppression_as_text():
    levels = pd.DataFrame({"level": ["low", "medium", "high"], "share": [0.25, np.nan, 0.5]})
    fig = levels_figure(levels, index_version=VERSION, min_cell=5)
    bar = bars(fig)
    assert list(bar.text) == ["25%", "fewer than 5", "50%"]
    assert list(bar.marker.color) == [LEVEL_COLOURS[x] for x in ("low", "medium", "high")]
    assert list(bar.marker.pattern.shape) == ["", "/", ""]


# -- trajectories -----------------------------------------------------------------------------

W, M, L = "within 4 months", "over 4, under 9 months", "9 or more months"


def trajectory_frame() -> pd.DataFrame:
    by = ["months_band", "sex"]
    data = records(
        {
            (L, "female"): [0.7, 0.8, 0.6, 0.7, 0.9],
            (W, "female"): [0.2, 0.3, 0.4, 0.3, 0.2, 0.3],
            (W, "male"): [0.4, 0.5, 0.4, 0.5, 0.6],
            (M, "male"): [0.5, 0.6],  # suppressed (and a complement with it)
            (L, "male"): [0.6, 0.7, 0.8, 0.6, 0.7, 0.8, 0.9],
        },
        by,
    )
    return breakdown(data, by, figures=FIGURES, min_cell=5)


def test_time_bands_are_in_reading_order():
    assert axis_order([L, M, W, "all"], "months") == [W, M, L]
    assert axis_order(["10", "2", "1", "all"], "round") == ["1", "2", "10"]
    assert axis_order(["2025Q1", "2024Q3"], "cohort") == ["2024Q3", "2025Q1"]


def test_a_trajectory_has_a_line_per_group_and_a_gap_where_suppressed():
    frame = trajectory_frame()
    fig = trajectory_figure(
        frame, axis="months", by=["sex"], figure="composite", index_version=VERSION, min_cell=5
    )
    lines = {t.name: t for t in fig.data}
    assert set(lines) == {"female", "male"}
    male = lines["male"]
    assert list(male.x) == [W, M, L]
    shown = frame.set_index(["months_band", "sex"])
    assert math.isnan(male.y[1])  # the middle band: two returnees, a gap
    assert male.y[2] == pytest.approx(shown.loc[(L, "male"), "composite_mean"])
    assert male.error_y.array[2] == pytest.approx(
        shown.loc[(L, "male"), "composite_high"] - shown.loc[(L, "male"), "composite_mean"]
    )
    assert lines["female"].line.color == COLORWAY[0] and male.line.color == COLORWAY[1]
    assert "gaps: fewer than 5 returnees" in fig.layout.title.subtitle.text
    assert fig.layout.title.subtitle.text.startswith(f"Index version {VERSION}")


def test_a_followed_trajectory_says_so():
    fig = trajectory_figure(
        trajectory_frame(),
        axis="months",
        by=["sex"],
        figure="composite",
        index_version=VERSION,
        min_cell=5,
        follow=True,
    )
    assert "the same returnees at every point" in fig.layout.title.subtitle.text


def test_a_trajectory_without_groups_draws_one_line():
    data = records({(W,): [0.2] * 5, (M,): [0.4] * 6}, ["months_band"])
    frame = breakdown(data, ["months_band"], figures=FIGURES, min_cell=5)
    fig = trajectory_figure(
        frame, axis="months", by=[], figure="social", index_version=VERSION, min_cell=5
    )
    (line,) = fig.data
    assert line.name == "All returnees" and list(line.y) == pytest.approx([0.2, 0.4])


def test_cohorts_are_drawn_one_line_per_months_band():
    by = ["cohort", "months_band"]
    data = records(
        {
            ("2024Q1", W): [0.2] * 5,
            ("2024Q2", W): [0.3] * 5,
            ("2024Q1", L): [0.5] * 6,
            ("2024Q2", L): [0.6] * 6,
        },
        by,
    )
    frame = breakdown(data, by, figures=FIGURES, min_cell=5)
    fig = trajectory_figure(
        frame, axis="cohort", by=[], figure="composite", index_version=VERSION, min_cell=5
    )
    lines = {t.name: t for t in fig.data}
    assert set(lines) == {W, L}
    assert list(lines[L].x) == ["2024Q1", "2024Q2"]
    assert list(lines[L].y) == pytest.approx([0.5, 0.6])


def test_retention_bars_give_n_and_percent_of_round_1_and_no_bar_when_withheld():
    rows = [
        {"round": 1, "returnees": 200, "percent_of_round_1": 100.0, "suppressed": False},
        {"round": 2, "returnees": 170, "percent_of_round_1": 85.0, "suppressed": False},
        {"round": 3, "returnees": None, "percent_of_round_1": None, "suppressed": True},
    ]
    fig = retention_figure(rows, min_cell=5, protected=True)
    (bar,) = fig.data
    assert list(bar.x) == ["Round 1", "Round 2", "Round 3"]
    assert list(bar.y) == [200, 170, None]
    assert list(bar.text) == [
        "n = 200<br>(100.0% of round 1)",
        "n = 170<br>(85.0% of round 1)",
        "fewer than 5",
    ]
    assert PERTURBED in fig.layout.title.subtitle.text
    empty = retention_figure([], min_cell=5)
    assert "No returnees match these filters" in empty.layout.annotations[0].text


# -- assistance and data quality ------------------------------------------------------------


def test_assistance_figure_says_association_not_effect():
    data = records({("cash",): [0.3] * 6, ("none",): [0.5] * 8}, ["assistance"])
    frame = breakdown(data, ["assistance"], figures=FIGURES, min_cell=5)
    fig = assistance_figure(
        frame, figure="composite", index_version=VERSION, min_cell=5, labels={"cash": "Cash"}
    )
    assert fig.layout.title.text == "Composite by assistance received"
    assert fig.layout.title.subtitle.text == f"Index version {VERSION} · association, not effect"
    assert ASSOCIATION_NOTE in [a.text for a in fig.layout.annotations]
    assert list(bars(fig).y) == ["Cash (n = 6)", "none (n = 8)"]


def test_missingness_stacks_each_kind_of_missing_as_a_share():
    frame = pd.DataFrame(
        {"item": ["a", "b"], "interviews": [10, 10], "blank": [1, 0], "dont_know": [2, 5]}
    )
    fig = missingness_figure(frame, missing_columns=["blank", "dont_know"], labels={"a": "Item A"})
    assert [t.name for t in fig.data] == ["blank", "dont_know"]
    assert list(fig.data[1].x) == [0.2, 0.5]
    assert list(fig.data[0].y) == ["Item A", "b"]
    assert fig.layout.barmode == "stack"
    assert (
        fig.layout.title.subtitle.text
        == "Answers as received, no index · 10 most recent interviews"
    )


def test_enumerator_figure_sets_flagged_enumerators_apart():
    frame = pd.DataFrame(
        {
            "enumerator_id": ["E1", "E2", "E3"],
            "interviews": [40, 50, 60],
            "relative_composite": [0.0, 0.01, 0.35],
            "share_missing": [0.05, 0.06, 0.0],
            "flagged": [False, False, True],
            "reasons": [[], [], ["scores higher than other enumerators'"]],
        }
    )
    fig = enumerator_figure(frame, index_version=VERSION)
    traces = {t.name: t for t in fig.data}
    assert list(traces["flagged"].text) == ["E3"]
    assert list(traces["not flagged"].text) == ["E1", "E2"]
    assert traces["flagged"].customdata[0][1] == "scores higher than other enumerators'"
    assert VERSION in fig.layout.title.subtitle.text


# -- models -------------------------------------------------------------------------------------


def test_calibration_draws_observed_against_predicted_with_the_diagonal():
    from dashboards.figures.models import calibration_figure

    table = pd.DataFrame(
        {
            "bin_low": [0.0, 0.1, 0.2],
            "bin_high": [0.1, 0.2, 0.3],
            "n": [40, 0, 12],
            "mean_predicted": [0.05, None, 0.26],
            "observed": [0.1, None, 0.2],
        }
    )
    fig = calibration_figure(table, model_version="reintegration-risk v2", index_version=VERSION)
    diagonal, points = fig.data
    assert list(diagonal.x) == [0, 1] and list(diagonal.y) == [0, 1]
    assert list(points.x) == [0.05, 0.26] and list(points.y) == [0.1, 0.2]
    assert list(points.customdata) == [40, 12]
    assert fig.layout.title.subtitle.text == f"Index version {VERSION} · reintegration-risk v2"


def test_subgroup_metrics_mark_groups_too_small_to_judge():
    from dashboards.figures.models import subgroup_figure

    rows = pd.DataFrame(
        {
            "group": ["overall", "sex=female", "sex=other"],
            "n": ["900", "300", "fewer than 5"],
            "roc_auc": [0.81, 0.78, None],
        }
    )
    fig = subgroup_figure(rows, metric="roc_auc", model_version="v2", index_version=VERSION)
    assert list(bars(fig).y) == ["overall", "sex=female"]
    assert list(bars(fig).text) == ["n = 900", "n = 300"]
    (marks,) = [t for t in fig.data if t.type == "scatter"]
    assert list(marks.y) == ["sex=other"] and list(marks.text) == ["insufficient data"]


def test_drift_colours_items_by_how_far_they_moved():
    from dashboards.figures.common import BLUE, ORANGE, VERMILLION
    from dashboards.figures.models import drift_figure

    table = pd.DataFrame(
        {
            "item": ["a", "b", "c"],
            "batches": [1, 1, 1],
            "n": [50, 50, 50],
            "psi_latest": [0.3, 0.12, 0.01],
            "psi_mean": [0.3, 0.12, 0.01],
            "psi_max": [0.3, 0.12, 0.01],
        }
    )
    fig = drift_figure(table, index_version=VERSION, labels={"a": "Item A"})
    assert list(bars(fig).y) == ["Item A", "b", "c"]
    assert list(bars(fig).marker.color) == [VERMILLION, ORANGE, BLUE]
    assert [s.x0 for s in fig.layout.shapes] == [0.1, 0.25]
    empty = drift_figure(table.iloc[0:0], index_version=VERSION, labels={})
    assert empty.layout.annotations[0].text == (
        "No drift measured yet: it is computed after each upload"
    )
