"""CSV for people: every file a person may open in a spreadsheet is written here, formula-safe.

Error tables, fixable files, score and worklist exports and the dashboards' downloads all go
through :func:`csv_text` (or :class:`PeopleCsvWriter`), so there is one rule, OWASP's:

- a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, and is
  not a number, gets a leading ``'`` (a spreadsheet shows it as text and runs nothing);
- a cell that holds a carriage return or a line feed anywhere is quoted, so a spreadsheet
  cannot start a new row inside it (``ok\\r=1+1`` stays one cell, not a row whose first cell is
  ``=1+1``).

Python's ``csv`` module quotes a field only for the characters of its own line terminator: with
``\\n`` line ends a bare ``\\r`` went out unquoted. Rows are therefore formatted with ``\\r\\n``,
which makes both characters force quotes, and each row's own terminator is then written as
``\\n``. Stored text is kept as sent; only these files change it.

``reintegration score --out`` writes data for programs, not for people: it does not come here.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# What a spreadsheet reads as a plain number; such a cell runs nothing, so it is left alone.
# Stricter than float(): "-inf", "-1_0" or " -3" are not numbers to a spreadsheet.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ROW_END = "\r\n"


def neutralise(cell: str) -> str:
    """A text cell that a spreadsheet would run as a formula, with a leading apostrophe.

    Parameters
    ----------
    cell : str
        The text as stored.

    Returns
    -------
    str
        ``cell`` with ``'`` in front when it starts with ``=``, ``+``, ``-``, ``@``, a tab or a
        carriage return and is not a number; otherwise ``cell`` itself.

    Examples
    --------
    >>> neutralise("=HYPERLINK(1)"), neutralise("-3.5"), neutralise("@sum"), neutralise("ok")
    ("'=HYPERLINK(1)", '-3.5', "'@sum", 'ok')
    >>> neutralise("\\t=1"), neutralise("\\r=1"), neutralise("+1"), neutralise("-x")
    ("'\\t=1", "'\\r=1", '+1', "'-x")
    """
    if not cell.startswith(FORMULA_STARTS) or _NUMBER.fullmatch(cell):
        return cell
    return "'" + cell


def cell_text(value: Any) -> str:
    """The text of one cell of a file for people.

    Parameters
    ----------
    value : object
        ``None`` and NaN become an empty cell; text is neutralised (see :func:`neutralise`);
        anything else is written as ``str(value)``, neutralised too (a negative number stays
        a number).

    Returns
    -------
    str

    Examples
    --------
    >>> cell_text(None), cell_text(float("nan")), cell_text(-3.5), cell_text(7), cell_text("+x")
    ('', '', '-3.5', '7', "'+x")
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return neutralise(value if isinstance(value, str) else str(value))


class PeopleCsvWriter:
    """Writes rows of cells as formula-safe CSV to a text stream, ``\\n`` after each row.

    Parameters
    ----------
    out : text stream
        Where the rows go.

    Examples
    --------
    >>> out = io.StringIO()
    >>> PeopleCsvWriter(out).writerows([["a", "b"], ["ok\\r=1+1", -3.5]])
    >>> out.getvalue()
    'a,b\\n"ok\\r=1+1",-3.5\\n'
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._row = io.StringIO()
        self._csv = csv.writer(self._row, lineterminator=_ROW_END)

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row; each cell goes through :func:`cell_text`."""
        self._csv.writerow([cell_text(value) for value in row])
        line = self._row.getvalue()
        self._row.seek(0)
        self._row.truncate()
        self._out.write(line[: -len(_ROW_END)] + "\n")

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write every row of ``rows``."""
        for row in rows:
            self.writerow(row)


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """Rows of cells as formula-safe CSV text (UTF-8 when encoded, ``\\n`` line ends).

    Parameters
    ----------
    rows : iterable of iterables
        The header first, if any; cells as for :func:`cell_text`.

    Returns
    -------
    str

    Examples
    --------
    >>> csv_text([["name", "note"], ["=1+1", "two\\nlines"]])
    'name,note\\n\\'=1+1,"two\\nlines"\\n'
    """
    out = io.StringIO()
    PeopleCsvWriter(out).writerows(rows)
    return out.getvalue()


def csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """As :func:`csv_text`, one line at a time, for answers streamed as they are read.

    Examples
    --------
    >>> list(csv_lines([["a"], ["=1+1"]]))
    ['a\\n', "'=1+1\\n"]
    """
    out = io.StringIO()
    writer = PeopleCsvWriter(out)
    for row in rows:
        writer.writerow(row)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
