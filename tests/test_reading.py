"""Reading batch files: formats, delimiters, encodings, headers and spreadsheet row numbers."""

from __future__ import annotations

import pytest
from openpyxl import Workbook

import reintegration.row_sources as row_sources
from reintegration.errors import UnreadableFileError
from reintegration.reading import BatchReader, detect_format
from tests.conftest import canonical_row, write_csv, write_jsonl


def texts(reader: BatchReader, column: str) -> list[str]:
    return [
        v for chunk in reader.chunks() for v in chunk.columns[column].cast("string").to_pylist()
    ]


def rows(reader: BatchReader) -> list[int]:
    return [r for chunk in reader.chunks() for r in chunk.rows.to_pylist()]


@pytest.mark.parametrize(
    ("delimiter", "encoding"),
    [(",", "utf-8"), (";", "utf-8"), (";", "utf-8-sig"), (",", "utf-8-sig")],
)
def test_csv_with_comma_or_semicolon_with_or_without_bom(
    tmp_path, questionnaire, delimiter, encoding
):
    path = write_csv(
        tmp_path / "b.csv",
        [canonical_row(questionnaire, 1)],
        delimiter=delimiter,
        encoding=encoding,
    )
    reader = BatchReader(path, questionnaire)
    assert reader.layout.source["submission_id"] == "submission_id"
    assert texts(reader, "submission_id") == ["sub-0001"]
    assert reader.layout.notes == []


def test_latin1_text_is_decoded_with_a_warning(tmp_path, questionnaire):
    path = write_csv(
        tmp_path / "b.csv",
        [canonical_row(questionnaire, 1, admin1="Thiès", sex="Femme")],
        encoding="cp1252",
    )
    reader = BatchReader(path, questionnaire)
    assert texts(reader, "admin1") == ["Thiès"]
    assert [n.message for n in reader.layout.notes] == [
        "the file is not UTF-8; it was read as cp1252 (Windows Latin-1)"
    ]


def test_headers_match_any_case_and_ignore_group_prefixes(tmp_path, questionnaire):
    row = canonical_row(questionnaire, 1)
    row["Economic/Econ_Satisfaction"] = row.pop("econ_satisfaction")
    row["social-housing_access"] = row.pop("housing_access")
    row[" SEX "] = row.pop("sex")
    reader = BatchReader(write_csv(tmp_path / "b.csv", [row]), questionnaire)
    assert reader.layout.source["econ_satisfaction"] == "Economic/Econ_Satisfaction"
    assert reader.layout.source["housing_access"] == "social-housing_access"
    assert reader.layout.source["sex"] == " SEX "


def test_unknown_columns_are_reported_as_ignored_and_system_columns_apart(tmp_path, questionnaire):
    row = canonical_row(questionnaire, 1, household_size="5", _notes="x")
    reader = BatchReader(write_csv(tmp_path / "b.csv", [row]), questionnaire)
    assert reader.layout.ignored == ["household_size"]
    assert reader.layout.system_columns == ["_notes"]


def test_two_headers_for_one_column_are_refused(tmp_path, questionnaire):
    row = canonical_row(questionnaire, 1)
    row["economic/can_borrow"] = row["can_borrow"]
    with pytest.raises(
        UnreadableFileError,
        match="columns can_borrow and economic/can_borrow both mean can_borrow; keep one",
    ):
        BatchReader(write_csv(tmp_path / "b.csv", [row]), questionnaire)


def test_row_numbers_are_spreadsheet_rows_and_blank_lines_are_skipped(tmp_path, questionnaire):
    path = write_csv(tmp_path / "b.csv", [canonical_row(questionnaire, k) for k in (1, 2, 3)])
    lines = path.read_text().splitlines()
    empty_cells = "," * lines[0].count(",")
    path.write_text("\n".join([lines[0], lines[1], "", lines[2], empty_cells, lines[3]]) + "\n")
    reader = BatchReader(path, questionnaire)
    assert rows(reader) == [2, 4, 6]
    assert texts(reader, "submission_id") == ["sub-0001", "sub-0002", "sub-0003"]


def test_quoted_cells_may_hold_delimiters_and_newlines(tmp_path, questionnaire):
    path = write_csv(
        tmp_path / "b.csv",
        [
            canonical_row(questionnaire, 1, admin1="Dakar,\nPlateau"),
            canonical_row(questionnaire, 2),
        ],
    )
    reader = BatchReader(path, questionnaire)
    assert texts(reader, "admin1") == ["Dakar,\nPlateau", "Dakar"]
    assert rows(reader) == [2, 3]


def test_xlsx_cells_are_read_as_text_with_dates_and_whole_numbers(tmp_path, questionnaire):
    import datetime as dt

    row = canonical_row(questionnaire, 1)
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(row))
    values = list(row.values())
    values[list(row).index("interview_date")] = dt.datetime(2025, 6, 1)
    values[list(row).index("age_at_return")] = 29.0
    sheet.append(values)
    workbook.save(tmp_path / "b.xlsx")
    reader = BatchReader(tmp_path / "b.xlsx", questionnaire)
    assert reader.fmt == "xlsx"
    assert texts(reader, "interview_date") == ["2025-06-01"]
    assert texts(reader, "age_at_return") == ["29"]
    assert rows(reader) == [2]


