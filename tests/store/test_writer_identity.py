"""An interview belongs to one returnee (issue 11: bad input is a row error, never a crash).

The same submission id under two case numbers used to store versions of one interview under
two returnee keys: in one file the returnee of the version no longer current never got its
row and the batch failed on the foreign key ("internal error"); across batches the interview
moved silently to the other returnee. Now the later row is rejected on its submission_id, the
earlier one stands, and the store holds exactly what it would without the refused row.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from reintegration.batch_views import batch_rejected
from reintegration.pseudonym import KEY_PREFIX, returnee_key
from reintegration.roles import Role
from reintegration.store.schema import batch, rejected_row, returnee, score, submission
from reintegration.users import User
from tests.conftest import SECRET, canonical_row, write_csv

OTHERS = (
    "this submission id is already used by another returnee's interview; "
    "give this interview its own id"
)
SUBMISSION_OUTSIDE = "this submission id cannot be used from your countries"


def snapshot(engine) -> dict[str, list[tuple]]:
    """Submissions, returnees and scores, every column (ids and timestamps included)."""
    with engine.connect() as conn:
        return {
            t.name: sorted(tuple(str(v) for v in row) for row in conn.execute(sa.select(t)).all())
            for t in (submission, returnee, score)
        }


def survey(engine) -> dict[str, list[tuple]]:
    """The survey tables without ids and timestamps, to compare two stores."""
    c = submission.c
    with engine.connect() as conn:
        return {
            "submission": [
                tuple(r)
                for r in conn.execute(
                    sa.select(
                        c.submission_id,
                        c.version,
                        c.current,
                        c.returnee_key,
                        c.survey_round,
                        c.content_hash,
                    ).order_by(c.submission_id, c.version)
                ).all()
            ],
            "returnee": [
                tuple(r)
                for r in conn.execute(
                    sa.select(
                        returnee.c.key, returnee.c.sex, returnee.c.age_at_return, returnee.c.country
                    ).order_by(returnee.c.key)
                ).all()
            ],
            "score": [
                tuple(r)
                for r in conn.execute(
                    sa.select(c.submission_id, c.version, score.c.composite)
                    .join(score, score.c.submission_pk == c.id)
                    .order_by(c.submission_id, c.version)
                ).all()
            ],
        }


def owners(engine) -> dict[tuple[str, int], str]:
    """Each stored version's returnee key."""
    c = submission.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(c.submission_id, c.version, c.returnee_key)).all()
    return {(sid, version): key for sid, version, key in rows}


def errors_of(report) -> list[tuple[int, str, str, str]]:
    return [(e.row, e.column, e.value, e.message) for e in report.errors]


def counts(report) -> tuple[int, int, int, int, int]:
    return (report.received, report.accepted, report.rejected, report.duplicate, report.updated)


def key(case: str) -> str:
    return returnee_key(case, SECRET)


def status(engine, batch_id: str) -> tuple[str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(batch.c.status, batch.c.reason).where(batch.c.id == batch_id)
        ).one()
    return row.status, row.reason


def assert_names_no_case(report, *cases: str) -> None:
    text = json.dumps(report.to_json())
    for case in cases:
        assert case not in text and key(case) not in text


# -- in one file ------------------------------------------------------------------------------


def test_an_id_sent_again_under_another_case_number_in_the_file_is_a_row_error(
    tmp_path, questionnaire, engine, ingest
):
    rows = [
        canonical_row(questionnaire, 1),
        canonical_row(questionnaire, 2),
        canonical_row(questionnaire, 3, submission_id="sub-0001", currently_working="no"),
    ]
    report = ingest(write_csv(tmp_path / "dup.csv", rows))
    expected = _sqlite(tmp_path)
    ingest(write_csv(tmp_path / "without.csv", rows[:2]), store=expected)

    assert status(engine, report.batch_id) == ("done", None)
    assert counts(report) == (3, 2, 1, 0, 0)
    assert errors_of(report) == [(4, "submission_id", "sub-0001", OTHERS)]
    assert_names_no_case(report, "CASE-0001")
    # The earlier row stands; the store is what the file without the refused row makes.
    assert owners(engine) == {("sub-0001", 1): key("CASE-0001"), ("sub-0002", 1): key("CASE-0002")}
    assert survey(engine) == survey(expected)
    expected.dispose()
    with engine.connect() as conn:
        stored = conn.execute(sa.select(returnee.c.key)).scalars().all()
    assert key("CASE-0003") not in stored
    # Refused like any other row: kept for the fixable file, with its cells as sent.
    (kept,) = batch_rejected(engine, report.batch_id)
    assert kept.row == 4 and kept.cells["returnee_id"] == KEY_PREFIX + key("CASE-0003")
    assert kept.errors == [{"column": "submission_id", "value": "sub-0001", "message": OTHERS}]


