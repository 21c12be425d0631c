"""Read a batch file (CSV, XLSX, JSON lines, Kobo or ODK exports) into Arrow text columns.

Every cell is read as text; coding and validation happen later (``coding.py``). Headers are
matched to the canonical columns case-insensitively, with group prefixes (``economic/``,
``economic-``) ignored; a select-multiple item may come as one 0/1 column per choice
(``distress_signs/anger``), which is folded back into one column of space-separated codes.
Row numbers are those a spreadsheet shows: the header is row 1, the first data row is row 2
(JSON lines: the line number).

CSV is parsed by Arrow on every core, straight into dictionary-encoded columns, so a column
with a handful of distinct answers costs four bytes a cell and is coded once per distinct
value. Files larger than :data:`STREAM_ABOVE_BYTES` are streamed in blocks so memory stays
bounded whatever the file size. Workbooks are read row by row too once a sheet would unpack
beyond :data:`XLSX_IN_MEMORY_BYTES`, and JSON lines a block of lines at a time.

Every format has the same limits (:mod:`reintegration.limits`): a file of more than
``REINTEGRATION_MAX_ROWS`` data rows is refused as soon as reading gets past that row; a cell
longer than :data:`~reintegration.limits.MAX_CELL_CHARS` characters, and a JSON value that is an
object or an array (or a line nested too deeply to parse), is a :class:`CellProblem`: the reader
blanks the cell and its row is rejected with a row error, the text never passed on. Reasons for
refusing a whole file never quote a cell: they say where and what, not what the file holds.

Kobo and ODK Central exports of the shipped form load as they are (see
:mod:`reintegration.exports`): label headers, system columns, the identity of each row
(``meta/rootUuid``, ``KEY``, ``meta/instanceID`` / ``_uuid``, then ``submission_id``) and
ODK Central's zip export. Columns that look like direct identifiers are listed and never read;
workbooks too large or packed like zip bombs are refused before they are opened.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from reintegration.errors import UnreadableFileError
from reintegration.exports import (
    CANONICAL_IDENTITY_RANK,
    check_workbook,
    coalesce_identity,
    identity_rank,
    is_system_column,
    looks_like_identifier,
    main_csv_member,
    match_column,
    zip_kind,
)
from reintegration.limits import DEFAULT_MAX_ROWS, MAX_CELL_CHARS, MAX_COLUMNS
from reintegration.questionnaire import Questionnaire
from reintegration.row_sources import (
    CellProblem,
    cell_text,
    jsonl_batches,
    jsonl_header,
    jsonl_rows,
    too_many_columns,
    xlsx_rows,
)

STREAM_ABOVE_BYTES = 768 << 20
STREAM_BLOCK_BYTES = 64 << 20
SNIFF_BYTES = 1 << 16
HEADER_LIMIT_BYTES = 1 << 20
"""A header line longer than this is no batch header (a form of 1,000 columns needs ~100 KB)."""
MAX_XLSX_BYTES = 200 << 20
"""Largest workbook read (DESIGN.md: XLSX up to 200 MB); larger ones should come as CSV."""
MAX_UNZIPPED_BYTES = 4 << 30
"""Largest total a workbook's parts may unpack to (a 200 MB workbook unpacks to ~2.5 GB)."""
XLSX_IN_MEMORY_BYTES = 128 << 20
"""Workbooks whose largest sheet unpacks to at most this are loaded whole by calamine (fast;
memory about the sheet's size); larger ones are streamed row by row (openpyxl's read-only
mode: memory bounded whatever the row count, several times slower)."""
XLSX_CHUNK_ROWS = 5_000
"""Rows of a streamed workbook read, checked and stored at a time. The working set grows with
it: a live server's peak growth over idle, at 5,000 (20,000 before), was +215 MB (+453) for
``hostile_bench.py``'s ``bomb100`` and +423 MB (+612) for ``rows1m``, for 4% less throughput."""
ID = "submission_id"
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
    """headers of unknown columns, not read"""
    system_columns: list[str] = field(default_factory=list)
    """headers of Kobo and ODK Central system columns (``_id``, ``KEY``, ...), not read as data"""
    identity_columns: list[str] = field(default_factory=list)
    """headers whose first non-blank value per row is its submission_id, most trusted first"""
    missing_columns: list[str] = field(default_factory=list)
    """items of the spec that no column of the file carries (missing for every row)"""
    dropped_identifier_columns: list[str] = field(default_factory=list)
    """headers that look like direct identifiers (names, phones, GPS...): never read"""
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
    problems: tuple[CellProblem, ...] = ()
    """cells blanked by the reader; each rejects its row"""


