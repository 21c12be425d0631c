"""Paired bootstrap of AUC differences, and the verdict against the baseline rule."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models.bootstrap import paired_auc_difference, stratified_counts, weighted_auc
from models.risk_evaluation import band_rates, temporal_split, versus_baseline


@pytest.mark.parametrize("ties", [False, True])
def test_the_weighted_auc_of_each_replicate_is_sklearns(ties):
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.7).astype(int)
    scores = y * 0.7 + rng.normal(size=300)
    if ties:
        scores = np.round(scores, 1)
    counts = stratified_counts(y, 5, rng)

    found = weighted_auc(scores, y, counts)

    expected = [roc_auc_score(y, scores, sample_weight=c) for c in counts.T]
    assert found == pytest.approx(expected, abs=1e-9)
    assert weighted_auc(scores, y, np.ones(300))[0] == pytest.approx(roc_auc_score(y, scores))


def test_stratified_counts_keep_both_outcomes_in_their_numbers():
    y = np.array([1] * 40 + [0] * 10)
    counts = stratified_counts(y, 200, np.random.default_rng(0))
    assert counts.shape == (50, 200)
    assert (counts[:40].sum(axis=0) == 40).all() and (counts[40:].sum(axis=0) == 10).all()


def signal(n=600, seed=1):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.2 + 2.0 * latent)))).astype(int)
    return rng, latent, y


def test_a_clearly_better_model_beats_the_rule():
    rng, latent, y = signal()
    rule = latent + rng.normal(scale=1.5, size=len(y))
    model = latent + rng.normal(scale=0.3, size=len(y))

    found = versus_baseline(y, model, rule)

    assert found["beats"] and found["low"] > 0
    assert found["model_auc"] == pytest.approx(roc_auc_score(y, model))
    assert found["baseline_auc"] == pytest.approx(roc_auc_score(y, rule))
    assert found["low"] < found["difference"] < found["high"]


def test_a_model_ranking_as_the_rule_does_is_not_said_to_beat_it():
    """The same ranking: a difference of exactly 0, an interval of [0, 0], not above 0."""
    _, latent, y = signal()
    found = versus_baseline(y, 1 / (1 + np.exp(-latent)), latent)
    assert (found["difference"], found["low"], found["high"]) == (0.0, 0.0, 0.0)
    assert not found["beats"]


def test_a_slightly_better_model_whose_interval_includes_zero_does_not_beat_the_rule():
    rng, latent, y = signal(n=300)
    rule = latent + rng.normal(scale=0.8, size=len(y))
    model = latent + rng.normal(scale=0.75, size=len(y))

    found = versus_baseline(y, model, rule)

    assert found["low"] < 0 < found["high"]
    assert not found["beats"]


def test_a_worse_model_does_not_beat_the_rule_and_its_interval_says_so():
    rng, latent, y = signal()
    found = versus_baseline(y, rng.permutation(latent), latent)
    assert found["high"] < 0 and not found["beats"]


def test_returnees_without_a_composite_are_left_out_of_the_comparison_and_counted():
    _, latent, y = signal(n=200)
    rule = latent.copy()
    rule[:7] = np.nan
    found = versus_baseline(y, latent, rule)
    assert (found["n"], found["without_composite"]) == (193, 7)


def test_the_interval_is_reproducible():
    rng, latent, y = signal()
    other = latent + rng.normal(size=len(y))
    assert paired_auc_difference(y, latent, other) == paired_auc_difference(y, latent, other)


def test_bands_are_absolute_thresholds_with_their_observed_rates():
    y = np.array([0, 0, 1, 0, 1, 1, 1])
    p = np.array([0.1, 0.29, 0.3, 0.45, 0.59, 0.6, 0.95])
    rows = band_rates(y, p, (0.3, 0.6))
    assert [(r["group"], r["n"], r["observed"]) for r in rows] == [
        ("low", 2, 0.0),
        ("medium", 3, 2 / 3),
        ("high", 2, 1.0),
    ]


def test_the_temporal_split_keeps_whole_months_of_return_together():
    import pandas as pd

    dates = pd.Series(pd.to_datetime(["2024-01-03"] * 5 + ["2024-02-10"] * 3 + ["2024-03-01"] * 2))
    train, cutoff = temporal_split(dates)
    assert cutoff == "2024-03" and train.tolist() == [True] * 8 + [False] * 2
    assert temporal_split(pd.Series(pd.to_datetime(["2024-01-03"] * 4))) is None
