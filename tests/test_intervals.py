"""Intervals that hold up (issue 13): simulated coverage, and the variances recomputed apart.

Each simulation is one call of :func:`reintegration.aggregate.breakdown`: every replicate is a
group of its own, so thousands of intervals come from one vectorised answer, exactly as the API
computes them. Seeds are fixed, so the coverages are those reported in ``docs/methods.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from reintegration.aggregate import breakdown
from reintegration.disclosure import Protection
from reintegration.intervals import linearised_variance, share_sample_size, wilson_interval

REPLICATES = 4000


@pytest.fixture(scope="module")
def composites(questionnaire) -> np.ndarray:
    """The composite scores of a synthetic panel's interviews: the population drawn from."""
    from reintegration.coding import answer_table
    from reintegration.index import ReintegrationIndex
    from reintegration.store.submissions import _multiple_value
    from reintegration.synth import generate_panel

    frame, _ = generate_panel(3000, 1, seed=11)
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
    scores = ReintegrationIndex().fit().transform(pd.DataFrame(coded))
    values = scores["composite"].dropna().to_numpy()
    assert len(values) > 2500
    return values


def replicates(values: np.ndarray, n: int, **columns: np.ndarray) -> pd.DataFrame:
    """``REPLICATES`` groups of ``n`` records (``values`` has ``REPLICATES * n`` entries)."""
    return pd.DataFrame(
        {
            "rep": np.repeat(np.arange(REPLICATES), n),
            "composite": values,
            "sustainable": (values >= 0.5).astype(float),
            **columns,
        }
    )


def coverage(table: pd.DataFrame, low: str, high: str, truth: float) -> float:
    cells = table.iloc[:-1]
    assert len(cells) == REPLICATES and cells[low].notna().all()
    return float(((cells[low] <= truth) & (truth <= cells[high])).mean())


@pytest.mark.parametrize("n", [5, 10, 20])
def test_intervals_of_means_cover_95_percent_of_samples_of_the_composite(composites, n):
    rng = np.random.default_rng(n)
    drawn = rng.choice(composites, size=REPLICATES * n, replace=True)
    table = breakdown(replicates(drawn, n), ["rep"], figures=["composite"], min_cell=5)
    covered = coverage(table, "composite_low", "composite_high", composites.mean())
    assert 0.93 <= covered <= 0.97, covered


@pytest.mark.parametrize("n", [5, 10, 20])
def test_intervals_of_shares_cover_95_percent_on_average_over_true_shares(n):
    rng = np.random.default_rng(100 + n)
    coverages = []
    for share in np.arange(0.05, 0.5001, 0.05):
        drawn = (rng.random(REPLICATES * n) < share).astype(float)
        frame = replicates(drawn, n).assign(sustainable=drawn, composite=0.5)
        table = breakdown(frame, ["rep"], figures=["composite"], min_cell=5)
        coverages.append(
            coverage(table, "share_sustainable_ci_low", "share_sustainable_ci_high", share)
        )
    assert 0.93 <= np.mean(coverages) <= 0.98, coverages


