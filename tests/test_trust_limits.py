"""Issue 11, findings 5, 6, 8 and 9 on the reading side: bounded memory and the same limits for
every format and both stores.

- Workbooks are streamed in chunks; ``REINTEGRATION_MAX_ROWS`` refuses a longer file of any
  format while it is read, nothing stored.
- A cell longer than 32,767 characters is a row error that never echoes the cell.
- admin1, enumerator_id, submission_id and form_version longer than the store's columns are
  row errors on SQLite and PostgreSQL alike (the store's lengths come from one table).
- Nested JSON is a row error, never a RecursionError or a traceback.
- A CSV row with the wrong number of cells fails the batch with a reason free of cell text.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import reintegration.reading as reading
import reintegration.row_sources as row_sources
from reintegration.cli import app
from reintegration.errors import UnreadableFileError
from reintegration.index import ReintegrationIndex
from reintegration.limits import MAX_CELL_CHARS, MAX_COLUMNS, STORED_TEXT_CHARS
from reintegration.reading import BatchReader
from reintegration.scoring import score_file
from reintegration.settings import Settings, get_settings
from reintegration.store.engine import create_store_engine, for_reading
from reintegration.store.schema import audit, batch, rejected_row, returnee, score, submission
from tests.conftest import canonical_row, write_csv, write_jsonl

TOO_LONG_CELL = f"is longer than {MAX_CELL_CHARS:,} characters, the most a cell may hold"
NESTED_LINE = (
    "the line nests objects or arrays too deeply to be read; each line must be one flat JSON object"
)
NESTED_VALUE = "holds a JSON object or array; give one value instead"
DEEP = '{"submission_id": "deep", "x": ' + "[" * 200_000 + "]" * 200_000 + "}"


# -- helpers ------------------------------------------------------------------------------------


def _letters(k: int) -> str:
    out = ""
    k += 1
    while k:
        k, r = divmod(k - 1, 26)
        out = chr(65 + r) + out
    return out


MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def raw_workbook(path: Path, header: list[str], rows) -> Path:
    """A workbook of inline strings written straight as XML: fast at 200,000 rows, and free
    of any writer's own cell limit."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
        )
        archive.writestr(
            "_rels/.rels",
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{RELS}">'
            f'<Relationship Id="rId1" Type="{DOC}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        )
        archive.writestr(
            "xl/workbook.xml",
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{DOC}">'
            '<sheets><sheet name="batch" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{RELS}">'
            f'<Relationship Id="rId1" Type="{DOC}/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>",
        )
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(
                f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}">'.encode()
            )
            sheet.write(b"<sheetData>")
            for number, cells in enumerate([header, *rows], start=1):
                xml = "".join(
                    f'<c r="{_letters(k)}{number}" t="inlineStr"><is><t>{escape(str(v))}</t>'
                    "</is></c>"
                    for k, v in enumerate(cells)
                )
                sheet.write(f'<row r="{number}">{xml}</row>'.encode())
            sheet.write(b"</sheetData></worksheet>")
    return path


def rows_of(questionnaire, numbers, **overrides):
    return [canonical_row(questionnaire, n, **overrides) for n in numbers]


def write(fmt: str, path: Path, rows: list[dict[str, str]]) -> Path:
    if fmt == "csv":
        return write_csv(path.with_suffix(".csv"), rows)
    if fmt == "jsonl":
        return write_jsonl(path.with_suffix(".jsonl"), rows)
    header = list(rows[0])
    return raw_workbook(path.with_suffix(".xlsx"), header, [list(r.values()) for r in rows])


def store_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (submission, score, returnee, rejected_row)
        }


def failed_reasons(engine) -> tuple[list[str], list[str]]:
    """Reasons of failed batches, and the audit's reasons of failed uploads."""
    with engine.connect() as conn:
        reasons = conn.execute(sa.select(batch.c.reason).where(batch.c.status == "failed"))
        details = conn.execute(sa.select(audit.c.detail).where(audit.c.action == "upload_failed"))
        return list(reasons.scalars()), [d["reason"] for d in details.scalars()]


