"""The ingest's write path: foreign keys checked once per batch, never skipped, on both stores;
the same store whether or not the database lets the writer defer them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reintegration.store import writer as writer_module
from reintegration.store.bulk import insert_columns
from reintegration.store.schema import batch, returnee, score, submission
from reintegration.store.writer import BatchWriter
from tests.conftest import canonical_row, write_csv

SURVEY = (submission, score, returnee)


def panel_rows(questionnaire, returnees: int = 6):
    """Three rounds per returnee, the second round's file order reversed; one edit in file."""
    rows = []
    for round_, date in enumerate(("2025-03-01", "2025-06-01", "2025-09-01")):
        order = range(returnees) if round_ != 1 else reversed(range(returnees))
        for r in order:
            rows.append(
                canonical_row(
                    questionnaire,
                    100 * round_ + r,
                    returnee_id=f"CASE-{r:03d}",
                    interview_date=date,
                    age_at_return=str(20 + round_),
                )
            )
    rows.append(dict(rows[0], currently_working="no"))  # the same interview, edited
    return rows


def survey(engine) -> dict[str, list[tuple]]:
    """The survey tables without ids and timestamps, to compare two stores."""
    with engine.connect() as conn:
        subs = conn.execute(
            sa.select(
                submission.c.submission_id,
                submission.c.version,
                submission.c.current,
                submission.c.returnee_key,
                submission.c.survey_round,
                submission.c.answers,
            ).order_by(submission.c.submission_id, submission.c.version)
        ).all()
        people = conn.execute(
            sa.select(
                returnee.c.key, returnee.c.age_at_return, returnee.c.child, returnee.c.country
            ).order_by(returnee.c.key)
        ).all()
        composite = conn.execute(
            sa.select(submission.c.submission_id, submission.c.version, score.c.composite)
            .join(score, score.c.submission_pk == submission.c.id)
            .order_by(submission.c.submission_id, submission.c.version)
        ).all()
    return {"submission": subs, "returnee": people, "score": composite}


def test_a_store_that_cannot_defer_foreign_keys_ends_the_same(
    tmp_path, questionnaire, engine, ingest, monkeypatch
):
    # A PostgreSQL role that may not set session_replication_role gets placeholder returnee
    # rows before their interviews; the store must end exactly as with deferred keys.
    path = write_csv(tmp_path / "panel.csv", panel_rows(questionnaire))
    first = ingest(path)
    deferred = survey(engine)
    with engine.begin() as conn:
        for table in (score, submission, returnee):
            conn.execute(table.delete())
    monkeypatch.setattr(writer_module, "defer_foreign_keys", lambda conn: False)
    second = ingest(path)
    assert (second.accepted, second.updated) == (first.accepted, first.updated) == (19, 1)
    assert survey(engine) == deferred
    assert [r.survey_round for r in deferred["submission"] if r.current][:3] == [1, 1, 1]


def test_a_batch_whose_returnee_rows_are_missing_is_never_committed(
    tmp_path, questionnaire, engine, ingest, monkeypatch
):
    # The writer defers the foreign keys of a batch (SQLite checks them at commit, PostgreSQL
    # set-wise before it): a returnee row that never arrives must fail the whole batch.
    monkeypatch.setattr(BatchWriter, "_store_returnees", lambda self, ids, keys, now: None)
    with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY constraint failed|returnee"):
        ingest(write_csv(tmp_path / "panel.csv", panel_rows(questionnaire)))
    with engine.connect() as conn:
        assert [
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in SURVEY
        ] == [
            0,
            0,
            0,
        ]
        assert conn.execute(sa.select(batch.c.status)).scalars().all() == ["failed"]


def test_foreign_keys_are_checked_row_by_row_again_after_a_batch(
    tmp_path, questionnaire, engine, ingest
):
    ingest(write_csv(tmp_path / "panel.csv", panel_rows(questionnaire)))
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:  # the same pooled connection as the ingest's
            conn.execute(
                score.insert().values(
                    submission_pk=10_000,
                    model="rss",
                    index_version="rss-v1-provisional",
                    created_at=sa.func.current_timestamp(),
                )
            )


