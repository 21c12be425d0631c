"""Incremental freshness (issue 14): a stored batch or erasure reaches the analytics frame by
applying only what it changed, and the frame so updated equals one read afresh; anything else
reloads in the background while answers come from the previous frame."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from reintegration.analytics import Analytics, Filters
from reintegration.frame_cache import FrameCache
from reintegration.panel_frame import place, read_base
from reintegration.store.batches import erase_returnee
from reintegration.store.data_version import bump_data_version
from reintegration.store.engine import create_store_engine
from reintegration.store.schema import data_change, submission
from reintegration.synth import generate_panel, write_panel

LABEL = "rss-v1-provisional"
BY = (["sex", "country"], ["round"], ["months_band"], ["cohort", "age_group"], ["assistance"])


@pytest.fixture
def panel() -> pd.DataFrame:
    frame, _ = generate_panel(160, 3, seed=11)
    frame = frame.sort_values(["returnee_id", "interview_date"], kind="stable")
    frame["visit"] = frame.groupby("returnee_id").cumcount()
    return frame.reset_index(drop=True)


def _write(rows: pd.DataFrame, folder: Path, name: str) -> Path:
    path = folder / f"{name}.csv"
    write_panel(rows.drop(columns="visit"), path)
    return path


def _answers(analytics: Analytics) -> list[object]:
    out: list[object] = []
    for protected in (False, True):
        for by in BY:
            table = analytics.aggregates(by, Filters(), LABEL, protected=protected)
            out.append(table.reset_index(drop=True))
        out.append(analytics.overview(Filters(), LABEL, protected=protected))
        out.append(analytics.trajectories(["sex"], Filters(), LABEL, protected=protected))
    return out


def _same_as_fresh(analytics: Analytics, engine: sa.Engine) -> None:
    fresh = Analytics(engine, min_cell=1)
    assert analytics.data_version() == fresh.data_version()
    pd.testing.assert_frame_equal(analytics.frame(LABEL), fresh.frame(LABEL))
    texts = analytics._frames_cache.assistance().sort_index()
    pd.testing.assert_series_equal(texts, fresh._frames_cache.assistance().sort_index())
    for mine, theirs in zip(_answers(analytics), _answers(fresh), strict=True):
        if isinstance(mine, pd.DataFrame):
            pd.testing.assert_frame_equal(mine, theirs)
        else:
            assert mine == theirs


def test_batches_edits_an_erasure_and_another_engine_update_the_frame_in_place(
    engine, ingest, panel, tmp_path
):
    first = panel["returnee_id"].isin(panel["returnee_id"].unique()[:100])
    ingest(_write(panel[first & (panel["visit"] == 0)], tmp_path, "a"))
    analytics = Analytics(engine, min_cell=1)
    _answers(analytics)  # the frame, the assistance and cached answers of this version
    updates = analytics._frames_cache.updates

    # New returnees and new rounds of earlier ones.
    ingest(
        _write(
            panel[(~first & (panel["visit"] == 0)) | (first & (panel["visit"] == 1))], tmp_path, "b"
        )
    )
    _same_as_fresh(analytics, engine)
    assert analytics._frames_cache.updates == updates + 1

    # Edits: answers, the sex of a returnee, a new enumerator, the assistance received.
    edited = panel[first & (panel["visit"] == 0)].head(12).copy()
    edited["econ_satisfaction"] = "very_satisfied"
    edited.loc[edited.index[:3], "sex"] = "female"
    edited.loc[edited.index[3:6], "enumerator_id"] = "ZZZ-E99"
    edited.loc[edited.index[6:8], "assistance"] = "cash_grant"
    report = ingest(_write(edited, tmp_path, "c"))
    # A sex that disagrees with a later round is refused; the other edits are stored.
    assert report.updated == report.accepted >= len(edited) - 3
    _same_as_fresh(analytics, engine)
    assert "ZZZ-E99" in analytics.frame(LABEL)["enumerator_id"].cat.categories
    assert analytics._frames_cache.updates == updates + 2

    # An erasure.
    with engine.connect() as conn:
        key = conn.execute(sa.select(submission.c.returnee_key).limit(1)).scalar_one()
    assert erase_returnee(engine, key, "admin")["submissions"] >= 1
    _same_as_fresh(analytics, engine)

    # A batch stored through a second engine on the same database (another server, the CLI).
    other = create_store_engine(engine.url.render_as_string(hide_password=False))
    try:
        ingest(_write(panel[panel["visit"] == 2], tmp_path, "d"), store=other)
    finally:
        other.dispose()
    _same_as_fresh(analytics, engine)
    assert analytics._frames_cache.updates == updates + 4
    assert analytics._frames_cache.reloads == 0


def test_several_changes_at_once_and_a_returnee_erased_after_its_batch(
    engine, ingest, panel, tmp_path
):
    ingest(_write(panel[panel["visit"] == 0], tmp_path, "a"))
    analytics = Analytics(engine, min_cell=1)
    analytics.frame(LABEL)
    ingest(_write(panel[panel["visit"] == 1], tmp_path, "b"))
    with engine.connect() as conn:
        keys = conn.execute(sa.select(submission.c.returnee_key).distinct().limit(3)).scalars()
        keys = list(keys)
    for key in keys:
        erase_returnee(engine, key, "admin")
    ingest(_write(panel[panel["visit"] == 2], tmp_path, "c"))
    _same_as_fresh(analytics, engine)
    assert analytics._frames_cache.reloads == 0


def test_a_rescoring_or_a_gap_in_the_log_reloads_everything(engine, ingest, panel, tmp_path):
    ingest(_write(panel[panel["visit"] == 0], tmp_path, "a"))
    analytics = Analytics(engine, min_cell=1)
    analytics.frame(LABEL)
    with engine.begin() as conn:
        bump_data_version(conn)  # "other": a rescoring, a promotion
    _same_as_fresh(analytics, engine)
    assert analytics._frames_cache.reloads == 1
    ingest(_write(panel[panel["visit"] == 1], tmp_path, "b"))
    with engine.begin() as conn:
        conn.execute(data_change.delete())  # the log pruned: what changed is unknown
    _same_as_fresh(analytics, engine)
    assert analytics._frames_cache.reloads == 2


def test_while_a_full_reload_runs_answers_come_at_once_from_the_previous_frame(
    engine, ingest, panel, tmp_path
):
    ingest(_write(panel[panel["visit"] == 0], tmp_path, "a"))
    release = threading.Event()

    def slow(conn: sa.Connection, child: int) -> pd.DataFrame:
        if cache.reloads == 0 and cache._state is not None:
            release.wait(30)
        return read_base(conn, child)

    analytics = Analytics(engine, min_cell=1)
    cache = analytics._frames_cache = FrameCache(analytics._reader, analytics._child_below, slow)
    before = analytics.overview(Filters(), LABEL)
    old = analytics.data_version()
    with engine.begin() as conn:
        bump_data_version(conn)
    clock = time.perf_counter()
    assert analytics.data_version() == old  # the reload runs; this frame answers
    assert analytics.overview(Filters(), LABEL) == before
    assert time.perf_counter() - clock < 2
    release.set()
    cache.settle(30)
    assert analytics.data_version() == old + 1
    assert cache.reloads == 1


def test_a_failed_update_falls_back_to_a_reload(engine, ingest, panel, tmp_path, monkeypatch):
    ingest(_write(panel[panel["visit"] == 0], tmp_path, "a"))
    analytics = Analytics(engine, min_cell=1)
    analytics.frame(LABEL)
    monkeypatch.setattr(
        "reintegration.frame_cache.place", lambda *a: (_ for _ in ()).throw(ValueError("boom"))
    )
    ingest(_write(panel[panel["visit"] == 1], tmp_path, "b"))
    _same_as_fresh(analytics, engine)
    assert analytics._frames_cache.reloads == 1


def test_place_refuses_a_returnee_both_kept_and_read_again():
    with pytest.raises(ValueError, match="still has kept rows"):
        place(np.array([0]), np.array([7]), np.array([False]), np.array([0]), np.array([7]))


def test_place_orders_string_references_by_code_point():
    plan = place(
        np.array([0, 1, 1]),
        np.array(["b", "d"], dtype=object),
        np.array([False, True, True]),
        np.array([0, 1, 2]),
        np.array(["a", "c", "d"], dtype=object),
    )
    assert plan.refs.tolist() == ["a", "b", "c", "d"]
    assert plan.is_new.tolist() == [True, False, True, True]


def test_an_earlier_interview_renumbers_rounds_and_a_base_without_scores_is_updated(
    engine, ingest, panel, tmp_path
):
    ingest(_write(panel[panel["visit"] <= 1], tmp_path, "a"))
    analytics = Analytics(engine, min_cell=1)
    analytics._frames_cache.version()
    analytics._frames_cache._current()  # the submissions only: no index version asked yet
    # A survey found later, dated before each returnee's first: every round moves up by one.
    early = panel[panel["visit"] == 0].head(20).copy()
    early["submission_id"] = [f"00000000-0000-4000-8000-{i:012d}" for i in range(len(early))]
    first = pd.to_datetime(early["interview_date"])
    returned = pd.to_datetime(early["return_date"])
    back = returned + (first - returned) / 2
    early = early[(back > returned) & (back < first)]
    early["interview_date"] = back[early.index].dt.strftime("%Y-%m-%d")
    assert ingest(_write(early, tmp_path, "b")).accepted == len(early) > 0
    with engine.connect() as conn:
        rounds = conn.execute(
            sa.select(submission.c.survey_round).where(
                submission.c.submission_id.in_(early["submission_id"].tolist())
            )
        ).scalars()
        assert set(rounds) == {1}
    _same_as_fresh(analytics, engine)
    assert analytics._frames_cache.updates == 1


def test_a_store_whose_version_went_back_is_read_again(engine, ingest, panel, tmp_path):
    ingest(_write(panel[panel["visit"] == 0], tmp_path, "a"))
    analytics = Analytics(engine, min_cell=1)
    analytics.frame(LABEL)
    with engine.begin() as conn:  # as after restoring an older copy of the store
        conn.execute(sa.text("UPDATE data_version SET version = version - 1"))
        first = sa.select(sa.func.min(submission.c.id)).scalar_subquery()
        conn.execute(submission.update().where(submission.c.id == first).values(current=False))
    _same_as_fresh(analytics, engine)
    assert analytics._frames_cache.reloads == 1
