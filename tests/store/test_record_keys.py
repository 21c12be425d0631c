"""Record keys (issue 12): a permanent random key per stored interview version, on both stores.

Drawn when a version is inserted, never changed by what happens to it later (rescoring, rounds
renumbered by a late batch, a duplicate upload, a restart), gone with its row when the returnee
is erased, and read into the analytics frame beside each current submission.
"""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from reintegration.analytics import Analytics
from reintegration.index import ReintegrationIndex
from reintegration.panel_frame import read_base
from reintegration.pseudonym import returnee_key
from reintegration.store.batches import erase_returnee
from reintegration.store.engine import open_store
from reintegration.store.record_keys import RECORD_KEY_LIMIT, new_record_keys
from reintegration.store.rescore import rescore
from reintegration.store.schema import submission
from tests.conftest import SECRET, canonical_row, write_csv

CHILD_BELOW = 18


def stored_keys(engine: sa.Engine) -> dict[tuple[str, int], int]:
    """Every stored version's key, by (submission id, version)."""
    c = submission.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(c.submission_id, c.version, c.record_key)).all()
    return {(sid, version): key for sid, version, key in rows}


def rounds(engine: sa.Engine) -> dict[str, int]:
    c = submission.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(c.submission_id, c.survey_round).where(c.current)).all()
    return dict(rows)


def panel(questionnaire, tmp_path, returnees: int = 8, name: str = "panel.csv"):
    """Two rounds of ``returnees`` returnees (row numbers 1.. and 101..)."""
    rows = [
        canonical_row(
            questionnaire,
            100 * r + k + 1,
            returnee_id=f"CASE-{k:03d}",
            interview_date=date,
            currently_working="yes" if k % 2 else "no",
        )
        for r, date in enumerate(("2025-03-01", "2025-09-01"))
        for k in range(returnees)
    ]
    return write_csv(tmp_path / name, rows)


def in_range(keys) -> bool:
    return all(isinstance(k, int) and 0 <= k < 2**31 for k in keys)


def test_new_record_keys_are_uniform_31_bit_integers_from_the_os():
    n = 200_000
    keys = new_record_keys(n)
    assert keys.dtype == np.int64 and len(keys) == n and RECORD_KEY_LIMIT == 2**31
    assert keys.min() >= 0 and keys.max() < 2**31
    # Uniform on [0, 2**31): each of 16 equal bins holds n/16 within 6 standard deviations,
    # and the top bit is used (a key of 31 bits, not 30).
    counts = np.bincount(keys >> 27, minlength=16)
    assert len(counts) == 16
    assert np.all(np.abs(counts - n / 16) < 6 * np.sqrt(n / 16 * 15 / 16)), counts
    assert not np.array_equal(new_record_keys(1000), new_record_keys(1000))  # no fixed seed
    assert len(new_record_keys(0)) == 0


def test_every_stored_version_has_a_key_in_range(engine, ingest, questionnaire, tmp_path):
    report = ingest(panel(questionnaire, tmp_path))

    keys = stored_keys(engine)
    assert report.accepted == len(keys) == 16
    assert in_range(keys.values())
    assert not submission.c.record_key.nullable


def test_a_new_version_gets_a_new_key_and_the_old_version_keeps_its_own(
    engine, ingest, questionnaire, tmp_path
):
    ingest(panel(questionnaire, tmp_path))
    before = stored_keys(engine)
    edited = canonical_row(
        questionnaire,
        1,
        returnee_id="CASE-000",
        interview_date="2025-03-01",
        currently_working="yes",  # was "no": a new version of sub-0001
    )

    report = ingest(write_csv(tmp_path / "edit.csv", [edited]))

    after = stored_keys(engine)
    assert report.updated == 1
    assert set(after) == set(before) | {("sub-0001", 2)}
    assert {k: after[k] for k in before} == before  # nothing stored was given a new key
    assert in_range([after["sub-0001", 2]])
    assert after["sub-0001", 2] != before["sub-0001", 1]  # equal once in 2**31


def test_keys_survive_a_rescoring(engine, ingest, questionnaire, tmp_path):
    ingest(panel(questionnaire, tmp_path))
    before = stored_keys(engine)
    weights = {
        d: {i: 1.0 + k for k, i in enumerate(items)}
        for d, items in questionnaire.item_weights().items()
    }
    index = ReintegrationIndex(item_weights=weights, label="rss-v2-derived").fit()

    done = rescore(engine, index, questionnaire, model="rss-index", model_version=None)

    assert done == 16
    assert stored_keys(engine) == before


def test_keys_survive_a_late_batch_that_renumbers_rounds(engine, ingest, questionnaire, tmp_path):
    ingest(panel(questionnaire, tmp_path))
    before, rounds_before = stored_keys(engine), rounds(engine)
    # An interview between the two rounds, sent after both: the second becomes the third.
    between = canonical_row(questionnaire, 901, returnee_id="CASE-000", interview_date="2025-06-01")

    ingest(write_csv(tmp_path / "late.csv", [between]))

    after, rounds_after = stored_keys(engine), rounds(engine)
    assert (rounds_before["sub-0101"], rounds_after["sub-0101"]) == (2, 3)  # renumbered
    assert (rounds_after["sub-0001"], rounds_after["sub-0901"]) == (1, 2)
    assert {k: after[k] for k in before} == before
    assert in_range([after["sub-0901", 1]])