def map_headers(headers: list[str], questionnaire: Questionnaire, fmt: str) -> Layout:
    """Match file headers to canonical columns; sort the others into system columns, direct
    identifiers (never read) and ignored columns.

    A header matches by name (any case, group prefixes ignored) or by label in any language
    of the spec (see :func:`reintegration.exports.match_column`). The identity of a row comes
    from the most trusted identity columns present (:data:`reintegration.exports.IDENTITY_RANKS`,
    then ``submission_id``); the first of them names ``submission_id`` in reports.

    Raises
    ------
    UnreadableFileError
        When two headers map to the same canonical column.
    """
    layout = Layout(fmt=fmt, headers=list(headers))
    ranked: list[tuple[int, int, str]] = []
    for position, header in enumerate(headers):
        match = match_column(header, questionnaire)
        if match is not None:
            name, code = match
            if code is not None:
                choices = layout.split.setdefault(name, {})
                if code in choices:
                    raise UnreadableFileError(f"column {header} appears twice in the file")
                choices[code] = header
                continue
            if name in layout.source:
                raise UnreadableFileError(
                    f"columns {layout.source[name]} and {header} both mean {name}; keep one"
                )
            layout.source[name] = header
            if name == ID:
                ranked.append((CANONICAL_IDENTITY_RANK, position, header))
        elif is_system_column(header):
            layout.system_columns.append(header)
            rank = identity_rank(header)
            if rank is not None:
                ranked.append((rank, position, header))
        elif looks_like_identifier(header):
            layout.dropped_identifier_columns.append(header)
        elif header.strip():
            layout.ignored.append(header)
    for item_id in [i for i in layout.split if i in layout.source]:
        # Kobo's default export carries both forms; the single column is the answer as given.
        # Its 0/1 columns are known, not "ignored". Only a file whose 0/1 columns do not sit
        # under the single one (columns put together from elsewhere) gets a note saying why
        # they were not read: the platform's own export is no news to its sender.
        choices = layout.split.pop(item_id)
        if not _choices_of(layout.source[item_id], choices.values()):
            layout.notes.append(
                FileNote(
                    f"{item_id} comes as one column and as one column per choice; "
                    "the single column was used"
                )
            )
    layout.identity_columns = [header for _, _, header in sorted(ranked)]
    if layout.identity_columns:
        layout.source[ID] = layout.identity_columns[0]
    layout.missing_columns = [
        i.id for i in questionnaire.items if i.id not in layout.source and i.id not in layout.split
    ]
    return layout


def _choices_of(single: str, choice_headers: Iterable[str]) -> bool:
    """Whether every 0/1 column is ``<single>/<choice>``, as Kobo and ODK Central export a
    select-multiple question (by names or by labels).

    Examples
    --------
    >>> _choices_of("psychosocial/signs", ["psychosocial/signs/anger"])
    True
    >>> _choices_of("signs", ["psychosocial-signs/anger"])
    False
    """
    prefix = single.strip().casefold() + "/"
    return all(h.strip().casefold().startswith(prefix) for h in choice_headers)