@pytest.fixture
def max_rows(monkeypatch):
    """Set REINTEGRATION_MAX_ROWS for the test (settings read again)."""

    def set_(value: int) -> None:
        monkeypatch.setenv("REINTEGRATION_MAX_ROWS", str(value))
        get_settings.cache_clear()

    yield set_
    get_settings.cache_clear()


# -- the row cap (finding 5) --------------------------------------------------------------------


def test_the_row_cap_is_a_setting_with_a_default_of_two_million(monkeypatch):
    monkeypatch.delenv("REINTEGRATION_MAX_ROWS", raising=False)
    assert Settings().max_rows == 2_000_000
    monkeypatch.setenv("REINTEGRATION_MAX_ROWS", "10")
    assert Settings().max_rows == 10


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_a_file_over_the_row_cap_is_refused_and_nothing_is_stored(
    engine, ingest, questionnaire, tmp_path, max_rows, fmt
):
    ingest(write_csv(tmp_path / "first.csv", rows_of(questionnaire, [100])))
    before = store_counts(engine)
    max_rows(10)
    path = write(fmt, tmp_path / "b", rows_of(questionnaire, range(1, 12)))

    with pytest.raises(UnreadableFileError) as caught:
        ingest(path)

    sentence = f"{path.name} has more than 10 rows; split it into files of at most 10 rows"
    assert str(caught.value) == sentence
    assert store_counts(engine) == before
    assert failed_reasons(engine) == ([sentence], [sentence])


def test_a_file_at_the_row_cap_is_stored(engine, ingest, questionnaire, tmp_path, max_rows):
    max_rows(10)
    report = ingest(write_csv(tmp_path / "b.csv", rows_of(questionnaire, range(1, 11))))
    assert (report.status, report.accepted) == ("done", 10)


def test_the_cap_stops_a_streamed_csv_before_its_end(tmp_path, questionnaire):
    path = write_csv(tmp_path / "b.csv", rows_of(questionnaire, range(1, 2001)))
    reader = BatchReader(path, questionnaire, stream_above=0, block_bytes=64 << 10, max_rows=500)
    seen = []
    with pytest.raises(UnreadableFileError, match="more than 500 rows"):
        for chunk in reader.chunks():
            assert chunk.num_rows < 500  # blocks of 64 KB: the file is read a block at a time
            seen.extend(chunk.rows.to_pylist())
    # refused at the first block past the cap, before the rest of the file was read
    assert 0 < len(seen) <= 500


@pytest.fixture(scope="module")
def big_workbook(tmp_path_factory) -> Path:
    """200,000 rows of three columns, written as XML."""
    path = tmp_path_factory.mktemp("big") / "big.xlsx"
    rows = ([f"s{k}", "female", "never"] for k in range(200_000))
    return raw_workbook(path, ["submission_id", "sex", "worried_daily"], rows)


def _counting(monkeypatch) -> list[int]:
    """Count the rows the streaming workbook reader pulls from openpyxl."""
    pulled = [0]
    original = row_sources.openpyxl_sheets

    def sheets(path):
        for rows in original(path):

            def counted(rows=rows):
                for row in rows:
                    pulled[0] += 1
                    yield row

            yield counted()

    monkeypatch.setattr(row_sources, "openpyxl_sheets", sheets)
    return pulled


def test_a_large_workbook_is_streamed_in_chunks(big_workbook, questionnaire, monkeypatch):
    pulled = _counting(monkeypatch)
    reader = BatchReader(big_workbook, questionnaire, xlsx_in_memory_bytes=0)
    chunks = reader.chunks()
    first = next(chunks)
    # The first chunk comes after one chunk's rows (and the header), not after the sheet.
    assert first.num_rows == reading.XLSX_CHUNK_ROWS
    assert pulled[0] <= reading.XLSX_CHUNK_ROWS + 1
    total = first.num_rows + sum(c.num_rows for c in chunks)
    assert total == 200_000
    assert pulled[0] == 200_001


