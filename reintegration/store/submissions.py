"""Stored interviews read back for training, rescoring and drift: metadata and coded items.

A chunk's answers are fetched as one newline-joined text (the database concatenates them, in
``id`` order) and decoded in bulk by
:func:`reintegration.store.answers.decode_joined_answers`, the one reader of the stored form;
codes then become values once per distinct code, as ingest codes them
(:mod:`reintegration.coding`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from reintegration.coding import answer_table
from reintegration.questionnaire import Item, Questionnaire, normalise_answer
from reintegration.store.answers import decode_joined_answers
from reintegration.store.schema import submission

MISSING = float("nan")
METADATA = (
    "submission_id",
    "returnee_key",
    "batch_id",
    "interview_date",
    "return_date",
    "months_since_return",
    "survey_round",
    "sex",
    "age_at_return",
    "return_type",
    "country",
    "assistance",
    "weight",  # design or retention weight, float64, NaN when the interview has none
)


def _joined_answers(conn: sa.Connection, where: sa.ColumnElement[bool]) -> str:
    """The stored answers of the matching submissions, in ``id`` order, one per line."""
    inner = (
        sa.select(submission.c.id, _answers_text(conn))
        .where(where)
        .order_by(submission.c.id)
        .subquery()
    )
    joined = _joined(conn, inner.c.answers, "\n", inner.c.id)
    return conn.execute(sa.select(joined)).scalar() or ""


def _answers_text(conn: sa.Connection) -> sa.ColumnElement[str]:
    """``submission.answers`` as the text the database holds, not decoded by the driver."""
    if conn.dialect.name == "postgresql":
        return sa.cast(submission.c.answers, sa.Text).label("answers")
    return sa.type_coerce(submission.c.answers, sa.Text).label("answers")


def _joined(conn: sa.Connection, column: Any, separator: str, order: Any) -> sa.ColumnElement[str]:
    """The database's string aggregate of a column, in ``order``."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import aggregate_order_by

        return sa.func.string_agg(
            sa.cast(column, sa.Text),
            aggregate_order_by(sa.literal(separator), order),
            type_=sa.Text,
        )
    # SQLite (3.40 has no ORDER BY in aggregates) concatenates in the order its subquery
    # delivers the rows, which is ``order`` here.
    return sa.func.group_concat(column, sa.literal(separator), type_=sa.Text)


def _multiple_value(text: str, item: Item, questionnaire: Questionnaire) -> float:
    codes = set(text.split())
    if not codes or codes & {m.code for m in questionnaire.missing_codes}:
        return MISSING
    if item.exclusive is not None and item.exclusive.code in codes:
        return 1.0
    signs = {o.code for o in item.options}
    return 1.0 - len(codes & signs) / len(signs)


def _value_of(code: str | None, item: Item, questionnaire: Questionnaire) -> float:
    if code is None or code == "":
        return MISSING
    if item.is_multiple:
        return _multiple_value(code, item, questionnaire)
    return answer_table(item, questionnaire).get(normalise_answer(code), MISSING)


def item_values(codes: pa.Table, questionnaire: Questionnaire) -> dict[str, np.ndarray]:
    """Stored answer codes as coded values, as ingest codes them.

    Parameters
    ----------
    codes : pyarrow.Table
        One text column of answer codes per item (as ``decode_joined_answers`` gives).
    questionnaire : Questionnaire

    Returns
    -------
    dict of str to ndarray
        float64 per item: the option's value, ``NOT_APPLICABLE`` for not applicable, NaN for
        missing (blank, a missing code, or a code the spec no longer has).
    """
    out: dict[str, np.ndarray] = {}
    for name in codes.column_names:
        item = questionnaire.item(name)
        column = codes.column(name)
        encoded = pc.dictionary_encode(column).combine_chunks()
        values = [_value_of(c, item, questionnaire) for c in encoded.dictionary.to_pylist()]
        lookup = np.array([*values, MISSING], dtype=np.float64)
        indices = pc.fill_null(encoded.indices, len(values)).to_numpy(zero_copy_only=False)
        out[name] = lookup[indices]
    return out