def detect_format(path: Path) -> str:
    """``csv``, ``xlsx``, ``jsonl`` or ``zip`` (CSV files in a zip, as ODK Central exports
    them), from the file's first bytes rather than its name."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if not head.strip():
        raise UnreadableFileError(f"{path.name} is empty")
    if head.startswith(XLSX_MAGIC):
        return zip_kind(path)
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
        Canonical CSV, XLSX or JSON lines, a Kobo or ODK Central export, or ODK Central's
        zip export (its root table is read).
    questionnaire : Questionnaire
    wanted : set of str, optional
        Canonical columns to read (default every known one); others are skipped unparsed.
    max_xlsx_bytes : int
        Largest workbook read; a larger one is refused before it is opened.
    max_unzipped_bytes : int
        Largest total a workbook's parts may declare unpacked.
    max_rows : int
        Most data rows read; a longer file is refused as soon as reading passes that row.
    xlsx_in_memory_bytes : int
        Largest sheet loaded whole; larger ones are streamed row by row.

    Raises
    ------
    UnreadableFileError
        Empty, binary, malformed or hostile files, with a sentence saying why.
    """

    def __init__(
        self,
        path: Path | str,
        questionnaire: Questionnaire,
        wanted: set[str] | None = None,
        *,
        max_xlsx_bytes: int = MAX_XLSX_BYTES,
        max_unzipped_bytes: int = MAX_UNZIPPED_BYTES,
        stream_above: int = STREAM_ABOVE_BYTES,
        block_bytes: int | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
        xlsx_in_memory_bytes: int = XLSX_IN_MEMORY_BYTES,
    ) -> None:
        self.path = Path(path)
        self.max_rows = max_rows
        self._rows_read = 0
        self.stream_above = stream_above
        self.block_bytes = block_bytes
        self.questionnaire = questionnaire
        self.wanted = wanted
        if not self.path.is_file():
            raise UnreadableFileError(f"{self.path} does not exist or is not a file")
        self.fmt = detect_format(self.path)
        self._encoding = "utf-8"
        self._delimiter = ","
        self._member: zipfile.ZipInfo | None = None
        if self.fmt == "zip":
            self._member = main_csv_member(self.path, questionnaire.form_id)
        if self.fmt in ("csv", "zip"):
            headers = self._csv_headers()
        elif self.fmt == "xlsx":
            check_workbook(self.path, max_xlsx_bytes, max_unzipped_bytes)
            self._xlsx_rows = xlsx_rows(
                self.path, _names_batch_columns(questionnaire), xlsx_in_memory_bytes
            )
            headers = self._xlsx_rows.header
        else:
            headers = jsonl_header(self.path)
        if len(headers) > MAX_COLUMNS:
            raise UnreadableFileError(too_many_columns(self.path, "the header"))
        self.layout = map_headers(headers, questionnaire, self.fmt)
        if self._encoding != "utf-8":
            self._note_encoding()

    # -- CSV (plain, or the root table of a zip export) --------------------------------------
    def _open_binary(self) -> IO[bytes]:
        if self._member is None:
            return self.path.open("rb")
        # Python's zip reader never yields more than the member's declared size.
        return zipfile.ZipFile(self.path).open(self._member)

    def _text_size(self) -> int:
        return self._member.file_size if self._member else self.path.stat().st_size

    def _arrow_stream(self) -> pa.NativeFile:
        if self._member is None:
            return pa.input_stream(self.path)
        return pa.PythonFile(self._open_binary(), mode="r")

    def _csv_headers(self) -> list[str]:
        with self._open_binary() as fh:
            head = fh.read(HEADER_LIMIT_BYTES)
        if len(head) == HEADER_LIMIT_BYTES and b"\n" not in head and b"\r" not in head:
            raise UnreadableFileError(
                f"{self.path.name} has a line too long to be a batch row: line 1 is longer "
                f"than {HEADER_LIMIT_BYTES >> 20} MB"
            )
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
        # Label headers may hold commas or semicolons, but only inside quotes.
        bare = re.sub(r'"[^"]*"', "", first)
        self._delimiter = ";" if bare.count(";") > bare.count(",") else ","
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
        newlines = self._text_size() > self.stream_above
        while True:
            yielded = False
            self._rows_read = 0
            try:
                for chunk in self._csv_chunks_as(self._encoding, newlines):
                    yielded = True
                    yield chunk
                return
            except pa.ArrowInvalid as exc:
                text = str(exc)
                if yielded:
                    raise UnreadableFileError(self._csv_reason(text)) from None
                if "UTF8" in text and self._encoding == "utf-8":
                    self._encoding = "cp1252"
                    self._note_encoding()
                elif _CELL_COUNT.search(text) and not newlines:
                    newlines = True
                else:
                    # Arrow's message quotes the offending row: it is never passed on, and
                    # the exception is not chained, so no traceback or log can carry it.
                    raise UnreadableFileError(self._csv_reason(text)) from None

    def _csv_reason(self, arrow_text: str) -> str:
        """Why a CSV cannot be read, from Arrow's message but without a word of its cells."""
        name = self.path.name
        counts = _CELL_COUNT.search(arrow_text)
        if counts is not None:
            expected, got = int(counts.group(1)), int(counts.group(2))
            row = self._first_row_with_cells(expected)
            where = f"row {row}" if row is not None else "a row"
            return (
                f"{name}: {where} has {got} cell{'s' if got != 1 else ''} where the header "
                f"has {expected}; every row needs one cell per column"
            )
        if "straddling" in arrow_text or "block size" in arrow_text:
            return f"{name} has a line too long to be a batch row"
        if "UTF8" in arrow_text or "UTF-8" in arrow_text:
            return f"{name} is not valid text in UTF-8 or Windows Latin-1"
        return f"{name} cannot be read as CSV"

    def _first_row_with_cells(self, expected: int) -> int | None:
        """The spreadsheet row of the first record whose cell count is not ``expected``.

        Only called once a file has been refused, to say where: Arrow does not know the row.
        """
        # Arrow's blocks (at most 64 MB) held every record so far, so no field is longer.
        limit = csv.field_size_limit(STREAM_BLOCK_BYTES)
        try:
            with self._open_binary() as raw:
                text = io.TextIOWrapper(
                    raw,
                    encoding="utf-8-sig" if self._encoding == "utf-8" else self._encoding,
                    errors="replace",
                    newline="",
                )
                records = csv.reader(text, delimiter=self._delimiter)
                for number, record in enumerate(records, start=1):
                    if number > 1 and max(len(record), 1) != expected:
                        return number
        except (csv.Error, OSError):
            return None
        finally:
            csv.field_size_limit(limit)
        return None

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
        text_columns |= set(self.layout.identity_columns)
        types = {h: (TEXT if h in text_columns else CODES) for h in wanted}
        big = self._text_size() > self.stream_above
        read_options = pacsv.ReadOptions(
            column_names=headers,
            skip_rows=1,
            block_size=(self.block_bytes or STREAM_BLOCK_BYTES) if big else 4 << 20,
        )
        parse_options = pacsv.ParseOptions(
            delimiter=self._delimiter, ignore_empty_lines=False, newlines_in_values=newlines
        )
        # Arrow reads every column when none is named: name one that is no direct identifier.
        harmless = [h for h in headers if h not in self.layout.dropped_identifier_columns]
        convert_options = pacsv.ConvertOptions(
            column_types=types, include_columns=wanted or (harmless or headers)[:1]
        )
        source = self._arrow_stream()
        stream = source
        if encoding != "utf-8":
            stream = pa.transcoding_input_stream(source, encoding, "utf-8")
        try:
            batches: Iterator[pa.RecordBatch | pa.Table]
            if big:
                batches = iter(pacsv.open_csv(stream, read_options, parse_options, convert_options))
            else:
                batches = iter(
                    [pacsv.read_csv(stream, read_options, parse_options, convert_options)]
                )
            start = 2
            for batch in batches:
                self._count(batch.num_rows)
                yield self._chunk(batch, np.arange(start, start + batch.num_rows, dtype=np.int64))
                start += batch.num_rows
        finally:
            source.close()

    def _count(self, rows: int) -> None:
        """Count rows read; refuse the file as soon as it passes ``max_rows``."""
        self._rows_read += rows
        if self._rows_read > self.max_rows:
            raise UnreadableFileError(
                f"{self.path.name} has more than {self.max_rows:,} rows; split it into files of "
                f"at most {self.max_rows:,} rows"
            )

    def _chunk(
        self,
        batch: pa.RecordBatch | pa.Table,
        row_numbers: np.ndarray,
        problems: list[CellProblem] | None = None,
    ) -> Chunk:
        n = batch.num_rows
        names = batch.schema.names
        problems = list(problems or [])
        cells: dict[str, pa.Array | pa.ChunkedArray] = {}
        for header in names:
            values = batch.column(names.index(header))
            long = _too_long(values)
            if long is not None:
                # The cell is blanked here so no coder, report or store ever sees its text.
                values = pc.if_else(long, pa.scalar(None, TEXT), pc.cast(values, TEXT))
                problems.extend(
                    CellProblem(
                        int(row_numbers[i]),
                        header,
                        f"is longer than {MAX_CELL_CHARS:,} characters, the most a cell may hold",
                    )
                    for i in np.flatnonzero(long.to_numpy(zero_copy_only=False))
                )
            cells[header] = _without_export_apostrophe(values)
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        for canonical, header in self.layout.source.items():
            if header in cells and self._want(canonical) and canonical != ID:
                columns[canonical] = cells[header]
        if self.layout.identity_columns and self._want(ID):
            columns[ID] = coalesce_identity([cells[h] for h in self.layout.identity_columns])
        for item, choices in self.layout.split.items():
            if self._want(item):
                columns[item] = _fold_split({code: cells[h] for code, h in choices.items()})
        rows = pa.array(row_numbers, pa.int64())
        blank = _blank_rows(columns, n)
        if blank is not None and problems:
            # A row whose only cells were blanked is rejected, not skipped as empty.
            flagged = np.isin(row_numbers, [p.row for p in problems])
            blank = pc.and_(blank, pa.array(~flagged))
        if blank is not None:
            keep = pc.invert(blank)
            columns = {k: pc.filter(v, keep) for k, v in columns.items()}
            rows = pc.filter(rows, keep)
        return Chunk(columns=columns, rows=rows, num_rows=len(rows), problems=tuple(problems))

    def _want(self, canonical: str) -> bool:
        return self.wanted is None or canonical in self.wanted

    def _wanted_headers(self) -> list[str]:
        heads = [h for c, h in self.layout.source.items() if self._want(c) and c != ID]
        if self._want(ID):
            heads.extend(self.layout.identity_columns)
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
        self,
        header: list[str],
        records: list[list[object]],
        rows: list[int],
        problems: list[CellProblem] | None = None,
    ) -> Chunk:
        """A chunk from rows of Python values, ``records[k][j]`` under ``header[j]``."""
        arrays = {}
        problems = list(problems or [])
        wanted = set(self._wanted_headers())
        for j, h in enumerate(header):
            if h not in wanted:
                continue
            texts: list[str] = []
            for k, record in enumerate(records):
                value = record[j] if j < len(record) else None
                if isinstance(value, (dict, list)):
                    problems.append(
                        CellProblem(
                            rows[k], h, "holds a JSON object or array; give one value instead"
                        )
                    )
                    value = None
                texts.append(cell_text(value))
            arrays[h] = pa.array(texts, TEXT)
        table = pa.table(arrays) if arrays else pa.table({"_": pa.nulls(len(records), TEXT)})
        return self._chunk(table, np.asarray(rows, dtype=np.int64), problems)

    def _xlsx_chunks(self) -> Iterator[Chunk]:
        source = self._xlsx_rows
        wanted = set(self._wanted_headers())
        picked = [j for j, h in enumerate(source.header) if h in wanted]
        header = [source.header[j] for j in picked]
        records: list[list[object]] = []
        rows: list[int] = []
        for number, row in enumerate(source.rows(), start=2):
            self._count(1)
            records.append([row[j] if j < len(row) else None for j in picked])
            rows.append(number)
            if len(records) >= XLSX_CHUNK_ROWS:
                yield self._records_chunk(header, records, rows)
                records, rows = [], []
        if records or not self._rows_read:
            yield self._records_chunk(header, records, rows)

    def chunks(self) -> Iterator[Chunk]:
        """Chunks of rows in file order; all-blank rows are skipped, numbering kept.

        Raises
        ------
        UnreadableFileError
            When the file turns out malformed while it is read, or passes ``max_rows``.
        """
        self._rows_read = 0
        if self.fmt in ("csv", "zip"):
            yield from self._csv_chunks()
        elif self.fmt == "xlsx":
            yield from self._xlsx_chunks()
        else:
            header = jsonl_header(self.path)
            known = set(header)
            for batch in jsonl_batches(self.path):
                self._count(len(batch))
                records, rows, extra, problems = jsonl_rows(batch, header, self.path.name)
                if extra - known:
                    first = min(n for n, r in batch if isinstance(r, dict) and set(r) - known)
                    if len(known | extra) > MAX_COLUMNS:
                        raise UnreadableFileError(too_many_columns(self.path, f"line {first}"))
                    self.layout.notes.append(
                        FileNote(
                            f"line {first} brings keys the first lines lack "
                            f"({', '.join(sorted(extra - known))}); they were ignored"
                        )
                    )
                    known |= extra
                yield self._records_chunk(header, records, rows, problems)


