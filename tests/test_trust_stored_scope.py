"""Scopes hold on what is stored, and reports name only what the uploader sent (issue 11,
findings 3, 4 and the erasure half of 6).

A returnee of Guinea is stored by an admin; uploaders limited to Senegal, or to both
countries, then try to reach it. Every refusal is checked for its sentence and for a store
left exactly as it was.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from reintegration.batch_views import batch_rejected
from reintegration.fixable import fixable_csv
from reintegration.pseudonym import returnee_key
from reintegration.roles import Role
from reintegration.store.batches import erase_returnee
from reintegration.store.schema import audit, rejected_row, returnee, risk, score, submission
from reintegration.users import User
from tests.conftest import SECRET, canonical_row, write_csv

CASE = "CASE-GIN"
GIN_DATES = ("2024-02-15", "2024-06-01", "2024-10-01")
CASE_OUTSIDE = "this case number cannot be used from your countries"
SUBMISSION_OUTSIDE = "this submission id cannot be used from your countries"
MOVE = "this returnee is stored under another country; only a user for every country can move them"
SURVEY = (submission, score, returnee, risk)

ENUMERATOR_SEN = User("enumerator-sen", Role.ENUMERATOR, frozenset({"SEN"}))
ENUMERATOR_BOTH = User("enumerator-both", Role.ENUMERATOR, frozenset({"SEN", "GIN"}))
ANALYST_GIN = User("analyst-gin", Role.ANALYST, frozenset({"GIN"}))
ENUMERATOR = User("enumerator", Role.ENUMERATOR, None)
ANALYST = User("analyst", Role.ANALYST, None)
ADMIN = User("admin", Role.ADMIN, None)


def gin_row(questionnaire, k: int, **overrides: str) -> dict[str, str]:
    """Round ``k`` (0-2) of the Guinean returnee."""
    values = {
        "submission_id": f"gin-{k}",
        "returnee_id": CASE,
        "interview_date": GIN_DATES[k],
        "return_date": "2024-01-10",
        "sex": "male",
        "return_type": "voluntary",
        "country": "GIN",
        "admin1": "Conakry",
    }
    return canonical_row(questionnaire, 100 + k, **{**values, **overrides})


@pytest.fixture
def stored(tmp_path, questionnaire, engine, ingest):
    """Three interviews of a Guinean returnee, stored by an admin, with a risk row."""
    path = write_csv(tmp_path / "gin.csv", [gin_row(questionnaire, k) for k in range(3)])
    report = ingest(path, ADMIN)
    assert (report.accepted, report.rejected) == (3, 0)
    with engine.begin() as conn:
        first = conn.execute(
            sa.select(submission.c.id).where(submission.c.submission_id == "gin-0")
        ).scalar_one()
        conn.execute(
            risk.insert().values(
                submission_pk=first,
                model="reintegration-risk",
                model_version=1,
                returnee_key=returnee_key(CASE, SECRET),
                probability=0.4,
                band="medium",
                reasons=[],
                created_at=datetime.now(UTC),
            )
        )
    return engine


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every survey table, every column (ids and timestamps included)."""
    with engine.connect() as conn:
        return {
            t.name: sorted(tuple(str(v) for v in row) for row in conn.execute(sa.select(t)).all())
            for t in SURVEY
        }


def count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(table).where(*where)
        ).scalar_one()


def interviews(engine) -> list[tuple]:
    """Each stored version: identity, version, current, country, round (no ids, no times)."""
    c = submission.c
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.select(
                    c.submission_id, c.version, c.current, c.country, c.survey_round
                ).order_by(c.submission_id, c.version)
            ).all()
        ]


def errors_of(report) -> list[tuple[int, str, str, str]]:
    return [(e.row, e.column, e.value, e.message) for e in report.errors]


def scope_audit(engine) -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(audit.c.actor, audit.c.batch_id, audit.c.target, audit.c.detail).where(
                audit.c.action == "upload_scope_refused"
            )
        ).all()


def assert_names_nothing_stored(report) -> None:
    text = json.dumps(report.to_json())
    for stored_value in ("GIN", "Conakry", "voluntary", *GIN_DATES, "2024-01-10"):
        assert stored_value not in text