def test_a_store_that_cannot_defer_foreign_keys_refuses_the_same_row(
    tmp_path, questionnaire, engine, ingest, monkeypatch
):
    # Returnee rows then come before their interviews: the refused row leaves none either.
    from reintegration.store import writer as writer_module

    monkeypatch.setattr(writer_module, "defer_foreign_keys", lambda conn: False)
    rows = [
        canonical_row(questionnaire, 1),
        canonical_row(questionnaire, 3, submission_id="sub-0001"),
    ]
    report = ingest(write_csv(tmp_path / "dup.csv", rows))

    assert counts(report) == (2, 1, 1, 0, 0)
    assert errors_of(report) == [(3, "submission_id", "sub-0001", OTHERS)]
    with engine.connect() as conn:
        people = conn.execute(sa.select(returnee.c.key, returnee.c.sex)).all()
    assert people == [(key("CASE-0001"), "female")]


def test_the_same_content_under_two_case_numbers_in_one_file_is_a_row_error(
    tmp_path, questionnaire, engine, ingest
):
    # Same answers, same dates: only the case number differs (the hash covers the key).
    rows = [canonical_row(questionnaire, 1), canonical_row(questionnaire, 1, returnee_id="CASE-9")]
    report = ingest(write_csv(tmp_path / "twice.csv", rows))

    assert status(engine, report.batch_id) == ("done", None)
    assert counts(report) == (2, 1, 1, 0, 0)
    assert errors_of(report) == [(3, "submission_id", "sub-0001", OTHERS)]
    assert owners(engine) == {("sub-0001", 1): key("CASE-0001")}
    assert [len(v) for v in snapshot(engine).values()] == [1, 1, 1]


def test_an_edit_under_the_same_case_number_is_still_an_update_after_a_refused_row(
    tmp_path, questionnaire, engine, ingest
):
    # Row 3 is refused; row 4 edits the interview under its own returnee and stands.
    rows = [
        canonical_row(questionnaire, 1),
        canonical_row(questionnaire, 7, submission_id="sub-0001"),
        canonical_row(questionnaire, 1, currently_working="no"),
    ]
    report = ingest(write_csv(tmp_path / "edit.csv", rows))

    assert counts(report) == (3, 2, 1, 0, 1)
    assert errors_of(report) == [(3, "submission_id", "sub-0001", OTHERS)]
    assert owners(engine) == {("sub-0001", 1): key("CASE-0001"), ("sub-0001", 2): key("CASE-0001")}
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(returnee)).scalar_one() == 1


# -- across batches ---------------------------------------------------------------------------


def test_an_id_stored_under_another_returnee_is_refused_and_the_store_is_unchanged(
    tmp_path, questionnaire, engine, ingest
):
    ingest(write_csv(tmp_path / "a.csv", [canonical_row(questionnaire, 1)]))
    before = snapshot(engine)
    rows = [
        canonical_row(questionnaire, 3, submission_id="sub-0001"),
        canonical_row(questionnaire, 1, submission_id="sub-0001", returnee_id="CASE-0004"),
    ]
    report = ingest(write_csv(tmp_path / "b.csv", rows))

    assert status(engine, report.batch_id) == ("done", None)
    assert counts(report) == (2, 0, 2, 0, 0)
    assert errors_of(report) == [
        (2, "submission_id", "sub-0001", OTHERS),
        (3, "submission_id", "sub-0001", OTHERS),
    ]
    assert_names_no_case(report, "CASE-0001")
    assert snapshot(engine) == before
    with engine.connect() as conn:
        kept = conn.execute(
            sa.select(sa.func.count())
            .select_from(rejected_row)
            .where(rejected_row.c.batch_id == report.batch_id)
        ).scalar_one()
    assert kept == 2


