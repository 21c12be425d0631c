"""Read a batch file (canonical CSV, XLSX or JSON lines) into Arrow columns of text.

Every cell is read as text; coding and validation happen later (``coding.py``). Headers are
matched to the canonical columns case-insensitively, with group prefixes (``economic/``,
``economic-``) ignored; a select-multiple item may come as one 0/1 column per choice
(``distress_signs/anger``), which is folded back into one column of space-separated codes.
Row numbers are those a spreadsheet shows: the header is row 1, the first data row is row 2
(JSON lines: the line number).

CSV is parsed by Arrow on every core, straight into dictionary-encoded columns, so a column
with a handful of distinct answers costs four bytes a cell and is coded once per distinct
value. Files larger than :data:`STREAM_ABOVE_BYTES` are streamed in blocks so memory stays
bounded whatever the file size.
"""

from __future__ import annotations

import csv
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from reintegration.errors import UnreadableFileError
from reintegration.questionnaire import Questionnaire, normalise_answer

STREAM_ABOVE_BYTES = 768 << 20
STREAM_BLOCK_BYTES = 64 << 20
SNIFF_BYTES = 1 << 16
TEXT = pa.string()
CODES = pa.dictionary(pa.int32(), pa.string())
XLSX_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class FileNote:
    """A warning about a whole file or one of its cells (row and column None when global)."""

    message: str
    row: int | None = None
    column: str | None = None


@dataclass
class Layout:
    """How a file's headers map to the canonical columns."""

    fmt: str
    headers: list[str] = field(default_factory=list)
    """every header of the file, in file order"""
    source: dict[str, str] = field(default_factory=dict)
    """canonical column -> header as written in the file"""
    split: dict[str, dict[str, str]] = field(default_factory=dict)
    """select-multiple item -> {choice code: header of its 0/1 column}"""
    ignored: list[str] = field(default_factory=list)
    notes: list[FileNote] = field(default_factory=list)

    def position(self, column: str) -> int:
        """Where a reported column stands in the file, to list a row's issues left to right."""
        for k, header in enumerate(self.headers):
            # A folded select-multiple is reported as "item (header, header, ...)".
            if column == header or f"({header}," in column or f"({header})" in column:
                return k
        return len(self.headers)


@dataclass(frozen=True)
class Chunk:
    """A block of rows: canonical columns as Arrow arrays of text, and their row numbers."""

    columns: dict[str, pa.Array | pa.ChunkedArray]
    rows: pa.Array
    num_rows: int


def map_headers(headers: list[str], questionnaire: Questionnaire, fmt: str) -> Layout:
    """Match file headers to canonical columns; report unknown ones as ignored.

    Raises
    ------
    UnreadableFileError
        When two headers map to the same canonical column.
    """
    layout = Layout(fmt=fmt, headers=list(headers))
    known = set(questionnaire.columns)
    groups = set(questionnaire.groups)
    multiple = {i.id: i for i in questionnaire.items if i.is_multiple}
    for header in headers:
        parts = _split_header(normalise_answer(header).replace(" ", "_"))
        while len(parts) > 1 and parts[0] in groups:
            parts = parts[1:]
        name = parts[-1] if len(parts) == 1 else None
        if len(parts) == 2 and parts[0] in multiple:
            multi = multiple[parts[0]]
            codes = {o.code for o in multi.options} | {m.code for m in questionnaire.missing_codes}
            if multi.exclusive is not None:
                codes.add(multi.exclusive.code)
            if parts[1] in codes:
                choices = layout.split.setdefault(multi.id, {})
                if parts[1] in choices:
                    raise UnreadableFileError(f"column {header} appears twice in the file")
                choices[parts[1]] = header
                continue
        if name in known:
            if name in layout.source:
                raise UnreadableFileError(
                    f"columns {layout.source[name]} and {header} both mean {name}; keep one"
                )
            layout.source[name] = header
        elif header.strip():
            layout.ignored.append(header)
    for item_id in [i for i in layout.split if i in layout.source]:
        # Kobo's default export carries both forms; the single column is the answer as given.
        layout.ignored.extend(layout.split.pop(item_id).values())
        layout.notes.append(
            FileNote(
                f"{item_id} comes as one column and as one column per choice; "
                "the single column was used"
            )
        )
    return layout


