"""The cube of per-cell summaries: on random returnee filters its cells equal summarise's on
the records (exact counts, keys and cells; floats within 1e-9 relative), and the published
answers through it equal those from the records."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from reintegration import analytics as analytics_module
from reintegration.analytics import Analytics, Filters
from reintegration.cube import (
    FIGURES,
    Cube,
    answers,
    day_dimensions,
    month_dimensions,
    record_columns,
    round_dimensions,
    usable,
)
from reintegration.index import ReintegrationIndex
from reintegration.ingest import ingest_file
from reintegration.questionnaire import load_questionnaire
from reintegration.selection import latest_rows
from reintegration.store.engine import open_store
from reintegration.summaries import summarise
from reintegration.synth import generate_panel, write_panel

LABEL = "rss-v1-provisional"
GROUPINGS = ("sex", "age_group", "return_type", "country", "round")
EPOCH_DAY = pd.Timestamp("1970-01-01")
EXACT = ("_key", "_n", "_clusters", "returnees", "unscored", "sustainable", "level_")


@pytest.fixture(scope="module")
def analytics(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cube")
    engine = open_store(f"sqlite:///{folder / 'store.db'}")
    frame, _ = generate_panel(600, 3, seed=11)
    # Some interviews without an enumerator: each its own cluster in the cube too.
    frame.loc[frame.index[::17], "enumerator_id"] = ""
    write_panel(frame, folder / "panel.csv")
    ingest_file(
        folder / "panel.csv",
        engine,
        scorer=ReintegrationIndex().fit(),
        questionnaire=load_questionnaire(),
        secret=b"k" * 32,
        uploader="enumerator-1",
    )
    yield Analytics(engine)
    engine.dispose()


def _draw(rng: np.random.Generator, frame: pd.DataFrame) -> Filters:
    def some(column: str) -> frozenset[str] | None:
        values = sorted(str(v) for v in frame[column].dropna().unique())
        if rng.random() < 0.5:
            return None
        return frozenset(rng.choice(values, int(rng.integers(1, len(values) + 1)), False))

    return Filters(
        countries=some("country"),
        sex=some("sex"),
        age_group=some("age_group"),
        return_type=some("return_type"),
    )


def _assert_same(rows: pd.DataFrame, cube: pd.DataFrame, by: list[str]) -> None:
    assert list(cube.columns) == list(rows.columns)
    for column in rows.columns:
        a, b = rows[column].to_numpy(), cube[column].to_numpy()
        if column in by:
            assert [str(x) for x in a] == [str(x) for x in b], column
        elif column.startswith(EXACT) or column.endswith(EXACT):
            assert np.array_equal(a.astype(np.int64), b.astype(np.int64)), column
        else:
            np.testing.assert_allclose(
                b.astype(float), a.astype(float), rtol=1e-9, atol=1e-12, err_msg=column
            )


@pytest.mark.parametrize("keyed", [False, True])
def test_cube_cells_equal_the_summaries_of_the_records(analytics, keyed):
    frame = analytics.frame(LABEL)
    assert usable(frame)
    rng = np.random.default_rng(3)
    for within in ([], ["round"]):
        cube = Cube(frame, latest_rows(frame, np.arange(len(frame)), within))
        for _ in range(25):
            filters = _draw(rng, frame)
            by = list(rng.choice(GROUPINGS, int(rng.integers(0, 4)), False))
            records = analytics._records(filters, LABEL, within)
            _assert_same(
                summarise(records, by, FIGURES, keyed=keyed),
                cube.cells(by, filters, keyed=keyed),
                by,
            )


def test_cube_stage_cells_are_those_of_the_scored_records(analytics):
    frame = analytics.frame(LABEL)
    cube = Cube(frame, latest_rows(frame, np.arange(len(frame)), []))
    filters = Filters(sex=frozenset({"female"}))
    records = analytics._records(filters, LABEL, [])
    scored = records[records["composite"].notna()]
    for column in ("round", "months_band"):
        _assert_same(
            summarise(scored, [column], ["composite"], keyed=True),
            cube.cells([column], filters, keyed=True, figures=["composite"], scored_only=True),
            [column],
        )


@pytest.mark.parametrize("keyed", [False, True])
def test_records_summed_by_the_kernel_equal_the_summaries_of_the_records(analytics, keyed):
    """What the records path publishes when no cube answers (dates with rounds, stages,
    bands): record_columns on a selection's records against summarise on the same records."""
    frame = analytics.frame(LABEL)
    days = frame["interview_day"].to_numpy()
    rng = np.random.default_rng(17)
    for i in range(30):
        low, high = np.sort(rng.choice(days, 2))
        filters = replace(
            _draw(rng, frame),
            date_from=(EPOCH_DAY + pd.Timedelta(days=int(low))).date() if i % 3 else None,
            date_to=(EPOCH_DAY + pd.Timedelta(days=int(high))).date() if i % 2 else None,
            rounds=frozenset({1, 3}) if i % 4 else None,
        )
        within = ([], ["round"], ["months_band"])[i % 3]
        by = list(rng.choice(GROUPINGS, int(rng.integers(0, 3)), False))
        selection = analytics.selection(filters, LABEL, within)
        records = selection.records()
        _assert_same(
            summarise(records, by, FIGURES, keyed=keyed),
            pd.DataFrame(record_columns(frame, selection.latest, by, keyed=keyed)),
            by,
        )
        scored = records[records["composite"].notna()]
        for column in ("round", "months_band"):
            _assert_same(
                summarise(scored, [column], ["composite"], keyed=keyed),
                pd.DataFrame(
                    record_columns(
                        frame,
                        selection.latest,
                        [column],
                        keyed=keyed,
                        figures=["composite"],
                        scored_only=True,
                    )
                ),
                [column],
            )