def clustered_sample(rng, icc: float, clusters: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores around 0.5 with an enumerator effect of intra-class correlation ``icc``."""
    total_sd = 0.15
    effect = rng.normal(0, total_sd * np.sqrt(icc), (REPLICATES, clusters, 1))
    noise = rng.normal(0, total_sd * np.sqrt(1 - icc), (REPLICATES, clusters, size))
    values = np.clip(0.5 + effect + noise, 0.0, 1.0).reshape(-1)
    enumerator = np.tile(np.repeat(np.arange(clusters), size), REPLICATES)
    return values, enumerator


@pytest.mark.parametrize("icc", [0.1, 0.2])
def test_clustered_intervals_cover_where_simple_ones_do_not(icc):
    rng = np.random.default_rng(int(icc * 100))
    values, enumerator = clustered_sample(rng, icc, clusters=8, size=10)
    frame = replicates(values, 80, enumerator_id=enumerator.astype(str))
    clustered = breakdown(frame, ["rep"], figures=["composite"], min_cell=5)
    simple = breakdown(frame.drop(columns="enumerator_id"), ["rep"], figures=["composite"])
    covered = coverage(clustered, "composite_low", "composite_high", 0.5)
    naive = coverage(simple, "composite_low", "composite_high", 0.5)
    assert covered >= 0.92, covered
    assert naive < 0.90, naive
    # The design effect is about 1 + (m - 1) ICC for clusters of m interviews.
    deff = clustered.iloc[:-1]["composite_deff"].median()
    assert deff == pytest.approx(1 + 9 * icc, rel=0.3)


# -- the variances, recomputed apart --------------------------------------------------------------


@pytest.fixture
def survey() -> pd.DataFrame:
    """Two groups of weighted interviews by enumerators shared across groups; a few without
    an enumerator (each its own cluster) and a few unscored."""
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame(
        {
            "sex": rng.choice(["female", "male"], n),
            "enumerator_id": rng.choice([f"e{i}" for i in range(12)], n).astype(object),
            "weight": rng.uniform(0.5, 4.0, n),
            "composite": np.clip(rng.normal(0.5, 0.15, n), 0, 1),
        }
    )
    frame.loc[rng.choice(n, 15, replace=False), "enumerator_id"] = None
    frame.loc[rng.choice(n, 10, replace=False), "composite"] = np.nan
    frame["sustainable"] = np.where(frame["composite"].isna(), np.nan, frame["composite"] >= 0.5)
    return frame


def statsmodels_variance(y: np.ndarray, w: np.ndarray, groups: np.ndarray) -> float:
    """The linearised variance of a weighted mean as the cluster-robust variance of an
    intercept-only weighted regression (no small-sample factor), times C / (C - 1)."""
    fit = sm.WLS(y, np.ones((len(y), 1)), weights=w).fit(
        cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False}
    )
    clusters = len(np.unique(groups))
    return float(fit.cov_params()[0, 0]) * clusters / (clusters - 1)


def cluster_numbers(enumerators: pd.Series) -> np.ndarray:
    """Enumerators as integers, each interview without one a cluster of its own."""
    codes, _ = pd.factorize(enumerators)
    alone = codes < 0
    codes[alone] = codes.max() + 1 + np.arange(alone.sum())
    return codes


def test_clustered_weighted_intervals_match_statsmodels(survey):
    table = breakdown(survey, ["sex"], figures=["composite"], min_cell=5).set_index("sex")
    scored = survey[survey["composite"].notna()]
    for group, rows in [*scored.groupby("sex"), ("all", scored)]:
        y, w = rows["composite"].to_numpy(), rows["weight"].to_numpy()
        groups = cluster_numbers(rows["enumerator_id"])
        mean = np.average(y, weights=w)
        variance = statsmodels_variance(y, w, groups)
        df = len(np.unique(groups)) - 1
        half = stats.t.ppf(0.975, df) * np.sqrt(variance)
        cell = table.loc[group]
        assert cell["composite_mean"] == pytest.approx(mean, rel=1e-12)
        assert cell["composite_low"] == pytest.approx(mean - half, rel=1e-9)
        assert cell["composite_high"] == pytest.approx(mean + half, rel=1e-9)
        n = len(y)
        sd = np.sqrt(np.cov(y, aweights=w, ddof=0) * n / (n - 1))
        assert cell["composite_sd"] == pytest.approx(sd, rel=1e-9)
        deff = variance / (sd**2 / n)
        assert cell["composite_deff"] == pytest.approx(deff, rel=1e-9)
        assert cell["composite_n_effective"] == pytest.approx(n / deff, rel=1e-9)


def test_weighted_clustered_shares_get_a_wilson_interval_on_their_effective_n(survey):
    table = breakdown(survey, ["sex"], figures=["composite"], min_cell=5).set_index("sex")
    scored = survey[survey["composite"].notna()]
    for group, rows in [*scored.groupby("sex"), ("all", scored)]:
        y = rows["sustainable"].to_numpy(float)
        w = rows["weight"].to_numpy()
        groups = cluster_numbers(rows["enumerator_id"])
        share = np.average(y, weights=w)
        n, clusters = len(y), len(np.unique(groups))
        deff = statsmodels_variance(y, w, groups) / (share * (1 - share) / (n - 1))
        effective = (
            max(n / max(deff, 1.0), 0)
            * (stats.t.ppf(0.975, n - 1) / stats.t.ppf(0.975, clusters - 1)) ** 2
        )
        z = stats.norm.ppf(0.975)
        centre = (share + z**2 / (2 * effective)) / (1 + z**2 / effective)
        half = (
            z
            / (1 + z**2 / effective)
            * np.sqrt(share * (1 - share) / effective + z**2 / (4 * effective**2))
        )
        cell = table.loc[group]
        assert cell["share_sustainable"] == pytest.approx(share, rel=1e-12)
        assert cell["share_sustainable_ci_low"] == pytest.approx(centre - half, rel=1e-9)
        assert cell["share_sustainable_ci_high"] == pytest.approx(centre + half, rel=1e-9)


def test_without_enumerators_or_weights_the_intervals_are_student_t_and_wilson():
    values = np.array([0.2, 0.4, 0.45, 0.6, 0.9, 0.3])
    frame = pd.DataFrame({"composite": values, "sustainable": values >= 0.5})
    cell = breakdown(frame, [], figures=["composite"], min_cell=5).iloc[-1]
    half = stats.t.ppf(0.975, 5) * values.std(ddof=1) / np.sqrt(6)
    assert cell["composite_low"] == pytest.approx(values.mean() - half)
    assert cell["composite_deff"] == pytest.approx(1.0)
    low, high = wilson_interval(np.array([2 / 6]), np.array([6.0]))
    assert cell["share_sustainable_ci_low"] == pytest.approx(low[0])
    assert cell["share_sustainable_ci_high"] == pytest.approx(high[0])


def test_linearised_variance_needs_two_clusters():
    one = linearised_variance(
        np.array([0.5]), np.array([3.0]), np.array([1]), *(np.array([1.0]),) * 3
    )
    assert np.isnan(one[0])


def test_few_clusters_shrink_the_sample_size_of_a_share():
    sizes = share_sample_size(np.array([80, 80]), np.array([1.0, 1.0]), np.array([80, 8]))
    assert sizes[0] == pytest.approx(80)
    assert sizes[1] < 0.75 * 80


# -- protected intervals ------------------------------------------------------------------------


def test_protected_intervals_use_a_rounded_design_effect_and_perturbed_counts(survey):
    frame = survey.assign(record_key=np.arange(len(survey)) * 7919 % 2**31)
    exact = breakdown(frame, ["sex"], figures=["composite"], min_cell=5).set_index("sex")
    protected = breakdown(
        frame, ["sex"], figures=["composite"], min_cell=5, protection=Protection()
    ).set_index("sex")
    for group in ("female", "male", "all"):
        deff = protected.loc[group, "composite_deff"]
        assert deff == pytest.approx(round(exact.loc[group, "composite_deff"], 1))
        assert protected.loc[group, "composite_n_effective"] == pytest.approx(
            protected.loc[group, "returnees"] / deff
        )
        low, high = protected.loc[group, ["composite_low", "composite_high"]]
        assert low < protected.loc[group, "composite_mean"] < high
        share_low, share_high = protected.loc[
            group, ["share_sustainable_ci_low", "share_sustainable_ci_high"]
        ]
        assert share_low < protected.loc[group, "share_sustainable"] < share_high


def test_weights_count_only_when_every_scored_interview_has_one(survey):
    weighted = breakdown(survey, [], figures=["composite"]).iloc[-1]
    scored = survey[survey["composite"].notna()]
    expected = np.average(scored["composite"], weights=scored["weight"])
    assert weighted["composite_mean"] == pytest.approx(expected)
    partly = survey.copy()
    partly.loc[scored.index[0], "weight"] = np.nan
    unweighted = breakdown(partly, [], figures=["composite"]).iloc[-1]
    assert unweighted["composite_mean"] == pytest.approx(scored["composite"].mean())
