"""Golden cases of RSS.md, computed by hand, through coding, the index and the output format."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reintegration.errors import IndexParameterError
from reintegration.index import NOT_APPLICABLE, ReintegrationIndex, report_figures
from reintegration.questionnaire import Questionnaire
from reintegration.scoring import format_figures, score_file
from tests.conftest import canonical_row, worst_answers, write_csv


def score_rows(tmp_path: Path, q: Questionnaire, *rows: dict[str, str]) -> list[dict[str, str]]:
    """Score canonical rows through the whole `score` path; returns the output rows as text."""
    path = write_csv(
        tmp_path / "golden.csv", [canonical_row(q, k + 1, **r) for k, r in enumerate(rows)]
    )
    sink = io.BytesIO()
    report = score_file(path, sink, ReintegrationIndex().fit(), q)
    assert report.issues == [], [str(i) for i in report.issues]
    return list(csv.DictReader(io.StringIO(sink.getvalue().decode("utf-8"))))


def items_of(q: Questionnaire, dimension: str) -> list[str]:
    return [i.id for i in q.items_of(dimension)]


# -- whole-record cases --------------------------------------------------------------------------


def test_all_best_answers_score_one_everywhere(tmp_path, questionnaire):
    (out,) = score_rows(tmp_path, questionnaire, {})
    for column in ("economic", "social", "psychosocial", "composite"):
        assert out[column] == "1.0000"
    assert (out["level"], out["weakest_dimension"], out["sustainable"]) == (
        "high",
        "economic",
        "true",
    )
    assert out["index_version"] == "rss-v1-provisional"


def test_all_worst_answers_score_zero_and_are_not_sustainable(tmp_path, questionnaire):
    (out,) = score_rows(tmp_path, questionnaire, worst_answers(questionnaire))
    for column in ("economic", "social", "psychosocial", "composite"):
        assert out[column] == "0.0000"
    assert (out["level"], out["sustainable"]) == ("low", "false")
    # A three-way tie at 0 goes to the first dimension in spec order.
    assert out["weakest_dimension"] == "economic"


def test_worked_example_of_rss_md(tmp_path, questionnaire):
    (out,) = score_rows(tmp_path, questionnaire, {"currently_working": "no"})
    assert out["economic"] == "0.8750"
    assert out["composite"] == "0.9583"  # (0.875 + 1 + 1) / 3 = 0.958333...


def test_missing_answers_do_not_count_as_zero(tmp_path, questionnaire):
    econ = items_of(questionnaire, "economic")
    (out,) = score_rows(
        tmp_path, questionnaire, {econ[0]: "dont_know", econ[1]: "refused", econ[2]: ""}
    )
    assert out["economic"] == "1.0000"
    assert out["coverage_economic"] == "0.6250"  # 5 of 8 items answered


def test_not_applicable_neither_counts_for_nor_against_coverage(tmp_path, questionnaire):
    (out,) = score_rows(
        tmp_path,
        questionnaire,
        {"children_in_school": "no_school_age_children", "housing_access": "very_poor"},
    )
    # 7 applicable social items, all answered; housing_access 0, the other six 1.
    assert out["coverage_social"] == "1.0000"
    assert out["social"] == "0.8571"  # 6/7


def test_coverage_at_exactly_the_minimum_keeps_the_score(tmp_path, questionnaire):
    psy = items_of(questionnaire, "psychosocial")
    (out,) = score_rows(tmp_path, questionnaire, dict.fromkeys(psy[:4], "dont_know"))
    assert out["coverage_psychosocial"] == "0.6000"  # 6 of 10
    assert out["psychosocial"] == "1.0000"
    assert out["composite"] == "1.0000"


def test_coverage_just_below_the_minimum_makes_the_score_missing(tmp_path, questionnaire):
    social = [i for i in items_of(questionnaire, "social") if i != "children_in_school"]
    answers = {
        "children_in_school": "no_school_age_children",
        **dict.fromkeys(social[:3], "refused"),
    }
    (out,) = score_rows(tmp_path, questionnaire, answers)
    assert out["coverage_social"] == "0.5714"  # 4 of 7 applicable
    assert out["social"] == ""
    assert (out["composite"], out["level"], out["weakest_dimension"], out["sustainable"]) == (
        "",
        "",
        "",
        "",
    )


def test_ties_for_the_weakest_dimension_follow_spec_order(tmp_path, questionnaire):
    # economic: one no of 8 -> 0.875 ; social: one no among 8 -> 0.875 ; psychosocial 1.
    (out,) = score_rows(
        tmp_path, questionnaire, {"currently_working": "no", "has_id_document": "no"}
    )
    assert out["economic"] == out["social"] == "0.8750"
    assert out["weakest_dimension"] == "economic"
    (out,) = score_rows(
        tmp_path,
        questionnaire,
        {"has_id_document": "no", "able_to_stay": "no", "can_borrow": "dont_know"},
    )
    # social 0.875 ; psychosocial 0.9 ; economic 1: social is weakest on its own.
    assert out["weakest_dimension"] == "social"


@pytest.mark.parametrize("k", range(8))
def test_every_count_of_distress_signs(tmp_path, questionnaire, k):
    item = questionnaire.item("distress_signs")
    signs = [o.code for o in item.options][:k]
    cell = " ".join(signs) if signs else "none"
    (out,) = score_rows(tmp_path, questionnaire, {"distress_signs": cell})
    # psychosocial = (9 + (1 - k/7)) / 10
    expected = (9 + (1 - k / 7)) / 10
    assert out["psychosocial"] == f"{int(np.floor(expected * 10000 + 0.5)) / 10000:.4f}"


def test_labels_in_any_case_score_like_codes(tmp_path, questionnaire):
    labels = {}
    for item in questionnaire.items:
        worst = min(item.options, key=lambda o: o.value or 0)
        labels[item.id] = f"  {worst.labels['en'].upper()} "
    labels["distress_signs"] = "Feeling very angry  feeling very sad"
    (by_label,) = score_rows(tmp_path, questionnaire, labels)
    codes = worst_answers(questionnaire)
    codes["distress_signs"] = "anger sadness"
    (by_code,) = score_rows(tmp_path, questionnaire, codes)
    assert by_label == {**by_code, "submission_id": by_label["submission_id"]}


def test_rounding_reports_half_away_from_zero(tmp_path, questionnaire):
    econ = items_of(questionnaire, "economic")
    # values 1, 1, 0.75 and five zeros: 2.75 / 8 = 0.34375, reported 0.3438.
    answers = dict(worst_answers(questionnaire))
    best = canonical_row(questionnaire)
    answers.update({econ[0]: best[econ[0]], econ[2]: best[econ[2]], econ[1]: "rarely"})
    (out,) = score_rows(tmp_path, questionnaire, answers)
    assert out["economic"] == "0.3438"


def test_report_figures_absorbs_binary_noise():
    assert report_figures(np.array([0.34374999999999994, 17 / 32, 0.65995, 0.00005]))[
        :4
    ].tolist() == [
        3438,
        5313,
        6600,
        1,
    ]
    assert format_figures(np.array([0.5, np.nan])).to_pylist() == ["0.5000", None]


# -- thresholds on the estimator ---------------------------------------------------------------


def uniform(q: Questionnaire, value_by_dimension: dict[str, float]) -> pd.DataFrame:
    """One row whose items all carry their dimension's value, so S_d equals that value."""
    return pd.DataFrame({i.id: [value_by_dimension[i.dimension]] for i in q.items})


