"""Rescoring stored interviews with another index version, keeping every earlier score.

A score row is keyed by submission, model and index label, so scoring with a new label adds
rows beside the old ones: any figure can be reproduced for any version. Only current
submissions that have no score of this label yet are scored (promoting a version back scores
only what arrived since). The whole run is one transaction, chunk by chunk, and bumps the data
version in it, so readers see all the new scores at once or none.

The path is lean because it runs over every stored interview: answers are read a chunk at a
time as one text and parsed by Arrow, the index scores whole arrays, and rows go to the
driver's bulk path (``executemany`` on SQLite, ``COPY`` on PostgreSQL).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from reintegration.index import LEVELS, ReintegrationIndex
from reintegration.questionnaire import Questionnaire
from reintegration.store.batches import lock_for_ingest
from reintegration.store.bulk import insert_columns, is_postgres, timestamp
from reintegration.store.data_version import bump_data_version
from reintegration.store.engine import for_reading
from reintegration.store.schema import score, submission
from reintegration.store.submissions import iter_item_values

log = logging.getLogger(__name__)

CHUNK_ROWS = 50_000
BOOLEANS = (False, True)
_DONE = object()


def unscored(model: str, label: str) -> sa.ColumnElement[bool]:
    """Current submissions without a score of this model and index label."""
    done = sa.select(score.c.submission_pk).where(
        score.c.model == model, score.c.index_version == label
    )
    return sa.and_(submission.c.current.is_(True), submission.c.id.not_in(done))


def _labelled(codes: np.ndarray, labels: tuple[Any, ...]) -> list[Any]:
    """Int8 codes (-1 missing) as labels, None where missing."""
    lookup = np.array([*labels, None], dtype=object)
    return lookup[np.where(codes < 0, len(labels), codes)].tolist()


def _figures(conn: sa.Connection, values: np.ndarray) -> list[Any]:
    # SQLite stores a NaN as NULL; COPY needs a real null.
    if is_postgres(conn):
        return pa.array(values, from_pandas=True).to_pylist()
    return values.tolist()


def _in_background(
    engine: sa.Engine, questionnaire: Questionnaire, where: sa.ColumnElement[bool], rows: int
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Read and decode chunks on a connection of their own while the caller writes.

    Fetching and parsing release the GIL for most of their time, so on two cores the next
    chunk is read while this one is inserted. The reading connection sees the last committed
    state: the writer's own rows stay invisible to it, which is what the query wants.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with for_reading(engine).connect() as conn:
                for chunk in iter_item_values(conn, questionnaire, where, chunk_rows=rows):
                    if not put(chunk):
                        return
        except BaseException as exc:  # handed to the writer, which raises it
            put(exc)
        else:
            put(_DONE)

    reader = threading.Thread(target=produce, name="rescore-reader", daemon=True)
    reader.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def _separate_connections(engine: sa.Engine) -> bool:
    # An in-memory SQLite database is private to its connection.
    return engine.dialect.name != "sqlite" or engine.url.database not in (None, "", ":memory:")


def score_columns(
    conn: sa.Connection,
    index: ReintegrationIndex,
    pks: np.ndarray,
    scores: dict[str, np.ndarray],
    *,
    model: str,
    model_version: int | None,
    now: Any,
) -> tuple[tuple[str, ...], list[list[Any]]]:
    """The ``score`` columns and values of one chunk, in the order ``insert_columns`` takes."""
    dims = tuple(index.dimensions_)
    figures = (*dims, "composite", *(f"coverage_{d}" for d in dims))
    n = len(pks)
    names = (
        "submission_pk",
        "model",
        "index_version",
        "model_version",
        *figures,
        "level",
        "weakest_dimension",
        "sustainable",
        "created_at",
    )
    values = [
        pks.tolist(),
        [model] * n,
        [index.label_] * n,
        [model_version] * n,
        *(_figures(conn, scores[f]) for f in figures),
        _labelled(scores["level"], LEVELS),
        _labelled(scores["weakest_dimension"], dims),
        _labelled(scores["sustainable"], BOOLEANS),
        [now] * n,
    ]
    return names, values


CONSTANT = ("model", "index_version", "model_version", "created_at")


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _insert(conn: sa.Connection, names: tuple[str, ...], columns: list[list[Any]]) -> None:
    """Insert a chunk of score rows.

    On SQLite the four columns that are the same on every row (model, label, version, time)
    are written into the statement once instead of bound on every row, which saves about a
    third of the insert's time; they are our own values, quoted as SQL literals.
    """
    if is_postgres(conn):
        insert_columns(conn, "score", names, columns)
        return
    varying = [k for k, name in enumerate(names) if name not in CONSTANT]
    values = ", ".join(
        "?" if name not in CONSTANT else _sql_literal(columns[k][0]) for k, name in enumerate(names)
    )
    statement = f"INSERT INTO score ({', '.join(names)}) VALUES ({values})"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(statement, zip(*(columns[k] for k in varying), strict=True))
    finally:
        cursor.close()


def rescore(
    engine: sa.Engine,
    index: ReintegrationIndex,
    questionnaire: Questionnaire,
    *,
    model: str,
    model_version: int | None,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Score every current submission that lacks a score of ``index``'s label, in one transaction.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store.
    index : ReintegrationIndex
        A fitted index version; its ``label_`` names the new rows.
    questionnaire : Questionnaire
    model : str
        Registered model name stored with the rows (``rss-index``).
    model_version : int or None
        Registry version of ``index``.
    chunk_rows : int, default CHUNK_ROWS
        Submissions read, scored and written per step.
    progress : callable, optional
        Called with (rows done, rows to do) after each chunk.

    Returns
    -------
    int
        Rows scored (0 when every current submission already had a score of this label).
    """
    with engine.begin() as conn:
        lock_for_ingest(conn)  # an ingest arriving meanwhile waits, so nothing is missed
        where = unscored(model, index.label_)
        total = conn.execute(sa.select(sa.func.count()).where(where)).scalar_one()
        if progress is not None:
            progress(0, total)
        done = 0
        now = timestamp(conn, datetime.now(UTC))
        chunks = (
            _in_background(engine, questionnaire, where, chunk_rows)
            if _separate_connections(engine)
            else iter_item_values(conn, questionnaire, where, chunk_rows=chunk_rows)
        )
        for pks, values in chunks:
            scores = index.score_arrays(values, n_rows=len(pks))
            names, columns = score_columns(
                conn, index, pks, scores, model=model, model_version=model_version, now=now
            )
            _insert(conn, names, columns)
            done += len(pks)
            if progress is not None:
                progress(done, total)
        if done:
            bump_data_version(conn)
    log.info("rescored %d submissions with %s", done, index.label_)
    return done