# -- finding 3: a scoped uploader reaches nothing stored under another country ------------------


def test_a_stored_returnee_of_another_country_is_refused_to_a_scoped_upload(
    tmp_path, questionnaire, stored, ingest
):
    before = snapshot(stored)
    row = canonical_row(
        questionnaire,
        1,
        returnee_id=CASE,
        country="SEN",
        sex="female",
        interview_date="2025-01-05",
        return_date="2024-01-10",
    )
    report = ingest(write_csv(tmp_path / "sen.csv", [row]), ENUMERATOR_SEN)

    assert (report.accepted, report.rejected, report.duplicate) == (0, 1, 0)
    assert errors_of(report) == [(2, "returnee_id", "", CASE_OUTSIDE)]
    assert report.warnings == []
    assert_names_nothing_stored(report)
    assert snapshot(stored) == before  # country, sex, interviews, scores and risk rows as they were
    with stored.connect() as conn:
        person = conn.execute(sa.select(returnee.c.country, returnee.c.sex)).one()
    assert tuple(person) == ("GIN", "male")


def test_a_stored_interview_of_another_country_cannot_be_versioned_from_a_scoped_upload(
    tmp_path, questionnaire, stored, ingest
):
    before = snapshot(stored)
    edited = dict(gin_row(questionnaire, 1, country="SEN"), currently_working="no")
    other_person = dict(edited, returnee_id="CASE-SEN")
    report = ingest(write_csv(tmp_path / "sen.csv", [edited, other_person]), ENUMERATOR_SEN)

    assert (report.accepted, report.rejected, report.updated) == (0, 2, 0)
    assert errors_of(report) == [
        (2, "returnee_id", "", CASE_OUTSIDE),
        (3, "submission_id", "gin-1", SUBMISSION_OUTSIDE),
    ]
    assert_names_nothing_stored(report)
    assert snapshot(stored) == before
    assert count(stored, submission, submission.c.submission_id == "gin-1") == 1


def test_a_copy_of_an_old_version_is_refused_before_the_duplicate_check(
    tmp_path, questionnaire, engine, ingest
):
    # Stored in SEN, then moved to GIN by an admin: the SEN version is still stored, and a
    # Senegal-limited uploader sending it must not learn that it is (a duplicate would say so).
    sen = canonical_row(questionnaire, 1, submission_id="moved", returnee_id="CASE-M")
    ingest(write_csv(tmp_path / "v1.csv", [sen]), ADMIN)
    moved = ingest(write_csv(tmp_path / "v2.csv", [dict(sen, country="GIN")]), ADMIN)
    assert moved.updated == 1
    before = snapshot(engine)

    report = ingest(
        write_csv(tmp_path / "again.csv", [dict(sen, returnee_id="CASE-X")]), ENUMERATOR_SEN
    )

    assert (report.duplicate, report.rejected) == (0, 1)
    assert errors_of(report) == [(2, "submission_id", "moved", SUBMISSION_OUTSIDE)]
    assert snapshot(engine) == before


def test_a_scoped_upload_may_not_move_a_returnee_even_between_its_own_countries(
    tmp_path, questionnaire, stored, ingest
):
    before = snapshot(stored)
    new_round = canonical_row(
        questionnaire, 1, returnee_id=CASE, interview_date="2025-01-05", return_date="2024-01-10"
    )
    edited = dict(gin_row(questionnaire, 2, country="SEN"), currently_working="no")
    report = ingest(write_csv(tmp_path / "sen.csv", [new_round, edited]), ENUMERATOR_BOTH)

    assert (report.accepted, report.rejected) == (0, 2)
    assert errors_of(report) == [(2, "country", "SEN", MOVE), (3, "country", "SEN", MOVE)]
    assert_names_nothing_stored(report)
    assert snapshot(stored) == before