@pytest.mark.parametrize(
    ("value", "level"),
    [
        (0.0, "low"),
        (0.3299, "low"),
        (0.33, "medium"),
        (0.6599, "medium"),
        (0.66, "high"),
        (1.0, "high"),
    ],
)
def test_level_boundaries(questionnaire, value, level):
    frame = uniform(questionnaire, dict.fromkeys(questionnaire.index.dimensions, value))
    out = ReintegrationIndex().fit().transform(frame)
    assert out["level"].iloc[0] == level


def test_level_is_decided_before_rounding_for_display(questionnaire):
    frame = uniform(questionnaire, dict.fromkeys(questionnaire.index.dimensions, 0.65995))
    out = ReintegrationIndex().fit().transform(frame)
    assert out["level"].iloc[0] == "medium"
    assert format_figures(out["composite"].to_numpy()).to_pylist() == ["0.6600"]


def test_a_high_composite_hiding_a_collapsed_dimension_is_not_sustainable(questionnaire):
    frame = uniform(questionnaire, {"economic": 1.0, "social": 1.0, "psychosocial": 0.3299})
    out = ReintegrationIndex().fit().transform(frame)
    assert out["level"].iloc[0] == "high"
    assert not out["sustainable"].iloc[0]
    frame = uniform(questionnaire, {"economic": 1.0, "social": 1.0, "psychosocial": 0.33})
    assert ReintegrationIndex().fit().transform(frame)["sustainable"].iloc[0]


