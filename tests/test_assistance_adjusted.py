"""Adjusted assistance associations (reintegration.assistance): on returnees generated with a
known assistance effect and confounding, the adjusted gap finds the truth and the raw one does
not; poor overlap is flagged; a gap that cannot be adjusted or lacks returnees says why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reintegration.assistance import (
    COLUMNS,
    NOT_SEPARABLE_NOTE,
    UNWEIGHTED_NOTE,
    associations,
    overlap,
    raw_from_published,
    rounded,
    welch,
)

TRUE_GRANT = 0.05  # what a business grant adds to the composite, everyone alike
COUNTRIES = ("SEN", "GIN", "MLI", "NGA")
COUNTRY_EFFECT = {"SEN": 0.04, "GIN": -0.03, "MLI": -0.06, "NGA": 0.0}
COUNTRY_RATE = {"SEN": 1.3, "GIN": 0.9, "MLI": 0.7, "NGA": 1.0}


def confounded(n: int, seed: int, *, grant: float = TRUE_GRANT) -> tuple[pd.DataFrame, pd.Series]:
    """Returnees whose composite depends on return type, sex, country and months since
    return, plus ``grant`` for a business grant; grants go mostly to voluntary returnees
    (who score higher) and to the better-off countries, so the raw gap overstates. Cash is
    given at random and does nothing. Some returnees get both."""
    rng = np.random.default_rng(seed)
    forced = rng.random(n) < 0.4
    female = rng.random(n) < 0.3
    child = rng.random(n) < 0.15
    country = rng.choice(COUNTRIES, n)
    months = rng.uniform(1.0, 24.0, n)
    p_grant = np.where(forced, 0.12, 0.55) * np.array([COUNTRY_RATE[c] for c in country])
    has_grant = rng.random(n) < p_grant
    has_cash = rng.random(n) < 0.3
    composite = (
        0.55
        - 0.12 * forced
        - 0.05 * female
        - 0.03 * child
        + np.array([COUNTRY_EFFECT[c] for c in country])
        + 0.04 * np.log1p(months)
        + grant * has_grant
        + rng.normal(0.0, 0.1, n)
    )
    records = pd.DataFrame(
        {
            "composite": composite,
            "sex": np.where(female, "female", "male"),
            "age_group": np.where(child, "child", "adult"),
            "return_type": np.where(forced, "forced", "voluntary"),
            "country": country,
            "months_since_return": months,
        }
    )
    codes = [
        [c for c, has in (("business_grant", g), ("cash", k)) if has]
        for g, k in zip(has_grant, has_cash, strict=True)
    ]
    return records, pd.Series(codes, index=records.index, dtype=object)


def test_the_adjusted_gap_finds_the_true_effect_and_the_raw_one_overstates_it():
    records, codes = confounded(3000, seed=11)
    table = associations(records, codes).set_index("assistance")
    grant = table.loc["business_grant"]
    assert grant["adjusted_low"] <= TRUE_GRANT <= grant["adjusted_high"]
    assert grant["raw_low"] > TRUE_GRANT  # the raw interval misses the truth, above it
    assert grant["raw_difference"] > 1.5 * grant["adjusted_difference"]
    assert grant["overlap"] == "adequate" and pd.isna(grant["note"])
    # Cash does nothing, but a third of its holders also hold a grant: types received
    # beside the one compared are not adjusted for (each type against none, as the raw gap).
    cash = table.loc["cash"]
    with_cash = codes.map(lambda c: "cash" in c)
    carried = TRUE_GRANT * codes[with_cash].map(lambda c: "business_grant" in c).mean()
    assert cash["adjusted_low"] <= carried <= cash["adjusted_high"]
    assert list(table.reset_index().columns) == list(COLUMNS)


def test_the_raw_gap_is_the_difference_of_the_two_means():
    records, codes = confounded(500, seed=3)
    table = associations(records, codes).set_index("assistance")
    grant = codes.map(lambda c: "business_grant" in c)
    none = codes.map(len) == 0
    expected = records["composite"][grant].mean() - records["composite"][none].mean()
    assert table.at["business_grant", "raw_difference"] == pytest.approx(expected)
    assert table.at["business_grant", "treated"] == grant.sum()
    assert table.at["business_grant", "untreated"] == none.sum()


def test_adjusted_intervals_cover_the_truth_about_95_percent_of_the_time_and_raw_ones_do_not():
    covered = {"raw": 0, "adjusted": 0}
    replications = 120
    for seed in range(replications):
        records, codes = confounded(600, seed=1000 + seed)
        grant = associations(records, codes, types=["business_grant"]).iloc[0]
        covered["raw"] += grant["raw_low"] <= TRUE_GRANT <= grant["raw_high"]
        covered["adjusted"] += grant["adjusted_low"] <= TRUE_GRANT <= grant["adjusted_high"]
    assert 0.89 <= covered["adjusted"] / replications <= 0.99
    assert covered["raw"] / replications < 0.5


def test_poor_overlap_is_measured_and_flagged():
    # Grants only in two countries, where nearly everyone gets one: the others have no
    # comparable recipients.
    records, _ = confounded(800, seed=5)
    rng = np.random.default_rng(6)
    rich = records["country"].isin(["SEN", "GIN"]).to_numpy()
    has = np.where(rich, rng.random(len(records)) < 0.97, rng.random(len(records)) < 0.01)
    codes = pd.Series([["business_grant"] if h else [] for h in has], index=records.index)
    grant = associations(records, codes).iloc[0]
    assert grant["overlap"] == "limited"
    assert grant["untreated_outside_support"] > 0.10
    assert grant["note"].startswith("poor overlap: ")
    assert "lie outside the range of covariates the other group has" in grant["note"]


def test_good_overlap_when_assistance_is_random():
    records, _ = confounded(800, seed=8)
    rng = np.random.default_rng(9)
    codes = pd.Series([["cash"] if rng.random() < 0.4 else [] for _ in range(len(records))])
    cash = associations(records, codes).iloc[0]
    assert cash["overlap"] == "adequate"
    assert max(cash["treated_outside_support"], cash["untreated_outside_support"]) <= 0.10


def test_overlap_shares_of_a_known_split():
    x = np.array([[0.0], [0.0], [1.0], [1.0], [2.0], [2.0]])
    treated = np.array([False, False, False, True, True, True])
    assert overlap(x, treated) == pytest.approx((2 / 3, 2 / 3))
    assert overlap(np.empty((4, 0)), np.array([True, False, True, False])) == (0.0, 0.0)


def test_assistance_fixed_by_the_covariates_is_not_adjusted_and_says_why():
    records, _ = confounded(200, seed=2)
    codes = pd.Series(
        [["legal"] if c == "SEN" else [] for c in records["country"]], index=records.index
    )
    legal = associations(records, codes).iloc[0]
    assert legal["note"] == NOT_SEPARABLE_NOTE
    assert pd.isna(legal["adjusted_difference"])
    assert not pd.isna(legal["raw_difference"])


def test_too_few_returnees_gives_no_gap():
    records, _ = confounded(50, seed=4)
    codes = pd.Series([["housing"]] + [[]] * 49, index=records.index)
    housing = associations(records, codes, min_group=5).iloc[0]
    assert housing["note"] == "too few returnees in a group (1 with it, 49 with none)"
    assert pd.isna(housing["raw_difference"]) and pd.isna(housing["adjusted_difference"])


def test_none_coded_as_text_and_unscored_rows_count_as_expected():
    records, codes = confounded(300, seed=12)
    texts = codes.map(lambda c: c or ["none"])
    records.loc[records.index[:10], "composite"] = np.nan
    table = associations(records, texts).set_index("assistance")
    assert "none" not in table.index
    none = (codes.map(len) == 0) & records["composite"].notna()
    assert table.at["cash", "untreated"] == none.sum()


def test_weights_are_used_when_every_compared_returnee_has_one():
    records, codes = confounded(400, seed=13)
    weighted = associations(records.assign(w=1.0), codes, weight="w")
    plain = associations(records, codes)
    assert weighted["adjusted_difference"].to_numpy() == pytest.approx(
        plain["adjusted_difference"].to_numpy()
    )
    heavier = records.assign(w=np.where(records["return_type"] == "forced", 3.0, 1.0))
    moved = associations(heavier, codes, weight="w")
    assert not np.allclose(moved["raw_difference"], plain["raw_difference"])
    partial = records.assign(w=np.where(records.index < 5, np.nan, 1.0))
    notes = associations(partial, codes, weight="w")["note"]
    assert notes.str.contains(UNWEIGHTED_NOTE).all()


def test_clustered_intervals_are_wider_when_interviewers_share_a_shift():
    records, codes = confounded(1200, seed=14)
    rng = np.random.default_rng(15)
    enumerator = rng.integers(0, 24, len(records))
    shift = rng.normal(0.0, 0.08, 24)[enumerator]
    # Interviewers who meet grant holders more often: the shift is shared within clusters.
    shaken = records.assign(composite=records["composite"] + shift, enumerator=enumerator)
    plain = associations(shaken, codes).iloc[0]
    clustered = associations(shaken, codes, cluster="enumerator").iloc[0]
    assert clustered["adjusted_difference"] == pytest.approx(plain["adjusted_difference"])
    width = clustered["adjusted_high"] - clustered["adjusted_low"]
    assert width > plain["adjusted_high"] - plain["adjusted_low"]


def test_raw_gap_from_published_means_is_welch():
    table = pd.DataFrame(
        {
            "assistance": ["cash", "none", "all"],
            "returnees": [10.0, 10.0, 20.0],
            "composite_mean": [0.6, 0.5, 0.55],
            "composite_sd": [0.1, 0.1, 0.11],
        }
    )
    got = raw_from_published(table, "composite", ["cash", "legal"]).set_index("assistance")
    assert got.loc["cash"].tolist() == pytest.approx(list(welch(0.6, 0.1, 10, 0.5, 0.1, 10)))
    assert got.loc["legal"].isna().all()
    gap, low, high = welch(0.6, 0.1, 10, 0.5, 0.1, 10)
    assert (gap, round(low, 3), round(high, 3)) == pytest.approx((0.1, 0.006, 0.194))
    assert np.isnan(welch(0.6, 0.1, 1, 0.5, 0.1, 10)).all()


def test_rounded_rounds_every_figure_and_rewrites_the_note():
    records, codes = confounded(300, seed=16)
    table = associations(records, codes)
    table.loc[0, ["overlap", "treated_outside_support"]] = ["limited", 0.123456]
    table.loc[0, "note"] = "poor overlap: 12.3456%"
    out = rounded(table)
    for column in ("raw_difference", "adjusted_low", "treated_outside_support"):
        assert (out[column].dropna() == out[column].dropna().round(2)).all()
    assert out.loc[0, "note"].startswith("poor overlap: 12% of those who received it")
    assert table.loc[0, "note"] == "poor overlap: 12.3456%"  # the input is left as it was


# -- through the analytics, on a stored synthetic panel -------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from reintegration.index import ReintegrationIndex
    from reintegration.ingest import ingest_file
    from reintegration.questionnaire import load_questionnaire
    from reintegration.store.engine import open_store
    from reintegration.synth import generate_panel, write_panel

    folder = tmp_path_factory.mktemp("assistance")
    engine = open_store(f"sqlite:///{folder / 'store.db'}")
    frame, _ = generate_panel(600, 2, seed=21)
    write_panel(frame, folder / "panel.csv")
    ingest_file(
        folder / "panel.csv",
        engine,
        scorer=ReintegrationIndex().fit(),
        questionnaire=load_questionnaire(),
        secret=b"k" * 32,
        uploader="enumerator-1",
    )
    yield engine
    engine.dispose()


LABEL = "rss-v1-provisional"


def test_exact_associations_list_every_type_and_match_the_table(store):
    from reintegration.analytics import Analytics, Filters

    analytics = Analytics(store)
    table = analytics.assistance(Filters(), LABEL).set_index("assistance")
    found = analytics.assistance_associations(Filters(), LABEL).set_index("assistance")
    assert set(found.index) == set(table.index) - {"all", "none"}
    for code, row in found.iterrows():
        composite = table.at[code, "composite_mean"] - table.at["none", "composite_mean"]
        assert row["raw_difference"] == pytest.approx(composite)
        assert row["treated"] == table.at[code, "returnees"]
        assert row["untreated"] == table.at["none", "returnees"]
        assert row["adjusted_low"] <= row["adjusted_difference"] <= row["adjusted_high"]
        assert row["overlap"] in ("adequate", "limited")
    economic = analytics.assistance_associations(Filters(), LABEL, figure="economic")
    first = economic.iloc[0]
    gap = table.at[first["assistance"], "economic_mean"] - table.at["none", "economic_mean"]
    assert first["raw_difference"] == pytest.approx(gap)


def test_types_under_min_cell_are_listed_without_a_gap(store):
    from reintegration.analytics import Analytics, Filters

    analytics = Analytics(store, min_cell=60)
    table = analytics.assistance(Filters(), LABEL).set_index("assistance")
    found = analytics.assistance_associations(Filters(), LABEL).set_index("assistance")
    hidden = table.index[table["suppressed"]].drop(["all", "none"], errors="ignore")
    assert len(hidden)  # this panel has small types at 60
    for code in hidden:
        row = found.loc[code]
        assert row.drop("note").isna().all()
        assert row["note"] == (
            "not compared: fewer than 60 returnees with a composite score received it, or "
            "received none"
        )
    shown = found[found["note"].isna() | found["note"].str.startswith("limited")]
    assert len(shown) and shown["adjusted_difference"].notna().all()


def test_protected_associations_are_rounded_and_use_the_published_counts_and_means(store):
    from reintegration.analytics import Analytics, Filters

    analytics = Analytics(store)
    table = analytics.assistance(Filters(), LABEL, protected=True).set_index("assistance")
    found = analytics.assistance_associations(Filters(), LABEL, protected=True)
    listed = set(table.index[~table["other"]]) - {"all", "none"}
    assert set(found["assistance"]) == listed
    compared = found[found["adjusted_difference"].notna()]
    assert len(compared)
    for column in ("raw_difference", "raw_high", "adjusted_difference", "adjusted_low"):
        assert (compared[column] == compared[column].round(2)).all()
    for _, row in compared.iterrows():
        gap = table.at[row["assistance"], "composite_mean"] - table.at["none", "composite_mean"]
        assert row["raw_difference"] == round(gap, 2)
        assert row["treated"] == table.at[row["assistance"], "returnees"]
        assert row["untreated"] == table.at["none", "returnees"]


def test_an_unknown_figure_is_refused(store):
    from reintegration.analytics import Analytics, Filters
    from reintegration.errors import QueryError

    with pytest.raises(QueryError, match="figure must be one of economic, social"):
        Analytics(store).assistance_associations(Filters(), LABEL, figure="income")


def test_a_selection_without_returnees_lists_no_type(store):
    from reintegration.analytics import Analytics, Filters

    analytics = Analytics(store)
    for protected in (False, True):
        found = analytics.assistance_associations(
            Filters(countries=frozenset({"ATA"})), LABEL, protected=protected
        )
        assert found.empty and list(found.columns) == list(COLUMNS)


def test_raw_gap_in_a_share_from_published_shares():
    table = pd.DataFrame(
        {
            "assistance": ["cash", "none", "all"],
            "returnees": [40.0, 60.0, 100.0],
            "share_sustainable": [0.75, 0.5, 0.6],
        }
    )
    got = raw_from_published(table, "sustainable", ["cash"]).iloc[0]
    sd_cash, sd_none = np.sqrt(0.75 * 0.25 * 40 / 39), np.sqrt(0.25 * 60 / 59)
    assert got["raw_difference"] == pytest.approx(0.25)
    assert [got["raw_low"], got["raw_high"]] == pytest.approx(
        list(welch(0.75, sd_cash, 40, 0.5, sd_none, 60)[1:])
    )


def test_associations_come_from_either_store_with_their_enumerators(engine, ingest, tmp_path):
    """SQLite and PostgreSQL (when configured) alike: the gaps, and the enumerators that are
    their clusters."""
    from reintegration.analytics import Analytics, Filters
    from reintegration.synth import generate_panel, write_panel

    frame, _ = generate_panel(300, 2, seed=23)
    write_panel(frame, tmp_path / "panel.csv")
    ingest(tmp_path / "panel.csv")
    analytics = Analytics(engine)
    table = analytics.assistance(Filters(), LABEL).set_index("assistance")
    found = analytics.assistance_associations(Filters(), LABEL).set_index("assistance")
    compared = found[found["adjusted_difference"].notna()]
    assert len(compared) >= 3
    for code, row in compared.iterrows():
        gap = table.at[code, "composite_mean"] - table.at["none", "composite_mean"]
        assert row["raw_difference"] == pytest.approx(gap)
        assert row["adjusted_low"] < row["adjusted_high"]
    records = analytics._records(Filters(), LABEL, ())
    enumerators = analytics._enumerators_of(records)
    assert len(set(enumerators)) == frame["enumerator_id"].nunique()
