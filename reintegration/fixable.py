"""Files for people: the fixable file of a batch's rejected rows, formula-safe.

An enumerator downloads the rows that were rejected, with their cells as sent (the case
number replaced by the returnee's key) and an ``error`` column, fixes them and uploads the
file again: the key is taken as the returnee's key, so nothing identifying travels.

Only rows whose consent was recorded as yes are ever kept, so their consent cell travels with
them and the file passes the consent rule when it comes back. A batch whose uploader declared
that consent was recorded outside the form had no consent column: its fixable file has none
either (nothing is made up), and its re-upload needs the same declaration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reintegration.people_csv import csv_text

ERROR_COLUMN = "error"


def fixable_csv(rows: Iterable[Any], header: Sequence[str] | None = None) -> str:
    """The rejected rows as CSV: their cells as sent plus an ``error`` column, formula-safe
    (written by :mod:`reintegration.people_csv`).

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

    def line(row: Any) -> list[str]:
        cells: Mapping[str, str] = row.cells
        message = "; ".join(f"{e['column']}: {e['message']}" for e in row.errors)
        return [str(cells.get(c, "") or "") for c in columns] + [message]

    return csv_text([[*columns, ERROR_COLUMN], *(line(row) for row in materialised)])
