"""Reading the stored panel into memory, as compact arrays, quickly.

The analytics (``reintegration.analytics``) answer from a frame of the current submissions; this
module builds it. The cost of reading a million rows through the database driver is the Python
objects it makes, about half a microsecond per value, so the reads are shaped to make as few as
possible: numbers rather than text (dates as day numbers, the level as a code, the returnee as
an integer on SQLite), the returnees' attributes once per returnee rather than once per
submission, each index version's scores once and aligned by submission id, and the assistance
text only when an answer needs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from reintegration.aggregate import LEVELS

FIGURES = ("economic", "social", "psychosocial", "composite")
FETCH_ROWS = 100_000
_UNIX_JULIAN_DAY = 2440587.5  # julianday('1970-01-01')


def _day_number(column: str, dialect: str) -> str:
    if dialect == "sqlite":
        return f"julianday({column}) - {_UNIX_JULIAN_DAY}"
    return f"({column} - DATE '1970-01-01')"


def _returnee_ref(dialect: str) -> str:
    # SQLite's rowid is an integer the driver hands over cheaply; elsewhere, the key itself.
    return "r.rowid" if dialect == "sqlite" else "r.key"


def _fetch_numbers(conn: sa.Connection, sql: str, params: Any, width: int) -> np.ndarray:
    """Rows of numbers (NULL as NaN) as one float64 array, fetched in blocks."""
    # The driver's own cursor: its rows are plain tuples, which NumPy reads at C speed
    # (SQLAlchemy's Row objects send NumPy probing for attributes, ten times slower).
    cursor = conn.connection.cursor()
    cursor.execute(sql, params)
    blocks = []
    while rows := cursor.fetchmany(FETCH_ROWS):
        blocks.append(np.array(rows, dtype=np.float64))
    return np.concatenate(blocks) if blocks else np.empty((0, width))


def _fetch_rows(conn: sa.Connection, sql: str, params: Any) -> list[Any]:
    cursor = conn.connection.cursor()
    cursor.execute(sql, params)
    return list(cursor.fetchall())


def read_base(conn: sa.Connection, child_age_below: int) -> pd.DataFrame:
    """The current submissions with their returnee's attributes, sorted by returnee and round.

    Columns: ``id`` (submission.id), ``rkey`` (a number per returnee), ``interview_day``,
    ``return_day`` (days since 1970-01-01), ``months_since_return``, ``round``,
    ``record_key`` (the submission's permanent random key, int64, for cell-key perturbation),
    ``weight`` (the interview's design or retention weight, float64, NaN when it has none),
    ``sex``, ``age_group``, ``return_type``, ``country`` and ``enumerator_id`` (categoricals;
    the enumerator is each interview's cluster in intervals).
    """
    dialect = conn.dialect.name
    ref = _returnee_ref(dialect)
    sql = (
        f"SELECT s.id, {_day_number('s.interview_date', dialect)}, "
        f"{_day_number('s.return_date', dialect)}, s.months_since_return, s.survey_round, "
        f"s.record_key, s.weight, {ref} "
        f"FROM submission s JOIN returnee r ON r.key = s.returnee_key WHERE s.current"
    )
    if dialect == "sqlite":
        # A record key (< 2**31) is exact in a float64, as are ids and day numbers.
        numbers = _fetch_numbers(conn, sql, (), 8)
        refs: np.ndarray = numbers[:, 7].astype(np.int64)
    else:
        raw = np.array(_fetch_rows(conn, sql, ()), dtype=object).reshape(-1, 8)
        numbers, refs = np.array(raw[:, :7], dtype=np.float64), raw[:, 7]
    people = pd.DataFrame.from_records(
        _fetch_rows(
            conn, f"SELECT {ref}, sex, age_at_return, return_type, country FROM returnee r", ()
        ),
        columns=["ref", "sex", "age", "return_type", "country"],
    )
    where = pd.Index(people["ref"]).get_indexer(refs)
    order = np.lexsort((numbers[:, 4], where))
    numbers, where = numbers[order], where[order]
    age = pd.to_numeric(people["age"], errors="coerce").to_numpy(float)
    age_code = np.where(np.isnan(age), -1, (age >= child_age_below).astype(np.int64))
    frame = pd.DataFrame(
        {
            "id": numbers[:, 0].astype(np.int64),
            "rkey": where.astype(np.int64),
            "interview_day": numbers[:, 1].astype(np.int64),
            "return_day": numbers[:, 2].astype(np.int64),
            "months_since_return": numbers[:, 3],
            "round": np.nan_to_num(numbers[:, 4]).astype(np.int64),
            "record_key": numbers[:, 5].astype(np.int64),
            "weight": numbers[:, 6],  # NULL read as NaN: no weight
        }
    )
    for column in ("sex", "return_type", "country"):
        categories = pd.Categorical(people[column].to_numpy(dtype=object))
        frame[column] = pd.Categorical.from_codes(categories.codes[where], categories.categories)
    frame["age_group"] = pd.Categorical.from_codes(age_code[where], ["child", "adult"])
    frame["enumerator_id"] = _enumerators(conn, frame["id"].to_numpy())
    return frame


def _enumerators(conn: sa.Connection, ids: np.ndarray) -> pd.Categorical:
    """Each current submission's enumerator (missing where none): the clusters of intervals."""
    pairs = _fetch_rows(
        conn,
        "SELECT id, enumerator_id FROM submission WHERE current AND enumerator_id IS NOT NULL",
        (),
    )
    codes = np.full(len(ids), -1, dtype=np.int64)
    if not pairs:
        return pd.Categorical.from_codes(codes, categories=pd.Index([], dtype=object))
    found = pd.Categorical(np.array([name for _, name in pairs], dtype=object))
    at = pd.Index(ids).get_indexer(np.array([pk for pk, _ in pairs], dtype=np.int64))
    codes[at[at >= 0]] = found.codes[at >= 0]
    return pd.Categorical.from_codes(codes, categories=found.categories)


def read_scores(conn: sa.Connection, ids: np.ndarray, index_version: str) -> pd.DataFrame:
    """The ``index_version`` scores of the submissions ``ids`` (in that order; NaN if none).

    Columns: the figures, ``level`` (categorical) and ``sustainable`` (1.0, 0.0 or NaN).
    """
    numbers = _fetch_numbers(
        conn,
        "SELECT submission_pk, economic, social, psychosocial, composite, "
        "CASE level WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2 END, "
        "CASE WHEN sustainable THEN 1 WHEN NOT sustainable THEN 0 END "
        "FROM score WHERE index_version = " + _placeholder(conn) + "",
        _params(conn, index_version),
        7,
    )
    by_id = np.argsort(ids, kind="stable")
    pks = numbers[:, 0].astype(np.int64)
    slot = np.searchsorted(ids[by_id], pks)
    slot = np.clip(slot, 0, max(len(ids) - 1, 0))
    found = (ids[by_id][slot] == pks) if len(ids) else np.zeros(len(pks), bool)
    target = by_id[slot[found]] if len(ids) else np.zeros(0, np.int64)
    values = np.full((len(ids), 6), np.nan)
    values[target] = numbers[found, 1:]
    out = pd.DataFrame(values[:, :4], columns=list(FIGURES))
    codes = np.nan_to_num(values[:, 4], nan=-1).astype(np.int64)
    out["level"] = pd.Categorical.from_codes(codes, list(LEVELS))
    out["sustainable"] = values[:, 5]
    return out


def read_assistance(conn: sa.Connection) -> pd.Series:
    """The assistance codes (space-separated text) of current submissions that have any,
    indexed by submission id."""
    rows = _fetch_rows(
        conn,
        "SELECT id, assistance FROM submission "
        "WHERE current AND assistance IS NOT NULL AND assistance <> ''",
        (),
    )
    return pd.Series(dict(rows), dtype=object) if rows else pd.Series(dtype=object)


def _placeholder(conn: sa.Connection) -> str:
    return "?" if conn.dialect.name == "sqlite" else "%(label)s"


def _params(conn: sa.Connection, label: str) -> Any:
    return (label,) if conn.dialect.name == "sqlite" else {"label": label}