def test_an_uploader_for_both_countries_may_add_to_and_version_what_both_cover(
    tmp_path, questionnaire, stored, ingest
):
    # Another round of the Guinean returnee, and an edit of one of its interviews, in Guinea.
    new_round = gin_row(questionnaire, 0, submission_id="gin-3", interview_date="2025-01-05")
    edited = dict(gin_row(questionnaire, 1), currently_working="no")
    report = ingest(write_csv(tmp_path / "gin.csv", [new_round, edited]), ENUMERATOR_BOTH)

    assert (report.accepted, report.rejected, report.updated) == (2, 0, 1)
    assert count(stored, submission, submission.c.submission_id == "gin-1") == 2
    assert count(stored, submission, submission.c.current) == 4
    assert scope_audit(stored) == []


def test_a_new_version_needs_a_scope_covering_every_stored_version(
    tmp_path, questionnaire, engine, ingest
):
    # An interview stored in Guinea, then moved to Senegal by an admin: an edit of it needs
    # an uploader whose scope covers Guinea too.
    gin = canonical_row(
        questionnaire, 1, submission_id="moved", returnee_id="CASE-M", country="GIN"
    )
    ingest(write_csv(tmp_path / "v1.csv", [gin]), ADMIN)
    ingest(write_csv(tmp_path / "v2.csv", [dict(gin, country="SEN")]), ADMIN)
    edit = write_csv(tmp_path / "v3.csv", [dict(gin, country="SEN", currently_working="no")])
    before = snapshot(engine)

    refused = ingest(edit, ENUMERATOR_SEN)
    assert errors_of(refused) == [(2, "submission_id", "moved", SUBMISSION_OUTSIDE)]
    assert snapshot(engine) == before

    both = ingest(edit, ENUMERATOR_BOTH)
    assert (both.accepted, both.updated, both.rejected) == (1, 1, 0)
    assert count(engine, submission, submission.c.submission_id == "moved") == 3


def test_a_returnee_whose_interviews_span_countries_is_left_to_an_uploader_for_every_country(
    tmp_path, questionnaire, stored, ingest
):
    # An admin stored a Senegalese round: the returnee's interviews span both countries, and
    # a scoped upload could change which one is theirs; only an unscoped uploader may.
    sen_round = gin_row(
        questionnaire, 0, submission_id="sen-3", interview_date="2024-12-01", country="SEN"
    )
    ingest(write_csv(tmp_path / "admin.csv", [sen_round]), ADMIN)
    edited = dict(gin_row(questionnaire, 1, country="SEN"), currently_working="no")
    path = write_csv(tmp_path / "edit.csv", [edited])
    before = snapshot(stored)

    refused = ingest(path, ENUMERATOR_SEN)
    assert errors_of(refused) == [(2, "returnee_id", "", CASE_OUTSIDE)]
    both = ingest(path, ENUMERATOR_BOTH)
    assert errors_of(both) == [(2, "country", "SEN", MOVE)]
    assert snapshot(stored) == before

    unscoped = ingest(path, ADMIN)
    assert (unscoped.accepted, unscoped.updated) == (1, 1)


def test_an_unscoped_upload_still_versions_and_rehomes_with_a_warning(
    tmp_path, questionnaire, stored, ingest
):
    edited = dict(gin_row(questionnaire, 2, country="SEN", sex="female"), currently_working="no")
    report = ingest(write_csv(tmp_path / "admin.csv", [edited]), ADMIN)

    assert (report.accepted, report.rejected, report.updated) == (1, 0, 1)
    with stored.connect() as conn:
        person = conn.execute(sa.select(returnee.c.country, returnee.c.sex)).one()
        versions = conn.execute(
            sa.select(submission.c.version, submission.c.country, submission.c.current)
            .where(submission.c.submission_id == "gin-2")
            .order_by(submission.c.version)
        ).all()
    assert tuple(person) == ("SEN", "female")
    assert [tuple(v) for v in versions] == [(1, "GIN", False), (2, "SEN", True)]
    messages = {w.column: w.message for w in report.warnings}
    assert messages["country"] == (
        "this returnee's country differs between rounds (GIN on 2024-02-15, GIN on 2024-06-01, "
        "SEN on 2024-10-01); the latest interview's is kept"
    )
    assert messages["sex"].startswith("this returnee's sex differs between rounds (male on ")
    assert scope_audit(stored) == []


