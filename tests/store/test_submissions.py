"""Stored interviews read back with their coded items."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from reintegration.index import NOT_APPLICABLE, ReintegrationIndex
from reintegration.ingest import ingest_file
from reintegration.store.engine import for_reading
from reintegration.store.schema import submission
from reintegration.store.submissions import iter_item_values, read_submissions


@pytest.fixture
def stored(engine, questionnaire, batch_file):
    multiple = next(i for i in questionnaire.items if i.is_multiple)
    signs = " ".join(o.code for o in multiple.options[:2])
    na_item = next(i for i in questionnaire.items if i.not_applicable)
    path = batch_file(
        {},
        {multiple.id: signs, na_item.id: na_item.not_applicable[0].code},
        {
            questionnaire.items[0].id: questionnaire.missing_codes[0].code,
            "submission_id": "s3",
            "returnee_id": "CASE-0001",
            "interview_date": "2025-09-01",
        },
    )
    ingest_file(
        path,
        engine,
        scorer=ReintegrationIndex().fit(),
        questionnaire=questionnaire,
        secret=b"s" * 32,
        uploader="test",
    )
    return engine, multiple, na_item


def test_items_are_coded_as_ingest_codes_them(stored, questionnaire):
    engine, multiple, na_item = stored
    with for_reading(engine).connect() as conn:
        frame = read_submissions(conn, questionnaire)
    assert len(frame) == 3
    by_id = frame.set_index("submission_id")
    assert by_id.loc["sub-0001", multiple.id] == 1.0
    assert by_id.loc["sub-0002", multiple.id] == 1 - 2 / len(multiple.options)
    assert by_id.loc["sub-0002", na_item.id] == NOT_APPLICABLE
    assert np.isnan(by_id.loc["s3", questionnaire.items[0].id])
    with for_reading(engine).connect() as conn:
        stored_scores = dict(
            conn.execute(sa.text("SELECT submission_pk, composite FROM score")).all()
        )
    again = ReintegrationIndex().fit().transform(frame[list(questionnaire.item_ids)])
    assert again["composite"].tolist() == [stored_scores[pk] for pk in frame["pk"]]


def test_metadata_comes_with_the_items(stored, questionnaire):
    engine, _, _ = stored
    with for_reading(engine).connect() as conn:
        frame = read_submissions(conn, questionnaire, items=False)
    rounds = frame.set_index("submission_id")["survey_round"]
    assert rounds.to_dict() == {"sub-0001": 1.0, "sub-0002": 1.0, "s3": 2.0}
    assert str(frame["interview_date"].dtype).startswith("datetime64")
    assert frame["sex"].tolist() == ["female"] * 3


def test_a_window_selects_interviews(stored, questionnaire):
    engine, _, _ = stored
    import datetime as dt

    with for_reading(engine).connect() as conn:
        late = read_submissions(conn, questionnaire, date_from=dt.date(2025, 7, 1))
        none = read_submissions(conn, questionnaire, date_to=dt.date(2020, 1, 1))
    assert len(late) == 1 and none.empty
    assert list(none.columns)[-1] == questionnaire.item_ids[-1]


def test_chunks_cover_every_row_once_in_order(stored, questionnaire):
    engine, _, _ = stored
    with for_reading(engine).connect() as conn:
        chunks = list(
            iter_item_values(conn, questionnaire, submission.c.current.is_(True), chunk_rows=2)
        )
    assert [len(ids) for ids, _ in chunks] == [2, 1]
    with for_reading(engine).connect() as conn:
        pks = conn.execute(sa.text("SELECT id FROM submission ORDER BY id")).scalars().all()
    assert np.concatenate([ids for ids, _ in chunks]).tolist() == pks