_CELL_COUNT = re.compile(r"Expected (\d+) columns, got (\d+)")
"""Arrow's "wrong number of cells" error; only its two numbers are ever used."""


def _without_export_apostrophe(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Cells as sent before a file for people neutralised them (DESIGN.md: a leading ``'``
    that an export put in front of ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
    read without it), so a fixable file or an export comes back as the values it was made of.
    Any other apostrophe is the sender's own and stays.

    Examples
    --------
    >>> _without_export_apostrophe(pa.array(["'=1+1", "'-abc", "'hello", "ok", None])).to_pylist()
    ['=1+1', '-abc', "'hello", 'ok', None]
    """
    if isinstance(values, pa.ChunkedArray):
        return pa.chunked_array(
            [_without_export_apostrophe(c) for c in values.chunks], type=values.type
        )
    if pa.types.is_dictionary(values.type):  # each distinct text once
        texts = _without_export_apostrophe(values.dictionary)
        if texts is values.dictionary:
            return values
        return pa.DictionaryArray.from_arrays(values.indices, texts)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return values
    if not pc.any(pc.starts_with(values, "'")).as_py():
        return values
    return pc.replace_substring_regex(values, pattern=r"^'([=+\-@\t\r])", replacement=r"\1")


def _too_long(values: pa.Array | pa.ChunkedArray) -> pa.Array | None:
    """Which cells are longer than :data:`MAX_CELL_CHARS`, or None when none is.

    Dictionary columns are measured through their dictionaries (a handful of distinct
    answers), other columns with one vectorised pass: reading pays nothing per row in Python.
    """
    if pa.types.is_dictionary(values.type):
        parts = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
        if all(
            len(p.dictionary) == 0 or pc.max(pc.utf8_length(p.dictionary)).as_py() <= MAX_CELL_CHARS
            for p in parts
        ):
            return None
        values = pc.cast(values, TEXT)
    elif not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return None
    lengths = pc.utf8_length(values)
    longest = pc.max(lengths).as_py()
    if longest is None or longest <= MAX_CELL_CHARS:
        return None
    long = pc.fill_null(pc.greater(lengths, MAX_CELL_CHARS), False)
    return long.combine_chunks() if isinstance(long, pa.ChunkedArray) else long


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


def _names_batch_columns(questionnaire: Questionnaire) -> Callable[[list[str]], bool]:
    """Whether a sheet's first row is a batch's header (names a canonical or form column)."""

    def accepts(headers: list[str]) -> bool:
        try:
            layout = map_headers(headers, questionnaire, "xlsx")
        except UnreadableFileError:
            return False
        return bool(layout.source or layout.split)

    return accepts