def test_only_returnee_filters_are_answered_from_the_cube():
    assert answers(Filters(countries=frozenset({"AFG"})), [])
    assert answers(Filters(), ["round"])
    assert not answers(Filters(rounds=frozenset({1})), [])
    assert answers(Filters(rounds=frozenset({1})), [], rounds=True)
    assert answers(Filters(rounds=frozenset({1})), ["round"])
    assert not answers(Filters(), [], rounds=True)
    assert not answers(Filters(at_round=2), [])
    assert not answers(Filters(exclude_flagged_enumerators=True), [])
    assert not answers(Filters(), ["months_band"])


def test_weighted_frames_have_no_cube(analytics):
    frame = analytics.frame(LABEL)
    assert not usable(frame.assign(weight=1.5))


def _published(engine: sa.Engine, *, path: str, questions) -> list:
    """The answers to ``questions`` through one path: ``cube`` (whichever cube answers, else
    the records), ``kernel`` (no cube: the records, each summed as a cube row by the compiled
    kernel) or ``pandas`` (no cube, no kernel: summarise on the records, the reference)."""
    fresh = Analytics(engine)
    if path != "cube":
        fresh._cube_for = lambda *args, **kwargs: None
    if path == "pandas":
        fresh._usable = lambda frame: False
    out = []
    for kind, by, filters, protected in questions:
        if kind == "overview":
            out.append(fresh.overview(filters, LABEL, protected=protected))
        elif kind == "stages":
            out.append(fresh.stages(by, filters, LABEL, protected=protected))
        else:
            out.append(fresh.aggregates(by, filters, LABEL, protected=protected))
    return out


def _equal(a, b) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-12)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _equal(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _equal(x, y)
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12)
    else:
        assert a == b


def _assert_published_alike(analytics, seed: int, count: int, draw) -> None:
    """``count`` questions (``draw(rng, frame)`` filters, by 0 to 2 groupings, aggregates,
    overview and stages in turn, exact and protected in turn) published alike through the
    cubes, through the records summed by the kernel, and through summarise on the records."""
    frame = analytics.frame(LABEL)
    rng = np.random.default_rng(seed)
    questions = []
    for i in range(count):
        filters = draw(rng, frame)
        by = list(rng.choice(GROUPINGS, int(rng.integers(0, 3)), False))
        kind = ("aggregates", "overview", "stages")[i % 3]
        questions.append((kind, by, filters, bool(i % 2)))
    reference = _published(analytics.engine, path="pandas", questions=questions)
    for path in ("cube", "kernel"):
        found = _published(analytics.engine, path=path, questions=questions)
        for a, b in zip(reference, found, strict=True):
            _equal(a, b)


