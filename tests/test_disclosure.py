"""Disclosure control: the published perturbation table, cell-key perturbation of counts and
sums, figures derived from perturbed summaries, suppression on the perturbed count, the
other-groups row, what it costs in accuracy and what it denies an attacker.

Expected perturbations are recomputed here in plain Python from the method docs/privacy.md
states (splitmix64 of key and stream, the first ptable column whose cumulative probability
exceeds the draw), not by calling the code under test twice.
"""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reintegration.aggregate import TOTAL, breakdown
from reintegration.disclosure import Protection, merge_bins, perturb_counts, ptable, uniforms
from reintegration.errors import ConfigurationError
from reintegration.settings import Settings, get_settings, protection

DEFAULT = Protection()
MASK = 2**64 - 1


def draw(key: int, stream: str) -> float:
    """The method's uniform: splitmix64 of key * 2**32 + crc32(stream), top 53 bits."""
    z = ((key << 32) | zlib.crc32(stream.encode("utf-8"))) & MASK
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    z ^= z >> 31
    return (z >> 11) / 2**53


def changed(count: int, key: int, chosen: Protection = DEFAULT) -> int:
    """A count after perturbation, from the published table and the draw."""
    width = chosen.max_count_change
    row = ptable(chosen).loc[min(count, width)].tolist()
    u, cumulative = draw(key, "count"), 0.0
    for column, p in enumerate(row):
        cumulative += p
        if u < cumulative:
            return count + column - width
    return count + width


def people(groups: dict[str, int], seed: int = 0, country: str = "SEN") -> pd.DataFrame:
    """Scored returnees per sex, with composites in [0, 1] and random record keys."""
    rng = np.random.default_rng(seed)
    sexes = np.repeat(list(groups), list(groups.values()))
    composite = rng.beta(4.0, 4.0, len(sexes))
    return pd.DataFrame(
        {
            "sex": sexes,
            "country": country,
            "composite": composite,
            "economic": rng.random(len(sexes)),
            "sustainable": (composite >= 0.6).astype(float),
            "record_key": rng.integers(0, 2**31, len(sexes)),
        }
    )


# -- the perturbation table -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "variance"), [(4, 3.0), (2, 1.0), (3, 0.5), (1, 0.4), (10, 20.0)]
)
def test_each_row_of_the_table_is_a_zero_mean_distribution_that_keeps_counts_non_negative(
    width, variance
):
    table = ptable(Protection(max_count_change=width, count_variance=variance))
    assert table.columns.tolist() == list(range(-width, width + 1))
    assert table.index.tolist() == list(range(width + 1))
    changes = np.arange(-width, width + 1)
    for count, row in table.iterrows():
        p = row.to_numpy()
        assert (p >= 0).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        assert (p * changes).sum() == pytest.approx(0.0, abs=1e-9)
        assert p[changes < -count].sum() == 0  # never below zero
    assert table.loc[0].tolist() == [0.0] * width + [1.0] + [0.0] * width  # zero stays zero
    last = table.loc[width].to_numpy()
    assert (last * changes**2).sum() == pytest.approx(variance, abs=2e-3 * width**2)


def test_the_table_is_published_to_four_decimals():
    table = ptable(DEFAULT)
    assert ((table * 10_000).round(6) % 1 == 0).all().all()


def test_counts_move_as_the_published_table_and_the_keys_say():
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 40, 3000)
    keys = rng.integers(0, 2**31, 3000)
    moved = perturb_counts(counts, keys, DEFAULT)
    expected = [changed(int(c), int(k)) for c, k in zip(counts, keys, strict=True)]
    assert moved.tolist() == expected
    assert (moved >= 0).all() and (np.abs(moved - counts) <= 4).all()
    assert (moved[counts == 0] == 0).all()


def test_changes_of_large_counts_follow_the_last_row_of_the_table():
    rng = np.random.default_rng(4)
    keys = rng.integers(0, 2**31, 40_000)
    change = perturb_counts(np.full(40_000, 100), keys, DEFAULT) - 100
    observed = pd.Series(change).value_counts(normalize=True).sort_index()
    expected = ptable(DEFAULT).loc[4]
    for value, p in expected.items():
        assert observed.get(value, 0.0) == pytest.approx(p, abs=0.01)


def test_streams_of_one_key_give_independent_uniform_draws():
    keys = np.random.default_rng(5).integers(0, 2**31, 20_000)
    count, total = uniforms(keys, "count"), uniforms(keys, "sum:composite")
    assert abs(np.corrcoef(count, total)[0, 1]) < 0.03
    for u in (count, total):
        assert (u >= 0).all() and (u < 1).all()
        deciles = np.histogram(u, bins=10, range=(0, 1))[0] / len(u)
        assert np.abs(deciles - 0.1).max() < 0.01
    assert uniforms(keys[:3], "count").tolist() == [draw(int(k), "count") for k in keys[:3]]