def test_thresholds_are_parameters(questionnaire):
    frame = uniform(questionnaire, dict.fromkeys(questionnaire.index.dimensions, 0.5))
    out = ReintegrationIndex(high_from=0.5, sustainable_from=0.5).fit().transform(frame)
    assert (out["level"].iloc[0], bool(out["sustainable"].iloc[0])) == ("high", True)


def test_weights_are_parameters(questionnaire):
    weights = questionnaire.item_weights()
    econ = list(weights["economic"])
    weights["economic"] = {**dict.fromkeys(econ, 0.0), econ[0]: 1.0}
    frame = uniform(questionnaire, dict.fromkeys(questionnaire.index.dimensions, 1.0))
    frame[econ[1]] = 0.0
    out = ReintegrationIndex(item_weights=weights).fit().transform(frame)
    assert out["economic"].iloc[0] == 1.0


def test_dimension_weights_are_parameters(questionnaire):
    frame = uniform(questionnaire, {"economic": 1.0, "social": 0.0, "psychosocial": 0.0})
    out = (
        ReintegrationIndex(
            dimension_weights={"economic": 0.5, "social": 0.25, "psychosocial": 0.25}
        )
        .fit()
        .transform(frame)
    )
    assert out["composite"].iloc[0] == 0.5


def test_absent_item_column_is_missing_for_every_row(questionnaire):
    frame = uniform(questionnaire, dict.fromkeys(questionnaire.index.dimensions, 1.0))
    econ = items_of(questionnaire, "economic")
    out = ReintegrationIndex().fit().transform(frame.drop(columns=econ[:4]))
    assert out["coverage_economic"].iloc[0] == 0.5
    assert np.isnan(out["economic"].iloc[0])


def test_all_items_not_applicable_leaves_the_dimension_missing(questionnaire):
    weights = {"economic": {"a": 1.0}, "social": {"b": 1.0}, "psychosocial": {"c": 1.0}}
    frame = pd.DataFrame({"a": [1.0], "b": [NOT_APPLICABLE], "c": [1.0]})
    out = ReintegrationIndex(item_weights=weights).fit().transform(frame)
    assert np.isnan(out["social"].iloc[0]) and np.isnan(out["coverage_social"].iloc[0])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"dimension_weights": {"economic": 0.5, "social": 0.5, "psychosocial": 0.5}}, "sum to 1"),
        ({"dimension_weights": {"economic": 1.0}}, "dimension weights name"),
        (
            {
                "item_weights": {
                    "economic": {"a": -1.0},
                    "social": {"b": 1},
                    "psychosocial": {"c": 1},
                }
            },
            "non-negative",
        ),
        (
            {
                "item_weights": {
                    "economic": {"a": 0.0},
                    "social": {"b": 1},
                    "psychosocial": {"c": 1},
                }
            },
            "no item has a positive weight",
        ),
        ({"min_coverage": 1.5}, "min_coverage = 1.5 is outside [0, 1]"),
        ({"medium_from": 0.7, "high_from": 0.6}, "medium_from must not exceed high_from"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(params, message):
    with pytest.raises(IndexParameterError, match=re.escape(message)):
        ReintegrationIndex(**params).fit()


def test_scoring_before_fit_is_an_error(questionnaire):
    with pytest.raises(IndexParameterError, match="not fitted"):
        ReintegrationIndex().score_arrays({}, n_rows=1)


# -- scikit-learn compatibility --------------------------------------------------------------------


def test_index_is_a_scikit_learn_estimator(questionnaire):
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    index = ReintegrationIndex(min_coverage=0.5)
    with pytest.raises(NotFittedError):
        check_is_fitted(index)
    copy = clone(index)
    assert copy.get_params() == index.get_params() and copy is not index
    assert copy.set_params(min_coverage=0.7).min_coverage == 0.7
    with pytest.raises(ValueError, match="Invalid parameter 'weights'"):
        copy.set_params(weights={})
    frame = uniform(questionnaire, dict.fromkeys(questionnaire.index.dimensions, 1.0))
    out = Pipeline([("index", ReintegrationIndex())]).fit_transform(frame)
    assert out["composite"].iloc[0] == 1.0
    check_is_fitted(index.fit())
    assert "min_coverage=0.5" in repr(index)