def test_refusals_for_the_scope_are_audited_once_per_batch_with_counts_only(
    tmp_path, questionnaire, stored, ingest
):
    rows = [
        canonical_row(questionnaire, 1, returnee_id=CASE, return_date="2024-01-10"),
        dict(gin_row(questionnaire, 1, country="SEN", returnee_id="CASE-SEN")),
        canonical_row(questionnaire, 3, returnee_id="CASE-NEW"),
    ]
    report = ingest(write_csv(tmp_path / "sen.csv", rows), ENUMERATOR_SEN)

    assert (report.accepted, report.rejected) == (1, 2)
    (entry,) = scope_audit(stored)
    assert entry.actor == "enumerator-sen" and entry.batch_id == report.batch_id
    assert entry.target is None
    assert entry.detail == {"rows": 2, "returnee_id": 1, "submission_id": 1, "country": 0}
    with stored.connect() as conn:
        trail = json.dumps([tuple(map(str, r)) for r in conn.execute(sa.select(audit)).all()])
    assert CASE not in trail and returnee_key(CASE, SECRET) not in trail


# -- finding 4: who may not read stored rows is told only what they sent -----------------------


def late_return_row(questionnaire):
    """A new round whose return date falls after the stored first round (2024-02-15)."""
    return gin_row(
        questionnaire,
        0,
        submission_id="gin-late",
        interview_date="2025-01-05",
        return_date="2024-03-01",
    )


@pytest.mark.parametrize("who", [ENUMERATOR, ANALYST_GIN], ids=["enumerator", "scoped-analyst"])
def test_the_cross_round_date_error_names_no_stored_date_to_who_cannot_read_it(
    tmp_path, questionnaire, stored, ingest, who
):
    before = snapshot(stored)
    report = ingest(write_csv(tmp_path / "late.csv", [late_return_row(questionnaire)]), who)

    assert errors_of(report) == [
        (
            2,
            "return_date",
            "2024-03-01",
            "return date 2024-03-01 is after an interview of this returnee in another round",
        )
    ]
    assert "2024-02-15" not in json.dumps(report.to_json())
    assert snapshot(stored) == before


def test_the_cross_round_date_error_names_the_stored_date_to_an_analyst_for_every_country(
    tmp_path, questionnaire, stored, ingest
):
    report = ingest(write_csv(tmp_path / "late.csv", [late_return_row(questionnaire)]), ANALYST)

    assert [e.message for e in report.errors] == [
        "return date 2024-03-01 is after this returnee's interview of 2024-02-15 in another round"
    ]


def disagreeing_round(questionnaire):
    return gin_row(
        questionnaire,
        0,
        submission_id="gin-3",
        interview_date="2025-01-05",
        sex="female",
        return_type="forced",
    )


@pytest.mark.parametrize("who", [ENUMERATOR, ANALYST_GIN], ids=["enumerator", "scoped-analyst"])
def test_rounds_disagreeing_are_warned_without_stored_values_to_who_cannot_read_them(
    tmp_path, questionnaire, stored, ingest, who
):
    report = ingest(write_csv(tmp_path / "round.csv", [disagreeing_round(questionnaire)]), who)

    assert report.accepted == 1
    assert [(w.row, w.column, w.message) for w in report.warnings] == [
        (2, "sex", "this returnee's sex differs between rounds; the latest interview's is kept"),
        (
            2,
            "return_type",
            "this returnee's return type differs between rounds; the latest interview's is kept",
        ),
    ]
    text = json.dumps(report.to_json())
    assert not any(value in text for value in (*GIN_DATES, "voluntary", "male on"))


def test_rounds_disagreeing_are_warned_with_each_rounds_values_to_an_unscoped_analyst(
    tmp_path, questionnaire, stored, ingest
):
    report = ingest(write_csv(tmp_path / "round.csv", [disagreeing_round(questionnaire)]), ANALYST)

    assert [(w.column, w.message) for w in report.warnings] == [
        (
            "sex",
            "this returnee's sex differs between rounds (male on 2024-02-15, male on 2024-06-01, "
            "male on 2024-10-01, female on 2025-01-05); the latest interview's is kept",
        ),
        (
            "return_type",
            "this returnee's return type differs between rounds (voluntary on 2024-02-15, "
            "voluntary on 2024-06-01, voluntary on 2024-10-01, forced on 2025-01-05); "
            "the latest interview's is kept",
        ),
    ]