# -- protected figures ---------------------------------------------------------------------------


def test_a_protected_mean_is_the_perturbed_sum_over_the_perturbed_count():
    frame = people({"female": 60})
    row = breakdown(frame, ["sex"], figures=["composite"], min_cell=5, protection=DEFAULT)
    cell = row.iloc[0]
    key = int(frame["record_key"].sum() % 2**31)
    n = changed(60, key)
    top = frame["composite"].max()
    noisy_sum = frame["composite"].sum() + 0.75 * top * (2 * draw(key, "sum:composite") - 1)
    assert cell["returnees"] == n
    assert cell["composite_mean"] == pytest.approx(noisy_sum / n, abs=1e-9)  # sums to 9 decimals
    squares = (frame["composite"] ** 2).sum()
    noisy_squares = squares + 0.75 * top**2 * (2 * draw(key, "sumsq:composite") - 1)
    sd = np.sqrt(max(noisy_squares - noisy_sum**2 / n, 0) / (n - 1))
    assert cell["composite_sd"] == pytest.approx(sd, rel=1e-9)
    # Each interview is its own cluster: Student's t on the perturbed n - 1 degrees of freedom.
    half = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
    assert cell["composite_low"] == pytest.approx(noisy_sum / n - half, rel=1e-9)
    sustainable = frame[frame["sustainable"] == 1]
    expected_share = changed(len(sustainable), int(sustainable["record_key"].sum() % 2**31)) / n
    assert cell["share_sustainable"] == pytest.approx(min(expected_share, 1.0))


def test_each_figure_has_its_own_noise():
    frame = people({"female": 80}).assign(economic=lambda f: f["composite"])
    cell = breakdown(
        frame, ["sex"], figures=["economic", "composite"], min_cell=5, protection=DEFAULT
    ).iloc[0]
    assert cell["economic_mean"] != cell["composite_mean"]  # same values, other streams


def test_the_same_records_get_the_same_figures_in_any_order_and_any_grouping():
    frame = people({"female": 40, "male": 35, "other": 12}, seed=8)
    by_sex = breakdown(frame, ["sex"], figures=["composite"], min_cell=5, protection=DEFAULT)
    women = frame[frame["sex"] == "female"].sample(frac=1.0, random_state=2)
    alone = breakdown(women, ["country"], figures=["composite"], min_cell=5, protection=DEFAULT)
    numbers = ["returnees", "composite_mean", "composite_sd", "share_sustainable"]
    in_sex = by_sex.set_index("sex").loc["female", numbers]
    assert alone.iloc[-1][numbers].tolist() == in_sex.tolist()  # the total of the same women
    shuffled = frame.sample(frac=1.0, random_state=1)
    again = breakdown(shuffled, ["sex"], figures=["composite"], min_cell=5, protection=DEFAULT)
    pd.testing.assert_frame_equal(by_sex, again)


def test_one_more_interview_version_changes_the_noise():
    frame = people({"female": 50}, seed=9)
    other = frame.copy()
    other.loc[0, "record_key"] = (int(other.loc[0, "record_key"]) + 1) % 2**31
    first = breakdown(frame, [], figures=["composite"], min_cell=5, protection=DEFAULT)
    second = breakdown(other, [], figures=["composite"], min_cell=5, protection=DEFAULT)
    assert first.iloc[-1]["composite_mean"] != second.iloc[-1]["composite_mean"]


def test_suppression_follows_the_perturbed_count_and_hidden_groups_are_gathered():
    rng = np.random.default_rng(11)
    groups = {f"g{i:02d}": int(n) for i, n in enumerate(rng.integers(2, 9, 30))}
    frame = people(groups, seed=12)
    table = breakdown(frame, ["sex"], figures=["composite"], min_cell=5, protection=DEFAULT)
    expected_shown = {
        name
        for name, rows in frame.groupby("sex")
        if changed(len(rows), int(rows["record_key"].sum() % 2**31)) >= 5
    }
    listed = table[~table["other"] & (table["sex"] != TOTAL)]
    assert set(listed["sex"]) == expected_shown
    assert (listed["returnees"] >= 5).all() and not listed["suppressed"].any()
    # Some true counts of 5 or more are hidden, some under 5 are shown: the perturbed count rules.
    true_sizes = pd.Series(groups)
    assert (true_sizes[list(expected_shown)] < 5).any()
    assert (true_sizes.drop(list(expected_shown)) >= 5).any()
    other = table[table["other"]]
    assert len(other) == 1 and other.index[0] == len(table) - 2
    assert other["sex"].isna().all()
    hidden = frame[~frame["sex"].isin(expected_shown)]
    union = breakdown(
        hidden.assign(sex="x"), [], figures=["composite"], min_cell=5, protection=DEFAULT
    ).iloc[-1]
    numbers = ["returnees", "unscored", "composite_mean", "composite_sd", "share_sustainable"]
    assert other.iloc[0][numbers].tolist() == union[numbers].tolist()
    assert table.iloc[-1]["sex"] == TOTAL and not table.iloc[-1]["other"]


