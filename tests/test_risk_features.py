"""What the risk model sees (the first survey only) and predicts (the first follow-up ≥ 9 months)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reintegration.index import NOT_APPLICABLE, ReintegrationIndex
from reintegration.risk_features import (
    assistance_columns,
    feature_columns,
    features,
    first_surveys,
    outcomes,
    reasons,
    training_frame,
)


def interviews(questionnaire, months, *, returnees=6, seed=0):
    """A frame shaped like ``read_submissions``: every returnee interviewed at ``months``."""
    rng = np.random.default_rng(seed)
    rows = []
    pk = 0
    for r in range(returnees):
        for k, m in enumerate(months):
            pk += 1
            row = {
                "pk": pk,
                "returnee_key": f"{r:064x}",
                "batch_id": "b",
                "interview_date": pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(m * 30.4375)),
                "return_date": pd.Timestamp("2025-01-01"),
                "months_since_return": float(m),
                "survey_round": float(k + 1),
                "sex": ("female", "male")[r % 2],
                "age_at_return": float(15 + 5 * r),
                "return_type": ("forced", "voluntary")[r % 2],
                "country": "SEN",
                "assistance": "cash" if r % 3 else None,
            }
            row |= {item: float(rng.choice([0.0, 0.5, 1.0])) for item in questionnaire.item_ids}
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture
def index():
    return ReintegrationIndex().fit()


def test_no_feature_comes_from_the_follow_up(questionnaire, index):
    """Acceptance: changing every follow-up answer changes the outcome, never a feature."""
    frame = interviews(questionnaire, [2, 6, 12])
    follow_up = frame["months_since_return"] >= 9
    best = frame.copy()
    best.loc[follow_up, list(questionnaire.item_ids)] = 1.0
    worst = frame.copy()
    worst.loc[follow_up, list(questionnaire.item_ids)] = 0.0
    worst.loc[follow_up, ["sex", "return_type", "assistance"]] = ["male", "forced", "housing"]
    a = training_frame(best, index, questionnaire)
    b = training_frame(worst, index, questionnaire)
    columns = list(feature_columns(questionnaire))
    pd.testing.assert_frame_equal(a[columns], b[columns])
    assert a["not_sustainable"].tolist() == [0] * 6
    assert b["not_sustainable"].tolist() == [1] * 6


def test_the_second_round_is_neither_a_feature_nor_the_outcome(questionnaire, index):
    frame = interviews(questionnaire, [2, 6, 12])
    changed = frame.copy()
    changed.loc[changed["months_since_return"] == 6, list(questionnaire.item_ids)] = 0.0
    pd.testing.assert_frame_equal(
        training_frame(frame, index, questionnaire), training_frame(changed, index, questionnaire)
    )


def test_the_first_survey_must_be_within_four_months(questionnaire):
    frame = interviews(questionnaire, [4.5, 12])
    assert first_surveys(frame).empty
    assert len(first_surveys(interviews(questionnaire, [4.0, 12]))) == 6


def test_the_outcome_is_the_first_follow_up_at_nine_months_or_more(questionnaire, index):
    frame = interviews(questionnaire, [2, 8.9, 9, 18])
    found = outcomes(frame, index, questionnaire)
    assert found["follow_up_months"].tolist() == [9.0] * 6


def test_a_follow_up_that_cannot_be_scored_has_no_outcome(questionnaire, index):
    frame = interviews(questionnaire, [2, 12])
    frame.loc[frame["months_since_return"] == 12, list(questionnaire.item_ids)] = np.nan
    assert outcomes(frame, index, questionnaire).empty
    assert training_frame(frame, index, questionnaire).empty


def test_features_are_the_first_surveys_items_and_context(questionnaire):
    frame = interviews(questionnaire, [2, 12])
    first = first_surveys(frame)
    x = features(first, questionnaire)
    assert list(x.columns) == list(feature_columns(questionnaire))
    assert x["months_since_return"].tolist() == [2.0] * 6
    cash = "assistance_cash"
    assert cash in assistance_columns(questionnaire)
    # Returnee 0 recorded no assistance: unknown, not "none received".
    assert np.isnan(x[cash].iloc[0]) and x[cash].iloc[1] == 1.0
    assert x["assistance_housing"].iloc[1] == 0.0


def test_training_frame_has_subgroups_for_evaluation(questionnaire, index):
    frame = training_frame(interviews(questionnaire, [2, 12]), index, questionnaire)
    assert frame["age_group"].tolist() == ["child", "adult", "adult", "adult", "adult", "adult"]
    assert {"sex", "return_type", "returnee_key", "first_pk"} <= set(frame.columns)


def test_reasons_are_the_weakest_dimension_and_lowest_items(questionnaire, index):
    items = pd.DataFrame([dict.fromkeys(questionnaire.item_ids, 1.0)])
    social = [i.id for i in questionnaire.items_of("social")]
    items.loc[0, social[2]] = 0.0
    items.loc[0, social[5]] = 0.25
    items.loc[0, social[0]] = NOT_APPLICABLE  # not applicable is never a reason
    weakest, lowest = reasons(items, index)
    assert weakest == ["social"]
    assert lowest[0][:2] == [social[2], social[5]]
    assert social[0] not in lowest[0]
    assert len(lowest[0]) == 2  # the other items are at their best: not behind the weakness


def test_reasons_come_from_the_weakest_dimension_only(questionnaire, index):
    items = pd.DataFrame([dict.fromkeys(questionnaire.item_ids, 1.0)])
    economic = [i.id for i in questionnaire.items_of("economic")]
    social = [i.id for i in questionnaire.items_of("social")]
    items.loc[0, economic[0]] = 0.0  # the lowest single item, in a stronger dimension
    items.loc[0, social] = 0.25
    weakest, lowest = reasons(items, index)
    assert weakest == ["social"]
    assert lowest[0] and {questionnaire.item(i).dimension for i in lowest[0]} == {"social"}


def test_reasons_skip_missing_answers_and_unscorable_interviews(questionnaire, index):
    items = pd.DataFrame([dict.fromkeys(questionnaire.item_ids, np.nan)])
    weakest, lowest = reasons(items, index)
    assert weakest == [None] and lowest == [[]]