@pytest.fixture
def in_blocks(monkeypatch):
    """Ingest streams every file in blocks of about 25 rows."""
    import reintegration.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "STREAM_ABOVE_BYTES", 0)
    monkeypatch.setattr(ingest_module, "STREAM_BLOCK_BYTES", 8 << 10)


def test_a_file_in_blocks_ends_as_the_whole_file(
    tmp_path, questionnaire, engine, ingest, in_blocks
):
    # On PostgreSQL each block is loaded in the background while the next one is prepared.
    from reintegration.store.engine import open_store

    path = write_csv(tmp_path / "panel.csv", panel_rows(questionnaire, returnees=40))
    whole = open_store(f"sqlite:///{tmp_path / 'whole.db'}")
    for store in (engine, whole):
        report = ingest(path, store=store)
        assert (report.received, report.accepted, report.updated) == (121, 121, 1)
    assert survey(engine) == survey(whole)
    whole.dispose()


def test_blocks_probing_a_stored_batch_end_as_the_whole_file(
    tmp_path, questionnaire, engine, ingest, monkeypatch
):
    """Each block checks its rows against the store through the same scratch tables, emptied
    between blocks (on PostgreSQL by TRUNCATE): the store ends as after the whole file."""
    import reintegration.ingest as ingest_module
    from reintegration.store.engine import open_store

    rows = panel_rows(questionnaire, returnees=40)
    first = write_csv(tmp_path / "first.csv", rows[::2])  # every other row, all rounds
    path = write_csv(tmp_path / "panel.csv", rows)
    whole = open_store(f"sqlite:///{tmp_path / 'whole.db'}")
    ingest(first, store=whole)
    expected = ingest(path, store=whole)
    ingest(first)
    monkeypatch.setattr(ingest_module, "STREAM_ABOVE_BYTES", 0)
    monkeypatch.setattr(ingest_module, "STREAM_BLOCK_BYTES", 8 << 10)  # about 25 rows a block
    report = ingest(path)
    counts = ("received", "accepted", "duplicate", "updated", "rejected")
    assert [getattr(report, c) for c in counts] == [getattr(expected, c) for c in counts]
    assert report.duplicate == len(rows[::2])
    assert survey(engine) == survey(whole)
    whole.dispose()


def test_a_load_that_fails_in_a_later_block_fails_the_batch(
    tmp_path, questionnaire, engine, ingest, in_blocks, monkeypatch
):
    loads = []

    def failing(conn, table, names, columns):
        loads.append(table)
        if table == "score" and loads.count("score") == 2:
            raise RuntimeError("the server went away")
        insert_columns(conn, table, names, columns)

    monkeypatch.setattr(writer_module, "insert_columns", failing)
    with pytest.raises(RuntimeError, match="the server went away"):
        ingest(write_csv(tmp_path / "panel.csv", panel_rows(questionnaire, returnees=40)))
    assert loads.count("score") == 2  # the second block failed; no block was loaded after it
    with engine.connect() as conn:
        counts = [conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in SURVEY]
        assert counts == [0, 0, 0]
        assert conn.execute(sa.select(batch.c.status, batch.c.reason)).one() == (
            "failed",
            "internal error (RuntimeError)",
        )


def test_scores_whose_submissions_are_missing_are_never_committed(
    tmp_path, questionnaire, engine, ingest, in_blocks, monkeypatch
):
    loads = []

    def losing_one(conn, table, names, columns):
        loads.append(table)
        if not (table == "submission" and loads.count("submission") == 2):
            insert_columns(conn, table, names, columns)

    monkeypatch.setattr(writer_module, "insert_columns", losing_one)
    with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY constraint failed|submission"):
        ingest(write_csv(tmp_path / "panel.csv", panel_rows(questionnaire, returnees=40)))
    with engine.connect() as conn:
        counts = [conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in SURVEY]
        assert counts == [0, 0, 0]