def _window(
    *,
    current: bool = True,
    date_from: date | None = None,
    date_to: date | None = None,
    batch_id: str | None = None,
    returnee_keys: Sequence[str] | None = None,
    extra: sa.ColumnElement[bool] | None = None,
) -> sa.ColumnElement[bool]:
    clauses: list[sa.ColumnElement[bool]] = []
    if current:
        clauses.append(submission.c.current.is_(True))
    if date_from is not None:
        clauses.append(submission.c.interview_date >= date_from)
    if date_to is not None:
        clauses.append(submission.c.interview_date <= date_to)
    if batch_id is not None:
        clauses.append(submission.c.batch_id == batch_id)
    if returnee_keys is not None:
        clauses.append(submission.c.returnee_key.in_(list(returnee_keys)))
    if extra is not None:
        clauses.append(extra)
    return sa.and_(sa.true(), *clauses)


def read_submissions(
    conn: sa.Connection,
    questionnaire: Questionnaire,
    *,
    items: bool = True,
    **window: Any,
) -> pd.DataFrame:
    """Stored submissions with their metadata and, optionally, their coded items.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        A connection to the app's store (on SQLite, from ``for_reading(engine)``).
    questionnaire : Questionnaire
    items : bool, default True
        Add one float column per item (coded values, see :func:`item_values`).
    **window
        ``current`` (default True: only the current version of each interview),
        ``date_from`` / ``date_to`` (interview date, inclusive), ``batch_id``,
        ``returnee_keys``, ``extra`` (any further SQLAlchemy condition on ``submission``).

    Returns
    -------
    DataFrame
        ``pk`` (submission.id), :data:`METADATA` columns (dates as ``datetime64``), then the
        items; ordered by ``pk``.
    """
    where = _window(**window)
    # Dates come back as the driver gives them (ISO text on SQLite) and are parsed by pandas
    # for the whole column at once, not by SQLAlchemy row by row.
    columns = [
        submission.c.id.label("pk"),
        *(
            sa.type_coerce(submission.c[name], sa.String).label(name)
            if name in ("interview_date", "return_date")
            else submission.c[name]
            for name in METADATA
        ),
    ]
    rows = conn.execute(sa.select(*columns).where(where).order_by(submission.c.id)).fetchall()
    names = ["pk", *METADATA]
    by_column: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[]] * len(names)
    frame = pd.DataFrame(dict(zip(names, by_column, strict=True)))
    for name in ("interview_date", "return_date"):
        frame[name] = pd.to_datetime(frame[name])
    for name in ("months_since_return", "age_at_return", "survey_round", "weight"):
        frame[name] = pd.to_numeric(frame[name]).astype("float64")
    if not items:
        return frame
    codes = decode_joined_answers(_joined_answers(conn, where), questionnaire.item_ids, len(frame))
    values = item_values(codes, questionnaire)
    return pd.concat([frame, pd.DataFrame(values, index=frame.index)], axis=1)


def _answer_chunk(
    conn: sa.Connection, where: sa.ColumnElement[bool], after: int, rows: int
) -> tuple[np.ndarray, str]:
    """Ids and newline-joined answers of the next ``rows`` matching submissions after ``after``.

    One query, one row: the database concatenates both columns in ``id`` order, so a million
    interviews cost a few dozen round trips and no Python object per interview.
    """
    inner = (
        sa.select(submission.c.id, _answers_text(conn))
        .where(where, submission.c.id > after)
        .order_by(submission.c.id)
        .limit(rows)
        .subquery()
    )
    ids = _joined(conn, inner.c.id, ",", inner.c.id)
    text = _joined(conn, inner.c.answers, "\n", inner.c.id)
    found = conn.execute(sa.select(ids, text)).one()
    if not found[0]:
        return np.zeros(0, dtype=np.int64), ""
    return np.array(found[0].split(","), dtype=np.int64), found[1]


def iter_item_values(
    conn: sa.Connection,
    questionnaire: Questionnaire,
    where: sa.ColumnElement[bool],
    *,
    chunk_rows: int,
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """The coded items of the matching submissions, chunk by chunk in ``id`` order.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    questionnaire : Questionnaire
    where : SQLAlchemy condition on ``submission``
    chunk_rows : int
        Submissions per chunk.

    Yields
    ------
    ids : ndarray of int64
        ``submission.id`` of the chunk's rows.
    values : dict of str to ndarray
        Coded values per item (see :func:`item_values`).
    """
    last = 0
    while True:
        ids, text = _answer_chunk(conn, where, last, chunk_rows)
        if len(ids) == 0:
            return
        codes = decode_joined_answers(text, questionnaire.item_ids, len(ids))
        yield ids, item_values(codes, questionnaire)
        last = int(ids[-1])
