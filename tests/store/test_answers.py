"""Stored answers: the compact form written by ingest reads back as the file's codes, on both
databases, row by row and in bulk; rows stored in the earlier JSON-object form still read."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from reintegration.errors import ConfigurationError
from reintegration.store.answers import decode_answers, decode_joined_answers
from reintegration.store.schema import submission
from tests.conftest import canonical_row, worst_answers, write_csv


def three_rows(questionnaire):
    """Best answers; worst answers (select-multiple with several codes); one item left blank."""
    first, multiple = questionnaire.items[0], next(i for i in questionnaire.items if i.is_multiple)
    return [
        canonical_row(questionnaire, 1),
        canonical_row(questionnaire, 2, **worst_answers(questionnaire)),
        canonical_row(questionnaire, 3, **{first.id: "", multiple.id: ""}),
    ]


def expected_codes(questionnaire, rows) -> pd.DataFrame:
    items = list(questionnaire.item_ids)
    return pd.DataFrame(
        [[row[item] or None for item in items] for row in rows], columns=items, dtype=object
    )


def stored(engine, *, driver: bool) -> list:
    query = "SELECT answers FROM submission ORDER BY submission_id"
    with engine.connect() as conn:
        if driver:  # as the driver returns them: SQLite the JSON text, psycopg the decoded value
            return conn.exec_driver_sql(query).scalars().all()
        return (
            conn.execute(sa.select(submission.c.answers).order_by(submission.c.submission_id))
            .scalars()
            .all()
        )


def test_ingested_answers_decode_to_the_codes_of_the_file(tmp_path, questionnaire, engine, ingest):
    rows = three_rows(questionnaire)
    assert ingest(write_csv(tmp_path / "b.csv", rows)).accepted == 3
    want = expected_codes(questionnaire, rows)
    for driver in (True, False):
        got = decode_answers(stored(engine, driver=driver), questionnaire.item_ids)
        pd.testing.assert_frame_equal(got, want)
    # Any subset of items, in any order, and an item the spec does not know is missing.
    items = [questionnaire.item_ids[3], questionnaire.item_ids[0], "not_an_item"]
    got = decode_answers(stored(engine, driver=True), items)
    assert got.columns.tolist() == items
    assert got["not_an_item"].tolist() == [None, None, None]
    assert got[items[1]].tolist() == want[items[1]].tolist()


def test_answers_are_stored_compactly_in_spec_order(tmp_path, questionnaire, engine, ingest):
    rows = three_rows(questionnaire)
    ingest(write_csv(tmp_path / "b.csv", rows))
    with engine.connect() as conn:
        text = conn.exec_driver_sql(
            "SELECT CAST(answers AS TEXT) FROM submission WHERE submission_id = 'sub-0002'"
        ).scalar_one()
    fields = json.loads(text).split("|")
    assert fields == [questionnaire.spec_version] + [rows[1][i] for i in questionnaire.item_ids]


def test_joined_answers_decode_in_bulk(tmp_path, questionnaire, engine, ingest):
    rows = three_rows(questionnaire)
    ingest(write_csv(tmp_path / "b.csv", rows))
    inner = "(SELECT answers FROM submission ORDER BY submission_id) AS s"
    join = (
        f"SELECT string_agg(CAST(answers AS TEXT), E'\\n') FROM {inner}"
        if engine.dialect.name == "postgresql"
        else f"SELECT group_concat(answers, char(10)) FROM {inner}"
    )
    with engine.connect() as conn:
        text = conn.exec_driver_sql(join).scalar_one()
    table = decode_joined_answers(text, questionnaire.item_ids, 3)
    pd.testing.assert_frame_equal(
        pd.DataFrame(table.to_pylist(), dtype=object), expected_codes(questionnaire, rows)
    )
    with pytest.raises(ValueError, match="expected 4 stored answers, found 3"):
        decode_joined_answers(text, questionnaire.item_ids, 4)


def test_rows_stored_as_json_objects_still_decode(tmp_path, questionnaire, engine, ingest):
    rows = three_rows(questionnaire)
    ingest(write_csv(tmp_path / "b.csv", rows))
    legacy = {item: rows[1][item] for item in questionnaire.item_ids if rows[1][item]}
    with engine.begin() as conn:
        conn.execute(
            submission.update().where(submission.c.submission_id == "sub-0002"),
            {"answers": legacy},
        )
    want = expected_codes(questionnaire, rows)
    for driver in (True, False):
        pd.testing.assert_frame_equal(
            decode_answers(stored(engine, driver=driver), questionnaire.item_ids), want
        )


def test_a_hash_stored_with_all_64_digits_still_finds_the_duplicate(
    tmp_path, questionnaire, engine, ingest
):
    # Rows stored before hashes were cut to 128 bits hold the whole SHA-256, whose first 32
    # digits are the hash computed now: a re-upload must still be a duplicate, not an update.
    path = write_csv(tmp_path / "b.csv", three_rows(questionnaire))
    ingest(path)
    with engine.begin() as conn:
        conn.execute(submission.update().values(content_hash=submission.c.content_hash + "0" * 32))
    again = ingest(path)
    assert (again.accepted, again.duplicate, again.updated) == (0, 3, 0)


def test_answers_of_a_spec_that_is_not_shipped_name_its_version(questionnaire):
    text = "|".join(["9.9.9"] + [""] * len(questionnaire.items))
    with pytest.raises(
        ConfigurationError,
        match=r"written with questionnaire spec 9\.9\.9, which this version of reintegration "
        r"does not ship; install the version that wrote them\.",
    ):
        decode_answers([text], questionnaire.item_ids)


def test_answers_with_a_field_too_many_are_refused(questionnaire):
    text = "|".join([questionnaire.spec_version] + [""] * (len(questionnaire.items) + 1))
    with pytest.raises(ConfigurationError, match="do not hold one field per item of that spec"):
        decode_answers([text], questionnaire.item_ids)
