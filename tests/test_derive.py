"""Derived weights (RSS.md "Derived weights"): first principal component per dimension."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from reintegration.derive import derive_weights, latest_per_returnee, parse_dimension_weights
from reintegration.errors import IndexParameterError, ModelError
from reintegration.index import NOT_APPLICABLE
from reintegration.synth import generate_panel


@pytest.fixture(scope="module")
def records(questionnaire):
    """Coded items of a synthetic panel's latest interviews, and the truth's loadings."""
    from reintegration.coding import answer_table
    from reintegration.store.submissions import _multiple_value

    frame, truth = generate_panel(3000, 2, seed=5)
    frame = frame.sort_values("interview_date").groupby("returnee_id").tail(1)
    coded = {}
    for item in questionnaire.items:
        texts = frame[item.id].fillna("").astype(str)
        if item.is_multiple:
            coded[item.id] = [
                _multiple_value(t, item, questionnaire) if t else np.nan for t in texts
            ]
        else:
            table = answer_table(item, questionnaire)
            coded[item.id] = [table.get(t, np.nan) for t in texts]
    return pd.DataFrame(coded), truth["loadings"]


def test_weights_rank_the_strongest_items_of_each_dimension_first(records, questionnaire):
    """Acceptance: the synthetic truth says which items load most.

    Correlations of two-option items are attenuated against their latent loadings (a property
    of principal components of standardised coded items, as RSS.md prescribes), so a yes/no
    item with the top loading can rank just below a five-option item: the three strongest
    items must make the top four, and the order must agree with the truth overall.
    """
    values, loadings = records
    derived = derive_weights(values, questionnaire)
    for dim, weights in derived.item_weights.items():
        items = list(weights)
        by_truth = sorted(items, key=lambda i: -loadings[i])
        by_weight = sorted(items, key=lambda i: -weights[i])
        rho = spearmanr([loadings[i] for i in items], [weights[i] for i in items]).statistic
        assert rho > 0.85, dim
        assert set(by_truth[:3]) <= set(by_weight[:4]), dim
        assert by_truth[-1] in by_weight[-3:], dim


def test_weights_sum_to_one_per_dimension_and_report_provenance(records, questionnaire):
    values, _ = records
    derived = derive_weights(values, questionnaire)
    for weights in derived.item_weights.values():
        assert sum(weights.values()) == pytest.approx(1.0)
        assert all(w > 0 for w in weights.values())
    assert derived.n == len(values)
    assert set(derived.explained_variance) == set(questionnaire.index.dimensions)
    assert all(0 < v <= 1 for v in derived.explained_variance.values())
    assert derived.dimension_weights == pytest.approx(
        dict.fromkeys(questionnaire.index.dimensions, 1 / 3)
    )
    table = derived.table()
    assert list(table.columns) == [
        "dimension",
        "item",
        "loading",
        "weight",
        "observed",
        "zero_variance",
        "reverse_keyed",
    ]
    assert len(table) == len(questionnaire.items)


def test_an_item_without_variance_keeps_the_smallest_weight_and_is_reported(records, questionnaire):
    values, _ = records
    item = questionnaire.items_of("social")[0].id
    flat = values.assign(**{item: 1.0})
    derived = derive_weights(flat, questionnaire)
    assert derived.zero_variance == (item,)
    weights = derived.item_weights["social"]
    others = [w for i, w in weights.items() if i != item]
    assert weights[item] == pytest.approx(min(others))
    assert sum(weights.values()) == pytest.approx(1.0)
    assert bool(derived.table().set_index("item").loc[item, "zero_variance"])


def test_not_applicable_answers_are_missing_for_the_fit(records, questionnaire):
    values, _ = records
    item = questionnaire.items_of("social")[1].id
    rng = np.random.default_rng(1)
    marked = values.copy()
    hidden = rng.random(len(values)) < 0.3
    marked.loc[hidden, item] = NOT_APPLICABLE
    as_missing = values.copy()
    as_missing.loc[hidden, item] = np.nan
    a = derive_weights(marked, questionnaire).item_weights["social"]
    b = derive_weights(as_missing, questionnaire).item_weights["social"]
    assert a == pytest.approx(b)
    expected = int((values[item].notna().to_numpy() & ~hidden).sum())
    assert derive_weights(marked, questionnaire).observed[item] == expected


def test_dimension_weights_can_be_set(records, questionnaire):
    values, _ = records
    chosen = {"economic": 0.5, "social": 0.25, "psychosocial": 0.25}
    derived = derive_weights(values, questionnaire, dimension_weights=chosen)
    assert derived.index("rss-v9-derived").dimension_weights_ == chosen


def test_dimension_weights_that_do_not_sum_to_one_are_refused(records, questionnaire):
    values, _ = records
    with pytest.raises(IndexParameterError, match="must be non-negative and sum to 1"):
        derive_weights(
            values,
            questionnaire,
            dimension_weights={"economic": 0.5, "social": 0.5, "psychosocial": 0.5},
        )


def test_too_few_returnees_is_a_clear_error(records, questionnaire):
    values, _ = records
    with pytest.raises(
        ModelError,
        match="weights need at least 30 returnees with an interview in the data window; there are 10",
    ):
        derive_weights(values.head(10), questionnaire)


def test_a_dimension_where_nothing_varies_cannot_be_weighted(records, questionnaire):
    values, _ = records
    flat = values.assign(**{i.id: 0.5 for i in questionnaire.items_of("economic")})
    with pytest.raises(
        ModelError, match="no item of the economic dimension varies in the data window"
    ):
        derive_weights(flat, questionnaire)


def test_one_record_per_returnee_is_the_latest_interview():
    frame = pd.DataFrame(
        {
            "pk": [1, 2, 3, 4],
            "returnee_key": ["a", "a", "b", "a"],
            "interview_date": pd.to_datetime(
                ["2025-01-01", "2025-06-01", "2025-02-01", "2025-03-01"]
            ),
            "survey_round": [1, 3, 1, 2],
        }
    )
    assert latest_per_returnee(frame)["pk"].tolist() == [2, 3]


def test_dimension_weights_are_parsed_from_the_command_line(questionnaire):
    assert parse_dimension_weights("economic=0.5,social=0.3,psychosocial=0.2", questionnaire) == {
        "economic": 0.5,
        "social": 0.3,
        "psychosocial": 0.2,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "economic=0.5,cultural=0.5",
            "'cultural' is not a dimension; use economic, social, psychosocial",
        ),
        ("economic=half,social=0.5,psychosocial=0", "'half' for economic is not a number"),
        ("economic=0.5,social=0.5", "give a weight for psychosocial too"),
        ("economic=0.6,social=0.6,psychosocial=-0.2", "weights must be non-negative and sum to 1"),
    ],
)
def test_bad_dimension_weights_are_refused_with_a_sentence(questionnaire, text, message):
    with pytest.raises(ModelError, match=message):
        parse_dimension_weights(text, questionnaire)
