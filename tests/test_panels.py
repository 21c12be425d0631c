"""Panels: bands aligned with the follow-up schedule (every survey in exactly one, one survey per
returnee and band, the nearest the band's scheduled month), balanced panels with one n at every
point, retention equal to the generator's truth, cohorts at the same months since return, and
answers at a round or a band, in exact and protected figures (docs/methods.md, "Panels and
bands")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from reintegration.aggregate import TOTAL
from reintegration.analytics import Analytics, Filters
from reintegration.errors import QueryError, SpecError
from reintegration.followup import DEFAULT_FOLLOW_UP, load_follow_up, months_band, nearest_first
from reintegration.index import ReintegrationIndex
from reintegration.ingest import ingest_file
from reintegration.questionnaire import load_questionnaire
from reintegration.store.engine import open_store
from reintegration.synth import generate_panel, write_panel

LABEL = "rss-v1-provisional"
BANDS = ["within 4 months", "over 4, under 9 months", "9 or more months"]


def _store(folder, returnees: int, rounds: int, seed: int):
    engine = open_store(f"sqlite:///{folder / 'store.db'}")
    frame, truth = generate_panel(returnees, rounds, seed=seed)
    write_panel(frame, folder / "panel.csv")
    ingest_file(
        folder / "panel.csv",
        engine,
        scorer=ReintegrationIndex().fit(),
        questionnaire=load_questionnaire(),
        secret=b"p" * 32,
        uploader="enumerator-1",
    )
    return engine, truth


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    engine, truth = _store(tmp_path_factory.mktemp("three"), 600, 3, 3)
    yield engine, truth
    engine.dispose()


@pytest.fixture(scope="module")
def five(tmp_path_factory):
    """Five rounds (about 2, 6, 12, 18, 24 months): rounds 3 to 5 share the last band."""
    engine, truth = _store(tmp_path_factory.mktemp("five"), 300, 5, 4)
    yield engine, truth
    engine.dispose()


def _surveys(engine) -> pd.DataFrame:
    query = """
        SELECT s.returnee_key, s.survey_round AS round, s.months_since_return,
               s.interview_date, sc.composite
        FROM submission s
        LEFT JOIN score sc ON sc.submission_pk = s.id AND sc.index_version = :label
        WHERE s.current
    """
    with engine.connect() as conn:
        return pd.read_sql(sa.text(query), conn, params={"label": LABEL})


# -- the bands ---------------------------------------------------------------------------------


def test_every_months_value_falls_in_exactly_one_band():
    follow_up = load_follow_up()
    values = np.r_[np.linspace(0, 40, 4001), 4.0, 9.0, np.nextafter(4.0, 5), np.nextafter(9, 0)]
    hits = np.array([band.contains(values) for band in follow_up.bands])

    assert (hits.sum(axis=0) == 1).all()
    assert months_band(np.array([4.0, np.nextafter(4.0, 5)])).tolist() == BANDS[:2]
    assert months_band(np.array([np.nextafter(9.0, 0), 9.0])).tolist() == BANDS[1:]


def test_the_bands_are_centred_on_the_follow_up_schedule():
    follow_up = load_follow_up()

    assert follow_up.labels == BANDS
    assert [b.scheduled for b in follow_up.bands] == [2.0, 6.0, 12.0]
    assert [follow_up.scheduled_month(r) for r in (1, 2, 3, 6)] == [2.0, 6.0, 12.0, 30.0]
    # The generator's rounds (schedule +- jitter) each stay inside their band.
    _, truth = generate_panel(50, 3, seed=1)
    jitter = truth["schedule"]["jitter_months"]
    for month, band in zip(truth["schedule"]["months"], follow_up.bands, strict=True):
        assert band.contains(np.array([month - jitter, month + jitter])).all()


def test_a_band_file_with_a_gap_or_an_overlap_is_refused(tmp_path):
    text = DEFAULT_FOLLOW_UP.read_text()
    gap = tmp_path / "gap.yaml"
    gap.write_text(text.replace("from: 9\n", "from: 10\n"))
    overlap = tmp_path / "overlap.yaml"
    overlap.write_text(text.replace("    from: 4\n", "    from: 4\n    from_included: true\n"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("bands: [1, 2]\n")

    for path in (gap, overlap):
        with pytest.raises(SpecError, match="must meet at one edge, included in exactly one"):
            load_follow_up(path)
    with pytest.raises(SpecError, match="not a follow-up schedule with bands"):
        load_follow_up(broken)


def test_within_a_band_the_survey_nearest_its_scheduled_month_is_kept():
    # Within 4 months (scheduled 2): 1.0 and 3.0 are as near, so the later wins; 2.5 beats both.
    keep = nearest_first(np.array([1.0, 3.0, 2.5, 12.5]), np.array([30, 91, 76, 380]))
    assert keep[1] > keep[0] and keep[2] > keep[1]


def test_every_survey_counts_in_exactly_one_band_and_none_is_dropped(three):
    engine, truth = three
    table = Analytics(engine).trajectories([], Filters(), LABEL, axis="months")
    cells = table[table["months_band"] != TOTAL].set_index("months_band")
    surveys = cells["returnees"] + cells["unscored"].fillna(0)

    assert list(cells.index) == BANDS
    # Rounds sit inside their bands, so one survey per returnee and band drops nothing
    # (a hidden unscored count is 1 to 4).
    assert truth["interviews"] - 8 <= surveys.sum() <= truth["interviews"]
    assert (surveys.to_numpy() <= np.array(truth["interviews_per_round"])).all()


def test_two_surveys_in_one_band_keep_the_nearest_its_scheduled_month(five):
    engine, _ = five
    surveys = _surveys(engine)
    scored = surveys[surveys["composite"].notna()].copy()
    scored["band"] = months_band(scored["months_since_return"].to_numpy())
    scored["distance"] = (scored["months_since_return"] - 12).abs()
    late = scored[scored["band"] == BANDS[2]]
    assert late.groupby("returnee_key").size().max() > 1  # rounds 3 to 5 share it
    kept = late.sort_values(["distance", "interview_date"], ascending=[True, False])
    kept = kept.groupby("returnee_key").head(1)

    table = Analytics(engine, min_cell=1).trajectories([], Filters(), LABEL, axis="months")
    band = table.set_index("months_band").loc[BANDS[2]]
    assert band["returnees"] == late["returnee_key"].nunique() == len(kept)
    assert band["composite_mean"] == pytest.approx(kept["composite"].mean())
    # About 12 months: round 3 whenever it is scored; 18 or 24 only for those without it.
    with_three = set(late.loc[late["round"] == 3, "returnee_key"])
    assert (kept.loc[kept["returnee_key"].isin(with_three), "round"] == 3).all()
    assert bool((kept["round"] > 3).any()) == (len(with_three) < len(kept))


# -- balanced panels ---------------------------------------------------------------------------


@pytest.mark.parametrize("axis", ["round", "months", "cohort"])
@pytest.mark.parametrize("protected", [False, True])
def test_following_gives_one_n_at_every_point(three, axis, protected):
    engine, _ = three
    analytics = Analytics(engine, min_cell=1)
    table = analytics.trajectories(["sex"], Filters(), LABEL, axis=axis, follow=True)
    point = "round" if axis == "round" else "months_band"
    group = ["cohort", "sex"] if axis == "cohort" else ["sex"]
    cells = table[(table[point] != TOTAL) & (table["sex"] != TOTAL)]
    per_group = cells.groupby(group)["returnees"].nunique()

    assert len(cells) and (per_group == 1).all()
    assert (cells["unscored"] == 0).all()
    if protected:  # perturbed cell by cell, so only near one n; but never exact small ones
        shown = Analytics(engine).trajectories([], Filters(), LABEL, follow=True, protected=True)
        n = shown.loc[shown["round"] != TOTAL, "returnees"]
        assert n.max() - n.min() <= 10 and shown["other"].dtype == bool


def test_following_rounds_two_and_three_keeps_those_seen_at_both(three):
    engine, _ = three
    surveys = _surveys(engine)
    scored = surveys[surveys["composite"].notna() & surveys["round"].isin([2, 3])]
    both = scored.groupby("returnee_key")["round"].nunique()
    expected = int((both == 2).sum())

    table = Analytics(engine).trajectories(
        [], Filters(rounds=frozenset({2, 3})), LABEL, follow=True
    )
    cells = table.set_index("round")
    assert list(cells.index) == ["2", "3", TOTAL]
    assert cells.loc["2", "returnees"] == cells.loc["3", "returnees"] == expected > 0


# -- retention ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["three", "five"])
def test_retention_equals_the_generators_truth(request, fixture):
    engine, truth = request.getfixturevalue(fixture)
    retention = Analytics(engine).retention(Filters(rounds=frozenset({2})), LABEL)
    per_round = truth["interviews_per_round"]

    assert [r["round"] for r in retention] == list(range(1, truth["rounds"] + 1))
    assert [r["returnees"] for r in retention] == per_round
    assert [r["percent_of_round_1"] for r in retention] == pytest.approx(
        [100 * n / per_round[0] for n in per_round], abs=1e-9
    )


def test_protected_retention_is_perturbed_and_hides_small_counts(three):
    engine, truth = three
    analytics = Analytics(engine)
    protected = analytics.retention(Filters(), LABEL, protected=True)
    again = analytics.retention(Filters(), LABEL, protected=True)
    got = [r["returnees"] for r in protected]

    assert protected == again  # the same cell always gets the same answer
    assert all(abs(g - n) <= 5 for g, n in zip(got, truth["interviews_per_round"], strict=True))
    tiny = Analytics(engine, min_cell=10_000).retention(Filters(), LABEL, protected=True)
    assert all(r["returnees"] is None and r["suppressed"] for r in tiny)
    assert all(r["percent_of_round_1"] is None for r in tiny)


# -- cohorts and comparable stages ------------------------------------------------------------------


def test_cohorts_are_compared_at_the_same_months_since_return(three):
    engine, _ = three
    analytics = Analytics(engine)
    table = analytics.trajectories([], Filters(), LABEL, axis="cohort")
    at_band = analytics.trajectories([], Filters(at_band=BANDS[2]), LABEL, axis="cohort")

    assert list(table.columns[:2]) == ["cohort", "months_band"]
    assert set(table["months_band"]) == {*BANDS, TOTAL}
    assert at_band.columns[0] == "cohort" and "months_band" not in at_band.columns
    by_band = table[table["months_band"] == BANDS[2]].set_index("cohort")["returnees"]
    alone = at_band[at_band["cohort"] != TOTAL].set_index("cohort")["returnees"]
    assert by_band.to_dict() == alone.to_dict()


def test_an_answer_at_a_round_or_a_band(three):
    engine, truth = three
    analytics = Analytics(engine)
    at_round = analytics.aggregates([], Filters(at_round=1), LABEL).iloc[-1]
    at_band = analytics.aggregates([], Filters(at_band=BANDS[0]), LABEL).iloc[-1]
    overview = analytics.overview(Filters(at_round=1), LABEL)

    surveyed = at_round["returnees"] + np.nan_to_num(at_round["unscored"])
    assert truth["interviews_per_round"][0] - 4 <= surveyed <= truth["interviews_per_round"][0]
    assert at_round["returnees"] == at_band["returnees"] == overview["returnees"]
    assert analytics.stages([], Filters(at_round=1), LABEL)["rounds"][0]["value"] == "1"


@pytest.mark.parametrize("protected", [False, True])
def test_the_default_answer_says_which_stages_it_mixes(three, protected):
    engine, _ = three
    analytics = Analytics(engine)
    stages = analytics.stages(["sex"], Filters(), LABEL, protected=protected)
    total = analytics.aggregates(["sex"], Filters(), LABEL, protected=protected).iloc[-1]

    assert {s["value"] for s in stages["rounds"]} == {"1", "2", "3"}
    assert {s["value"] for s in stages["bands"]} == set(BANDS)
    for kind in ("rounds", "bands"):
        counts = [s["returnees"] for s in stages[kind]]
        assert all(n is None or n >= 5 for n in counts)
        if not protected:
            assert sum(counts) == total["returnees"]


def test_exact_stage_counts_hide_a_small_one_with_a_complement(three):
    engine, _ = three
    counts = sorted(
        s["returnees"] for s in Analytics(engine).stages([], Filters(), LABEL)["rounds"]
    )
    # A threshold that makes the smallest round small: the next smallest goes with it, or the
    # total less the others would give it away.
    stages = Analytics(engine, min_cell=counts[0] + 1).stages([], Filters(), LABEL)["rounds"]
    hidden = [s for s in stages if s["suppressed"]]

    assert sorted(s["value"] for s in hidden) == sorted(
        s["value"] for s in stages if s["returnees"] is None
    )
    assert len(hidden) == 2


def test_an_unknown_axis_is_a_query_error(three):
    engine, _ = three
    with pytest.raises(QueryError, match="axis must be one of round, months, cohort, not 'years'"):
        Analytics(engine).trajectories([], Filters(), LABEL, axis="years")  # type: ignore[arg-type]


def test_both_stores_give_the_same_panels(engine, tmp_path):
    frame, truth = generate_panel(80, 3, seed=9)
    write_panel(frame, tmp_path / "panel.csv")
    answers = []
    for store in (engine, open_store(f"sqlite:///{tmp_path / 'reference.db'}")):
        ingest_file(
            tmp_path / "panel.csv",
            store,
            scorer=ReintegrationIndex().fit(),
            questionnaire=load_questionnaire(),
            secret=b"p" * 32,
            uploader="enumerator-1",
        )
        analytics = Analytics(store, min_cell=1)
        answers.append(
            (
                analytics.trajectories(["sex"], Filters(), LABEL, axis="months", follow=True),
                analytics.retention(Filters(), LABEL),
                analytics.stages([], Filters(at_band=BANDS[1]), LABEL),
            )
        )
    (table, retention, stages), (ref_table, ref_retention, ref_stages) = answers
    pd.testing.assert_frame_equal(table, ref_table)
    assert retention == ref_retention
    assert [r["returnees"] for r in retention] == truth["interviews_per_round"]
    assert stages == ref_stages


def test_the_follow_up_file_beside_the_spec_is_not_read_as_a_questionnaire():
    from reintegration.store.answers import _shipped_layouts

    _shipped_layouts.cache_clear()
    assert load_questionnaire().spec_version in _shipped_layouts()