def test_published_answers_from_the_cube_equal_those_from_the_records(analytics):
    _assert_published_alike(analytics, 5, 30, lambda rng, frame: _draw(rng, frame))


def test_a_large_frame_answers_from_the_records_until_its_cube_is_built(analytics, monkeypatch):
    monkeypatch.setattr(analytics_module, "CUBE_IN_REQUEST_ROWS", 1)
    fresh = Analytics(analytics.engine)
    first = fresh.cube(LABEL)  # started in the background
    built = fresh.cube(LABEL, wait=True)
    assert first is None or first is built
    assert built is not None and fresh.cube(LABEL) is built
    filters = replace(Filters(), sex=frozenset({"male"}))
    _equal(
        analytics.aggregates(["country"], filters, LABEL),
        fresh.aggregates(["country"], filters, LABEL),
    )


def _whole_months(rng: np.random.Generator, frame: pd.DataFrame, filters: Filters) -> Filters:
    days = frame["interview_day"].to_numpy()
    first, last = (pd.Timestamp(int(d), unit="D").date() for d in (days.min(), days.max()))
    months = pd.period_range(first, last, freq="M")
    start, end = sorted(rng.choice(len(months), 2))
    date_from = months[start].start_time.date() if rng.random() < 0.8 else None
    date_to = months[end].end_time.date() if rng.random() < 0.8 else None
    return replace(filters, date_from=date_from, date_to=date_to)


@pytest.mark.parametrize("keyed", [False, True])
def test_month_cube_cells_equal_the_summaries_of_whole_month_windows(analytics, keyed):
    frame = analytics.frame(LABEL)
    rng = np.random.default_rng(8)
    for within in ([], ["round"]):
        months = month_dimensions(frame, within)
        assert months is not None
        cube = Cube(frame, np.arange(len(frame)), months=months, surveys=not within)
        for _ in range(25):
            filters = _whole_months(rng, frame, _draw(rng, frame))
            assert answers(filters, within, months=True)
            by = list(rng.choice(GROUPINGS, int(rng.integers(0, 4)), False))
            selection = analytics.selection(filters, LABEL, within)
            records = selection.records()
            _assert_same(
                summarise(records, by, FIGURES, keyed=keyed),
                cube.cells(by, filters, keyed=keyed),
                by,
            )
            if not within:
                count, key = cube.survey_count(filters)
                assert count == int(selection.mask.sum())
                keys = frame["record_key"].to_numpy()[selection.mask]
                assert key == int(keys.sum() % 2**31)


def test_published_answers_of_whole_month_windows_equal_those_from_the_records(analytics):
    _assert_published_alike(
        analytics, 9, 30, lambda rng, frame: _whole_months(rng, frame, _draw(rng, frame))
    )


def _any_days(rng: np.random.Generator, frame: pd.DataFrame, filters: Filters) -> Filters:
    """A window of days: either end open, on the first or last of a month, on a day someone
    was interviewed, or any day; both ends in one month at times."""
    days = np.sort(frame["interview_day"].to_numpy())

    def pick(low: int) -> int:
        choice = rng.random()
        if choice < 0.4:  # a day someone was interviewed: ties at the edge
            return int(days[min(len(days) - 1, np.searchsorted(days, low) + rng.integers(0, 50))])
        return int(rng.integers(low, int(days[-1]) + 1))

    start = pick(int(days[0])) if rng.random() < 0.8 else None
    low = int(days[0]) if start is None else start
    end = pick(low) if rng.random() < 0.8 else None
    if start is not None and rng.random() < 0.2:
        end = min(int(days[-1]), start + int(rng.integers(0, 20)))  # often one month
    as_date = lambda d: None if d is None else pd.Timestamp(int(d), unit="D").date()  # noqa: E731
    return replace(filters, date_from=as_date(start), date_to=as_date(end))