def test_jsonl_rows_are_line_numbers(tmp_path, questionnaire):
    path = tmp_path / "b.jsonl"
    write_jsonl(
        path, [canonical_row(questionnaire, 1), canonical_row(questionnaire, 2, age_at_return=31)]
    )
    path.write_text(path.read_text().replace("\n", "\n\n", 1))
    reader = BatchReader(path, questionnaire)
    assert reader.fmt == "jsonl"
    assert rows(reader) == [1, 3]
    assert texts(reader, "age_at_return") == ["29", "31"]


def test_jsonl_line_that_is_not_an_object_makes_the_file_unreadable(tmp_path, questionnaire):
    path = tmp_path / "b.jsonl"
    path.write_text('{"submission_id": "a"}\n[1, 2]\n')
    with pytest.raises(
        UnreadableFileError, match=r"b.jsonl, line 2: not a JSON object \(1 such line\)"
    ):
        list(BatchReader(path, questionnaire).chunks())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "b.csv is empty"),
        (b"  \n\n", "b.csv is empty"),
        (b"\x00\x01\x02garbage\xff" * 50, "b.csv is not a text file, a CSV or an Excel workbook"),
        (b"PK\x03\x04not really a zip", "b.csv is a zip file but not an Excel workbook"),
    ],
)
def test_unreadable_files_are_refused_with_a_sentence(tmp_path, questionnaire, content, message):
    path = tmp_path / "b.csv"
    path.write_bytes(content)
    with pytest.raises(UnreadableFileError, match=message):
        BatchReader(path, questionnaire)


def test_a_row_with_too_many_cells_makes_the_csv_unreadable(tmp_path, questionnaire):
    path = tmp_path / "b.csv"
    path.write_text("submission_id,sex\na,female\nb,male,extra\n")
    with pytest.raises(
        UnreadableFileError,
        match="b.csv: row 3 has 3 cells where the header has 2; every row needs one cell",
    ):
        list(BatchReader(path, questionnaire).chunks())


def test_format_is_detected_from_content_not_name(tmp_path, questionnaire):
    path = tmp_path / "batch.txt"
    write_jsonl(path, [canonical_row(questionnaire, 1)])
    assert detect_format(path) == "jsonl"


def test_a_canonical_file_takes_its_identity_from_submission_id(tmp_path, questionnaire):
    path = write_csv(tmp_path / "b.csv", [canonical_row(questionnaire, 1)])
    reader = BatchReader(path, questionnaire)
    assert reader.layout.identity_columns == ["submission_id"]
    assert texts(reader, "submission_id") == ["sub-0001"]


def test_items_absent_from_the_file_are_listed_as_missing(tmp_path, questionnaire):
    row = canonical_row(questionnaire, 1)
    del row["can_borrow"], row["water_access"]
    reader = BatchReader(write_csv(tmp_path / "b.csv", [row]), questionnaire)
    assert reader.layout.missing_columns == ["can_borrow", "water_access"]


def test_the_delimiter_is_counted_outside_quoted_headers(tmp_path, questionnaire):
    path = tmp_path / "b.csv"
    path.write_text('"submission_id";"If you needed to, could you borrow money?"\n"a";"Yes"\n')
    reader = BatchReader(path, questionnaire)
    assert reader.layout.source["can_borrow"] == "If you needed to, could you borrow money?"
    assert texts(reader, "can_borrow") == ["Yes"]


def test_a_streamed_csv_reads_like_a_whole_one(tmp_path, questionnaire):
    path = write_csv(tmp_path / "b.csv", [canonical_row(questionnaire, k) for k in range(1, 401)])
    whole = BatchReader(path, questionnaire)
    streamed = BatchReader(path, questionnaire, stream_above=0)
    import reintegration.reading as reading

    original = reading.STREAM_BLOCK_BYTES
    reading.STREAM_BLOCK_BYTES = 16 << 10  # many small blocks
    try:
        chunks = list(streamed.chunks())
    finally:
        reading.STREAM_BLOCK_BYTES = original
    assert len(chunks) > 3
    assert [r for c in chunks for r in c.rows.to_pylist()] == rows(whole)
    assert [
        v for c in chunks for v in c.columns["submission_id"].cast("string").to_pylist()
    ] == texts(whole, "submission_id")


def test_jsonl_is_read_in_blocks_with_line_numbers_kept(tmp_path, questionnaire, monkeypatch):

    monkeypatch.setattr(row_sources, "JSONL_CHUNK_LINES", 7)
    path = tmp_path / "b.jsonl"
    write_jsonl(path, [canonical_row(questionnaire, k) for k in range(1, 31)])
    chunks = list(BatchReader(path, questionnaire).chunks())
    assert len(chunks) == 5
    assert [r for c in chunks for r in c.rows.to_pylist()] == list(range(1, 31))


def test_jsonl_keys_that_appear_only_later_are_ignored_with_a_warning(
    tmp_path, questionnaire, monkeypatch
):

    monkeypatch.setattr(row_sources, "JSONL_CHUNK_LINES", 2)
    first = {"submission_id": "a"}
    path = write_jsonl(tmp_path / "b.jsonl", [first, first, {"submission_id": "b", "sex": "male"}])
    reader = BatchReader(path, questionnaire)
    list(reader.chunks())
    assert [n.message for n in reader.layout.notes] == [
        "line 3 brings keys the first lines lack (sex); they were ignored"
    ]