def test_the_other_rows_of_the_batch_are_stored(tmp_path, questionnaire, engine, ingest):
    ingest(write_csv(tmp_path / "a.csv", [canonical_row(questionnaire, 1)]))
    rows = [
        canonical_row(questionnaire, 2),
        canonical_row(questionnaire, 3, submission_id="sub-0001"),
        canonical_row(questionnaire, 1, currently_working="no"),  # its own returnee's edit
    ]
    report = ingest(write_csv(tmp_path / "b.csv", rows))

    assert counts(report) == (3, 2, 1, 0, 1)
    assert errors_of(report) == [(3, "submission_id", "sub-0001", OTHERS)]
    assert owners(engine) == {
        ("sub-0001", 1): key("CASE-0001"),
        ("sub-0001", 2): key("CASE-0001"),
        ("sub-0002", 1): key("CASE-0002"),
    }
    with engine.connect() as conn:
        keys = conn.execute(sa.select(returnee.c.key)).scalars().all()
    assert sorted(keys) == sorted([key("CASE-0001"), key("CASE-0002")])


def test_a_version_no_longer_current_still_binds_the_id(tmp_path, questionnaire, engine, ingest):
    # sub-0001 is stored twice under CASE-0001; the first version is no longer current.
    ingest(write_csv(tmp_path / "a.csv", [canonical_row(questionnaire, 1)]))
    ingest(write_csv(tmp_path / "b.csv", [canonical_row(questionnaire, 1, currently_working="no")]))
    before = snapshot(engine)
    rows = [canonical_row(questionnaire, 5, submission_id="sub-0001")]
    report = ingest(write_csv(tmp_path / "c.csv", rows))

    assert counts(report) == (1, 0, 1, 0, 0)
    assert errors_of(report) == [(2, "submission_id", "sub-0001", OTHERS)]
    assert snapshot(engine) == before


def test_an_id_split_between_two_returnees_before_this_check_is_refused_to_both(
    tmp_path, questionnaire, engine, ingest
):
    """A store written before the check may hold versions of one id under two keys, the
    one under the other key no longer current: neither returnee may add a version."""
    rows = [
        canonical_row(questionnaire, 1),
        canonical_row(questionnaire, 2),
        canonical_row(questionnaire, 1, currently_working="no"),
    ]
    ingest(write_csv(tmp_path / "a.csv", rows))
    with engine.begin() as conn:
        conn.execute(
            submission.update()
            .where(submission.c.submission_id == "sub-0001", submission.c.version == 1)
            .values(returnee_key=key("CASE-0002"))
        )
    before = snapshot(engine)
    for case in ("CASE-0001", "CASE-0002"):
        edit = canonical_row(questionnaire, 1, returnee_id=case, currently_working="dont_know")
        report = ingest(write_csv(tmp_path / f"{case}.csv", [edit]))
        assert status(engine, report.batch_id) == ("done", None)
        assert errors_of(report) == [(2, "submission_id", "sub-0001", OTHERS)]
        assert snapshot(engine) == before


# -- across the blocks of a streamed file -----------------------------------------------------


@pytest.fixture
def in_blocks(monkeypatch):
    """Ingest streams every file in blocks of about 25 rows."""
    import reintegration.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "STREAM_ABOVE_BYTES", 0)
    monkeypatch.setattr(ingest_module, "STREAM_BLOCK_BYTES", 8 << 10)


def test_an_id_reused_in_a_later_block_is_refused(
    tmp_path, questionnaire, engine, ingest, in_blocks, chunks
):
    # On PostgreSQL the first block may still be loading when the last one is checked.
    rows = [canonical_row(questionnaire, k) for k in range(1, 81)]
    reused = [
        canonical_row(questionnaire, 90, submission_id="sub-0001"),  # other content
        canonical_row(questionnaire, 2, returnee_id="CASE-0091"),  # same content
    ]
    report = ingest(write_csv(tmp_path / "long.csv", rows + reused))
    written = len(chunks)
    expected = _sqlite(tmp_path)
    ingest(write_csv(tmp_path / "short.csv", rows), store=expected)

    assert written > 2 and chunks[written - 1][0] >= 82 > chunks[0][-1]  # not the first block
    assert status(engine, report.batch_id) == ("done", None)
    assert counts(report) == (82, 80, 2, 0, 0)
    assert errors_of(report) == [
        (82, "submission_id", "sub-0001", OTHERS),
        (83, "submission_id", "sub-0002", OTHERS),
    ]
    assert survey(engine) == survey(expected)
    expected.dispose()