def test_the_day_rule_picks_each_returnees_latest_record_in_any_window():
    """The rule of day_dimensions against latest_rows itself, on returnees with unscored
    rows anywhere and several surveys on one day, per returnee and per returnee-round."""
    rng = np.random.default_rng(31)
    rkey, rounds, days = [], [], []
    for key in range(300):
        count = int(rng.integers(1, 6))
        rkey += [key] * count
        rounds += sorted(rng.integers(1, 4, count).tolist())
        days += np.cumsum(rng.choice([0, 0, 3, 20, 45], count)).tolist()
    composite = np.where(rng.random(len(rkey)) < 0.3, np.nan, rng.random(len(rkey)))
    frame = pd.DataFrame(
        {"rkey": rkey, "round": rounds, "interview_day": days, "composite": composite}
    )
    for within in ([], ["round"]):
        dims = day_dimensions(frame, within)
        assert dims is not None
        for _ in range(200):
            start, end = sorted(rng.integers(-5, max(days) + 5, 2).tolist())
            day = dims["day"]
            kept = np.flatnonzero((day >= start) & (day <= end))
            counted = (day >= start) & (day <= end) & (dims["after"] > end)
            counted &= dims["before"] < start
            expected = latest_rows(frame, kept, within).tolist()
            assert np.flatnonzero(counted).tolist() == expected, (within, start, end)


@pytest.mark.parametrize("keyed", [False, True])
def test_month_cube_cells_equal_the_summaries_of_windows_that_cut_months(analytics, keyed):
    """A window of days: the cube's rows for the months inside, the records of the months it
    cuts, summed as the records alone would be."""
    frame = analytics.frame(LABEL)
    rng = np.random.default_rng(23)
    cut = 0
    for within in ([], ["round"]):
        days = day_dimensions(frame, within)
        months = month_dimensions(frame, within, days)
        cube = Cube(frame, np.arange(len(frame)), months=months, days=days, surveys=not within)
        for _ in range(40):
            filters = _any_days(rng, frame, _draw(rng, frame))
            if within and rng.random() < 0.3:
                filters = _draw_rounds(rng, frame, filters)
            assert answers(filters, within, months=True)
            cut += cubes_cut(filters)
            by = list(rng.choice(GROUPINGS, int(rng.integers(0, 4)), False))
            selection = analytics.selection(filters, LABEL, within)
            expected = summarise(selection.records(), by, FIGURES, keyed=keyed)
            _assert_same(expected, cube.cells(by, filters, keyed=keyed), by)
            scored = selection.records()
            scored = scored[scored["composite"].notna()]
            _assert_same(
                summarise(scored, ["months_band"], ["composite"], keyed=True),
                cube.cells(
                    ["months_band"], filters, keyed=True, figures=["composite"], scored_only=True
                ),
                ["months_band"],
            )
            if not within:
                count, key = cube.survey_count(filters)
                assert count == int(selection.mask.sum())
                keys = frame["record_key"].to_numpy()[selection.mask]
                assert key == int(keys.sum() % 2**31)
                counts, _ = cube.histogram(filters)
                assert counts.sum() == int(expected["returnees"].iloc[-1])
    assert cut >= 40  # most windows cut a month


def cubes_cut(filters: Filters) -> bool:
    from reintegration.cube import _cut

    return _cut(filters)


def test_a_month_cube_without_days_refuses_a_window_that_cuts_a_month(analytics):
    frame = analytics.frame(LABEL)
    cube = Cube(frame, np.arange(len(frame)), months=month_dimensions(frame, []), surveys=True)
    days = frame["interview_day"].to_numpy()
    cutting = Filters(date_from=pd.Timestamp(int(np.median(days)), unit="D").date())
    if cutting.date_from.day == 1:
        cutting = replace(cutting, date_from=cutting.date_from.replace(day=2))
    with pytest.raises(ValueError, match="cuts a month"):
        cube.cells([], cutting, keyed=False)
    with pytest.raises(ValueError, match="cuts a month"):
        cube.survey_count(cutting)


