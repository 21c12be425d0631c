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

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
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


def _sorting(values: np.ndarray) -> np.ndarray:
    """The order that sorts returnee references: integers, or keys by code point (Arrow's
    sort, as Python compares them; never the database's collation)."""
    if values.dtype != object:
        return np.argsort(values, kind="stable")
    return pc.sort_indices(pa.array(values, pa.string())).to_numpy()


def _fetch_rows(conn: sa.Connection, sql: str, params: Any) -> list[Any]:
    cursor = conn.connection.cursor()
    cursor.execute(sql, params)
    return list(cursor.fetchall())


def read_base(
    conn: sa.Connection, child_age_below: int, returnees: Sequence[str] | None = None
) -> pd.DataFrame:
    """The current submissions with their returnee's attributes, sorted by returnee and round.

    Columns: ``id`` (submission.id), ``rkey`` (a number per returnee), ``interview_day``,
    ``return_day`` (days since 1970-01-01), ``months_since_return``, ``round``,
    ``record_key`` (the submission's permanent random key, int64, for cell-key perturbation),
    ``weight`` (the interview's design or retention weight, float64, NaN when it has none),
    ``sex``, ``age_group``, ``return_type``, ``country`` and ``enumerator_id`` (categoricals;
    the enumerator is each interview's cluster in intervals).

    ``rkey`` ranks the returnees by their reference (SQLite's rowid, else the key), and rows
    of one returnee come in round order (then by id); categories are the values that occur,
    sorted (``age_group``: child, adult). So the frame depends only on the stored rows, and
    :func:`merge_panels` can rebuild it from an older one. ``attrs["refs"]`` holds the
    reference of each ``rkey`` and ``attrs["touched"]`` those of every returnee read: pop them
    before using the frame (pandas copies ``attrs`` into everything derived from it).

    With ``returnees`` (keys, e.g. from :func:`touched_returnees`), only those returnees are
    read.
    """
    dialect = conn.dialect.name
    ref = _returnee_ref(dialect)
    touched = _Only(conn, returnees)
    sql = (
        f"SELECT s.id, {_day_number('s.interview_date', dialect)}, "
        f"{_day_number('s.return_date', dialect)}, s.months_since_return, s.survey_round, "
        f"s.record_key, s.weight, {ref} "
        f"FROM submission s JOIN returnee r ON r.key = s.returnee_key WHERE s.current"
        # Both sides restricted, so that either can be read through its index.
        + touched.where("s.returnee_key")
        + touched.where("r.key")
    )
    both = touched.params * 2 if touched.sqlite else touched.params  # "?" twice; names once
    if dialect == "sqlite":
        # A record key (< 2**31) is exact in a float64, as are ids and day numbers.
        numbers = _fetch_numbers(conn, sql, both, 8)
        refs: np.ndarray = numbers[:, 7].astype(np.int64)
    else:
        raw = np.array(_fetch_rows(conn, sql, both), dtype=object).reshape(-1, 8)
        numbers, refs = np.array(raw[:, :7], dtype=np.float64), raw[:, 7]
    people = pd.DataFrame.from_records(
        _fetch_rows(
            conn,
            f"SELECT {ref}, sex, age_at_return, return_type, country FROM returnee r WHERE 1 = 1"
            + touched.where("r.key"),
            touched.params,
        ),
        columns=["ref", "sex", "age", "return_type", "country"],
    )
    by_ref = _sorting(people["ref"].to_numpy())
    people = people.iloc[by_ref].reset_index(drop=True)
    known = people["ref"].to_numpy()
    where = pd.Index(known).get_indexer(refs)
    used = np.zeros(len(people), dtype=bool)
    used[where] = True
    rank = np.cumsum(used) - 1  # rkey: the rank among the returnees that have a row
    order = np.lexsort((numbers[:, 0], numbers[:, 4], where))
    numbers, where = numbers[order], where[order]
    age = pd.to_numeric(people["age"], errors="coerce").to_numpy(float)
    age_code = np.where(np.isnan(age), -1, (age >= child_age_below).astype(np.int64))
    frame = pd.DataFrame(
        {
            "id": numbers[:, 0].astype(np.int64),
            "rkey": rank[where].astype(np.int64),
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
        frame[column] = pd.Categorical.from_codes(
            categories.codes[where], categories.categories
        ).remove_unused_categories()
    frame["age_group"] = pd.Categorical.from_codes(age_code[where], ["child", "adult"])
    frame["enumerator_id"] = _enumerators(conn, frame["id"].to_numpy(), touched)
    frame.attrs["refs"] = known[used]
    frame.attrs["touched"] = known
    return frame


def _enumerators(conn: sa.Connection, ids: np.ndarray, touched: _Only) -> pd.Categorical:
    """Each current submission's enumerator (missing where none): the clusters of intervals."""
    pairs = _fetch_rows(
        conn,
        "SELECT id, enumerator_id FROM submission WHERE current AND enumerator_id IS NOT NULL"
        + touched.where("returnee_key"),
        touched.params,
    )
    codes = np.full(len(ids), -1, dtype=np.int64)
    if not pairs:
        return pd.Categorical.from_codes(codes, categories=pd.Index([], dtype=object))
    found = pd.Categorical(np.array([name for _, name in pairs], dtype=object))
    at = pd.Index(ids).get_indexer(np.array([pk for pk, _ in pairs], dtype=np.int64))
    codes[at[at >= 0]] = found.codes[at >= 0]
    return pd.Categorical.from_codes(codes, categories=found.categories).remove_unused_categories()


def read_scores(
    conn: sa.Connection,
    ids: np.ndarray,
    index_version: str,
    returnees: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The ``index_version`` scores of the submissions ``ids`` (in that order; NaN if none).

    Columns: the figures, ``level`` (categorical) and ``sustainable`` (1.0, 0.0 or NaN).
    With ``returnees`` (the keys of the returnees ``ids`` belong to), only the scores of
    ``ids`` are read, by primary key.
    """
    # Restricted: by the ids themselves (the score's primary key), never through a join a
    # plan could turn into a scan of every score of the label.
    only = _Only(conn, None if returnees is None else [int(i) for i in ids], index_version)
    numbers = _fetch_numbers(
        conn,
        "SELECT submission_pk, economic, social, psychosocial, composite, "
        "CASE level WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2 END, "
        "CASE WHEN sustainable THEN 1 WHEN NOT sustainable THEN 0 END "
        "FROM score WHERE index_version = " + only.label + only.where("submission_pk"),
        only.params,
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


def read_assistance(conn: sa.Connection, returnees: Sequence[str] | None = None) -> pd.Series:
    """The assistance codes (space-separated text) of current submissions that have any,
    indexed by submission id (with ``returnees``: of those returnees only)."""
    touched = _Only(conn, returnees)
    rows = _fetch_rows(
        conn,
        "SELECT id, assistance FROM submission "
        "WHERE current AND assistance IS NOT NULL AND assistance <> ''"
        + touched.where("returnee_key"),
        touched.params,
    )
    return pd.Series(dict(rows), dtype=object) if rows else pd.Series(dtype=object)


def touched_returnees(conn: sa.Connection, batches: Sequence[str]) -> list[str]:
    """The keys of the returnees ``batches`` touched: those with a submission sharing an
    interview identity with a submission of one of them (a new returnee, a new round, an edit,
    and the returnee an edit moved an interview away from), sorted.

    Two indexed reads (by batch, then by interview identity) with the values resolved in
    between, so that no plan can scan every submission whatever the statistics say.
    """
    if not batches:
        return []
    only = _Only(conn, list(batches))
    ids = [
        r[0]
        for r in _fetch_rows(
            conn,
            "SELECT submission_id FROM submission WHERE 1 = 1" + only.where("batch_id"),
            only.params,
        )
    ]
    only = _Only(conn, ids)
    keys = _fetch_rows(
        conn,
        "SELECT DISTINCT returnee_key FROM submission WHERE 1 = 1" + only.where("submission_id"),
        only.params,
    )
    return sorted(str(r[0]) for r in keys)


class _Only:
    """The SQL condition "one of these values" (all when None), with the label before it if
    any, as the driver's own parameters (this module reads through the driver's cursor): one
    JSON array on SQLite, one array on PostgreSQL, however many values."""

    def __init__(
        self, conn: sa.Connection, values: Sequence[Any] | None, label: str | None = None
    ) -> None:
        self.sqlite = conn.dialect.name == "sqlite"
        self.values = None if values is None else list(values)
        given: list[Any] = [] if label is None else [label]
        if self.values is not None:
            given.append(json.dumps(self.values) if self.sqlite else self.values)
        names = [f"p{i}" for i in range(len(given))]
        self.params: Any = tuple(given) if self.sqlite else dict(zip(names, given, strict=True))
        marks = ["?"] * len(given) if self.sqlite else [f"%({n})s" for n in names]
        self.label = marks[0] if label is not None else ""
        self._mark = marks[-1] if marks else ""

    def where(self, column: str, through: str = "") -> str:
        """`` AND column IN (the values)``, or nothing when there is no restriction;
        ``through``: ``column IN (through + the condition on s.returnee_key)``."""
        if self.values is None:
            return ""

        def one_of(name: str) -> str:
            if self.sqlite:
                return f"{name} IN (SELECT value FROM json_each({self._mark}))"
            return f"{name} = ANY({self._mark})"

        if through:
            return f" AND {column} IN ({through}{one_of('s.returnee_key')})"
        return f" AND {one_of(column)}"


# -- applying a change to a frame ---------------------------------------------------------------

# Categoricals whose categories are fixed (every other one lists the values that occur, sorted).
FIXED_CATEGORIES = ("age_group", "months_band", "level")


@dataclass(frozen=True)
class Placement:
    """Where the kept rows of an older frame and the rows read again go in the new frame.

    Made by :func:`place`; :meth:`combine` applies it to any frame of the same rows (the base,
    a version's scores), so every frame of a data version shares one order.
    """

    keep: np.ndarray  # per old row: kept
    is_new: np.ndarray  # per new-frame row: read again (else kept, in their old order)
    kept_rkey: np.ndarray
    new_rkey: np.ndarray
    refs: np.ndarray  # the new frame's reference of each rkey

    def combine(self, old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
        """The new frame from ``old`` (all its rows; the kept ones are used) and ``new`` (the
        rows read again, in their own returnee and round order), columns as in ``old``.

        The kept rows are taken block by block (no column is copied twice), then the new rows
        written into their places; a categorical is rebuilt only when its categories change.
        """
        source = np.zeros(len(self.is_new), dtype=np.int64)
        source[~self.is_new] = np.flatnonzero(self.keep)
        out = old.take(source)
        out.index = pd.RangeIndex(len(source))
        at = np.flatnonzero(self.is_new)
        for j, name in enumerate(old.columns):
            if name == "rkey":
                out[name] = self._fill(self.kept_rkey, self.new_rkey, np.int64)
            elif isinstance(old[name].dtype, pd.CategoricalDtype):
                column = self._categorical(name, old[name].array, new[name].array)
                if column is not None:
                    out[name] = column
                elif len(at):
                    categories = old[name].cat.categories
                    codes = _recode(
                        np.asarray(new[name].cat.codes),
                        categories.get_indexer(new[name].cat.categories),
                    )
                    out.iloc[at, j] = pd.Categorical.from_codes(codes, dtype=old[name].dtype)
            elif len(at):
                values = new[name].to_numpy()
                if values.dtype != out[name].dtype:
                    out[name] = self._fill(old[name].to_numpy()[self.keep], values, values.dtype)
                else:
                    out.iloc[at, j] = values
        return out

    def _fill(self, kept: np.ndarray, new: np.ndarray, dtype: Any) -> np.ndarray:
        out = np.empty(len(self.is_new), dtype=dtype)
        out[~self.is_new] = kept
        out[self.is_new] = new
        return out

    def _categorical(self, name: str, old: Any, new: Any) -> pd.Categorical | None:
        """The column rebuilt over new categories, or None when the old ones still fit (the
        new rows' values are among them and, unless fixed, every one is still used)."""
        codes = np.asarray(old.codes)
        if name in FIXED_CATEGORIES:
            categories = old.categories
        else:  # the values that occur in the new frame, sorted, as a fresh read lists them
            counts = np.bincount(codes[self.keep] + 1, minlength=len(old.categories) + 1)
            used = [old.categories[counts[1:] > 0]]
            used.append(new.remove_unused_categories().categories)
            used = [u for u in used if len(u)]
            categories = used[0] if used else old.categories[:0]
            for more in used[1:]:
                categories = categories.union(more)
            categories = categories.sort_values()
        if categories.equals(old.categories) and new.categories.isin(categories).all():
            return None
        kept = _recode(codes[self.keep], categories.get_indexer(old.categories))
        more = _recode(np.asarray(new.codes), categories.get_indexer(new.categories))
        return pd.Categorical.from_codes(self._fill(kept, more, np.int64), categories)


def _recode(codes: np.ndarray, to: np.ndarray) -> np.ndarray:
    if not len(to):
        return np.full(len(codes), -1, dtype=np.int64)
    return np.where(codes < 0, -1, to[np.maximum(codes, 0)]).astype(np.int64)


def place(
    old_rkey: np.ndarray,
    old_refs: np.ndarray,
    drop: np.ndarray,
    new_rkey: np.ndarray,
    new_refs: np.ndarray,
) -> Placement:
    """Plan the frame made of an older one's rows not in ``drop`` and of rows read again.

    Parameters
    ----------
    old_rkey, old_refs : numpy.ndarray
        The older frame's ``rkey`` per row and reference per ``rkey`` (sorted).
    drop : numpy.ndarray of bool
        Per older row: left out (erased, or its returnee is read again).
    new_rkey, new_refs : numpy.ndarray
        The same for the rows read again (:func:`read_base` with ``returnees``).

    Raises
    ------
    ValueError
        A returnee both kept and read again (its older rows were not all dropped).

    Examples
    --------
    >>> p = place(np.array([0, 0, 1]), np.array([10, 20]), np.array([False, False, True]),
    ...           np.array([0, 1]), np.array([5, 20]))
    >>> p.refs.tolist(), p.kept_rkey.tolist(), p.new_rkey.tolist(), p.is_new.tolist()
    ([5, 10, 20], [1, 1], [0, 2], [True, False, False, True])
    """
    keep = ~drop
    kept_old = old_rkey[keep]
    present = np.zeros(len(old_refs), dtype=bool)
    present[kept_old] = True
    kept_refs = old_refs[present]
    inserted = np.searchsorted(kept_refs, new_refs)
    if len(new_refs) and len(kept_refs):
        at = np.minimum(inserted, len(kept_refs) - 1)
        if (kept_refs[at] == new_refs).any():
            raise ValueError("a returnee read again still has kept rows")
    before = np.cumsum(np.bincount(inserted, minlength=len(kept_refs) + 1))[: len(kept_refs)]
    kept_rank = np.arange(len(kept_refs)) + before
    new_rank = inserted + np.arange(len(new_refs))
    refs = np.empty(len(kept_refs) + len(new_refs), dtype=old_refs.dtype)
    refs[kept_rank] = kept_refs
    refs[new_rank] = new_refs
    old_to_new = np.full(len(old_refs), -1, dtype=np.int64)
    old_to_new[present] = kept_rank
    kept_rkey = old_to_new[kept_old]
    placed_rkey = new_rank[new_rkey] if len(new_rkey) else np.zeros(0, np.int64)
    rows = np.searchsorted(kept_rkey, placed_rkey) + np.arange(len(placed_rkey))
    is_new = np.zeros(len(kept_rkey) + len(placed_rkey), dtype=bool)
    is_new[rows] = True
    return Placement(keep, is_new, kept_rkey, placed_rkey.astype(np.int64), refs)
