"""Hostile files through `reintegration ingest`: exit 2, one sentence, survey data unchanged."""

from __future__ import annotations

import json
import zipfile

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from reintegration.cli import app
from reintegration.settings import get_settings
from reintegration.store.engine import create_store_engine, for_reading
from reintegration.store.schema import batch, returnee, score, submission
from tests.conftest import canonical_row, write_csv
from tests.test_reading_hostile import repetitive_member, workbook


def survey_counts() -> tuple[int, ...]:
    engine = for_reading(create_store_engine(get_settings().database_url))
    try:
        with engine.connect() as conn:
            return tuple(
                conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in (submission, score, returnee)
            )
    finally:
        engine.dispose()


def empty(path):
    path.write_bytes(b"")


def garbage(path):
    path.write_bytes(bytes(range(256)) * 400)


def long_line(path):
    path.write_bytes(b"submission_id," + b"x" * (50 << 20))


def bomb(path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        repetitive_member(archive, "xl/worksheets/sheet1.xml", 48)


def no_data_sheet(path):
    workbook(
        path,
        ("Read me", [["How to fill this workbook"]]),
        ("Summary", [["region", "count"], ["Dakar", 4]]),
    )


@pytest.mark.parametrize(
    ("make", "name", "start"),
    [
        (empty, "b.csv", "b.csv is empty"),
        (garbage, "b.csv", "b.csv is not a text file, a CSV or an Excel workbook"),
        (long_line, "b.csv", "b.csv has a line too long to be a batch row"),
        (bomb, "b.xlsx", "b.xlsx looks like a zip bomb"),
        (
            no_data_sheet,
            "b.xlsx",
            "b.xlsx has no sheet whose first row names a column of the batch format",
        ),
    ],
)
def test_a_hostile_file_is_refused_and_leaves_the_survey_data_unchanged(
    tmp_path, questionnaire, home, make, name, start
):
    good = write_csv(tmp_path / "good.csv", [canonical_row(questionnaire, 1)])
    assert CliRunner().invoke(app, ["ingest", str(good)]).exit_code == 0
    before = survey_counts()
    path = tmp_path / name
    make(path)
    result = CliRunner().invoke(app, ["ingest", str(path), "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error.startswith(start)
    assert len(result.stderr.strip().splitlines()) == 1
    assert survey_counts() == before
    engine = for_reading(create_store_engine(get_settings().database_url))
    try:
        with engine.connect() as conn:
            failed = (
                conn.execute(sa.select(batch.c.reason).where(batch.c.status == "failed"))
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    assert failed == [error]


def test_latin1_and_formula_cells_are_read_with_a_warning_and_stored_as_text(
    tmp_path, questionnaire, home
):
    path = write_csv(
        tmp_path / "b.csv", [canonical_row(questionnaire, 1, admin1="=Thiès")], encoding="cp1252"
    )
    result = CliRunner().invoke(app, ["ingest", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["warnings"][0]["message"].startswith("the file is not UTF-8")
    engine = for_reading(create_store_engine(get_settings().database_url))
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.select(submission.c.admin1)).scalar_one() == "=Thiès"
    finally:
        engine.dispose()