def test_published_answers_of_windows_that_cut_months_equal_those_from_the_records(analytics):
    _assert_published_alike(
        analytics, 29, 36, lambda rng, frame: _any_days(rng, frame, _draw(rng, frame))
    )
    fresh = Analytics(analytics.engine)
    cutting = Filters(date_from=date(2025, 3, 2), date_to=date(2025, 5, 17))
    assert fresh._cube_for(cutting, LABEL, []) is fresh.cube(LABEL, months=True)


def test_a_frame_whose_dates_go_back_has_no_month_cube(analytics):
    frame = analytics.frame(LABEL)
    days = frame["interview_day"].to_numpy().copy()
    first = int(np.flatnonzero(frame["rkey"].to_numpy() == frame["rkey"].iloc[0])[-1])
    days[first] = days[0] - 30
    assert month_dimensions(frame.assign(interview_day=days), []) is None


def _draw_rounds(rng: np.random.Generator, frame: pd.DataFrame, filters: Filters) -> Filters:
    rounds = sorted(int(r) for r in frame["round"].unique())
    chosen = rng.choice(rounds, int(rng.integers(1, len(rounds) + 1)), False)
    return replace(filters, rounds=frozenset(int(r) for r in chosen))


def test_round_blockers_pick_each_returnees_latest_record_among_any_set_of_rounds():
    """The rule of round_dimensions against latest_rows itself, on returnees with unscored
    rows anywhere, rounds missing and a round surveyed twice."""
    rng = np.random.default_rng(21)
    rkey, rounds = [], []
    for key in range(400):
        taken = sorted(rng.choice([1, 2, 3, 5], int(rng.integers(1, 5)), False).tolist())
        if rng.random() < 0.1:
            taken.append(taken[-1])  # a round surveyed twice
        rkey += [key] * len(taken)
        rounds += taken
    composite = np.where(rng.random(len(rkey)) < 0.3, np.nan, rng.random(len(rkey)))
    frame = pd.DataFrame({"rkey": rkey, "round": rounds, "composite": composite})
    dims = round_dimensions(frame)
    assert dims is not None
    bits = {int(v): i for i, v in enumerate(dims["values"])}
    for size in (1, 2, 3, 4):
        for subset in map(set, itertools.combinations([1, 2, 3, 5], size)):
            kept = np.flatnonzero(frame["round"].isin(subset).to_numpy())
            wanted = sum(1 << bits[r] for r in subset)
            counted = np.isin(frame["round"], list(subset)) & (dims["blockers"] & wanted == 0)
            assert np.flatnonzero(counted).tolist() == latest_rows(frame, kept, []).tolist(), subset


def test_a_frame_not_sorted_by_returnee_has_no_round_cube():
    frame = pd.DataFrame({"rkey": [1, 0], "round": [1, 1], "composite": [0.5, 0.5]})
    assert round_dimensions(frame) is None


