"""`reintegration ingest`, `db upgrade` and `returnee erase` as DESIGN.md specifies them."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from reintegration.cli import app
from reintegration.settings import get_settings
from reintegration.store.engine import create_store_engine
from reintegration.store.schema import submission, tombstone
from tests.conftest import canonical_row, write_csv

REPORT_KEYS = {
    "batch_id",
    "status",
    "received",
    "accepted",
    "rejected",
    "duplicate",
    "updated",
    "errors",
    "warnings",
    "ignored_columns",
    "missing_columns",
    "dropped_identifier_columns",
}


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_ingest_json_report_has_the_design_keys(tmp_path, questionnaire, home):
    path = write_csv(
        tmp_path / "b.csv",
        [canonical_row(questionnaire, 1), canonical_row(questionnaire, 2, sex="x")],
    )
    result = run("ingest", str(path), "--json", "--uploader", "amina")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert set(report) == REPORT_KEYS
    assert (report["received"], report["accepted"], report["rejected"]) == (2, 1, 1)
    assert report["errors"] == [
        {
            "row": 3,
            "column": "sex",
            "value": "x",
            "message": "'x' is not a valid sex; use one of female, male, other, unknown (or its label)",
        }
    ]
    assert (home / "reintegration.db").exists() and (home / "secret.key").exists()


def test_ingest_of_a_clean_file_is_exit_status_0_and_prints_a_table(tmp_path, questionnaire, home):
    path = write_csv(tmp_path / "b.csv", [canonical_row(questionnaire, 1)])
    result = run("ingest", str(path))
    assert result.exit_code == 0, result.output
    assert "received" in result.stdout and "accepted" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "b.csv is empty"),
        (
            b"submission_id,sex\nx,female\n",
            "the file has no columns returnee_id, interview_date, return_date, age_at_return, return_type, country, which ingest needs",
        ),
    ],
)
def test_nothing_done_is_exit_status_2_with_json_error(tmp_path, home, content, message):
    path = tmp_path / "b.csv"
    path.write_bytes(content)
    result = run("ingest", str(path), "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"error": message}
    assert result.stderr.strip() == f"error: {message}."


def test_db_upgrade_creates_the_store(home):
    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    engine = create_store_engine(get_settings().database_url)
    try:
        assert "submission" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_returnee_erase_removes_and_tombstones(tmp_path, questionnaire, home):
    path = write_csv(tmp_path / "b.csv", [canonical_row(questionnaire, 1, returnee_id="SEN-1")])
    assert run("ingest", str(path)).exit_code == 0
    result = run("returnee", "erase", "sen-1")
    assert result.exit_code == 0, result.output
    assert "Erased 1 interviews, 1 scores and 0 rejected rows" in result.stderr
    assert "SEN-1" not in result.output
    engine = create_store_engine(get_settings().database_url)
    try:
        with engine.connect() as conn:
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(submission)).scalar_one() == 0
            )
            assert conn.execute(sa.select(sa.func.count()).select_from(tombstone)).scalar_one() == 1
    finally:
        engine.dispose()