def test_a_small_other_row_is_suppressed_itself():
    frame = people({"female": 200, "male": 1}, seed=13)
    table = breakdown(frame, ["sex"], figures=["composite"], min_cell=5, protection=DEFAULT)
    other = table[table["other"]].iloc[0]
    assert (
        other["suppressed"] and np.isnan(other["returnees"]) and np.isnan(other["composite_mean"])
    )
    assert table["sex"].tolist()[0] == "female" and table["sex"].tolist()[-1] == TOTAL


def test_without_hidden_groups_there_is_no_other_row_and_a_true_zero_stays_zero():
    frame = people({"female": 50, "male": 50}, seed=14)
    frame.loc[frame["sex"] == "male", "composite"] = np.nan
    table = breakdown(frame, ["sex"], figures=["composite"], min_cell=5, protection=DEFAULT)
    assert not table["other"].any() or table.loc[table["other"], "returnees"].isna().all()
    total = table.iloc[-1]
    assert total["unscored"] == changed(
        50, int(frame.loc[frame["sex"] == "male", "record_key"].sum() % 2**31)
    )
    nobody = breakdown(frame.iloc[:0], [], figures=["composite"], min_cell=5, protection=DEFAULT)
    assert nobody.iloc[-1]["returnees"] == 0 and not nobody.iloc[-1]["suppressed"]


def test_statistics_stay_within_their_ranges():
    rng = np.random.default_rng(15)
    groups = {f"g{i}": int(n) for i, n in enumerate(rng.integers(5, 30, 200))}
    frame = people(groups, seed=16)
    frame["composite"] = np.where(rng.random(len(frame)) < 0.5, 0.999, 0.001)
    frame["sustainable"] = (frame["composite"] > 0.5).astype(float)
    table = breakdown(frame, ["sex"], figures=["composite"], min_cell=5, protection=DEFAULT)
    shown = table[~table["suppressed"]]
    assert shown["composite_mean"].between(0, 1).all()
    assert (shown["composite_sd"].dropna() >= 0).all()
    assert shown["share_sustainable"].between(0, 1).all()
    assert (shown["composite_low"] <= shown["composite_high"]).all()


# -- exact figures ----------------------------------------------------------------------------------


def test_exact_figures_are_the_plain_ones_and_need_no_keys():
    frame = people({"female": 30, "male": 20}, seed=17).drop(columns="record_key")
    table = breakdown(frame, ["sex"], figures=["composite"], min_cell=5).set_index("sex")
    for sex, rows in frame.groupby("sex"):
        assert table.loc[sex, "returnees"] == len(rows)
        assert table.loc[sex, "composite_mean"] == pytest.approx(
            rows["composite"].mean(), rel=1e-12
        )
        assert table.loc[sex, "composite_sd"] == pytest.approx(rows["composite"].std())
    assert "other" not in table


def test_protection_without_record_keys_is_refused():
    frame = people({"female": 30}).drop(columns="record_key")
    with pytest.raises(ConfigurationError, match="need each record's key \\(column record_key\\)"):
        breakdown(frame, ["sex"], figures=["composite"], min_cell=5, protection=DEFAULT)


# -- cost and protection, by simulation -------------------------------------------------------------