def test_the_cap_stops_a_streamed_workbook_early(big_workbook, questionnaire, monkeypatch):
    pulled = _counting(monkeypatch)
    reader = BatchReader(big_workbook, questionnaire, xlsx_in_memory_bytes=0, max_rows=10)
    with pytest.raises(UnreadableFileError) as caught:
        list(reader.chunks())
    assert str(caught.value) == (
        "big.xlsx has more than 10 rows; split it into files of at most 10 rows"
    )
    assert pulled[0] == 12  # the header, ten rows, and the one that passed the cap


def test_a_streamed_workbook_is_not_parsed_before_its_rows_are_read(
    big_workbook, questionnaire, monkeypatch
):
    # openpyxl alone parses a sheet without a <dimension> element to its end when it opens
    # the workbook (keeping an empty element per row): a 3 GB sheet read twice, and held.
    from openpyxl.worksheet._reader import WorkSheetParser

    def scanned(self):
        raise AssertionError("the whole sheet was parsed to find its dimensions")

    monkeypatch.setattr(WorkSheetParser, "parse_dimensions", scanned)
    reader = BatchReader(big_workbook, questionnaire, xlsx_in_memory_bytes=0)

    assert sum(c.num_rows for c in reader.chunks()) == 200_000


def test_declared_dimensions_of_a_streamed_sheet_are_not_trusted(tmp_path, questionnaire):
    path = raw_workbook(tmp_path / "b.xlsx", ["submission_id", "sex"], [["s1", "female"]])
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "d.xlsx", "w") as dst:
        for member in src.infolist():
            data = src.read(member)
            if member.filename.endswith("sheet1.xml"):
                data = data.replace(b"<sheetData>", b'<dimension ref="A1:XFD1048576"/><sheetData>')
            dst.writestr(member, data)
    reader = BatchReader(tmp_path / "d.xlsx", questionnaire, xlsx_in_memory_bytes=0)

    chunks = list(reader.chunks())

    assert sum(c.num_rows for c in chunks) == 1  # not padded to a million rows
    assert [c.columns["sex"].to_pylist() for c in chunks if c.num_rows] == [["female"]]