def test_blocks_refuse_what_the_whole_file_refuses(
    tmp_path, questionnaire, engine, ingest, monkeypatch, chunks
):
    """Pairs of rows sharing an id under two case numbers, in the same block and across
    blocks: streamed in blocks, the file ends as when read whole."""
    import reintegration.ingest as ingest_module

    rows = [canonical_row(questionnaire, k) for k in range(1, 61)]
    # Each reuse follows the row it copies (file rows 3, 33, 62); sub-0059's comes first, so
    # CASE-0059's own row (63) is the one refused; sub-0005 is reused at the end (65).
    for k, at in ((1, 1), (30, 31), (59, 60)):
        rows.insert(at, canonical_row(questionnaire, 200 + k, submission_id=f"sub-{k:04d}"))
    rows.append(canonical_row(questionnaire, 300, submission_id="sub-0005"))
    path = write_csv(tmp_path / "panel.csv", rows)
    store = _sqlite(tmp_path)
    whole = ingest(path, store=store)
    assert len(chunks) == 1
    monkeypatch.setattr(ingest_module, "STREAM_ABOVE_BYTES", 0)
    monkeypatch.setattr(ingest_module, "STREAM_BLOCK_BYTES", 8 << 10)
    report = ingest(path)

    assert len(chunks) > 3
    assert counts(report) == counts(whole) == (64, 60, 4, 0, 0)
    assert errors_of(report) == errors_of(whole)
    assert [e[:3] for e in errors_of(report)] == [
        (3, "submission_id", "sub-0001"),
        (33, "submission_id", "sub-0030"),
        (63, "submission_id", "sub-0059"),
        (65, "submission_id", "sub-0005"),
    ]
    assert {e[3] for e in errors_of(report)} == {OTHERS}
    assert survey(engine) == survey(store)
    store.dispose()


# -- the scope checks come first --------------------------------------------------------------


def test_a_scoped_uploader_is_told_the_scope_sentence_first(
    tmp_path, questionnaire, engine, ingest
):
    ingest(write_csv(tmp_path / "gin.csv", [canonical_row(questionnaire, 1, country="GIN")]))
    before = snapshot(engine)
    senegal = User("enumerator-sen", Role.ENUMERATOR, frozenset({"SEN"}))
    rows = [canonical_row(questionnaire, 2, submission_id="sub-0001")]
    report = ingest(write_csv(tmp_path / "sen.csv", rows), senegal)

    assert errors_of(report) == [(2, "submission_id", "sub-0001", SUBMISSION_OUTSIDE)]
    assert snapshot(engine) == before


def test_a_scoped_uploader_in_scope_is_told_the_id_is_another_returnees(
    tmp_path, questionnaire, engine, ingest
):
    ingest(write_csv(tmp_path / "a.csv", [canonical_row(questionnaire, 1)]))
    before = snapshot(engine)
    senegal = User("enumerator-sen", Role.ENUMERATOR, frozenset({"SEN"}))
    rows = [
        canonical_row(questionnaire, 2, submission_id="sub-0001"),
        canonical_row(questionnaire, 3),
        canonical_row(questionnaire, 4, submission_id="sub-0003"),
    ]
    report = ingest(write_csv(tmp_path / "sen.csv", rows), senegal)

    assert counts(report) == (3, 1, 2, 0, 0)
    assert errors_of(report) == [
        (2, "submission_id", "sub-0001", OTHERS),
        (4, "submission_id", "sub-0003", OTHERS),
    ]
    assert snapshot(engine)["submission"][0] == before["submission"][0]
    assert owners(engine) == {("sub-0001", 1): key("CASE-0001"), ("sub-0003", 1): key("CASE-0003")}


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def chunks(monkeypatch):
    """The row numbers of each chunk the writer is given, in order."""
    from reintegration.store.writer import BatchWriter

    seen: list[list[int]] = []
    write = BatchWriter.write

    def recording(self, chunk):
        seen.append(sorted(int(r) for r in chunk.rows))
        return write(self, chunk)

    monkeypatch.setattr(BatchWriter, "write", recording)
    return seen


def _sqlite(tmp_path):
    from reintegration.store.engine import open_store

    path = tmp_path / f"expected-{len(list(tmp_path.glob('expected-*.db')))}.db"
    return open_store(f"sqlite:///{path}")
