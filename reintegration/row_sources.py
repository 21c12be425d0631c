"""Where rows come from in the formats read a row at a time: workbook sheets and JSON lines.

:class:`reintegration.reading.BatchReader` turns these rows into Arrow columns; this module only
opens the files and hands out Python values a row (workbooks) or a block of lines (JSON lines)
at a time, so that memory stays bounded whatever the size of the file. Reasons for refusing a
file never quote a cell or the file's XML.
"""

from __future__ import annotations

import functools
import itertools
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reintegration.errors import UnreadableFileError
from reintegration.limits import MAX_COLUMNS

JSONL_CHUNK_LINES = 50_000


@dataclass(frozen=True)
class CellProblem:
    """A cell the reader would not pass on (too long, a nested JSON value): its row is rejected.

    ``column`` is the header as the file writes it, or '' when the whole line is unreadable.
    """

    row: int
    column: str
    message: str


JSONL_LINE_LIMIT_BYTES = 16 << 20
"""A JSON line longer than this is no batch row (a CSV row must fit Arrow's block likewise)."""


def cell_text(value: object) -> str:
    """A JSON or workbook cell as the text a CSV would have held.

    NUL characters are dropped: a CSV holding one is refused as not text, but JSON (``\\u0000``)
    and workbooks (``_x0000_``) can spell one, and PostgreSQL cannot store it in text.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text[:10] if text.endswith("T00:00:00") else text
    text = str(value)
    return text.replace("\x00", "") if "\x00" in text else text


class XlsxSource:
    """The header and the data rows of the sheet a workbook's batch is on."""

    def __init__(
        self, name: str, header: list[str], rows: Iterator[Any], reopen: Callable[[], Iterator[Any]]
    ) -> None:
        self.name = name
        self.header = header
        self._rows: Iterator[Any] | None = rows
        self._reopen = reopen

    def rows(self) -> Iterator[Any]:
        """The data rows (sheet rows 2, 3, ...), each a sequence of cell values.

        The first call goes on from the header row already read; later ones read the sheet
        again.
        """
        rows = self._rows
        self._rows = None
        if rows is None:
            rows = self._reopen()
            next(rows, None)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except Exception as exc:  # corrupt XML or zip: the libraries' own error types
                # Their messages may quote the sheet's XML, so only the kind is kept.
                raise UnreadableFileError(
                    f"{self.name} is not a readable Excel workbook ({type(exc).__name__})"
                ) from None
            yield row


def xlsx_rows(path: Path, accepts: Callable[[list[str]], bool], in_memory_bytes: int) -> XlsxSource:
    """The first sheet whose header row names a canonical column: its header and its rows.

    A workbook whose sheets all unpack to at most ``in_memory_bytes`` is read by calamine,
    which loads a sheet whole; a larger one by openpyxl's read-only mode, which parses the
    sheet as it is iterated, so memory stays bounded whatever the row count.
    """
    with zipfile.ZipFile(path) as archive:
        sheet_bytes = max(
            (m.file_size for m in archive.infolist() if m.filename.startswith("xl/worksheets/")),
            default=0,
        )
    try:
        opener = calamine_sheets if sheet_bytes <= in_memory_bytes else openpyxl_sheets
        for position, rows in enumerate(opener(path)):
            first = next(rows, None) or []
            headers = [str(c) for c in first if c is not None and c != ""]
            if accepts(headers):
                header = [str(h) if h is not None else "" for h in first]
                return XlsxSource(
                    path.name,
                    header,
                    rows,
                    functools.partial(_nth_sheet, opener, path, position),
                )
    except UnreadableFileError:
        raise
    except Exception as exc:  # calamine and openpyxl raise their own types for corrupt files
        raise UnreadableFileError(
            f"{path.name} is not a readable Excel workbook ({type(exc).__name__})"
        ) from None
    raise UnreadableFileError(
        f"{path.name} has no sheet whose first row names a column of the batch format "
        "(submission_id, the items, ...)"
    )


def _nth_sheet(
    opener: Callable[[Path], Iterator[Iterator[Any]]], path: Path, position: int
) -> Iterator[Any]:
    return next(itertools.islice(opener(path), position, None))


def calamine_sheets(path: Path) -> Iterator[Iterator[Any]]:
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_path(str(path))
    for name in workbook.sheet_names:
        # iter_rows hands out Python values a row at a time from calamine's loaded sheet.
        yield iter(workbook.get_sheet_by_name(name).iter_rows())


def openpyxl_sheets(path: Path) -> Iterator[Iterator[Any]]:
    # data_only: a formula's cached value, as calamine gives it, never the formula's text.
    workbook = _open_streaming(path)
    # Not closed here: each sheet's rows read from the workbook's zip until they are dropped.
    for sheet in workbook.worksheets:
        yield iter(sheet.iter_rows(values_only=True))