def test_a_workbook_of_many_shared_strings_is_refused_before_it_is_opened(
    tmp_path, questionnaire, monkeypatch
):
    path = raw_workbook(tmp_path / "b.xlsx", ["submission_id"], [["a"]])
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("xl/sharedStrings.xml", "w") as part:
            block = b"".join(b"<si><t>%d</t></si>" % k for k in range(1 << 12))
            for _ in range((65 << 20) // len(block) + 1):
                part.write(block)
    monkeypatch.setattr(reading, "xlsx_rows", lambda *a: pytest.fail("the workbook was opened"))
    with pytest.raises(UnreadableFileError) as caught:
        BatchReader(path, questionnaire)
    assert str(caught.value).startswith("b.xlsx holds 6")
    assert str(caught.value).endswith(
        "MB of distinct texts, more than the 64 MB a workbook may; export the data as CSV instead"
    )


def test_score_applies_the_row_cap(tmp_path, questionnaire, max_rows):
    max_rows(5)
    path = write_csv(tmp_path / "b.csv", rows_of(questionnaire, range(1, 7)))
    with open(tmp_path / "out.csv", "wb") as out, pytest.raises(UnreadableFileError) as caught:
        score_file(path, out, ReintegrationIndex().fit(), questionnaire)
    assert str(caught.value) == "b.csv has more than 5 rows; split it into files of at most 5 rows"


# -- the cell cap (finding 5) -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_an_over_long_cell_rejects_its_row_without_echoing_it(
    engine, ingest, questionnaire, tmp_path, fmt
):
    item = questionnaire.items[0].id
    huge = "never " * (MAX_CELL_CHARS // 6 + 100)
    rows = rows_of(questionnaire, [1, 2, 3])
    rows[1][item] = huge
    path = write(fmt, tmp_path / "b", rows)

    report = ingest(path)

    assert (report.status, report.accepted, report.rejected) == ("done", 2, 1)
    assert [(e.row, e.column, e.value, e.message) for e in report.errors] == [
        (3 if fmt != "jsonl" else 2, item, "", TOO_LONG_CELL)
    ]
    with engine.connect() as conn:
        stored = conn.execute(sa.select(batch.c.report)).scalar_one()
        cells = conn.execute(sa.select(rejected_row.c.cells)).scalar_one()
    assert "never never" not in json.dumps(stored) + json.dumps(cells)
    assert store_counts(engine)["submission"] == 2


def test_an_over_long_cell_is_a_row_error_for_score_too(tmp_path, questionnaire):
    rows = rows_of(questionnaire, [1, 2])
    rows[0]["sex"] = "x" * (MAX_CELL_CHARS + 1)
    path = write_csv(tmp_path / "b.csv", rows)
    with open(tmp_path / "out.csv", "wb") as out:
        report = score_file(path, out, ReintegrationIndex().fit(), questionnaire)
    assert (report.scored, report.rejected_rows) == (1, 1)
    assert [(i.row, i.column, i.value) for i in report.issues] == [(2, "sex", "")]
    assert report.issues[0].message == TOO_LONG_CELL


def test_a_cell_of_exactly_the_cap_is_read(tmp_path, questionnaire):
    path = write_csv(
        tmp_path / "b.csv", rows_of(questionnaire, [1], enumerator_id="e" * MAX_CELL_CHARS)
    )
    chunk = next(BatchReader(path, questionnaire).chunks())
    assert chunk.problems == ()
    assert len(chunk.columns["enumerator_id"].to_pylist()[0]) == MAX_CELL_CHARS


# -- the store's limits, at validation (finding 8) ---------------------------------------------


def test_the_store_columns_are_built_from_the_limits_table(questionnaire):
    text_kinds = {f.name for f in questionnaire.metadata if f.kind in ("identifier", "text")}
    lengths = {
        c.name: c.type.length
        for c in submission.columns
        if c.name in text_kinds and isinstance(c.type, sa.String)
    }
    assert lengths == STORED_TEXT_CHARS
    assert batch.c.form_version.type.length == STORED_TEXT_CHARS["form_version"]


@pytest.mark.parametrize("column", sorted(STORED_TEXT_CHARS))
def test_a_cell_longer_than_its_store_column_is_a_row_error_on_both_stores(
    engine, ingest, questionnaire, tmp_path, column
):
    limit = STORED_TEXT_CHARS[column]
    rows = rows_of(questionnaire, [1, 2, 3])
    rows[1][column] = "y" * (limit + 1)
    rows[2][column] = "z" * limit  # exactly the limit is stored
    if column == "submission_id":
        rows[2][column] = "z" * limit

    report = ingest(write_csv(tmp_path / "b.csv", rows))

    assert (report.status, report.accepted, report.rejected) == ("done", 2, 1)
    [error] = report.errors
    assert (error.row, error.column, error.message) == (
        3,
        column,
        f"is longer than {limit} characters",
    )
    assert str(error) == f"row 3, column {column}: is longer than {limit} characters"
    assert len(error.value) <= 41
    assert store_counts(engine)["submission"] == 2
    with engine.connect() as conn:
        stored = conn.execute(sa.select(getattr(submission.c, column))).scalars().all()
    assert "y" * (limit + 1) not in stored


# -- nested JSON (finding 9) -------------------------------------------------------------------


def nested_file(tmp_path: Path, questionnaire) -> Path:
    rows = rows_of(questionnaire, [1, 2, 3, 4])
    lines = [json.dumps(rows[0]), DEEP, json.dumps(rows[1])]
    lines.append(json.dumps({**rows[2], "sex": {"code": "female"}}))
    lines.append(json.dumps({**rows[3], "attachments": [{"x": [1, 2]}]}))  # not read: fine
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_nested_json_lines_and_values_are_row_errors(engine, ingest, questionnaire, tmp_path):
    report = ingest(nested_file(tmp_path, questionnaire))
    assert (report.status, report.accepted, report.rejected) == ("done", 3, 2)
    assert [(e.row, e.column, e.value, e.message) for e in report.errors] == [
        (2, "", "", NESTED_LINE),
        (4, "sex", "", NESTED_VALUE),
    ]
    assert str(report.errors[0]) == f"row 2: {NESTED_LINE}"
    assert store_counts(engine)["submission"] == 3


def test_nested_json_through_the_cli_is_a_row_error_not_a_traceback(tmp_path, questionnaire, home):
    result = CliRunner().invoke(
        app, ["ingest", str(nested_file(tmp_path, questionnaire)), "--json"]
    )
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, RecursionError)
    assert "Traceback" not in result.output
    report = json.loads(result.stdout)
    assert (report["accepted"], report["rejected"]) == (3, 2)
    assert [(e["row"], e["column"], e["message"]) for e in report["errors"]] == [
        (2, "", NESTED_LINE),
        (4, "sex", NESTED_VALUE),
    ]


