"""Hostile files are refused with one sentence before they cost memory; odd ones are read."""

from __future__ import annotations

import inspect
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from reintegration import reading
from reintegration.errors import UnreadableFileError
from reintegration.reading import BatchReader
from tests.conftest import canonical_row, write_csv


def refusal(path: Path, questionnaire, **kwargs) -> str:
    """The sentence a user sees when the file is refused, reading it to the end."""
    with pytest.raises(UnreadableFileError) as caught:
        list(BatchReader(path, questionnaire, **kwargs).chunks())
    return str(caught.value)


def texts(reader: BatchReader, column: str) -> list[str]:
    return [v for c in reader.chunks() for v in c.columns[column].cast("string").to_pylist()]


def workbook(path: Path, *sheets: tuple[str, list[list[object]]]) -> Path:
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def small_workbook(path: Path, questionnaire) -> Path:
    row = canonical_row(questionnaire, 1)
    return workbook(path, ("batch", [list(row), list(row.values())]))


def repetitive_member(archive: zipfile.ZipFile, name: str, megabytes: int) -> None:
    """A member that deflates about 1,000 to one, written without holding it in memory."""
    with archive.open(name, "w") as member:
        block = b"<row/>" * (1 << 17)
        for _ in range(megabytes * 4 // 3):
            member.write(block)


# -- refused before anything is parsed ---------------------------------------------------------


def test_a_workbook_zip_bomb_is_refused_before_it_is_opened(tmp_path, questionnaire, monkeypatch):
    path = tmp_path / "b.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        repetitive_member(archive, "xl/worksheets/sheet1.xml", 48)
    with zipfile.ZipFile(path) as archive:
        part = archive.getinfo("xl/worksheets/sheet1.xml")
    monkeypatch.setattr(reading, "xlsx_rows", lambda *a: pytest.fail("the workbook was opened"))
    assert refusal(path, questionnaire) == (
        "b.xlsx looks like a zip bomb: its part xl/worksheets/sheet1.xml would unpack "
        f"{part.file_size / part.compress_size:.0f} times larger than it is stored "
        "(at most 100), so it was not opened"
    )


def test_a_workbook_that_would_unpack_too_large_is_refused(tmp_path, questionnaire):
    path = small_workbook(tmp_path / "b.xlsx", questionnaire)
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(m.file_size for m in archive.infolist())
    assert refusal(path, questionnaire, max_unzipped_bytes=2048) == (
        f"b.xlsx would unpack to {unpacked / 1024:.0f} KB, more than the 2 KB allowed; "
        "export the data as CSV instead"
    )


def test_a_workbook_larger_than_the_limit_is_refused_before_it_is_opened(
    tmp_path, questionnaire, monkeypatch
):
    path = small_workbook(tmp_path / "b.xlsx", questionnaire)
    monkeypatch.setattr(reading, "xlsx_rows", lambda *a: pytest.fail("the workbook was opened"))
    assert refusal(path, questionnaire, max_xlsx_bytes=1024) == (
        f"b.xlsx is {path.stat().st_size / 1024:.0f} KB, more than the 1 KB an Excel workbook "
        "may have; export the data as CSV instead"
    )


def test_the_workbook_limit_is_200_mb_by_default():
    default = inspect.signature(BatchReader).parameters["max_xlsx_bytes"].default
    assert default == 200 * 1024 * 1024


def test_a_csv_of_one_50_mb_line_is_refused_as_too_long(tmp_path, questionnaire):
    path = tmp_path / "b.csv"
    path.write_bytes(b"submission_id," + b"x" * (50 << 20))
    assert refusal(path, questionnaire) == (
        "b.csv has a line too long to be a batch row: line 1 is longer than 1 MB"
    )


def test_a_50_mb_data_line_is_refused_as_too_long(tmp_path, questionnaire):
    path = tmp_path / "b.csv"
    path.write_bytes(b"submission_id,admin1\na," + b"x" * (50 << 20) + b"\nb,Dakar\n")
    assert refusal(path, questionnaire) == "b.csv has a line too long to be a batch row"


def test_a_workbook_without_a_data_sheet_is_refused(tmp_path, questionnaire):
    path = workbook(
        tmp_path / "b.xlsx",
        ("Read me", [["How to fill this workbook"], ["Ask your supervisor"]]),
        ("Summary", [["region", "count"], ["Dakar", 4]]),
    )
    assert refusal(path, questionnaire) == (
        "b.xlsx has no sheet whose first row names a column of the batch format "
        "(submission_id, the items, ...)"
    )


def test_a_zip_that_is_neither_a_workbook_nor_an_odk_export_is_refused(tmp_path, questionnaire):
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "round 3 interviews")
        archive.writestr("photos/1.jpg", b"\xff\xd8\xff")
    assert refusal(path, questionnaire) == (
        "b.zip is a zip file but not an Excel workbook or an ODK Central export: "
        "it holds no CSV file"
    )


def test_a_zip_export_whose_table_unpacks_like_a_bomb_is_refused(tmp_path, questionnaire):
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        repetitive_member(archive, "rss_reintegration.csv", 48)
    with zipfile.ZipFile(path) as archive:
        table = archive.getinfo("rss_reintegration.csv")
    assert refusal(path, questionnaire) == (
        "b.zip looks like a zip bomb: its part rss_reintegration.csv would unpack "
        f"{table.file_size / table.compress_size:.0f} times larger than it is stored "
        "(at most 100), so it was not opened"
    )


# -- odd but readable --------------------------------------------------------------------------


def test_a_csv_with_a_header_only_has_no_rows(tmp_path, questionnaire):
    path = tmp_path / "b.csv"
    path.write_text("submission_id,sex,econ_satisfaction\n")
    reader = BatchReader(path, questionnaire)
    assert sum(c.num_rows for c in reader.chunks()) == 0


def test_a_workbook_with_a_header_only_has_no_rows(tmp_path, questionnaire):
    path = workbook(tmp_path / "b.xlsx", ("batch", [["submission_id", "sex"]]))
    reader = BatchReader(path, questionnaire)
    assert sum(c.num_rows for c in reader.chunks()) == 0


def test_csv_cells_starting_with_equals_are_read_as_text_unchanged(tmp_path, questionnaire):
    row = canonical_row(questionnaire, 1, admin1='=HYPERLINK("http://x.example","Dakar")')
    reader = BatchReader(write_csv(tmp_path / "b.csv", [row]), questionnaire)
    assert texts(reader, "admin1") == ['=HYPERLINK("http://x.example","Dakar")']


def test_workbook_text_cells_starting_with_equals_are_read_unchanged(tmp_path, questionnaire):
    row = canonical_row(questionnaire, 1, admin1="=1+1")
    book = Workbook()
    book.active.append(list(row))
    book.active.append(list(row.values()))
    cell = book.active.cell(row=2, column=list(row).index("admin1") + 1)
    cell.data_type = "s"  # a text cell, as an export writes it, not a formula
    book.save(tmp_path / "b.xlsx")
    assert texts(BatchReader(tmp_path / "b.xlsx", questionnaire), "admin1") == ["=1+1"]
