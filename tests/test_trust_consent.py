"""Consent (DESIGN.md, "Canonical batch format" -> Consent): a row is stored only when its
consent is recorded as yes; a file without a consent column needs its uploader's declaration
that consent was recorded outside the form; ``score`` needs no consent column but applies the
same row rule when one is present. Ingest and the CLI run on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from reintegration.batch_views import batch_rejected, get_batch
from reintegration.cli import app
from reintegration.errors import ConsentColumnError, MissingColumnsError
from reintegration.fixable import fixable_csv
from reintegration.store.schema import audit, batch, rejected_row, returnee, score, submission
from tests.conftest import canonical_row, write_csv

REFUSED = "consent was not recorded as yes; nothing of this row is stored"
NO_COLUMN = (
    "this file has no consent column: add it, or declare that consent was recorded outside "
    "the form (--consent-recorded-elsewhere)"
)
LABEL = "Does the returnee consent to this interview?"  # the shipped form's question


def count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(table).where(*where)
        ).scalar_one()


def store_counts(engine) -> dict[str, int]:
    return {
        t.name: count(engine, t) for t in (submission, score, returnee, rejected_row, batch, audit)
    }


def audit_rows(engine, action):
    with engine.connect() as conn:
        return conn.execute(
            sa.select(audit.c.batch_id, audit.c.detail).where(audit.c.action == action)
        ).all()


def without_consent(questionnaire, *numbers, **overrides):
    rows = [canonical_row(questionnaire, n, **overrides) for n in numbers]
    for row in rows:
        del row["consent"]
    return rows


# -- the row rule ----------------------------------------------------------------------------


def test_only_a_recorded_yes_lets_a_row_in(tmp_path, questionnaire, engine, ingest):
    rows = [
        canonical_row(questionnaire, 1, consent=""),
        canonical_row(questionnaire, 2, consent="no"),
        canonical_row(questionnaire, 3, consent="maybe"),
        canonical_row(questionnaire, 4, consent=" YES "),
        canonical_row(questionnaire, 5, consent="Oui"),  # a label export, in French
        canonical_row(questionnaire, 6, consent="yes"),
    ]
    report = ingest(write_csv(tmp_path / "b.csv", rows))

    assert (report.received, report.accepted, report.rejected) == (6, 3, 3)
    assert [(e.row, e.column, e.value, e.message) for e in report.errors] == [
        (2, "consent", "", REFUSED),
        (3, "consent", "no", REFUSED),
        (4, "consent", "maybe", REFUSED),
    ]
    assert [str(e) for e in report.errors][0] == f"row 2, column consent: {REFUSED}"
    with engine.connect() as conn:
        stored = conn.execute(sa.select(submission.c.submission_id)).scalars().all()
    assert sorted(stored) == ["sub-0004", "sub-0005", "sub-0006"]
    assert count(engine, returnee) == 3  # no returnee for the rows without consent
    assert count(engine, rejected_row) == 0  # nothing of them kept for a fixable file


def test_a_row_without_consent_is_reported_by_its_consent_cell_alone(
    tmp_path, questionnaire, engine, ingest
):
    rows = [
        canonical_row(questionnaire, 1, consent="", sex="robot", admin1="=HYPERLINK(1)"),
        canonical_row(questionnaire, 2, sex="robot"),
    ]
    report = ingest(write_csv(tmp_path / "b.csv", rows))

    assert [(e.row, e.column, e.message) for e in report.errors] == [
        (2, "consent", REFUSED),
        (
            3,
            "sex",
            "'robot' is not a valid sex; use one of female, male, other, unknown (or its label)",
        ),
    ]
    stored = get_batch(engine, report.batch_id)["report"]
    assert [(e["row"], e["column"]) for e in stored["errors"]] == [(2, "consent"), (3, "sex")]
    # Only the consented row is kept to be fixed.
    assert [r.row for r in batch_rejected(engine, report.batch_id)] == [3]


def test_a_label_export_of_the_consent_question_is_read(tmp_path, questionnaire, engine, ingest):
    rows = [canonical_row(questionnaire, 1), canonical_row(questionnaire, 2)]
    rows[0]["consent"], rows[1]["consent"] = "Yes", "Non"
    rows = [{(LABEL if k == "consent" else k): v for k, v in row.items()} for row in rows]

    report = ingest(write_csv(tmp_path / "labels.csv", rows))

    assert (report.accepted, report.rejected) == (1, 1)
    assert [(e.row, e.column, e.message) for e in report.errors] == [(3, LABEL, REFUSED)]
    assert count(engine, rejected_row) == 0


# -- a file without a consent column -----------------------------------------------------------


def test_a_file_without_a_consent_column_is_refused_and_stores_nothing(
    tmp_path, questionnaire, engine, ingest
):
    before = store_counts(engine)
    path = write_csv(tmp_path / "b.csv", without_consent(questionnaire, 1, 2))

    with pytest.raises(ConsentColumnError) as raised:
        ingest(path)

    assert str(raised.value) == NO_COLUMN
    assert isinstance(raised.value, MissingColumnsError)  # answered like a missing column
    after = store_counts(engine)
    for table in ("submission", "score", "returnee", "rejected_row"):
        assert after[table] == before[table] == 0
    with engine.connect() as conn:
        (failed,) = conn.execute(sa.select(batch.c.status, batch.c.reason)).all()
    assert failed == ("failed", NO_COLUMN)
    assert [d["reason"] for _, d in audit_rows(engine, "upload_failed")] == [NO_COLUMN]
    assert audit_rows(engine, "upload") == []


def test_the_refusal_names_how_this_uploader_declares(tmp_path, questionnaire, ingest):
    path = write_csv(tmp_path / "b.csv", without_consent(questionnaire, 1))

    with pytest.raises(ConsentColumnError, match=r"\(tick the box\)$"):
        ingest(path, declare_with="tick the box")


def test_a_declared_file_is_stored_and_the_declaration_audited(
    tmp_path, questionnaire, engine, ingest
):
    declared = ingest(
        write_csv(tmp_path / "a.csv", without_consent(questionnaire, 1, 2)),
        consent_recorded_elsewhere=True,
    )
    plain = ingest(write_csv(tmp_path / "b.csv", [canonical_row(questionnaire, 3)]))

    assert (declared.accepted, declared.rejected) == (2, 0)
    assert count(engine, submission) == 3
    details = dict(audit_rows(engine, "upload"))
    assert details[declared.batch_id]["consent_recorded_elsewhere"] is True
    assert "consent_recorded_elsewhere" not in details[plain.batch_id]
    with engine.connect() as conn:
        reports = dict(conn.execute(sa.select(batch.c.id, batch.c.report)).all())
    assert reports[declared.batch_id]["consent_recorded_elsewhere"] is True
    assert "consent_recorded_elsewhere" not in reports[plain.batch_id]


def test_a_declaration_does_not_excuse_rows_of_a_consent_column(
    tmp_path, questionnaire, engine, ingest
):
    rows = [canonical_row(questionnaire, 1, consent=""), canonical_row(questionnaire, 2)]

    report = ingest(write_csv(tmp_path / "b.csv", rows), consent_recorded_elsewhere=True)

    assert (report.accepted, report.rejected) == (1, 1)
    assert report.errors[0].message == REFUSED
    assert count(engine, rejected_row) == 0


# -- the fixable file ----------------------------------------------------------------------------


def test_the_fixable_file_carries_consent_and_its_reupload_passes(
    tmp_path, questionnaire, engine, ingest
):
    rows = [
        canonical_row(questionnaire, 1, consent=" YES ", sex="robot"),
        canonical_row(questionnaire, 2, consent="", sex="robot"),
        canonical_row(questionnaire, 3),
    ]
    first = ingest(write_csv(tmp_path / "b.csv", rows))
    fixable = fixable_csv(batch_rejected(engine, first.batch_id))
    kept = list(csv.DictReader(io.StringIO(fixable)))

    assert [r["submission_id"] for r in kept] == ["sub-0001"]  # never the row without consent
    assert kept[0]["consent"] == " YES "
    for row in kept:
        row["sex"] = "female"
        del row["error"]
    again = ingest(write_csv(tmp_path / "fixed.csv", kept))

    assert (again.accepted, again.rejected) == (1, 0)
    assert count(engine, submission) == 2


def test_the_fixable_file_of_a_declared_batch_needs_the_declaration_again(
    tmp_path, questionnaire, engine, ingest
):
    first = ingest(
        write_csv(tmp_path / "b.csv", without_consent(questionnaire, 1, sex="robot")),
        consent_recorded_elsewhere=True,
    )
    kept = list(csv.DictReader(io.StringIO(fixable_csv(batch_rejected(engine, first.batch_id)))))
    assert "consent" not in kept[0]  # nothing is made up: the form never asked
    for row in kept:
        row["sex"] = "female"
        del row["error"]
    path = write_csv(tmp_path / "fixed.csv", kept)

    with pytest.raises(ConsentColumnError):
        ingest(path)
    assert ingest(path, consent_recorded_elsewhere=True).accepted == 1


# -- the command line ----------------------------------------------------------------------------


@pytest.fixture
def cli_store(engine, home, monkeypatch):
    """The CLI's settings pointed at the test's store (SQLite or PostgreSQL)."""
    from reintegration.settings import get_settings

    monkeypatch.setenv("REINTEGRATION_DATABASE_URL", engine.url.render_as_string(False))
    get_settings.cache_clear()
    return engine


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_ingest_refuses_a_file_without_a_consent_column(tmp_path, questionnaire, cli_store):
    path = write_csv(tmp_path / "b.csv", without_consent(questionnaire, 1, 2))

    result = run("ingest", str(path))

    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {NO_COLUMN}."
    assert result.stdout == ""
    as_json = run("ingest", str(path), "--json")
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout) == {"error": NO_COLUMN}
    for table in (submission, score, returnee, rejected_row):
        assert count(cli_store, table) == 0
    assert count(cli_store, batch, batch.c.status == "failed") == 2
    assert count(cli_store, batch, batch.c.status != "failed") == 0


def test_ingest_with_the_declaration_stores_the_file_and_audits_it(
    tmp_path, questionnaire, cli_store
):
    path = write_csv(tmp_path / "b.csv", without_consent(questionnaire, 1, 2))

    result = run(
        "ingest", str(path), "--consent-recorded-elsewhere", "--json", "--uploader", "amina"
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["accepted"], report["rejected"]) == (2, 0)
    assert count(cli_store, submission) == 2
    ((batch_id, detail),) = audit_rows(cli_store, "upload")
    assert batch_id == report["batch_id"] and detail["consent_recorded_elsewhere"] is True


def test_ingest_rejects_rows_without_yes_row_by_row(tmp_path, questionnaire, cli_store):
    rows = [canonical_row(questionnaire, 1, consent="no"), canonical_row(questionnaire, 2)]

    result = run("ingest", str(write_csv(tmp_path / "b.csv", rows)), "--json")

    assert result.exit_code == 1
    assert json.loads(result.stdout)["errors"] == [
        {"row": 2, "column": "consent", "value": "no", "message": REFUSED}
    ]
    assert count(cli_store, submission) == 1 and count(cli_store, rejected_row) == 0


# -- score ---------------------------------------------------------------------------------------


def read_out(path):
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_score_needs_no_consent_column(tmp_path, questionnaire, home):
    path = write_csv(tmp_path / "b.csv", without_consent(questionnaire, 1, 2))
    out = tmp_path / "out.csv"

    result = run("score", str(path), "--out", str(out))

    assert result.exit_code == 0, result.output
    assert [r["submission_id"] for r in read_out(out)] == ["sub-0001", "sub-0002"]


def test_score_applies_the_row_rule_when_consent_is_present(tmp_path, questionnaire, home):
    rows = [
        canonical_row(questionnaire, 1, consent=""),
        canonical_row(questionnaire, 2, consent="no"),
        canonical_row(questionnaire, 3, consent="maybe"),
        canonical_row(questionnaire, 4, consent=" YES "),
    ]
    out = tmp_path / "out.csv"

    result = run("score", str(write_csv(tmp_path / "b.csv", rows)), "--out", str(out))

    assert result.exit_code == 1
    assert [r["submission_id"] for r in read_out(out)] == ["sub-0004"]
    for row in (2, 3, 4):
        assert f"row {row}, column consent: {REFUSED}" in result.stderr
    assert "row 5" not in result.stderr


# -- the synthetic formats and the demo ----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "jsonl", "kobo", "kobo-xlsx", "odk"])
def test_every_synthetic_format_carries_consent_and_ingests_without_a_declaration(
    tmp_path, questionnaire, engine, ingest, fmt
):
    from reintegration.synth import generate_panel, write_panel

    frame, _ = generate_panel(20, 2, seed=3, questionnaire=questionnaire)
    path = tmp_path / f"panel.{fmt}"
    write_panel(frame, path, fmt, questionnaire=questionnaire)

    report = ingest(path)

    assert report.received == len(frame) and report.accepted == len(frame)
    assert not any(e.column == "consent" for e in report.errors)