def test_nested_json_through_score_is_a_row_error(tmp_path, questionnaire, home):
    path = nested_file(tmp_path, questionnaire)
    result = CliRunner().invoke(app, ["score", str(path), "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"row 2: {NESTED_LINE}" in result.stderr
    assert "Scored 3 of 5 rows" in result.stderr


def test_a_jsonl_line_longer_than_the_limit_refuses_the_file(tmp_path, questionnaire, monkeypatch):
    monkeypatch.setattr(row_sources, "JSONL_LINE_LIMIT_BYTES", 1 << 20)
    row = canonical_row(questionnaire, 1)
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps({**row, "admin1": "a" * (2 << 20)}) + "\n")
    with pytest.raises(UnreadableFileError) as caught:
        list(BatchReader(path, questionnaire).chunks())
    assert str(caught.value) == "b.jsonl, line 2 is longer than 1 MB: too long to be a batch row"


def test_a_number_of_too_many_digits_is_no_crash(tmp_path, questionnaire):
    row = canonical_row(questionnaire, 1)
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps(row) + "\n" + '{"age_at_return": ' + "9" * 5000 + "}\n")
    with pytest.raises(UnreadableFileError, match=r"b.jsonl, line 2: not a JSON object"):
        list(BatchReader(path, questionnaire).chunks())


# -- reasons without cell text (finding 6, first half) -----------------------------------------


def test_a_csv_row_with_the_wrong_cell_count_fails_without_quoting_it(
    engine, ingest, questionnaire, tmp_path
):
    rows = rows_of(questionnaire, [1, 2, 3])
    path = write_csv(tmp_path / "b.csv", rows)
    lines = path.read_text().splitlines()
    lines[3] = lines[3] + ",SECRET-ANSWER"  # row 4: one cell too many, with CASE-0003 in it
    path.write_text("\n".join(lines) + "\n")
    cells = len(rows[0])

    with pytest.raises(UnreadableFileError) as caught:
        ingest(path)

    sentence = (
        f"b.csv: row 4 has {cells + 1} cells where the header has {cells}; every row needs "
        "one cell per column"
    )
    assert str(caught.value) == sentence
    assert caught.value.__cause__ is None  # Arrow's message, which quotes the row, is dropped
    assert failed_reasons(engine) == ([sentence], [sentence])
    assert store_counts(engine)["submission"] == 0


def test_the_cell_count_reason_finds_the_row_past_quoted_line_breaks(tmp_path, questionnaire):
    rows = rows_of(questionnaire, [1, 2, 3])
    rows[0]["admin1"] = "Dakar\nPlateau"
    path = write_csv(tmp_path / "b.csv", rows)
    text = path.read_text()
    path.write_text(text.rstrip("\n") + ",CASE-LEAK\n")
    with pytest.raises(UnreadableFileError) as caught:
        list(BatchReader(path, questionnaire).chunks())
    assert str(caught.value).startswith("b.csv: row 4 has ")
    assert "CASE" not in str(caught.value)


