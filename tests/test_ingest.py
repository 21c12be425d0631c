"""Ingest: every good row kept once, every bad row explained, nothing half-stored."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from reintegration.errors import MissingColumnsError, UnreadableFileError
from reintegration.fixable import fixable_csv
from reintegration.index import ReintegrationIndex
from reintegration.ingest import ingest_file
from reintegration.pseudonym import returnee_key
from reintegration.store import batches as store
from reintegration.store.schema import audit, batch, rejected_row, returnee, score, submission
from tests.conftest import SECRET, canonical_row, write_csv

SURVEY_TABLES = (submission, score, returnee)


def snapshot(engine) -> dict[str, list[tuple]]:
    """The survey data, to compare before and after (batches and audit left out)."""
    with engine.connect() as conn:
        return {
            t.name: sorted(tuple(str(v) for v in row) for row in conn.execute(sa.select(t)).all())
            for t in SURVEY_TABLES
        }


def count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(table).where(*where)
        ).scalar_one()


def rows(questionnaire, *overrides):
    return [canonical_row(questionnaire, k + 1, **o) for k, o in enumerate(overrides)]


def test_every_valid_row_is_stored_and_scored_with_its_index_version(
    tmp_path, questionnaire, engine, ingest
):
    path = write_csv(tmp_path / "b.csv", rows(questionnaire, {}, {"currently_working": "no"}))
    report = ingest(path)
    assert (
        report.received,
        report.accepted,
        report.rejected,
        report.duplicate,
        report.updated,
    ) == (2, 2, 0, 0, 0)
    assert report.status == "done"
    with engine.connect() as conn:
        scores = conn.execute(
            sa.select(score.c.index_version, score.c.economic).order_by(score.c.economic)
        ).all()
        assert scores == [("rss-v1-provisional", 0.875), ("rss-v1-provisional", 1.0)]
        stored = conn.execute(sa.select(batch.c.status, batch.c.accepted, batch.c.pid)).one()
        assert stored == ("done", 2, None)


def test_case_numbers_are_stored_only_as_keys(tmp_path, questionnaire, engine, ingest):
    ingest(write_csv(tmp_path / "b.csv", rows(questionnaire, {"returnee_id": "SEN-2024-000777"})))
    with engine.connect() as conn:
        keys = conn.execute(sa.select(returnee.c.key)).scalars().all()
    assert keys == [returnee_key("sen-2024-000777 ", SECRET)]
    assert "000777" not in str(snapshot(engine))


def test_uploading_the_same_file_again_changes_nothing(tmp_path, questionnaire, engine, ingest):
    path = write_csv(tmp_path / "b.csv", rows(questionnaire, {}, {}, {"can_borrow": "maybe"}))
    ingest(path)
    before = snapshot(engine)
    for _ in range(2):
        again = ingest(path)
        assert (again.accepted, again.duplicate, again.rejected, again.updated) == (0, 2, 1, 0)
        assert again.received == again.accepted + again.rejected + again.duplicate
    assert snapshot(engine) == before


def test_a_label_export_of_stored_codes_is_a_duplicate(tmp_path, questionnaire, engine, ingest):
    coded = rows(questionnaire, {})
    ingest(write_csv(tmp_path / "codes.csv", coded))
    labelled = dict(coded[0])
    for item in questionnaire.items:
        if not item.is_multiple:
            option = next(o for o in item.options if o.code == labelled[item.id])
            labelled[item.id] = option.labels["fr"].upper()
    labelled["sex"] = "Femme"
    report = ingest(write_csv(tmp_path / "labels.csv", [labelled]))
    assert (report.accepted, report.duplicate) == (0, 1)


def test_an_edited_submission_is_an_update_and_the_old_version_is_kept(
    tmp_path, questionnaire, engine, ingest
):
    ingest(write_csv(tmp_path / "v1.csv", rows(questionnaire, {})))
    report = ingest(
        write_csv(tmp_path / "v2.csv", rows(questionnaire, {"currently_working": "no"}))
    )
    assert (report.accepted, report.updated, report.duplicate) == (1, 1, 0)
    with engine.connect() as conn:
        versions = conn.execute(
            sa.select(submission.c.version, submission.c.current).order_by(submission.c.version)
        ).all()
    assert versions == [(1, False), (2, True)]
    assert count(engine, score) == 2  # each version keeps its score


def test_a_late_old_export_never_reverts_an_edit(tmp_path, questionnaire, engine, ingest):
    old = write_csv(tmp_path / "v1.csv", rows(questionnaire, {}))
    ingest(old)
    ingest(write_csv(tmp_path / "v2.csv", rows(questionnaire, {"currently_working": "no"})))
    late = ingest(old)
    assert (late.accepted, late.duplicate) == (0, 1)
    with engine.connect() as conn:
        current = (
            conn.execute(sa.select(submission.c.version).where(submission.c.current))
            .scalars()
            .all()
        )
    assert current == [2]


def test_duplicates_and_updates_inside_one_file(tmp_path, questionnaire, engine, ingest):
    same = canonical_row(questionnaire, 1)
    edited = canonical_row(questionnaire, 1, currently_working="no")
    report = ingest(write_csv(tmp_path / "b.csv", [same, same, edited]))
    assert (report.received, report.accepted, report.duplicate, report.updated) == (3, 2, 1, 1)
    with engine.connect() as conn:
        versions = conn.execute(
            sa.select(submission.c.version, submission.c.current).order_by(submission.c.version)
        ).all()
    assert versions == [(1, False), (2, True)]


def test_rounds_follow_interview_dates_and_a_late_earlier_round_renumbers_them(
    tmp_path, questionnaire, engine, ingest
):
    later = canonical_row(questionnaire, 2, returnee_id="C-1", interview_date="2025-09-01")
    ingest(write_csv(tmp_path / "a.csv", [later]))
    earlier = canonical_row(questionnaire, 1, returnee_id="C-1", interview_date="2025-03-01")
    ingest(write_csv(tmp_path / "b.csv", [earlier]))
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(
                submission.c.submission_id,
                submission.c.survey_round,
                submission.c.months_since_return,
            ).order_by(submission.c.survey_round)
        ).all()
    assert [(s, r) for s, r, _ in found] == [("sub-0001", 1), ("sub-0002", 2)]
    assert found[0][2] == pytest.approx(45 / 30.4375)  # 45 days from 2025-01-15 to 2025-03-01


def test_rows_of_a_returnee_that_disagree_between_rounds_get_a_warning(
    tmp_path, questionnaire, engine, ingest
):
    first = canonical_row(
        questionnaire, 1, returnee_id="C-1", interview_date="2025-03-01", sex="female"
    )
    second = canonical_row(
        questionnaire, 2, returnee_id="C-1", interview_date="2025-09-01", sex="male"
    )
    report = ingest(write_csv(tmp_path / "a.csv", [first, second]))
    (warning,) = [w for w in report.warnings if w.column == "sex"]
    assert warning.message == (
        "this returnee's sex differs between rounds (female on 2025-03-01, male on 2025-09-01); "
        "the latest interview's is kept"
    )
    with engine.connect() as conn:
        assert conn.execute(sa.select(returnee.c.sex)).scalar_one() == "male"


def test_a_return_date_after_another_rounds_interview_is_an_error(
    tmp_path, questionnaire, engine, ingest
):
    ingest(
        write_csv(
            tmp_path / "a.csv",
            [canonical_row(questionnaire, 1, returnee_id="C-1", interview_date="2025-03-01")],
        )
    )
    bad = canonical_row(
        questionnaire, 2, returnee_id="C-1", interview_date="2025-09-01", return_date="2025-04-01"
    )
    report = ingest(write_csv(tmp_path / "b.csv", [bad]))
    (error,) = report.errors
    assert (error.row, error.column, error.message) == (
        2,
        "return_date",
        "return date 2025-04-01 is after this returnee's interview of 2025-03-01 in another round",
    )


def test_a_row_without_consent_is_rejected_and_nothing_of_it_is_stored(
    tmp_path, questionnaire, engine, ingest
):
    report = ingest(write_csv(tmp_path / "b.csv", rows(questionnaire, {"consent": "no"})))
    assert (report.rejected, report.accepted) == (1, 0)
    assert report.errors[0].message == (
        "consent was not recorded as yes; nothing of this row is stored"
    )
    assert count(engine, rejected_row) == 0
    assert count(engine, submission) == 0


def test_rejected_rows_are_kept_without_identifiers_and_make_a_fixable_file(
    tmp_path, questionnaire, engine, ingest
):
    path = write_csv(
        tmp_path / "b.csv",
        rows(questionnaire, {}, {"can_borrow": "maybe", "admin1": '=HYPERLINK("x")'}),
    )
    report = ingest(path)
    with engine.connect() as conn:
        kept = store.rejected_rows(conn, report.batch_id)
    (row,) = kept
    assert row.row == 3
    assert row.cells["returnee_id"] == "key:" + returnee_key("CASE-0002", SECRET)
    assert row.cells["admin1"] == '=HYPERLINK("x")'  # stored as sent
    text = fixable_csv(kept)
    (line,) = list(csv.DictReader(io.StringIO(text)))
    assert line["admin1"] == '\'=HYPERLINK("x")'  # neutralised for spreadsheets
    assert line["error"].startswith("can_borrow: 'maybe' is not an answer to can_borrow")
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(text.replace("maybe", "yes").replace("'=HYPERLINK", "=HYPERLINK"))
    again = ingest(fixed)
    assert (again.accepted, again.rejected) == (1, 0)
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count(sa.distinct(submission.c.returnee_key)))
            ).scalar_one()
            == 2
        )


def test_rows_of_other_countries_are_rejected_before_any_duplicate_check(
    tmp_path, questionnaire, engine, ingest
):
    path = write_csv(
        tmp_path / "b.csv", rows(questionnaire, {"country": "SEN"}, {"country": "GIN"})
    )
    ingest(path)
    scoped = ingest(path, countries={"SEN"})
    assert (scoped.duplicate, scoped.rejected) == (1, 1)
    (error,) = scoped.errors
    assert (error.row, error.column, error.message) == (
        3,
        "country",
        "country GIN is outside the countries this upload may hold (SEN)",
    )


def test_erasure_removes_a_returnee_and_refuses_later_uploads(
    tmp_path, questionnaire, engine, ingest
):
    path = write_csv(
        tmp_path / "b.csv", rows(questionnaire, {"returnee_id": "C-9"}, {"returnee_id": "C-8"})
    )
    ingest(path)
    removed = store.erase_returnee(engine, returnee_key("C-9", SECRET), "admin")
    assert removed == {"scores": 1, "risks": 0, "submissions": 1, "rejected_rows": 0}
    assert count(engine, submission) == 1
    again = ingest(path)
    (error,) = again.errors
    assert (
        error.message
        == "this returnee's data was erased; an admin must lift the erasure before it is uploaded again"
    )
    with engine.connect() as conn:
        actions = conn.execute(sa.select(audit.c.action, audit.c.target)).all()
    assert ("erase", returnee_key("C-9", SECRET)) in actions


def test_a_file_missing_a_required_column_fails_and_stores_nothing(
    tmp_path, questionnaire, engine, ingest
):
    data = rows(questionnaire, {})
    for row in data:
        del row["return_date"]
    before = snapshot(engine)
    with pytest.raises(
        MissingColumnsError, match="the file has no column return_date, which ingest needs"
    ):
        ingest(write_csv(tmp_path / "b.csv", data))
    assert snapshot(engine) == before
    with engine.connect() as conn:
        status, reason = conn.execute(sa.select(batch.c.status, batch.c.reason)).one()
    assert status == "failed" and "return_date" in reason


def test_an_unreadable_file_fails_and_stores_nothing(tmp_path, engine, ingest):
    path = tmp_path / "garbage.csv"
    path.write_bytes(b"\x00\x01" * 500)
    with pytest.raises(UnreadableFileError):
        ingest(path)
    assert count(engine, batch, batch.c.status == "failed") == 1
    assert count(engine, submission) == 0


def test_a_header_only_file_is_a_report_with_nothing_accepted(tmp_path, questionnaire, ingest):
    path = write_csv(tmp_path / "b.csv", rows(questionnaire, {}))
    path.write_text(path.read_text().splitlines()[0] + "\n")
    report = ingest(path)
    assert (report.received, report.accepted, report.status) == (0, 0, "done")


def test_a_batch_left_processing_by_a_dead_process_is_marked_interrupted(
    tmp_path, questionnaire, engine, ingest
):
    import datetime as dt
    import socket

    # No lease (as stored before leases), created an hour ago: its lease time has long passed.
    with engine.begin() as conn:
        conn.execute(
            batch.insert().values(
                id="dead-batch",
                uploader="x",
                file_name="x.csv",
                sha256="0" * 64,
                status="processing",
                host=socket.gethostname(),
                pid=2**22 + 12345,
                created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
            )
        )
    ingest(write_csv(tmp_path / "b.csv", rows(questionnaire, {})))
    with engine.connect() as conn:
        status, reason = conn.execute(
            sa.select(batch.c.status, batch.c.reason).where(batch.c.id == "dead-batch")
        ).one()
    assert status == "failed" and reason.startswith("interrupted")


def test_uploads_and_updates_are_audited_without_answers(tmp_path, questionnaire, engine, ingest):
    ingest(write_csv(tmp_path / "a.csv", rows(questionnaire, {})))
    ingest(write_csv(tmp_path / "b.csv", rows(questionnaire, {"currently_working": "no"})))
    with engine.connect() as conn:
        entries = conn.execute(
            sa.select(audit.c.actor, audit.c.action, audit.c.detail).order_by(audit.c.id)
        ).all()
    assert [(a, b) for a, b, _ in entries] == [
        ("enumerator-1", "upload"),
        ("enumerator-1", "upload"),
        ("enumerator-1", "update"),
    ]
    assert "currently_working" not in str(entries) and "CASE-" not in str(entries)


def _panel_state(engine):
    with engine.connect() as conn:
        rounds = sorted(
            conn.execute(
                sa.select(
                    submission.c.submission_id, submission.c.survey_round, submission.c.current
                )
            ).all()
        )
        people = sorted(
            conn.execute(
                sa.select(
                    returnee.c.key,
                    returnee.c.sex,
                    returnee.c.age_at_return,
                    returnee.c.child,
                    returnee.c.return_type,
                    returnee.c.country,
                )
            ).all()
        )
    return rounds, people


@pytest.mark.parametrize("order", ["by date", "shuffled"])
def test_rounds_and_returnees_are_the_same_whether_a_file_comes_whole_or_in_blocks(
    tmp_path, questionnaire, monkeypatch, order
):
    import reintegration.ingest as ingest_module
    from reintegration.store.engine import open_store
    from reintegration.synth import generate_panel, write_panel

    frame, _ = generate_panel(150, 4, seed=21)
    if order == "shuffled":
        frame = frame.sample(frac=1, random_state=3)
    # an earlier interview of a returnee arriving late, in a later block: renumbered
    path = tmp_path / "panel.csv"
    write_panel(frame, path, "csv")
    index = ReintegrationIndex().fit()
    whole = open_store(f"sqlite:///{tmp_path / 'whole.db'}")
    ingest_file(path, whole, scorer=index, questionnaire=questionnaire, secret=SECRET, uploader="t")
    monkeypatch.setattr(ingest_module, "STREAM_ABOVE_BYTES", 0)
    monkeypatch.setattr(ingest_module, "STREAM_BLOCK_BYTES", 8 << 10)
    blocks = open_store(f"sqlite:///{tmp_path / 'blocks.db'}")
    report = ingest_file(
        path, blocks, scorer=index, questionnaire=questionnaire, secret=SECRET, uploader="t"
    )
    assert report.accepted == len(frame)
    expected = _panel_state(whole)
    assert _panel_state(blocks) == expected
    # and the rounds are the rank of the interview date, whatever the order of arrival
    with whole.connect() as conn:
        ranked = conn.execute(
            sa.text(
                "SELECT count(*) FROM (SELECT survey_round, ROW_NUMBER() OVER (PARTITION BY returnee_key "
                "ORDER BY interview_date, submission_id) AS rn FROM submission WHERE current) t WHERE survey_round != rn"
            )
        ).scalar_one()
    assert ranked == 0
    whole.dispose()
    blocks.dispose()


def test_a_later_round_in_a_later_upload_continues_the_numbering(
    tmp_path, questionnaire, engine, ingest
):
    ingest(
        write_csv(
            tmp_path / "a.csv",
            [
                canonical_row(
                    questionnaire, 1, returnee_id="C-1", interview_date="2025-03-01", sex="female"
                )
            ],
        )
    )
    report = ingest(
        write_csv(
            tmp_path / "b.csv",
            [
                canonical_row(
                    questionnaire,
                    2,
                    returnee_id="C-1",
                    interview_date="2025-09-01",
                    sex="male",
                    age_at_return="16",
                )
            ],
        )
    )
    assert [w.column for w in report.warnings] == ["sex"]
    with engine.connect() as conn:
        assert conn.execute(
            sa.select(submission.c.survey_round).order_by(submission.c.interview_date)
        ).scalars().all() == [1, 2]
        assert conn.execute(
            sa.select(returnee.c.sex, returnee.c.age_at_return, returnee.c.child)
        ).one() == ("male", 16, True)


def test_duplicates_and_edits_in_later_blocks_of_a_first_upload_are_found(
    tmp_path, questionnaire, monkeypatch
):
    import reintegration.ingest as ingest_module
    from reintegration.store.engine import open_store

    monkeypatch.setattr(ingest_module, "STREAM_ABOVE_BYTES", 0)
    monkeypatch.setattr(ingest_module, "STREAM_BLOCK_BYTES", 4 << 10)
    rows = [canonical_row(questionnaire, k) for k in range(1, 41)]
    rows += [
        canonical_row(questionnaire, 1),
        canonical_row(questionnaire, 2, currently_working="no"),
    ]
    path = write_csv(tmp_path / "b.csv", rows)
    store = open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
    report = ingest_file(
        path,
        store,
        scorer=ReintegrationIndex().fit(),
        questionnaire=questionnaire,
        secret=SECRET,
        uploader="t",
    )
    assert (report.received, report.accepted, report.duplicate, report.updated) == (42, 41, 1, 1)
    with store.connect() as conn:
        versions = conn.execute(
            sa.select(submission.c.version, submission.c.current)
            .where(submission.c.submission_id == "sub-0002")
            .order_by(submission.c.version)
        ).all()
    assert versions == [(1, False), (2, True)]
    store.dispose()
