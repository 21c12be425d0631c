"""Files for people: the fixable file of a batch's rejected rows, formula-safe.

An enumerator downloads the rows that were rejected, with their cells as sent (the case
number replaced by the returnee's key) and an ``error`` column, fixes them and uploads the
file again: the key is taken as the returnee's key, so nothing identifying travels.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@")
ERROR_COLUMN = "error"


def neutralise(cell: str) -> str:
    """A text cell that a spreadsheet would run as a formula gets a leading apostrophe.

    Numbers (``-3``, ``+1.5``) are left alone: they are data, not formulas.

    Examples
    --------
    >>> neutralise("=HYPERLINK(1)"), neutralise("-3"), neutralise("@sum"), neutralise("ok")
    ("'=HYPERLINK(1)", '-3', "'@sum", 'ok')
    """
    if not cell or not cell.startswith(FORMULA_STARTS):
        return cell
    try:
        float(cell)
    except ValueError:
        return "'" + cell
    return cell


def fixable_csv(rows: Iterable[Any], header: Sequence[str] | None = None) -> str:
    """The rejected rows as CSV: their cells as sent plus an ``error`` column, neutralised.

    Parameters
    ----------
    rows : iterable
        Objects with ``cells`` (mapping of column to text) and ``errors`` (list of
        ``{column, value, message}``), in row order.
    header : sequence of str, optional
        Column order (default: the order the cells first appear in).
    """
    materialised = list(rows)
    columns: list[str] = list(header or [])
    for row in materialised:
        columns.extend(c for c in row.cells if c not in columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*columns, ERROR_COLUMN])
    for row in materialised:
        cells: Mapping[str, str] = row.cells
        message = "; ".join(f"{e['column']}: {e['message']}" for e in row.errors)
        writer.writerow(
            [neutralise(str(cells.get(c, "") or "")) for c in columns] + [neutralise(message)]
        )
    return out.getvalue()