def test_a_workbook_that_cannot_be_parsed_says_so_without_its_xml(tmp_path, questionnaire):
    path = raw_workbook(tmp_path / "b.xlsx", ["submission_id"], [["a"]])
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for member in src.infolist():
            data = src.read(member)
            if member.filename.endswith("sheet1.xml"):
                data = data.replace(b"</sheetData>", b"<c>CASE-0001 <unclosed></sheetData>")
            dst.writestr(member, data)
    for in_memory in (reading.XLSX_IN_MEMORY_BYTES, -1):
        with pytest.raises(UnreadableFileError) as caught:
            list(BatchReader(broken, questionnaire, xlsx_in_memory_bytes=in_memory).chunks())
        assert str(caught.value).startswith("broken.xlsx is not a readable Excel workbook (")
        assert "CASE" not in str(caught.value)


def test_cli_ingest_over_the_cap_exits_2_with_one_sentence(
    tmp_path, questionnaire, home, monkeypatch
):
    monkeypatch.setenv("REINTEGRATION_MAX_ROWS", "3")
    get_settings.cache_clear()
    path = write_csv(tmp_path / "b.csv", rows_of(questionnaire, range(1, 5)))
    result = CliRunner().invoke(app, ["ingest", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: b.csv has more than 3 rows; split it into files of at most 3 rows."
    )
    engine = for_reading(create_store_engine(get_settings().database_url))
    try:
        assert store_counts(engine)["submission"] == 0
        assert failed_reasons(engine)[0] == [
            "b.csv has more than 3 rows; split it into files of at most 3 rows"
        ]
    finally:
        engine.dispose()


# -- how many columns a file may name ------------------------------------------------------------


def _wide_row(questionnaire, n_extra: int) -> dict[str, str]:
    row = canonical_row(questionnaire, 1)
    row.update({f"extra_{k}": "1" for k in range(n_extra)})
    return row


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_file_naming_more_columns_than_the_cap_is_refused_and_nothing_is_stored(
    engine, ingest, questionnaire, tmp_path, fmt
):
    row = _wide_row(questionnaire, MAX_COLUMNS)
    path = (
        write_csv(tmp_path / "wide.csv", [row])
        if fmt == "csv"
        else write_jsonl(tmp_path / "wide.jsonl", [row])
    )
    before = store_counts(engine)

    with pytest.raises(UnreadableFileError) as caught:
        ingest(path)

    where = "the header" if fmt == "csv" else "line 1"
    sentence = (
        f"{path.name}: {where} names more than 1,000 columns; a batch file holds the columns "
        "of the canonical format or of the platform's form"
    )
    assert str(caught.value) == sentence
    assert store_counts(engine) == before
    assert failed_reasons(engine)[0] == [sentence]


def test_keys_of_later_json_lines_count_towards_the_column_cap(
    tmp_path, questionnaire, monkeypatch
):
    monkeypatch.setattr(row_sources, "JSONL_CHUNK_LINES", 1)  # the header is line 1's alone
    rows = [canonical_row(questionnaire, 1)]
    rows += [{**canonical_row(questionnaire, 2), **{f"x{k}": 1 for k in range(MAX_COLUMNS)}}]
    path = write_jsonl(tmp_path / "late.jsonl", rows)
    reader = BatchReader(path, questionnaire)

    with pytest.raises(UnreadableFileError, match=r"late.jsonl: line 2 names more than 1,000"):
        list(reader.chunks())


def test_a_file_at_the_column_cap_is_read(tmp_path, questionnaire):
    row = canonical_row(questionnaire, 1)
    row.update({f"extra_{k}": "1" for k in range(MAX_COLUMNS - len(row))})
    for path in (write_csv(tmp_path / "w.csv", [row]), write_jsonl(tmp_path / "w.jsonl", [row])):
        chunks = list(BatchReader(path, questionnaire).chunks())
        assert sum(c.num_rows for c in chunks) == 1


def test_a_file_whose_only_lines_nest_too_deeply_says_so(tmp_path, questionnaire):
    path = tmp_path / "deep.jsonl"
    path.write_text(DEEP + "\n", encoding="utf-8")

    with pytest.raises(UnreadableFileError) as caught:
        BatchReader(path, questionnaire)

    assert str(caught.value) == (
        "deep.jsonl: every line nests objects or arrays too deeply to be read (line 1 first); "
        "each line must be one flat JSON object"
    )
