"""Size limits that reading, validation and the store share, so they cannot drift apart.

Plain numbers without imports: the store's schema, the settings, the reader and the row
validation all read them from here.
"""

from __future__ import annotations

DEFAULT_MAX_ROWS = 2_000_000
"""Default of ``REINTEGRATION_MAX_ROWS``: the most data rows a batch file may hold, any format."""

MAX_COLUMNS = 1_000
"""The most columns (fields, keys) a batch file or a scoring request may name: the canonical
format, a Kobo export with select-multiple as 0/1 columns and its system columns need a few
hundred at most, and a file naming far more is built to keep the reader busy."""

MAX_CELL_CHARS = 32_767
"""The longest cell read, in characters: what one spreadsheet cell can hold (Excel's limit).
A longer cell rejects its row; its text is never passed on."""

STORED_TEXT_CHARS: dict[str, int] = {
    "submission_id": 200,
    "admin1": 200,
    "enumerator_id": 200,
    "form_version": 100,
}
"""The longest text each free-text column of an interview may hold, in characters: the length
of its column in the store (``reintegration.store.schema`` builds the columns from this table)
and the row validation's limit, the same on SQLite and PostgreSQL."""
