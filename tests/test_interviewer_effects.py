"""Enumerator effects: leaving out the flagged enumerators (what it changes, exact and
protected), and the interviewer intra-class correlation of the composite."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from reintegration.aggregate import latest_per_returnee
from reintegration.analytics import Analytics, Filters
from reintegration.index import ReintegrationIndex
from reintegration.ingest import ingest_file
from reintegration.interviewer import flagged_enumerators, icc_oneway, interviewer_icc
from reintegration.quality import enumerator_anomalies
from reintegration.questionnaire import load_questionnaire
from reintegration.store.engine import open_store
from reintegration.synth import generate_panel, write_panel

LABEL = "rss-v1-provisional"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interviewer")
    engine = open_store(f"sqlite:///{folder / 'store.db'}")
    frame, _ = generate_panel(400, 3, seed=7)
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


@pytest.fixture(scope="module")
def oracle(store) -> pd.DataFrame:
    query = """
        SELECT s.returnee_key, s.submission_id, s.interview_date, s.enumerator_id,
               r.country, sc.composite
        FROM submission s JOIN returnee r ON r.key = s.returnee_key
        LEFT JOIN score sc ON sc.submission_pk = s.id AND sc.index_version = :label
        WHERE s.current
    """
    with store.connect() as conn:
        frame = pd.read_sql(sa.text(query), conn, params={"label": LABEL})
    return frame.sort_values(["returnee_key", "interview_date", "submission_id"])


def _flagged(store) -> set[str]:
    table = enumerator_anomalies(store, load_questionnaire(), index_version=LABEL)
    return set(table.loc[table["flagged"], "enumerator_id"])


def test_the_synthetic_anomalous_enumerators_are_flagged_and_their_interviews_listed(store, oracle):
    flagged = _flagged(store)
    listed = flagged_enumerators(store, load_questionnaire(), LABEL)

    assert len(flagged) == 2  # the generator's two anomalous enumerators
    assert set(listed["enumerator_id"]) == flagged
    assert len(listed) == oracle["enumerator_id"].isin(flagged).sum()


def test_excluding_flagged_enumerators_matches_a_plain_reading(store, oracle):
    analytics = Analytics(store)
    flagged = _flagged(store)
    kept = oracle[~oracle["enumerator_id"].isin(flagged)]

    table = analytics.aggregates(["country"], Filters(exclude_flagged_enumerators=True), LABEL)
    latest = latest_per_returnee(kept)
    scored = latest[latest["composite"].notna()]
    total = table.iloc[-1]
    assert total["returnees"] == len(scored)
    assert total["composite_mean"] == pytest.approx(scored["composite"].mean())
    for country, part in scored.groupby("country"):
        row = table[table["country"] == country].iloc[0]
        assert row["composite_mean"] == pytest.approx(part["composite"].mean())


def test_the_exclusion_answer_says_what_changes(store, oracle):
    answer = Analytics(store).enumerator_exclusion(Filters(), LABEL)
    flagged = _flagged(store)
    everyone = latest_per_returnee(oracle)
    kept = latest_per_returnee(oracle[~oracle["enumerator_id"].isin(flagged)])

    assert answer["figures"] == "exact"
    assert answer["enumerators"] == len(flagged)
    assert answer["interviews"] == oracle["enumerator_id"].isin(flagged).sum()
    assert answer["returnees"] == len(set(everyone["returnee_key"]) - set(kept["returnee_key"]))
    assert answer["with"]["mean"] == pytest.approx(everyone["composite"].mean())
    assert answer["without"]["mean"] == pytest.approx(kept["composite"].mean())
    assert answer["without"]["mean"] < answer["with"]["mean"]  # they score upwards
    assert answer["summary"].startswith(
        f"Leaving out {len(flagged)} flagged enumerators removes {answer['interviews']:,} "
        "interviews;"
    )
    assert f"Mean composite without them {answer['without']['mean']:.3f}" in answer["summary"]


def test_the_exclusion_within_a_country_without_flagged_enumerators_changes_nothing(store):
    answer = Analytics(store).enumerator_exclusion(Filters(countries=frozenset({"GIN"})), LABEL)

    assert answer["enumerators"] == 0 and answer["interviews"] == 0
    assert answer["with"] == answer["without"]
    assert answer["summary"] == (
        "No flagged enumerator ran an interview in this selection: nothing is left out."
    )


def test_a_protected_exclusion_never_shows_an_exact_small_count(store, oracle):
    analytics = Analytics(store, min_cell=5)
    exact = analytics.enumerator_exclusion(Filters(), LABEL)
    protected = analytics.enumerator_exclusion(Filters(), LABEL, protected=True)

    assert protected["figures"] == "protected"
    assert protected["enumerators"] is None  # two enumerators: under min_cell
    assert "fewer than 5 flagged enumerators" in protected["summary"]
    for key in ("interviews", "returnees"):
        assert protected[key] is None or protected[key] >= 5
        assert abs(protected[key] - exact[key]) <= analytics.protection.max_count_change
    assert protected["with"]["mean"] != exact["with"]["mean"]  # perturbed, not exact
    # Within one country the flagged enumerators' few interviews are hidden, not shown.
    small = analytics.enumerator_exclusion(
        Filters(countries=frozenset({"SEN"}), rounds=frozenset({3})), LABEL, protected=True
    )
    assert small["interviews"] is None or small["interviews"] >= 5


def test_the_exclusion_filter_is_part_of_the_cached_question(store):
    analytics = Analytics(store)
    plain = analytics.overview(Filters(), LABEL)
    excluded = analytics.overview(Filters(exclude_flagged_enumerators=True), LABEL)

    assert excluded["returnees"] < plain["returnees"]
    assert excluded["surveys"] < plain["surveys"]


# -- the intra-class correlation ---------------------------------------------------------------


def _clustered(rng: np.random.Generator, icc: float, groups: int, size: int):
    labels = np.repeat(np.arange(groups), size)
    effects = rng.normal(0.0, np.sqrt(icc), groups)
    return effects[labels] + rng.normal(0.0, np.sqrt(1 - icc), groups * size), labels


def test_the_icc_interval_covers_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(13)
    covered = []
    for _ in range(400):
        values, labels = _clustered(rng, 0.15, 20, 12)
        est = icc_oneway(values, labels)
        covered.append(est.low <= 0.15 <= est.high)
    assert 0.92 <= np.mean(covered) <= 0.98


def test_the_icc_matches_the_anova_formula_on_unequal_groups():
    values = np.array([0.2, 0.3, 0.25, 0.6, 0.7, 0.5, 0.65, 0.4, np.nan])
    labels = np.array(["a", "a", "a", "b", "b", "b", "b", "c", "c"])
    est = icc_oneway(values, labels)
    frame = pd.DataFrame({"y": values, "g": labels}).dropna()
    k, n = 3, 8
    means = frame.groupby("g")["y"].transform("mean")
    sizes = frame.groupby("g").size()
    msb = (sizes * (frame.groupby("g")["y"].mean() - frame["y"].mean()) ** 2).sum() / (k - 1)
    msw = ((frame["y"] - means) ** 2).sum() / (n - k)
    n0 = (n - (sizes**2).sum() / n) / (k - 1)

    assert (est.groups, est.n) == (k, n)
    assert est.n0 == pytest.approx(n0)
    assert est.icc == pytest.approx((msb - msw) / (msb + (n0 - 1) * msw))
    assert est.low < est.icc < est.high
    assert est.design_effect == pytest.approx(1 + (n0 - 1) * est.icc)


def test_the_icc_needs_two_groups_and_some_spread():
    assert icc_oneway(np.array([0.1, 0.2, 0.3]), np.array(["a", "a", "a"])).icc is None
    assert icc_oneway(np.array([0.1, 0.1, 0.3, 0.3]), np.array(["a", "a", "b", "b"])).icc is None
    assert icc_oneway(np.array([]), np.array([])).groups == 0


def test_the_store_icc_is_exact_for_analysts_and_restricted_when_protected(store, oracle):
    exact = interviewer_icc(store, index_version=LABEL)
    scored = oracle[oracle["composite"].notna() & oracle["enumerator_id"].notna()]
    expected = icc_oneway(scored["composite"].to_numpy(), scored["enumerator_id"].to_numpy())

    assert exact["figures"] == "exact" and exact["note"] is None
    assert exact["icc"] == pytest.approx(expected.icc)
    assert (exact["groups"], exact["n"]) == (expected.groups, expected.n)
    assert 0 < exact["low"] < exact["icc"] < exact["high"] < 1

    protected = interviewer_icc(store, index_version=LABEL, protected=True, min_cell=10)
    sizes = scored.groupby("enumerator_id")["composite"].transform("size")
    big = scored[sizes >= 10]
    restricted = icc_oneway(big["composite"].to_numpy(), big["enumerator_id"].to_numpy())
    assert protected["icc"] == pytest.approx(restricted.icc)
    assert protected["groups"] == restricted.groups
    assert abs(protected["n"] - restricted.n) <= 4
    assert "at least 10 scored interviews" in protected["note"]


def test_a_protected_icc_of_too_few_enumerators_is_not_shown(store):
    answer = interviewer_icc(store, index_version=LABEL, protected=True, min_cell=1000)

    assert answer["icc"] is None and answer["n"] is None
    assert answer["note"] == (
        "Not shown in publishable figures: fewer than 1000 enumerators have at least 1000 "
        "scored interviews."
    )


def test_an_icc_of_an_unknown_batch_says_what_it_needs(store):
    answer = interviewer_icc(store, index_version=LABEL, batch_id="no-such-batch")

    assert answer["icc"] is None and answer["groups"] == 0
    assert answer["note"] == (
        "Needs at least two enumerators with scored interviews, one with two or more."
    )


def test_the_exclusion_at_a_round_compares_that_rounds_surveys(store, oracle):
    analytics = Analytics(store)
    flagged = _flagged(store)
    query = "SELECT submission_id, survey_round FROM submission WHERE current"
    with store.connect() as conn:
        rounds = pd.read_sql(sa.text(query), conn)
    second = oracle.merge(rounds, on="submission_id")
    second = second[second["survey_round"] == 2]
    kept = second[~second["enumerator_id"].isin(flagged)]

    answer = analytics.enumerator_exclusion(Filters(at_round=2), LABEL)
    assert answer["interviews"] == second["enumerator_id"].isin(flagged).sum()
    assert answer["with"]["mean"] == pytest.approx(second["composite"].mean())
    assert answer["without"]["mean"] == pytest.approx(kept["composite"].mean())
    table = analytics.aggregates([], Filters(at_round=2, exclude_flagged_enumerators=True), LABEL)
    assert table.iloc[-1]["composite_mean"] == pytest.approx(answer["without"]["mean"])


def test_a_frame_not_built_by_analytics_cannot_drop_flagged_enumerators(store):
    analytics = Analytics(store)
    foreign = analytics.frame(LABEL).copy()
    foreign.attrs.clear()

    with pytest.raises(Exception, match="flagged enumerators can only be left out of a stored"):
        analytics._mask(foreign, Filters(exclude_flagged_enumerators=True))