def _open_streaming(path: Path) -> Any:
    """``openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)``,
    except that no sheet is read before its rows are asked for.

    openpyxl's read-only sheet looks for the sheet's ``<dimension>`` element when it is made,
    and a sheet without one (which Excel always writes, and a crafted file leaves out) is then
    parsed to its end, keeping an empty element per row: a 3 GB sheet cost one whole parse
    and hundreds of MB before its first row. Declared dimensions are not trusted anyway (a
    hostile "A1:XFD1048576" would pad every row to 16,384 cells), so each sheet is made
    without them, which is what ``reset_dimensions`` leaves. The loader's own steps are kept:
    this only replaces how it makes the sheets (openpyxl is pinned in pyproject.toml).
    """
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    class UnmeasuredSheet(ReadOnlyWorksheet):  # type: ignore[misc]
        def _get_size(self) -> None:
            self.reset_dimensions()

    class StreamingReader(ExcelReader):  # type: ignore[misc]
        def read_worksheets(self) -> None:
            for sheet, rel in self.parser.find_sheets():
                if rel.target not in self.valid_files or "chartsheet" in rel.Type:
                    continue
                ws = UnmeasuredSheet(self.wb, sheet.name, rel.target, self.shared_strings)
                ws.sheet_state = sheet.state
                self.wb._sheets.append(ws)

    reader = StreamingReader(path, read_only=True, data_only=True, keep_links=False)
    reader.read()
    return reader.wb


NESTED = object()
"""Stands for a JSON line nested too deeply to parse (its row is rejected, not the file)."""


def jsonl_batches(path: Path) -> Iterator[list[tuple[int, object]]]:
    """(line number, parsed value) of every non-blank line, :data:`JSONL_CHUNK_LINES` at a
    time, so a file of any size is read in bounded memory.

    A line that is not JSON gives None; one nested deeper than Python's parser goes gives
    :data:`NESTED`.

    Raises
    ------
    UnreadableFileError
        When a line is longer than :data:`JSONL_LINE_LIMIT_BYTES`.
    """
    batch: list[tuple[int, object]] = []
    with path.open("rb") as fh:
        number = 0
        while raw := fh.readline(JSONL_LINE_LIMIT_BYTES + 1):
            number += 1
            if len(raw) > JSONL_LINE_LIMIT_BYTES:
                raise UnreadableFileError(
                    f"{path.name}, line {number} is longer than "
                    f"{JSONL_LINE_LIMIT_BYTES >> 20} MB: too long to be a batch row"
                )
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace").strip()
            if not line:
                continue
            record: object
            try:
                record = json.loads(line)
            except RecursionError:
                record = NESTED
            except ValueError:  # not JSON, or a number of more digits than Python parses
                record = None
            batch.append((number, record))
            if len(batch) >= JSONL_CHUNK_LINES:
                yield batch
                batch = []
    if batch:
        yield batch


def jsonl_header(path: Path) -> list[str]:
    """The keys of the objects of the first block of lines, in order of appearance."""
    first = next(jsonl_batches(path), [])
    header: dict[str, None] = {}  # ordered, and a lookup costs the same however many keys
    for number, record in first:
        if isinstance(record, dict):
            header.update(dict.fromkeys(record))
            if len(header) > MAX_COLUMNS:
                raise UnreadableFileError(too_many_columns(path, f"line {number}"))
    if not header and not any(isinstance(r, dict) for _, r in first):
        nested = [number for number, r in first if r is NESTED]
        if nested and len(nested) == len(first):  # no other line to learn the columns from
            raise UnreadableFileError(
                f"{path.name}: every line nests objects or arrays too deeply to be read (line "
                f"{nested[0]} first); each line must be one flat JSON object"
            )
        raise UnreadableFileError(f"{path.name} has no line holding a JSON object")
    return list(header)


def too_many_columns(path: Path, where: str) -> str:
    return (
        f"{path.name}: {where} names more than {MAX_COLUMNS:,} columns; a batch file holds the "
        "columns of the canonical format or of the platform's form"
    )


def jsonl_rows(
    batch: list[tuple[int, object]], header: list[str], name: str
) -> tuple[list[list[object]], list[int], set[str], list[CellProblem]]:
    bad = [
        number for number, record in batch if record is not NESTED and not isinstance(record, dict)
    ]
    if bad:
        raise UnreadableFileError(
            f"{name}, line {bad[0]}: not a JSON object ({len(bad)} such line"
            f"{'s' if len(bad) > 1 else ''})"
        )
    records: list[list[object]] = []
    rows: list[int] = []
    problems: list[CellProblem] = []
    extra: set[str] = set()
    for number, record in batch:
        rows.append(number)
        if record is NESTED:
            records.append([None] * len(header))
            problems.append(
                CellProblem(
                    number,
                    "",
                    "the line nests objects or arrays too deeply to be read; each line must "
                    "be one flat JSON object",
                )
            )
            continue
        assert isinstance(record, dict)
        records.append([record.get(h) for h in header])
        extra.update(record)
    return records, rows, extra, problems
