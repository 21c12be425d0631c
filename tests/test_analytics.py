"""Analytics: the fast in-memory aggregates agree with a plain pandas reading of the store,
follow the counting and suppression rules, and never serve an answer older than the data."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from reintegration.aggregate import TOTAL, latest_per_returnee
from reintegration.analytics import Analytics, Filters, months_band
from reintegration.errors import QueryError
from reintegration.index import ReintegrationIndex
from reintegration.ingest import ingest_file
from reintegration.questionnaire import load_questionnaire
from reintegration.store.engine import open_store
from reintegration.synth import generate_panel, write_panel

SECRET = b"k" * 32
LABEL = "rss-v1-provisional"


def _ingest(engine: sa.Engine, frame: pd.DataFrame, path) -> None:
    write_panel(frame, path)
    ingest_file(
        path,
        engine,
        scorer=ReintegrationIndex().fit(),
        questionnaire=load_questionnaire(),
        secret=SECRET,
        uploader="enumerator-1",
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("analytics")
    engine = open_store(f"sqlite:///{folder / 'store.db'}")
    frame, _ = generate_panel(400, 3, seed=7)
    _ingest(engine, frame, folder / "panel.csv")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def oracle(store) -> pd.DataFrame:
    """The store read the slow, obvious way: every current submission with its v1 scores."""
    query = """
        SELECT s.returnee_key, s.submission_id, s.interview_date, s.survey_round AS round,
               s.months_since_return, s.assistance, r.sex, r.age_at_return, r.return_type,
               r.country, sc.economic, sc.social, sc.psychosocial, sc.composite, sc.level,
               sc.sustainable
        FROM submission s JOIN returnee r ON r.key = s.returnee_key
        LEFT JOIN score sc ON sc.submission_pk = s.id AND sc.index_version = :label
        WHERE s.current
    """
    with store.connect() as conn:
        frame = pd.read_sql(sa.text(query), conn, params={"label": LABEL})
    frame["age_group"] = np.where(frame["age_at_return"] < 18, "child", "adult")
    return frame.sort_values(["returnee_key", "interview_date", "submission_id"])


def test_totals_count_each_returnee_once_at_their_latest_scored_survey(store, oracle):
    table = Analytics(store).aggregates([], Filters(), LABEL)
    latest = latest_per_returnee(oracle)
    scored = latest[latest["composite"].notna()]
    total = table.iloc[-1]
    assert total["returnees"] == len(scored)
    assert total["unscored"] == latest["composite"].isna().sum()
    assert total["composite_mean"] == pytest.approx(scored["composite"].mean())
    assert total["share_sustainable"] == pytest.approx(scored["sustainable"].astype(float).mean())
    assert total["share_high"] == pytest.approx((scored["level"] == "high").mean())


def test_groups_match_a_plain_group_by(store, oracle):
    table = Analytics(store, min_cell=1).aggregates(["sex", "return_type"], Filters(), LABEL)
    latest = latest_per_returnee(oracle)
    scored = latest[latest["composite"].notna()]
    expected = scored.groupby(["sex", "return_type"])["economic"].agg(["count", "mean"])
    cells = table[table["sex"] != TOTAL].set_index(["sex", "return_type"])
    for (sex, return_type), row in expected.iterrows():
        assert cells.loc[(sex, return_type), "returnees"] == row["count"]
        assert cells.loc[(sex, return_type), "economic_mean"] == pytest.approx(row["mean"])
    assert table.iloc[-1][["sex", "return_type"]].tolist() == [TOTAL, TOTAL]


def test_by_round_counts_each_returnee_in_each_round(store, oracle):
    table = Analytics(store).aggregates(["round"], Filters(), LABEL).set_index("round")
    scored = oracle[oracle["composite"].notna()]
    for survey_round, n in scored.groupby("round")["returnee_key"].nunique().items():
        assert table.loc[str(survey_round), "returnees"] == n


def test_filters_narrow_the_records(store, oracle):
    cut = date(2025, 6, 30)
    filters = Filters(date_to=cut, sex=frozenset({"female"}), rounds=frozenset({1, 2}))
    table = Analytics(store).aggregates([], filters, LABEL)
    kept = oracle[
        (pd.to_datetime(oracle["interview_date"]) <= pd.Timestamp(cut))
        & (oracle["sex"] == "female")
        & oracle["round"].isin([1, 2])
    ]
    latest = latest_per_returnee(kept)
    assert table.iloc[-1]["returnees"] == latest["composite"].notna().sum()


def test_a_country_filter_keeps_only_that_country(store, oracle):
    country = oracle["country"].value_counts().index[0]
    table = Analytics(store).aggregates(["country"], Filters(countries=frozenset({country})), LABEL)
    assert set(table["country"]) == {country, TOTAL}


def test_small_cells_are_suppressed_with_their_complement(store):
    analytics = Analytics(store, min_cell=10_000)
    table = analytics.aggregates(["sex"], Filters(), LABEL)
    assert table["suppressed"].all()
    assert table["returnees"].isna().all() and table["composite_mean"].isna().all()


def test_trajectories_follow_survey_rounds_by_default(store, oracle):
    table = Analytics(store).trajectories([], Filters(), LABEL)
    assert table.columns[0] == "round"
    scored = oracle[oracle["composite"].notna()]
    rounds = table.set_index("round")
    for number, n in scored.groupby("round")["returnee_key"].nunique().items():
        assert rounds.loc[str(number), "returnees"] == n


def test_trajectories_band_months_since_return(store, oracle):
    table = Analytics(store).trajectories([], Filters(), LABEL, axis="months")
    assert table.columns[0] == "months_band"
    scored = oracle[oracle["composite"].notna()].assign(
        band=months_band(oracle.loc[oracle["composite"].notna(), "months_since_return"].to_numpy())
    )
    bands = table.set_index("months_band")
    for band, n in scored.groupby("band")["returnee_key"].nunique().items():
        assert bands.loc[band, "returnees"] == n


def test_following_the_same_returnees_keeps_only_complete_panels(store, oracle):
    analytics = Analytics(store)
    everyone = analytics.trajectories([], Filters(), LABEL).set_index("round")
    followed = analytics.trajectories([], Filters(), LABEL, follow=True).set_index("round")
    scored = oracle[oracle["composite"].notna()]
    rounds = scored.groupby("returnee_key")["round"].nunique()
    complete = rounds.index[rounds == oracle["round"].max()]
    for number in ("1", "2", "3"):
        assert followed.loc[number, "returnees"] == len(complete)
        assert followed.loc[number, "returnees"] <= everyone.loc[number, "returnees"]
    # A total over rounds counts returnee-rounds: the sum of its cells.
    assert followed.loc[TOTAL, "returnees"] == 3 * len(complete)


def test_cohorts_are_quarters_of_return(store):
    table = Analytics(store).trajectories([], Filters(), LABEL, axis="cohort")
    assert table["cohort"].iloc[:-1].str.fullmatch(r"20\d\dQ[1-4]").all()


def test_assistance_counts_a_returnee_under_each_type_they_had(store, oracle):
    table = Analytics(store, min_cell=1).aggregates(["assistance"], Filters(), LABEL)
    latest = latest_per_returnee(oracle)
    scored = latest[latest["composite"].notna()]
    got = table.set_index("assistance")
    cash = scored["assistance"].fillna("").str.split().map(lambda c: "cash" in c).sum()
    assert got.loc["cash", "returnees"] == cash
    assert got.loc[TOTAL, "returnees"] == len(scored)


def test_the_overview_histogram_adds_up(store):
    overview = Analytics(store, min_cell=1).overview(Filters(), LABEL)
    assert sum(b["count"] for b in overview["histogram"]) == overview["returnees"]
    assert overview["index_version"] == LABEL
    means = overview["means"]["composite"]
    assert means["low"] < means["mean"] < means["high"]


def test_an_unknown_grouping_is_refused_with_a_sentence(store):
    with pytest.raises(QueryError) as caught:
        Analytics(store).aggregates(["sex", "shoe_size"], Filters(), LABEL)
    assert str(caught.value) == (
        "cannot group by 'shoe_size': use sex, age_group, return_type, country, round, "
        "months_band, cohort, assistance"
    )
    with pytest.raises(QueryError, match="a grouping is repeated in by=sex,sex"):
        Analytics(store).aggregates(["sex", "sex"], Filters(), LABEL)


def test_an_index_version_without_scores_shows_every_record_unscored(store, oracle):
    table = Analytics(store).aggregates([], Filters(), "rss-v9-derived")
    assert table.iloc[-1]["returnees"] == 0
    assert table.iloc[-1]["unscored"] == oracle["returnee_key"].nunique()


def test_a_new_batch_is_seen_at_once(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    analytics = Analytics(engine)
    first, _ = generate_panel(30, 1, seed=1)
    _ingest(engine, first, tmp_path / "a.csv")
    before = analytics.aggregates([], Filters(), LABEL).iloc[-1]["returnees"]
    assert analytics.index_versions() == [LABEL]
    second, _ = generate_panel(30, 1, seed=2)
    second["returnee_id"] = "B-" + second["returnee_id"].astype(str)
    second["submission_id"] = "B-" + second["submission_id"].astype(str)
    _ingest(engine, second, tmp_path / "b.csv")
    after = analytics.aggregates([], Filters(), LABEL).iloc[-1]["returnees"]
    assert after > before
    engine.dispose()


def test_an_empty_store_answers_zero_not_an_error(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    analytics = Analytics(engine)
    table = analytics.aggregates(["sex"], Filters(), LABEL)
    assert table.iloc[-1]["returnees"] == 0 and len(table) == 1
    assert analytics.overview(Filters(), LABEL)["returnees"] == 0
    assert analytics.index_versions() == []
    engine.dispose()


def test_both_stores_give_the_same_answer(engine, tmp_path):
    frame, _ = generate_panel(60, 2, seed=3)
    _ingest(engine, frame, tmp_path / "panel.csv")
    table = Analytics(engine, min_cell=1).aggregates(["sex"], Filters(), LABEL)
    reference = open_store(f"sqlite:///{tmp_path / 'reference.db'}")
    _ingest(reference, frame, tmp_path / "panel.csv")
    expected = Analytics(reference, min_cell=1).aggregates(["sex"], Filters(), LABEL)
    reference.dispose()
    pd.testing.assert_frame_equal(table, expected)