def _split_header(header: str) -> list[str]:
    for sep in ("/", "-", ":"):
        if sep in header:
            return [p for p in header.split(sep) if p]
    return [header]


def detect_format(path: Path) -> str:
    """``csv``, ``xlsx`` or ``jsonl``, from the file's first bytes rather than its name."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if not head.strip():
        raise UnreadableFileError(f"{path.name} is empty")
    if head.startswith(XLSX_MAGIC):
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                if "xl/workbook.xml" in zf.namelist():
                    return "xlsx"
        raise UnreadableFileError(f"{path.name} is a zip file but not an Excel workbook")
    if b"\x00" in head:
        raise UnreadableFileError(f"{path.name} is not a text file, a CSV or an Excel workbook")
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return "jsonl"
    return "csv"


class BatchReader:
    """Open a batch file and iterate over its rows in chunks of canonical text columns.

    Parameters
    ----------
    path : path-like
    questionnaire : Questionnaire
    wanted : set of str, optional
        Canonical columns to read (default every known one); others are skipped unparsed.

    Raises
    ------
    UnreadableFileError
        Empty, binary or malformed files, with a sentence saying why.
    """

    def __init__(
        self, path: Path | str, questionnaire: Questionnaire, wanted: set[str] | None = None
    ) -> None:
        self.path = Path(path)
        self.questionnaire = questionnaire
        self.wanted = wanted
        if not self.path.is_file():
            raise UnreadableFileError(f"{self.path} does not exist or is not a file")
        self.fmt = detect_format(self.path)
        self._encoding = "utf-8"
        self._delimiter = ","
        if self.fmt == "csv":
            headers = self._csv_headers()
        elif self.fmt == "xlsx":
            self._xlsx_rows = _xlsx_rows(self.path, questionnaire)
            headers = [str(h) if h is not None else "" for h in self._xlsx_rows[0]]
        else:
            self._jsonl = _jsonl_records(self.path)
            headers = list(self._jsonl[0]) if self._jsonl[0] else []
        self.layout = map_headers(headers, questionnaire, self.fmt)
        if self._encoding != "utf-8":
            self._note_encoding()

    # -- CSV ---------------------------------------------------------------------------------
    def _csv_headers(self) -> list[str]:
        with self.path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
        if self._encoding == "utf-8":
            try:
                head.decode("utf-8")
            except UnicodeDecodeError as exc:
                # A character cut by the end of the sniff window is no decoding error.
                if exc.start < len(head) - 3:
                    self._encoding = "cp1252"
        text = head.decode("utf-8-sig" if self._encoding == "utf-8" else self._encoding, "replace")
        lines = text.splitlines()
        first = lines[0] if lines else ""
        self._delimiter = ";" if first.count(";") > first.count(",") else ","
        try:
            return next(csv.reader([first], delimiter=self._delimiter))
        except (csv.Error, StopIteration) as exc:
            raise UnreadableFileError(
                f"the header line of {self.path.name} cannot be read"
            ) from exc

    def _csv_chunks(self) -> Iterator[Chunk]:
        # Arrow's fast paths assume UTF-8 and no line breaks inside quoted cells. Both are
        # checked as it parses (invalid UTF-8 and a cut row are errors, for any file of two or
        # more columns), so a file that breaks either is read again the slower way before any
        # row is handed out; the happy path pays nothing. Streamed files take the safe way.
        newlines = self.path.stat().st_size > STREAM_ABOVE_BYTES
        while True:
            yielded = False
            try:
                for chunk in self._csv_chunks_as(self._encoding, newlines):
                    yielded = True
                    yield chunk
                return
            except pa.ArrowInvalid as exc:
                text = str(exc)
                if yielded:
                    raise UnreadableFileError(_arrow_reason(self.path.name, exc)) from exc
                if "UTF8" in text and self._encoding == "utf-8":
                    self._encoding = "cp1252"
                    self._note_encoding()
                elif "Expected" in text and "columns" in text and not newlines:
                    newlines = True
                else:
                    raise UnreadableFileError(_arrow_reason(self.path.name, exc)) from exc

    def _note_encoding(self) -> None:
        self.layout.notes.append(
            FileNote(f"the file is not UTF-8; it was read as {self._encoding} (Windows Latin-1)")
        )

    def _csv_chunks_as(self, encoding: str, newlines: bool) -> Iterator[Chunk]:
        headers = self._csv_headers()
        if len(set(headers)) != len(headers):
            dup = next(h for h in headers if headers.count(h) > 1)
            raise UnreadableFileError(f"column {dup} appears twice in the header line")
        wanted = self._wanted_headers()
        text_columns = {self.layout.source.get(c) for c in self._identifier_columns()}
        types = {h: (TEXT if h in text_columns else CODES) for h in wanted}
        big = self.path.stat().st_size > STREAM_ABOVE_BYTES
        read_options = pacsv.ReadOptions(
            column_names=headers,
            skip_rows=1,
            block_size=STREAM_BLOCK_BYTES if big else 4 << 20,
        )
        parse_options = pacsv.ParseOptions(
            delimiter=self._delimiter, ignore_empty_lines=False, newlines_in_values=newlines
        )
        convert_options = pacsv.ConvertOptions(
            column_types=types, include_columns=wanted or headers[:1]
        )
        stream = pa.input_stream(self.path)
        if encoding != "utf-8":
            stream = pa.transcoding_input_stream(stream, encoding, "utf-8")
        batches: Iterator[pa.RecordBatch | pa.Table]
        if big:
            batches = iter(pacsv.open_csv(stream, read_options, parse_options, convert_options))
        else:
            batches = iter([pacsv.read_csv(stream, read_options, parse_options, convert_options)])
        start = 2
        for batch in batches:
            yield self._chunk(batch, start)
            start += batch.num_rows

    def _chunk(self, batch: pa.RecordBatch | pa.Table, first_row: int) -> Chunk:
        n = batch.num_rows
        names = batch.schema.names
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        for canonical, header in self.layout.source.items():
            if header in names and self._want(canonical):
                columns[canonical] = batch.column(names.index(header))
        for item, choices in self.layout.split.items():
            if self._want(item):
                columns[item] = _fold_split(
                    {code: batch.column(names.index(h)) for code, h in choices.items()}
                )
        rows = pa.array(np.arange(first_row, first_row + n, dtype=np.int64))
        blank = _blank_rows(columns, n)
        if blank is not None:
            keep = pc.invert(blank)
            columns = {k: pc.filter(v, keep) for k, v in columns.items()}
            rows = pc.filter(rows, keep)
        return Chunk(columns=columns, rows=rows, num_rows=len(rows))

    def _want(self, canonical: str) -> bool:
        return self.wanted is None or canonical in self.wanted

    def _wanted_headers(self) -> list[str]:
        heads = [h for c, h in self.layout.source.items() if self._want(c)]
        for item, choices in self.layout.split.items():
            if self._want(item):
                heads.extend(choices.values())
        return heads

    def _identifier_columns(self) -> list[str]:
        return [
            f.name
            for f in self.questionnaire.metadata
            if f.kind in ("identifier", "case_number", "text")
        ]

    # -- XLSX and JSON lines -----------------------------------------------------------------
    def _records_chunk(
        self, header: list[str], records: list[list[object]], rows: list[int]
    ) -> Chunk:
        arrays = {}
        for j, h in enumerate(header):
            if h in self._wanted_headers():
                arrays[h] = pa.array(
                    [_cell_text(r[j] if j < len(r) else None) for r in records], TEXT
                )
        table = pa.table(arrays) if arrays else pa.table({"_": pa.nulls(len(records), TEXT)})
        chunk = self._chunk(table, 0)
        return Chunk(
            columns=chunk.columns,
            rows=pc.take(pa.array(rows, pa.int64()), chunk.rows),
            num_rows=chunk.num_rows,
        )

    def chunks(self) -> Iterator[Chunk]:
        """Chunks of rows in file order; all-blank rows are skipped, numbering kept."""
        if self.fmt == "csv":
            yield from self._csv_chunks()
        elif self.fmt == "xlsx":
            header = [str(h) if h is not None else "" for h in self._xlsx_rows[0]]
            body = self._xlsx_rows[1:]
            yield self._records_chunk(header, body, list(range(2, 2 + len(body))))
        else:
            header, records, rows = _jsonl_table(self._jsonl[1], self.path.name)
            yield self._records_chunk(header, records, rows)


def _arrow_reason(name: str, exc: Exception) -> str:
    text = str(exc)
    if "Expected" in text and "columns" in text:
        first = text.splitlines()[0]
        return f"{name} has a row with a different number of cells than the header: {first}"
    if "straddling" in text or "block size" in text:
        return f"{name} has a line too long to be a batch row"
    return f"{name} cannot be read as CSV: {text.splitlines()[0]}"


def _blank_rows(columns: dict[str, pa.Array | pa.ChunkedArray], n: int) -> pa.Array | None:
    """Rows where every cell is blank (an empty line), or None when there are none."""
    if not columns or n == 0:
        return None
    blank = None
    # Any column rules out most rows at once; the rest are checked only when one survives.
    for values in columns.values():
        empty = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(pc.cast(values, TEXT)), ""), True)
        blank = empty if blank is None else pc.and_(blank, empty)
        if not pc.any(blank).as_py():
            return None
    return blank.combine_chunks() if isinstance(blank, pa.ChunkedArray) else blank


def _fold_split(choices: dict[str, pa.Array | pa.ChunkedArray]) -> pa.Array:
    """One 0/1 column per choice -> one column of the selected codes, space-separated.

    A cell that is neither 0/1 nor blank is passed through as ``code=value`` so that coding
    reports it as an invalid answer with its value.
    """
    parts = []
    for code, values in choices.items():
        text = pc.utf8_trim_whitespace(pc.cast(values, TEXT))
        text = pc.fill_null(text, "")
        selected = pc.is_in(text, pa.array(["1", "1.0", "true", "True", "TRUE"]))
        unselected = pc.is_in(text, pa.array(["0", "0.0", "", "false", "False", "FALSE"]))
        parts.append(
            pc.if_else(
                selected,
                code,
                pc.if_else(unselected, "", pc.binary_join_element_wise(code, text, "=")),
            )
        )
    joined = pc.utf8_trim_whitespace(pc.binary_join_element_wise(*parts, " "))
    # Unselected choices leave runs of spaces: fold them so the cell reads "anger fear".
    return pc.replace_substring_regex(joined, pattern=" +", replacement=" ")


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text[:10] if text.endswith("T00:00:00") else text
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _xlsx_rows(path: Path, questionnaire: Questionnaire) -> list[list[Any]]:
    """The rows of the first sheet whose header row names a canonical column."""
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for corrupt workbooks
        raise UnreadableFileError(f"{path.name} is not a readable Excel workbook: {exc}") from exc
    for name in workbook.sheet_names:
        rows = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
        headers = [str(c) for c in rows[0] if c is not None] if rows else []
        try:
            layout = map_headers(headers, questionnaire, "xlsx")
        except UnreadableFileError:
            continue
        if layout.source or layout.split:
            return rows
    raise UnreadableFileError(
        f"{path.name} has no sheet whose first row names a column of the batch format "
        "(submission_id, the items, ...)"
    )


def _jsonl_records(path: Path) -> tuple[dict[str, object] | None, list[tuple[int, object]]]:
    parsed: list[tuple[int, object]] = []
    first: dict[str, object] | None = None
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace").strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if first is None and isinstance(record, dict):
                first = record
            parsed.append((number, record))
    if first is None:
        raise UnreadableFileError(f"{path.name} has no line holding a JSON object")
    return first, parsed


def _jsonl_table(
    parsed: list[tuple[int, object]], name: str
) -> tuple[list[str], list[list[object]], list[int]]:
    header: list[str] = []
    seen: set[str] = set()
    for _, record in parsed:
        if isinstance(record, dict):
            for key in record:
                if key not in seen:
                    seen.add(key)
                    header.append(key)
    records = []
    rows = []
    bad = [number for number, record in parsed if not isinstance(record, dict)]
    if bad:
        raise UnreadableFileError(
            f"{name}, line {bad[0]}: not a JSON object ({len(bad)} such line"
            f"{'s' if len(bad) > 1 else ''})"
        )
    for number, record in parsed:
        assert isinstance(record, dict)
        records.append([record.get(h) for h in header])
        rows.append(number)
    return header, records, rows