# -- finding 6: rows refused because of an erasure keep nothing but their count -----------------


def test_rows_of_an_erased_returnee_store_nothing_but_their_count(
    tmp_path, questionnaire, engine, ingest
):
    rows = [
        canonical_row(questionnaire, 1, returnee_id="C-9"),
        canonical_row(questionnaire, 2, returnee_id="C-8"),
    ]
    ingest(write_csv(tmp_path / "b.csv", rows), ADMIN)
    erase_returnee(engine, returnee_key("C-9", SECRET), "admin")
    before = snapshot(engine)
    again = [
        dict(rows[0], currently_working="no"),  # would be an update
        canonical_row(questionnaire, 3, returnee_id="C-9", sex="robot"),  # invalid besides
        canonical_row(questionnaire, 4, returnee_id="C-7", sex="robot"),  # someone else's error
    ]
    report = ingest(write_csv(tmp_path / "again.csv", again), ENUMERATOR)

    erased = "this returnee's data was erased; an admin must lift the erasure before it is uploaded again"
    assert (report.accepted, report.rejected) == (0, 3)
    assert [(e.row, e.column, e.value, e.message) for e in report.errors if e.row < 4] == [
        (2, "returnee_id", "", erased),
        (3, "returnee_id", "", erased),
    ]
    assert "robot" not in json.dumps([e for e in report.to_json()["errors"] if e["row"] < 4])
    assert snapshot(engine) == before
    with engine.connect() as conn:
        kept = batch_rejected(engine, report.batch_id)
        assert conn.execute(
            sa.select(rejected_row.c.row).where(rejected_row.c.batch_id == report.batch_id)
        ).scalars().all() == [4]
    fixable = fixable_csv(kept)
    assert returnee_key("C-9", SECRET) not in fixable
    assert len(fixable.strip().splitlines()) == 2  # the header and the other returnee's row


def test_a_scoped_upload_in_blocks_is_refused_as_the_whole_file(
    tmp_path, questionnaire, engine, ingest, monkeypatch
):
    # A returnee's rows fall in several blocks: each block must judge them against what was
    # stored before the batch, as the whole file does.
    import reintegration.ingest as ingest_module
    from reintegration.store.engine import open_store

    def person(r: int, k: int, **overrides: str) -> dict[str, str]:
        values = {
            "returnee_id": f"P-{r:03d}",
            "country": "GIN" if r % 2 else "SEN",
            "interview_date": f"2024-0{k + 1}-15",
            "return_date": "2024-01-02",
        }
        return canonical_row(questionnaire, 1000 * k + r, **{**values, **overrides})

    stored_rows = [person(r, k) for k in range(2) for r in range(40)]
    later = [person(r, 2, country="SEN") for r in range(40)]
    edits = [dict(person(r, 0, country="SEN"), currently_working="no") for r in range(40)]
    path = write_csv(tmp_path / "sen.csv", later + edits)
    whole = open_store(f"sqlite:///{tmp_path / 'whole.db'}")
    for store in (engine, whole):
        ingest(write_csv(tmp_path / "stored.csv", stored_rows), ADMIN, store=store)
    expected = ingest(path, ENUMERATOR_SEN, store=whole)
    monkeypatch.setattr(ingest_module, "STREAM_ABOVE_BYTES", 0)
    monkeypatch.setattr(ingest_module, "STREAM_BLOCK_BYTES", 4 << 10)
    report = ingest(path, ENUMERATOR_SEN)

    # Senegal's returnees take their new round and their edits; Guinea's are refused.
    assert (report.accepted, report.updated, report.rejected) == (40, 20, 40)
    assert errors_of(report) == errors_of(expected)
    assert {e[3] for e in errors_of(report)} == {CASE_OUTSIDE}
    assert interviews(engine) == interviews(whole)
    (entry,) = scope_audit(engine)
    assert entry.detail["rows"] == 40
    whole.dispose()
