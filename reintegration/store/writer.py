"""The write path of an ingest: one batch, chunk by chunk, inside one transaction.

Each chunk is checked against the store set-wise (erased returnees, return dates after another
round's interview, versions already stored) with the chunk's keys and identities loaded into
temporary tables and probed, then classified with pandas (new, duplicate, update) and loaded
with the driver's bulk path. Nothing here loops over rows in Python except to hand tuples to
the driver and to word the messages of rejected rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from reintegration.coding import RowIssue, day_number, iso_day
from reintegration.index import LEVELS, ReintegrationIndex
from reintegration.prepare import HASH_DIGITS, PreparedChunk
from reintegration.questionnaire import Questionnaire
from reintegration.reading import FileNote
from reintegration.store.bulk import (
    check_references,
    constant,
    defer_foreign_keys,
    insert_columns,
    insert_rows,
    is_postgres,
    scratch_table,
    timestamp,
)
from reintegration.store.panel_state import PanelState
from reintegration.store.schema import rejected_row, submission, tombstone

ERASED = (
    "this returnee's data was erased; an admin must lift the erasure before it is uploaded again"
)
# Scratch tables of a chunk's keys and identities. Queries probe them with ``IN (SELECT ...)``:
# SQLite then searches the submission indexes per value, where a join would scan the table.
KEYS = sa.table("_ingest_keys", sa.column("key"))
SIDS = sa.table("_ingest_sids", sa.column("sid"))
LATEST = "_ingest_latest"  # each returnee's attributes from their latest interview
RETURNEE_ATTRIBUTES = ("sex", "age_at_return", "child", "return_type", "country")
LATEST_COLUMNS = {
    "key": "TEXT PRIMARY KEY",
    "sex": "TEXT",
    "age_at_return": "INTEGER",
    "child": "BOOLEAN",
    "return_type": "TEXT",
    "country": "TEXT",
}
OPTIONAL_TEXT = ("admin1", "enumerator_id", "form_version", "interview_mode", "assistance")


@dataclass
class Counts:
    """What one chunk did."""

    accepted: int = 0
    rejected: int = 0
    duplicate: int = 0
    updated: int = 0


class BatchWriter:
    """Writes one batch's chunks inside the caller's transaction."""

    def __init__(
        self,
        conn: sa.Connection,
        batch_id: str,
        scorer: ReintegrationIndex,
        questionnaire: Questionnaire,
        model_version: int | None,
    ) -> None:
        self._conn = conn
        # On PostgreSQL a chunk's COPY runs in a thread while the caller reads and prepares
        # the next chunk (the driver waits for the server without holding the GIL); every
        # other use of the connection (the ``conn`` property) waits for it first.
        self._background = (
            ThreadPoolExecutor(1, thread_name_prefix="ingest-load") if is_postgres(conn) else None
        )
        self._pending: Future[None] | None = None
        self.batch_id = batch_id
        self.scorer = scorer
        self.questionnaire = questionnaire
        self.model_version = model_version
        self.next_id = (conn.execute(sa.select(sa.func.max(submission.c.id))).scalar() or 0) + 1
        self.erased = set(
            conn.execute(
                sa.select(tombstone.c.returnee_key).where(tombstone.c.lifted_at.is_(None))
            ).scalars()
        )
        self.state = PanelState()  # what the store and this batch hold of each returnee
        # Under the write lock nobody else writes: a store empty now stays ours alone, and
        # what this batch stored is all there is to look up.
        self.empty_store = self.next_id == 1
        # Hashes of the ids stored by this batch: a collision only costs a lookup.
        self.stored_sids: set[int] = set()
        self.form_version: str | None = None
        # Returnees new to the store get their row at the end, with their attributes, rather
        # than a placeholder before their first interview and an update at the end; the
        # foreign keys are then checked when the transaction commits (SQLite) or set-wise at
        # the end of the batch (PostgreSQL, see _check_references).
        self.late_returnees = defer_foreign_keys(conn)
        self.check_set_wise = self.late_returnees and is_postgres(conn)
        self.first_id = self.next_id
        self.referenced: set[str] = set()  # returnee keys written by this batch, to check

    @property
    def conn(self) -> sa.Connection:
        """The transaction's connection, once the load running in the background is done."""
        self._wait()
        return self._conn

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()  # its error, if it failed

    def close(self) -> None:
        """Let the load running in the background end, and stop its thread; call it before
        the transaction ends, whether or not the batch failed. An error of that load is
        raised by the next use of :attr:`conn` (:meth:`finish` uses it), not here."""
        if self._background is not None:
            self._background.shutdown(wait=True)

    # -- checks that need the store -------------------------------------------------------------
    def _load(self, table: sa.TableClause, column: str, values: list[str]) -> None:
        scratch_table(self.conn, table.name, {column: "TEXT PRIMARY KEY"})
        insert_columns(self.conn, table.name, (column,), [np.array(values, dtype=object)])

    def _add_to_state(self, keys: np.ndarray) -> np.ndarray:
        """State rows of a chunk's returnees; those new to the batch start from the store."""
        ids, fresh = self.state.ids(keys.tolist())
        if not fresh or self.empty_store:
            return ids
        self._load(KEYS, "key", fresh)
        c = submission.c
        rows = self.conn.execute(
            sa.select(
                c.returnee_key,
                sa.func.count(),
                sa.func.min(c.interview_date),
                sa.func.max(c.interview_date),
                sa.func.min(c.sex),
                sa.func.max(c.sex),
                sa.func.min(c.return_type),
                sa.func.max(c.return_type),
                sa.func.min(c.return_date),
                sa.func.max(c.return_date),
            )
            .where(c.returnee_key.in_(sa.select(KEYS.c.key)), c.current)
            .group_by(c.returnee_key)
        ).all()
        if rows:
            stored, _ = self.state.ids([row[0] for row in rows])
            state = self.state
            state.set("count", stored, [row[1] for row in rows])
            state.set("min_day", stored, [day_number(row[2]) for row in rows])
            state.set("max_day", stored, [day_number(row[3]) for row in rows])
            state.set(
                "differs", stored, [r[4] != r[5] or r[6] != r[7] or r[8] != r[9] for r in rows]
            )
            state.set("ref_sex", stored, [row[4] for row in rows])
            state.set("ref_rtype", stored, [row[6] for row in rows])
            state.set("ref_rday", stored, [day_number(row[8]) for row in rows])
            state.set("has_row", stored, True)
        return ids

    def _versions(self, sids: list[str]) -> pd.DataFrame:
        """The stored versions of these identities."""
        if self.empty_store and not self.stored_sids.intersection(map(hash, sids)):
            # Nothing was stored before this batch, and no row of it bears these ids yet.
            return _frame([], ["sid", "id", "version", "hash", "current"])
        self._load(SIDS, "sid", sorted(sids))
        rows = self.conn.execute(
            sa.select(
                submission.c.submission_id,
                submission.c.id,
                submission.c.version,
                submission.c.content_hash,
                submission.c.current,
            ).where(submission.c.submission_id.in_(sa.select(SIDS.c.sid)))
        ).all()
        return _frame(rows, ["sid", "id", "version", "hash", "current"])

    def _reject_erased(self, chunk: PreparedChunk) -> None:
        positions = np.flatnonzero(chunk.accepted)
        if not self.erased or not len(positions):
            return
        hit = positions[np.isin(chunk.returnee_key[positions], list(self.erased))]
        column = chunk.header("returnee_id")
        chunk.reject(hit, [RowIssue(int(chunk.rows[i]), column, "", ERASED) for i in hit])

    def _reject_late_returns(self, chunk: PreparedChunk) -> np.ndarray:
        """A return date after another round's interview of the same returnee is an error.

        Returns each row's state id (see :class:`PanelState`), -1 for rows rejected before.
        """
        state_ids = np.full(len(chunk.accepted), -1, dtype=np.int64)
        positions = np.flatnonzero(chunk.accepted)
        if not len(positions):
            return state_ids
        keys = chunk.returnee_key[positions]
        frame = pd.DataFrame(
            {
                "interview": chunk.days["interview_date"][positions],
                "returned": chunk.days["return_date"][positions],
            }
        )
        ids = self._add_to_state(keys)
        state_ids[positions] = ids
        first = frame["interview"].groupby(ids).transform("min")
        first = pd.Series(np.minimum(first.to_numpy(), self.state["min_day"][ids]))
        late = frame["returned"].to_numpy() > first.to_numpy()
        column = chunk.header("return_date")
        issues = [
            RowIssue(
                int(chunk.rows[i]),
                column,
                iso_day(frame["returned"].iat[k]),
                f"return date {iso_day(frame['returned'].iat[k])} is after this returnee's "
                f"interview of {iso_day(first.iat[k])} in another round",
            )
            for k, i in zip(np.flatnonzero(late), positions[late], strict=True)
        ]
        chunk.reject(positions[late], issues)
        return state_ids

    # -- writing -------------------------------------------------------------------------------
    def write(self, chunk: PreparedChunk) -> Counts:
        """Store a chunk's accepted rows (new or updated); count duplicates and rejections."""
        self._reject_erased(chunk)
        state_ids = self._reject_late_returns(chunk)
        counts = Counts()
        positions = np.flatnonzero(chunk.accepted)
        sids = chunk.submission_id[positions]
        hashes = chunk.content_hash[positions]
        sid_codes, unique_sids = pd.factorize(sids)
        hash_codes, unique_hashes = pd.factorize(hashes)
        pairs = pd.Series(sid_codes.astype(np.int64) * len(unique_hashes) + hash_codes)
        duplicate = pairs.duplicated().to_numpy().copy()
        known = self._versions(unique_sids.tolist())
        if len(known):
            # Hashes stored before they were cut to 128 bits keep all 64 digits: compare the
            # first 32.
            stored_pairs = known["sid"] + "\x00" + known["hash"].str[:HASH_DIGITS]
            pairs_text = pd.Series(sids, dtype=object) + "\x00" + pd.Series(hashes, dtype=object)
            duplicate |= pairs_text.isin(stored_pairs).to_numpy()
        counts.duplicate = int(duplicate.sum())
        keep = ~duplicate
        new = pd.DataFrame(
            {
                "pos": positions[keep],
                "sid": pd.Series(sids[keep], dtype=object),
                "hash": pd.Series(hashes[keep], dtype=object),
            }
        )
        codes = pd.Series(sid_codes[keep])
        if codes.duplicated().any():  # an identity edited inside the file
            rank = codes.groupby(codes.to_numpy()).cumcount().to_numpy() + 1
            new["current"] = ~codes.duplicated(keep="last").to_numpy()
        else:
            rank = np.ones(len(new), dtype=np.int64)
            new["current"] = True
        new["version"] = rank
        replaces = rank > 1
        superseded: list[int] = []
        if len(known):
            top = known.groupby("sid")["version"].max()
            new["version"] += new["sid"].map(top).fillna(0).astype(int).to_numpy()
            stored_current = known[known["current"].astype(bool)]
            replaces |= new["sid"].isin(set(stored_current["sid"])).to_numpy()
            superseded = stored_current[stored_current["sid"].isin(set(new["sid"]))]["id"].tolist()
        new["replaces"] = replaces
        counts.updated = int(replaces.sum())
        counts.accepted = len(new)
        for k in range(0, len(superseded), 500):
            part = [int(x) for x in superseded[k : k + 500]]
            self.conn.execute(
                submission.update().where(submission.c.id.in_(part)).values(current=False)
            )
        if len(new):
            # Keys and identities are random (HMACs, UUIDs), so rows in file order land all
            # over the B-trees keyed by them. In returnee order, the two largest (the returnee
            # index of submissions, the returnees' keys) take a chunk as one ordered run. The
            # sort is stable: an identity's versions stay in file order.
            new["key"] = chunk.returnee_key[new["pos"].to_numpy()]
            order = pc.sort_indices(
                pa.table({"key": new["key"].to_numpy(), "sid": new["sid"].to_numpy()}),
                sort_keys=[("key", "ascending"), ("sid", "ascending")],
            )
            new = new.take(order.to_numpy()).reset_index(drop=True)
            self._insert(chunk, new, state_ids[new["pos"].to_numpy()])
        rejected = np.flatnonzero(~chunk.accepted)
        counts.rejected = len(rejected)
        if counts.rejected:
            self._store_rejected(chunk, rejected)
        return counts

    def _insert(self, chunk: PreparedChunk, new: pd.DataFrame, state_ids: np.ndarray) -> None:
        """Insert a chunk's new rows (in ``new``'s order) and their scores.

        Columns stay Arrow or NumPy arrays; :func:`insert_columns` hands them to the driver.
        """
        pos = new["pos"].to_numpy()
        take = pa.array(pos)
        meta = {name: pc.take(values, take) for name, values in chunk.metadata.items()}
        n = len(new)
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        now = timestamp(self._conn, datetime.now(UTC))
        keys = new["key"].to_numpy()
        blank = pa.nulls(n, pa.string())

        def optional(name: str) -> pa.Array:
            if name not in meta:
                return blank
            return pc.if_else(pc.equal(meta[name], ""), None, meta[name])

        sids = new["sid"].to_numpy()
        sex = meta["sex"].to_numpy(zero_copy_only=False)
        ages = pc.cast(meta["age_at_return"], pa.int64()).to_numpy(zero_copy_only=False)
        return_types = meta["return_type"].to_numpy(zero_copy_only=False)
        countries = meta["country"].to_numpy(zero_copy_only=False)
        form_versions = optional("form_version")
        if self.form_version is None:  # the first one in the file
            found = pc.drop_null(pc.take(form_versions, pa.array(np.argsort(pos))))
            self.form_version = found[0].as_py() if len(found) else None
        panel = pd.DataFrame(
            {
                "id": state_ids,
                "sid": sids,
                "current": new["current"].to_numpy(),
                "replaces": new["replaces"].to_numpy(),
                "day": chunk.days["interview_date"][pos],
                "rday": chunk.days["return_date"][pos],
                "sex": sex,
                "age": ages,
                "rtype": return_types,
                "country": countries,
                "row": chunk.rows[pos],
            }
        )
        rounds = self.state.track(panel)
        columns: dict[str, Any] = {
            "id": ids,
            "submission_id": sids,
            "version": new["version"].to_numpy(),
            "current": new["current"].to_numpy(),
            "content_hash": new["hash"].to_numpy(),
            "batch_id": constant(self.batch_id, n),
            "returnee_key": keys,
            "interview_date": meta["interview_date"],
            "return_date": meta["return_date"],
            "months_since_return": chunk.months_since_return[pos],
            "sex": sex,
            "age_at_return": ages,
            "return_type": return_types,
            "country": countries,
            **{name: optional(name) for name in OPTIONAL_TEXT},
            "answers": pc.take(chunk.answers, take),
            "spec_version": constant(self.questionnaire.spec_version, n),
            "created_at": constant(now, n),
            "survey_round": rounds,
        }
        if self.empty_store:
            self.stored_sids.update(map(hash, sids.tolist()))
        if self.check_set_wise:
            self.referenced.update(keys.tolist())
        if not self.late_returnees:  # the returnee row comes first; filled at the end
            unique_ids = np.unique(state_ids)
            self._placeholders(unique_ids[~self.state["has_row"][unique_ids]], now)
        scores = self._score_columns(chunk, pos, ids, now)
        conn = self.conn  # a load still running in the background ends first

        def load() -> None:
            insert_columns(conn, "submission", tuple(columns), list(columns.values()))
            insert_columns(conn, "score", tuple(scores), list(scores.values()))

        if self._background is None:
            load()
        else:  # the database loads this chunk while the next one is read and prepared
            self._pending = self._background.submit(load)

    def _score_columns(
        self, chunk: PreparedChunk, pos: np.ndarray, ids: np.ndarray, now: Any
    ) -> dict[str, Any]:
        scores = chunk.scores
        dims = tuple(self.scorer.dimensions_)
        n = len(pos)
        figures = [*dims, "composite", *(f"coverage_{d}" for d in dims)]
        sustainable = scores["sustainable"][pos]
        columns: dict[str, Any] = {
            "submission_pk": ids,
            "model": constant(self.questionnaire.index.name, n),
            "index_version": constant(self.scorer.label_, n),
            "model_version": constant(self.model_version, n),
            **{name: pa.array(scores[name][pos], from_pandas=True) for name in figures},
            "level": _labels(scores["level"][pos], LEVELS),
            "weakest_dimension": _labels(scores["weakest_dimension"][pos], dims),
            "sustainable": pa.array(sustainable > 0, mask=sustainable < 0),
            "created_at": constant(now, n),
        }
        return columns

    def _store_rejected(self, chunk: PreparedChunk, positions: np.ndarray) -> None:
        by_row: dict[int, list[dict[str, str]]] = {}
        for issue in chunk.issues:
            by_row.setdefault(issue.row, []).append(
                {"column": issue.column, "value": issue.value, "message": issue.message}
            )
        kept = [i for i in positions if not chunk.refused[i]]  # no consent: never kept
        if not kept:
            return
        take = pa.array(kept)
        cells = {h: pc.take(v, take).to_pylist() for h, v in chunk.raw_cells.items()}
        rows = [
            {
                "batch_id": self.batch_id,
                "row": int(chunk.rows[i]),
                "returnee_key": chunk.returnee_key[i] or None,
                "cells": {h: values[k] for h, values in cells.items()},
                "errors": by_row.get(int(chunk.rows[i]), []),
            }
            for k, i in enumerate(kept)
        ]
        self.conn.execute(rejected_row.insert(), rows)

    # -- after the last chunk -----------------------------------------------------------------
    def _placeholders(self, ids: np.ndarray, now: Any) -> None:
        """Rows of returnees that have none yet, to be filled by :meth:`finish`."""
        if len(ids):
            keys = self.state.keys
            insert_rows(self.conn, "returnee", ("key", "updated_at"), ((keys[i], now) for i in ids))
            self.state.set("has_row", ids, True)

    def finish(self) -> list[FileNote]:
        """Renumber out-of-order returnees, store or refresh the returnees this batch touched;
        warn where rounds differ."""
        state = self.state
        touched = np.flatnonzero(state["touched"])
        if not len(touched):
            return []
        now = timestamp(self.conn, datetime.now(UTC))
        keys = np.array(state.keys, dtype=object)
        dirty = touched[state["dirty"][touched]]
        if len(dirty):
            self._placeholders(dirty[~state["has_row"][dirty]], now)
            self._renumber(sorted(keys[dirty].tolist()), now)
        clean = touched[~state["dirty"][touched]]
        if len(clean):
            self._store_returnees(clean, keys[clean], now)
        if self.check_set_wise:
            self._check_references()
        notes: list[FileNote] = []
        differing = touched[state["differs"][touched]]
        differing = differing[np.argsort(state["first_row"][differing], kind="stable")]
        for key, first_row in zip(
            keys[differing].tolist(), state["first_row"][differing].tolist(), strict=True
        ):
            history = self.conn.execute(
                sa.select(
                    submission.c.interview_date,
                    submission.c.sex,
                    submission.c.return_type,
                    submission.c.return_date,
                )
                .where(submission.c.returnee_key == key, submission.c.current)
                .order_by(submission.c.interview_date, submission.c.submission_id)
            ).all()
            notes += self._disagreements(int(first_row), history)
        return notes

    def _store_returnees(self, ids: np.ndarray, keys: np.ndarray, now: Any) -> None:
        """Returnees whose interviews arrived in order: attributes of the latest interview.

        New returnees are inserted, in key order (the key index takes them as one run);
        stored ones are bulk-loaded into a scratch table and updated in one statement (one
        UPDATE per returnee would cost a round trip each on PostgreSQL).
        """
        state = self.state
        stored = state["has_row"][ids]
        for rows, table in ((~stored, "returnee"), (stored, LATEST)):
            if not rows.any():
                continue
            chosen = ids[rows]
            order = pc.sort_indices(pa.array(keys[rows], pa.string())).to_numpy()
            chosen, chosen_keys = chosen[order], keys[rows][order]
            columns = [
                chosen_keys,
                state["sex"][chosen],
                state["age"][chosen],
                state["age"][chosen] < self.questionnaire.child_age_below,
                state["rtype"][chosen],
                state["country"][chosen],
            ]
            if table == LATEST:
                scratch_table(self.conn, LATEST, LATEST_COLUMNS)
                insert_columns(self.conn, LATEST, tuple(LATEST_COLUMNS), columns)
            else:
                columns.append(constant(now, len(chosen)))
                insert_columns(self.conn, table, (*LATEST_COLUMNS, "updated_at"), columns)
        if stored.any():
            assignments = ", ".join(f"{name} = t.{name}" for name in RETURNEE_ATTRIBUTES)
            self.conn.execute(
                sa.text(
                    f"UPDATE returnee SET {assignments}, updated_at = :now"
                    f" FROM {LATEST} t WHERE returnee.key = t.key"
                ),
                {"now": now},
            )
        state.set("has_row", ids, True)

    def _check_references(self) -> None:
        """PostgreSQL, where :func:`defer_foreign_keys` stopped the row-by-row checks: the
        parent of every foreign key value this batch wrote, looked up set-wise."""
        self._load(KEYS, "key", sorted(self.referenced))
        check_references(
            self.conn,
            [
                (
                    "submission.returnee_key -> returnee.key",
                    sa.text(
                        f"SELECT count(*) FROM {KEYS.name} k"
                        " WHERE NOT EXISTS (SELECT 1 FROM returnee r WHERE r.key = k.key)"
                    ),
                ),
                (
                    "submission.batch_id -> batch.id",
                    sa.text("SELECT 1 - count(*) FROM batch WHERE id = :batch").bindparams(
                        batch=self.batch_id
                    ),
                ),
                (  # the scores refer to the ids this batch gave its submissions, first to last
                    "score.submission_pk -> submission.id",
                    sa.text(
                        "SELECT :written - count(*) FROM submission"
                        " WHERE id >= :first AND id < :next"
                    ).bindparams(
                        written=self.next_id - self.first_id, first=self.first_id, next=self.next_id
                    ),
                ),
            ],
        )

    def _renumber(self, keys: list[str], now: Any) -> None:
        """Rounds and returnee attributes of returnees whose history changed out of order."""
        self._load(KEYS, "key", keys)
        self.conn.execute(
            sa.text(
                "UPDATE submission SET survey_round = r.rn FROM ("
                " SELECT s.id AS id, ROW_NUMBER() OVER ("
                "  PARTITION BY s.returnee_key ORDER BY s.interview_date, s.submission_id) AS rn"
                " FROM submission s"
                " WHERE s.returnee_key IN (SELECT key FROM _ingest_keys) AND s.current) AS r "
                "WHERE submission.id = r.id"
            )
        )
        self.conn.execute(
            sa.text(
                "UPDATE returnee SET sex = l.sex, age_at_return = l.age_at_return,"
                " child = (l.age_at_return < :child), return_type = l.return_type,"
                " country = l.country, updated_at = :now FROM ("
                " SELECT s.returnee_key AS key, s.sex, s.age_at_return, s.return_type, s.country,"
                "  ROW_NUMBER() OVER (PARTITION BY s.returnee_key"
                "   ORDER BY s.interview_date DESC, s.submission_id DESC) AS rn"
                " FROM submission s"
                " WHERE s.returnee_key IN (SELECT key FROM _ingest_keys) AND s.current) AS l "
                "WHERE l.rn = 1 AND returnee.key = l.key"
            ),
            {"child": self.questionnaire.child_age_below, "now": now},
        )

    def _disagreements(self, row: int, history: Sequence[Any]) -> list[FileNote]:
        notes = []
        for column in ("sex", "return_type", "return_date"):
            values = [getattr(row, column) for row in history]
            if len(set(values)) > 1:
                shown = ", ".join(
                    f"{_show(v)} on {row.interview_date.isoformat()}"
                    for v, row in zip(values, history, strict=True)
                )
                what = column.replace("_", " ")
                notes.append(
                    FileNote(
                        f"this returnee's {what} differs between rounds ({shown}); "
                        "the latest interview's is kept",
                        row=row,
                        column=column,
                    )
                )
        return notes


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """A frame of query rows with text kept as Python objects: pandas' Arrow-backed strings
    are slow for the element-wise work done here."""
    frame = pd.DataFrame.from_records([tuple(row) for row in rows], columns=columns)
    return frame.astype({c: object for c in columns if frame[c].dtype == "str"})


def _labels(codes: np.ndarray, labels: tuple[str, ...]) -> pa.Array:
    """Label of each code (-1: missing), gathered by Arrow."""
    return pc.take(pa.array(labels, pa.string()), pa.array(codes, mask=codes < 0))


def _show(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