def _cells(sizes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    cell = np.repeat(np.arange(len(sizes)), sizes)
    composite = rng.beta(4.0, 4.0, len(cell))
    return pd.DataFrame(
        {
            "sex": cell,
            "composite": composite,
            "sustainable": (composite > 0.6).astype(float),
            "record_key": rng.integers(0, 2**31, len(cell)),
        }
    )


def _published(frame: pd.DataFrame) -> pd.DataFrame:
    table = breakdown(frame, ["sex"], figures=["composite"], min_cell=1, protection=DEFAULT)
    return table[~table["other"]].iloc[:-1].astype({"sex": "int64"}).set_index("sex")


@pytest.mark.parametrize(("size", "ceiling"), [(50, 0.03), (500, 0.005)])
def test_a_mean_composite_moves_less_than_the_ceiling(size, ceiling):
    frame = _cells(np.full(400, size), np.random.default_rng(size))
    truth = frame.groupby("sex")["composite"].mean()
    change = (_published(frame)["composite_mean"] - truth).abs().mean()
    assert change <= ceiling


def test_a_count_moves_by_less_than_two_on_average():
    sizes = np.random.default_rng(21).integers(5, 1000, 2000)
    frame = _cells(sizes, np.random.default_rng(22))
    change = (_published(frame)["returnees"] - sizes).abs().mean()
    assert change <= 2


def test_differencing_two_cells_that_differ_by_one_person_is_worse_than_a_guess():
    rng = np.random.default_rng(23)
    targets = 80
    base = _cells(rng.integers(380, 420, targets), rng)
    added = _cells(np.ones(targets, dtype=np.int64), rng)
    without, with_target = _published(base), _published(pd.concat([base, added]))
    truth = added.set_index("sex")["composite"]
    estimate = (
        with_target["composite_mean"] * with_target["returnees"]
        - without["composite_mean"] * without["returnees"]
    )
    attack = (estimate - truth).abs().mean()
    guess = (with_target["composite_mean"] - truth).abs().mean()
    assert attack >= guess


# -- parameters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (
            {"max_count_change": 0},
            "max_count_change (REINTEGRATION_PERTURB_MAX_COUNT_CHANGE) must be a whole number from 1 to 20, not 0.",
        ),
        (
            {"max_count_change": 2.5},
            "max_count_change (REINTEGRATION_PERTURB_MAX_COUNT_CHANGE) must be a whole number from 1 to 20, not 2.5.",
        ),
        (
            {"max_count_change": 2, "count_variance": 2.0},
            "count_variance (REINTEGRATION_PERTURB_COUNT_VARIANCE) must be above 0 and below 2 (that of a change spread evenly over -2..2), not 2.0.",
        ),
        (
            {"count_variance": float("nan")},
            "count_variance (REINTEGRATION_PERTURB_COUNT_VARIANCE) must be above 0 and below 6.66667 (that of a change spread evenly over -4..4), not nan.",
        ),
        (
            {"sum_noise": 0},
            "sum_noise (REINTEGRATION_PERTURB_SUM_NOISE) must be above 0 and at most 10 (times a cell's largest contribution), not 0.",
        ),
    ],
)
def test_bad_parameters_are_refused_naming_their_setting(parameters, message):
    with pytest.raises(ConfigurationError) as caught:
        Protection(**parameters)
    assert str(caught.value) == message


def test_settings_build_the_protection_and_refuse_a_table_they_cannot_make(tmp_path):
    chosen = protection(
        Settings(home=tmp_path, perturb_max_count_change=3, perturb_count_variance=1.5)
    )
    assert chosen == Protection(max_count_change=3, count_variance=1.5, sum_noise=0.75)
    with pytest.raises(ConfigurationError, match="REINTEGRATION_PERTURB_COUNT_VARIANCE"):
        protection(Settings(home=tmp_path, perturb_max_count_change=1, perturb_count_variance=1))


def test_a_setting_of_the_wrong_kind_is_refused(monkeypatch):
    monkeypatch.setenv("REINTEGRATION_PERTURB_SUM_NOISE", "lots")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="REINTEGRATION_PERTURB_SUM_NOISE"):
            get_settings()
    finally:
        monkeypatch.delenv("REINTEGRATION_PERTURB_SUM_NOISE")
        get_settings.cache_clear()


# -- histograms ---------------------------------------------------------------------------------


def test_histogram_bins_merge_until_each_perturbed_count_reaches_the_minimum():
    rng = np.random.default_rng(31)
    for _ in range(200):
        counts = [int(c) for c in rng.choice([0, 0, 1, 2, 3, 6, 20], 10)]
        keys = [int(k) for k in rng.integers(0, 2**31, 10)]
        edges = [i / 10 for i in range(11)]
        merged = merge_bins(counts, keys, edges, min_cell=5, protection=DEFAULT)
        assert merged[0][0] == 0.0 and merged[-1][1] == 1.0
        assert all(a[1] == b[0] for a, b in itertools.pairwise(merged))  # adjacent, no gap
        for low, high, shown in merged:
            inside = [i for i in range(10) if low <= edges[i] and edges[i + 1] <= high]
            true = sum(counts[i] for i in inside)
            key = sum(keys[i] for i in inside) % 2**31
            if len(merged) > 1:
                assert shown == changed(true, key) and shown >= 5  # no zero beside a hidden bin
            else:
                assert shown == (None if 0 < changed(true, key) < 5 else changed(true, key))


def test_a_histogram_of_one_person_is_one_hidden_bin():
    edges = [i / 10 for i in range(11)]
    counts = [0] * 10
    counts[3] = 1
    keys = [0] * 10
    keys[3] = 12345
    merged = merge_bins(counts, keys, edges, min_cell=5, protection=DEFAULT)
    assert len(merged) == 1 and merged[0][:2] == (0.0, 1.0)
    assert merged[0][2] in (None, 0)  # a count of 1 moves to 0, 1 or 2: never shown as 1