@pytest.mark.parametrize("keyed", [False, True])
def test_round_filters_are_answered_from_the_cubes_as_from_the_records(analytics, keyed):
    """Latest per returnee among some rounds (the round cube, with unscored rows), and per
    round (the plain and the month cubes keep or drop whole returnee-rounds)."""
    frame = analytics.frame(LABEL)
    assert frame["composite"].isna().any()  # unscored records among them
    rng = np.random.default_rng(13)
    rounds = round_dimensions(frame)
    assert rounds is not None
    cubes = {
        (): Cube(frame, np.arange(len(frame)), rounds=rounds, surveys=True),
        ("round",): Cube(frame, latest_rows(frame, np.arange(len(frame)), ["round"])),
    }
    months = Cube(frame, np.arange(len(frame)), months=month_dimensions(frame, ["round"]))
    for i in range(40):
        filters = _draw_rounds(rng, frame, _draw(rng, frame))
        within = [[], ["round"]][i % 2]
        assert answers(filters, within, rounds=not within)
        by = list(rng.choice(GROUPINGS, int(rng.integers(0, 4)), False))
        selection = analytics.selection(filters, LABEL, within)
        expected = summarise(selection.records(), by, FIGURES, keyed=keyed)
        _assert_same(expected, cubes[tuple(within)].cells(by, filters, keyed=keyed), by)
        if within:
            dated = _whole_months(rng, frame, filters)
            assert answers(dated, within, months=True)
            records = analytics.selection(dated, LABEL, within).records()
            _assert_same(
                summarise(records, by, FIGURES, keyed=keyed),
                months.cells(by, dated, keyed=keyed),
                by,
            )
        else:
            count, key = cubes[()].survey_count(filters)
            assert count == int(selection.mask.sum())
            assert key == int(frame["record_key"].to_numpy()[selection.mask].sum() % 2**31)
            counts, _ = cubes[()].histogram(filters)
            assert counts.sum() == int(expected["returnees"].iloc[-1])


def test_published_answers_with_round_filters_equal_those_from_the_records(analytics):
    _assert_published_alike(
        analytics, 17, 36, lambda rng, frame: _draw_rounds(rng, frame, _draw(rng, frame))
    )
    fresh = Analytics(analytics.engine)
    assert fresh._cube_for(Filters(rounds=frozenset({1, 3})), LABEL, []) is fresh.cube(
        LABEL, rounds=True
    )


def _one_round(rng: np.random.Generator, frame: pd.DataFrame, filters: Filters) -> Filters:
    rounds = sorted(int(r) for r in frame["round"].unique())
    filters = replace(filters, rounds=frozenset({int(rng.choice(rounds))}))
    return _any_days(rng, frame, filters) if rng.random() < 0.6 else filters


def test_a_filter_of_one_round_is_answered_from_the_by_round_cubes(analytics):
    """Each returnee's latest record among one round is their latest of that round: the
    by-round cubes (with and without dates) give the cells, survey counts and histograms of
    the latest per returnee."""
    frame = analytics.frame(LABEL)
    rng = np.random.default_rng(41)
    days = day_dimensions(frame, ["round"])
    plain = Cube(frame, latest_rows(frame, np.arange(len(frame)), ["round"]), surveys=True)
    months = Cube(
        frame,
        np.arange(len(frame)),
        months=month_dimensions(frame, ["round"], days),
        days=days,
        surveys=True,
    )
    for _ in range(30):
        filters = _one_round(rng, frame, _draw(rng, frame))
        cube = plain if filters.date_from is None and filters.date_to is None else months
        by = list(rng.choice(GROUPINGS, int(rng.integers(0, 3)), False))
        selection = analytics.selection(filters, LABEL, [])
        expected = summarise(selection.records(), by, FIGURES, keyed=True)
        _assert_same(expected, cube.cells(by, filters, keyed=True), by)
        count, key = cube.survey_count(filters)
        assert count == int(selection.mask.sum())
        assert key == int(frame["record_key"].to_numpy()[selection.mask].sum() % 2**31)
        counts, _ = cube.histogram(filters)
        assert counts.sum() == int(expected["returnees"].iloc[-1])
    _assert_published_alike(
        analytics, 43, 30, lambda rng, frame: _one_round(rng, frame, _draw(rng, frame))
    )
    fresh = Analytics(analytics.engine)
    one = Filters(rounds=frozenset({2}))
    assert fresh._cube_for(one, LABEL, []) is fresh.cube(LABEL, ["round"])
    cutting = replace(one, date_from=date(2025, 3, 2))
    assert fresh._cube_for(cutting, LABEL, []) is fresh.cube(LABEL, ["round"], months=True)
    two = Filters(rounds=frozenset({1, 2}))
    assert fresh._cube_for(two, LABEL, []) is fresh.cube(LABEL, rounds=True)
    assert fresh._cube_for(replace(two, date_from=date(2025, 3, 2)), LABEL, []) is None