def test_keys_survive_a_restart(engine, ingest, questionnaire, tmp_path):
    ingest(panel(questionnaire, tmp_path))
    with engine.connect() as conn:
        first = read_base(conn, CHILD_BELOW)
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()

    again = open_store(url)  # a new process would open the store the same way
    try:
        with again.connect() as conn:
            second = read_base(conn, CHILD_BELOW)
    finally:
        again.dispose()

    assert len(first) == 16
    assert first.set_index("id")["record_key"].to_dict() == (
        second.set_index("id")["record_key"].to_dict()
    )


def test_a_duplicate_upload_changes_no_key(engine, ingest, questionnaire, tmp_path):
    path = panel(questionnaire, tmp_path)
    ingest(path)
    before = stored_keys(engine)

    report = ingest(path)

    assert (report.accepted, report.duplicate) == (0, 16)
    assert stored_keys(engine) == before


def test_keys_are_not_a_function_of_the_content(engine, ingest, questionnaire, tmp_path):
    # Forty returnees give the very same answers on the same day: forty different keys.
    rows = [canonical_row(questionnaire, k + 1, returnee_id=f"CASE-{k:03d}") for k in range(40)]
    ingest(write_csv(tmp_path / "same.csv", rows))
    with engine.connect() as conn:
        answers = conn.execute(sa.select(sa.cast(submission.c.answers, sa.Text))).scalars().all()

    keys = list(stored_keys(engine).values())

    assert len(answers) == 40 and len(set(answers)) == 1

    # 40 keys in 2**31 share a value with probability 40**2 / 2**32, about 4 in 10 million.
    assert len(keys) == 40 and len(set(keys)) == 40


def test_the_same_file_in_another_store_gets_other_keys(engine, ingest, questionnaire, tmp_path):
    path = panel(questionnaire, tmp_path)
    ingest(path)
    other = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        ingest(path, store=other)
        theirs = stored_keys(other)
    finally:
        other.dispose()

    ours = stored_keys(engine)
    assert set(ours) == set(theirs)
    assert sum(ours[k] == theirs[k] for k in ours) == 0  # each equal once in 2**31


def test_read_base_gives_each_current_submission_its_key(engine, ingest, questionnaire, tmp_path):
    ingest(panel(questionnaire, tmp_path))
    ingest(
        write_csv(
            tmp_path / "edit.csv",
            [canonical_row(questionnaire, 1, returnee_id="CASE-000", interview_date="2025-03-01")],
        )
    )  # sub-0001 now has a version 2: only its key is read
    c = submission.c
    with engine.connect() as conn:
        current = dict(conn.execute(sa.select(c.id, c.record_key).where(c.current)).all())
        old = conn.execute(sa.select(c.record_key).where(~c.current)).scalars().all()
        base = read_base(conn, CHILD_BELOW)

    assert base["record_key"].dtype == np.int64
    assert len(old) == 1 and len(base) == len(current) == 16
    assert dict(zip(base["id"].tolist(), base["record_key"].tolist(), strict=True)) == current


def test_the_analytics_frame_carries_the_keys(engine, ingest, questionnaire, tmp_path):
    ingest(panel(questionnaire, tmp_path))
    c = submission.c
    with engine.connect() as conn:
        current = dict(conn.execute(sa.select(c.id, c.record_key).where(c.current)).all())

    frame = Analytics(engine).frame(ReintegrationIndex().fit().label_)

    assert frame["record_key"].dtype == np.int64
    assert dict(zip(frame["id"].tolist(), frame["record_key"].tolist(), strict=True)) == current


def test_erasure_removes_the_keys_with_the_rows(engine, ingest, questionnaire, tmp_path):
    ingest(panel(questionnaire, tmp_path))
    before = stored_keys(engine)
    key = returnee_key("CASE-003", SECRET)

    removed = erase_returnee(engine, key, "admin")

    after = stored_keys(engine)
    assert removed["submissions"] == 2
    assert set(before) - set(after) == {("sub-0004", 1), ("sub-0104", 1)}
    assert after == {k: v for k, v in before.items() if k in after}
    with engine.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).where(submission.c.returnee_key == key)
        ).scalar()
    assert left == 0


def test_the_store_refuses_an_interview_without_a_key(engine, ingest, questionnaire, tmp_path):
    ingest(panel(questionnaire, tmp_path))

    with pytest.raises(sa.exc.IntegrityError, match="NOT NULL|not-null|record_key"):
        with engine.begin() as conn:
            conn.execute(
                submission.update()
                .where(submission.c.submission_id == "sub-0001")
                .values(record_key=None)
            )
