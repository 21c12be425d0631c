"""Aggregates: distinct returnees, intervals, and small-cell suppression with complements."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reintegration.aggregate import TOTAL, add_groups, breakdown, latest_per_returnee, suppress


def records(groups: dict[str, int], composite: float = 0.5) -> pd.DataFrame:
    rows = []
    for group, n in groups.items():
        for k in range(n):
            rows.append(
                {
                    "returnee_key": f"{group}-{k}",
                    "sex": group,
                    "composite": composite + 0.01 * (k % 3),
                    "sustainable": k % 2 == 0,
                }
            )
    return pd.DataFrame(rows)


def test_a_cell_below_the_minimum_and_its_complement_are_suppressed():
    table = breakdown(
        records({"female": 3, "male": 40, "other": 12}), ["sex"], figures=["composite"], min_cell=5
    )
    by = table.set_index("sex")
    assert by.loc["female", "suppressed"] and np.isnan(by.loc["female", "composite_mean"])
    # female alone could be recovered as total - male - other: the next smallest goes too.
    assert by.loc["other", "suppressed"] and np.isnan(by.loc["other", "returnees"])
    assert not by.loc["male", "suppressed"] and by.loc["male", "returnees"] == 40
    assert by.loc[TOTAL, "returnees"] == 55 and not by.loc[TOTAL, "suppressed"]


def test_two_small_cells_need_no_complement():
    table = breakdown(
        records({"female": 3, "male": 40, "other": 2, "unknown": 9}),
        ["sex"],
        figures=["composite"],
        min_cell=5,
    )
    assert table.set_index("sex")["suppressed"].to_dict() == {
        "female": True,
        "male": False,
        "other": True,
        "unknown": False,
        TOTAL: False,
    }


def test_a_true_zero_is_shown_as_zero():
    frame = records({"female": 10, "male": 10})
    frame.loc[frame["sex"] == "female", "composite"] = np.nan
    table = breakdown(frame, ["sex"], figures=["composite"], min_cell=5).set_index("sex")
    assert table.loc["female", "returnees"] == 0 and not table.loc["female", "suppressed"]
    assert table.loc["female", "unscored"] == 10
    assert table.loc["male", "unscored"] == 0 and not table.loc["male", "unscored_suppressed"]


def test_small_unscored_counts_are_suppressed_with_a_complement():
    frame = records({"female": 10, "male": 10, "other": 10})
    frame.loc[[0, 1], "composite"] = np.nan  # two unscored women
    frame.loc[[10, 11, 12, 13, 14, 15], "composite"] = np.nan  # six unscored men
    table = breakdown(frame, ["sex"], figures=["composite"], min_cell=5).set_index("sex")
    assert table.loc["female", "unscored_suppressed"] and np.isnan(table.loc["female", "unscored"])
    assert table.loc["male", "unscored_suppressed"]  # complement of the single small count
    assert table.loc[TOTAL, "unscored"] == 8


def test_a_small_total_suppresses_everything():
    table = breakdown(records({"female": 2, "male": 2}), ["sex"], figures=["composite"], min_cell=5)
    assert table["suppressed"].all()
    assert table["returnees"].isna().all()


def test_means_come_with_n_and_a_95_percent_interval():
    frame = pd.DataFrame(
        {
            "returnee_key": range(100),
            "sex": "female",
            "composite": np.linspace(0, 1, 100),
            "sustainable": False,
        }
    )
    row = breakdown(frame, ["sex"], figures=["composite"], min_cell=5).iloc[0]
    # Student's t with n - 1 degrees of freedom (each interview its own cluster).
    half = stats.t.ppf(0.975, 99) * frame["composite"].std() / 10
    assert row["composite_mean"] == pytest.approx(0.5)
    assert row["composite_low"] == pytest.approx(0.5 - half)
    assert row["composite_high"] == pytest.approx(0.5 + half)
    assert row["share_sustainable"] == 0.0


def test_latest_scored_submission_counts_once_per_returnee():
    frame = pd.DataFrame(
        {
            "returnee_key": ["a", "a", "a", "b"],
            "interview_date": [1, 2, 3, 1],
            "composite": [0.2, 0.4, np.nan, np.nan],
        }
    )
    latest = latest_per_returnee(frame).set_index("returnee_key")
    assert latest.loc["a", "composite"] == 0.4  # the latest *scored* one
    assert np.isnan(latest.loc["b", "composite"])  # no scored record: counted as unscored


def test_age_groups_follow_the_spec(questionnaire):
    frame = pd.DataFrame({"age_at_return": [0, 17, 18, 110, np.nan]})
    assert add_groups(frame, questionnaire)["age_group"].tolist()[:4] == [
        "child",
        "child",
        "adult",
        "adult",
    ]
    assert "age_group" not in frame  # the input is left as it was


def test_suppress_does_not_mutate_its_input():
    table = pd.DataFrame(
        {
            "returnees": [3, 40, 43],
            "unscored": [0, 0, 0],
            "composite_mean": [0.1, 0.2, 0.2],
            "share_sustainable": [0.0, 0.1, 0.1],
        }
    )
    before = table.copy()
    suppress(table, min_cell=5)
    pd.testing.assert_frame_equal(table, before)
