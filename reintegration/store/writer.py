"""The write path of an ingest: one batch, chunk by chunk, inside one transaction.

Each chunk is checked against the store set-wise (erased returnees, returnees and interviews
stored under countries outside the uploader's scope, interviews belonging to another returnee,
return dates after another round's interview, versions already stored) with the chunk's keys
and identities loaded into temporary tables and probed, then classified with pandas (new,
duplicate, update) and loaded with the driver's bulk path. Nothing here loops over rows in
Python except to hand tuples to the driver and to word the messages of rejected rows.

An interview belongs to one returnee: every version of a submission id is stored under one
returnee key. A row whose id is stored under another key (any version), or was accepted
earlier in the file under another case number, is rejected with a sentence that names
neither; the earlier row stands. (Versions of one id under two keys would split its rounds
between two returnees, and the returnee of a version no longer current would never get its
row, failing the foreign key when the batch commits.)

Who uploads decides two things (DESIGN.md, "Roles"). An uploader limited to some countries
may not touch what the store holds under other countries: a row whose returnee or interview
is stored under a country outside the scope is rejected before any duplicate check, with a
sentence that names nothing stored, and a stored returnee's country changes only through an
uploader for every country. And only an uploader who may see every stored row (row-level
access, every country) reads stored dates, sexes and return types in its report; anyone else
is told only what they sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

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
from reintegration.roles import Capability, allowed
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
from reintegration.store.record_keys import new_record_keys
from reintegration.store.schema import audit, rejected_row, submission, tombstone

if TYPE_CHECKING:
    from reintegration.users import User

ERASED = (
    "this returnee's data was erased; an admin must lift the erasure before it is uploaded again"
)
# Refusals of an uploader limited to some countries: they name nothing the store holds.
CASE_OUTSIDE_SCOPE = "this case number cannot be used from your countries"
SUBMISSION_OUTSIDE_SCOPE = "this submission id cannot be used from your countries"
COUNTRY_CHANGE = (
    "this returnee is stored under another country; only a user for every country can move them"
)
SCOPE_REFUSED = "upload_scope_refused"  # the audit action, with the batch id and counts
# An interview of one returnee sent under another case number: names neither returnee.
SUBMISSION_OF_ANOTHER = (
    "this submission id is already used by another returnee's interview; "
    "give this interview its own id"
)
# Scratch tables of a chunk's keys and identities. Queries probe them with ``IN (SELECT ...)``:
# SQLite then searches the submission indexes per value, where a join would scan the table.
KEYS = sa.table("_ingest_keys", sa.column("key"))
SIDS = sa.table("_ingest_sids", sa.column("sid"))
LATEST = "_ingest_latest"  # each returnee's attributes from their latest interview
RETURNEE_ATTRIBUTES = ("sex", "age_at_return", "child", "return_type", "country")
ROUND_ATTRIBUTES = ("sex", "return_type", "return_date", "country")  # warned when rounds differ
LATEST_COLUMNS = {
    "key": "TEXT PRIMARY KEY",
    "sex": "TEXT",
    "age_at_return": "INTEGER",
    "child": "BOOLEAN",
    "return_type": "TEXT",
    "country": "TEXT",
}
OPTIONAL_TEXT = ("admin1", "enumerator_id", "form_version", "interview_mode", "assistance")


def _weights(meta: dict[str, pa.Array], n: int) -> pa.Array:
    """The rows' weights as float64, null where blank or when the file has no weight column
    (canonical text, :func:`reintegration.prepare.canonical_metadata`, reads back exactly)."""
    if "weight" not in meta:
        return pa.nulls(n, pa.float64())
    text = meta["weight"]
    return pc.cast(pc.if_else(pc.equal(text, ""), None, text), pa.float64())


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
        uploader: User,
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
        self.uploader = uploader
        self.scope = uploader.countries
        # Stored dates, sexes and return types may be named only to whom may read every row.
        self.sees_stored = self.scope is None and allowed(uploader.role, Capability.ROW_LEVEL)
        self.scope_refused = {"returnee_id": 0, "submission_id": 0, "country": 0}
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
        columns = [
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
            sa.func.min(c.country),
            sa.func.max(c.country),
        ]
        if self.scope is not None:  # whether an interview lies outside the uploader's scope
            columns.append(sa.func.max(sa.case((c.country.in_(sorted(self.scope)), 0), else_=1)))
        rows = self.conn.execute(
            sa.select(*columns)
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
                "differs",
                stored,
                [r[4] != r[5] or r[6] != r[7] or r[8] != r[9] or r[10] != r[11] for r in rows],
            )
            state.set("ref_sex", stored, [row[4] for row in rows])
            state.set("ref_rtype", stored, [row[6] for row in rows])
            state.set("ref_rday", stored, [day_number(row[8]) for row in rows])
            state.set("ref_country", stored, [row[10] for row in rows])
            state.set("has_row", stored, True)
            if self.scope is not None:
                state.set("outside", stored, [bool(row[12]) for row in rows])
                state.set("home", stored, [r[10] if r[10] == r[11] else "" for r in rows])
        return ids

    def _versions(self, sids: list[str]) -> pd.DataFrame:
        """The stored versions of these identities (this batch's earlier chunks included),
        with their country and returnee key."""
        columns = ["sid", "id", "version", "hash", "current", "country", "key"]
        if self.empty_store and not self.stored_sids.intersection(map(hash, sids)):
            # Nothing was stored before this batch, and no row of it bears these ids yet.
            return _frame([], columns)
        self._load(SIDS, "sid", sorted(sids))
        rows = self.conn.execute(
            sa.select(
                submission.c.submission_id,
                submission.c.id,
                submission.c.version,
                submission.c.content_hash,
                submission.c.current,
                submission.c.country,
                submission.c.returnee_key,
            ).where(submission.c.submission_id.in_(sa.select(SIDS.c.sid)))
        ).all()
        return _frame(rows, columns)

    def _reject_erased(self, chunk: PreparedChunk) -> np.ndarray:
        """Rows of an erased returnee, whatever else was wrong with them, are rejected with
        one error that carries no value; returns where they are (nothing of them is kept)."""
        hit = np.zeros(len(chunk.accepted), dtype=bool)
        if not self.erased or not len(hit):
            return hit
        hit = np.isin(chunk.returnee_key, list(self.erased))
        if not hit.any():
            return hit
        positions = np.flatnonzero(hit)
        rows = set(chunk.rows[positions].tolist())
        chunk.issues[:] = [issue for issue in chunk.issues if issue.row not in rows]
        chunk.notes[:] = [note for note in chunk.notes if note.row not in rows]
        column = chunk.header("returnee_id")
        chunk.reject(
            positions, [RowIssue(int(chunk.rows[i]), column, "", ERASED) for i in positions]
        )
        return hit

    def _state_ids(self, chunk: PreparedChunk) -> np.ndarray:
        """Each accepted row's state id (see :class:`PanelState`), -1 for rows rejected."""
        state_ids = np.full(len(chunk.accepted), -1, dtype=np.int64)
        positions = np.flatnonzero(chunk.accepted)
        if len(positions):
            state_ids[positions] = self._add_to_state(chunk.returnee_key[positions])
        return state_ids

    def _reject_outside_scope(
        self, chunk: PreparedChunk, state_ids: np.ndarray, known: pd.DataFrame
    ) -> None:
        """An uploader limited to some countries touches nothing stored under another one.

        A row is rejected when a current interview of its returnee, or any version of its
        interview (a duplicate check against it would tell), is stored under a country outside
        the scope; and when the returnee's stored interviews are not all of the row's country
        (a change of country, which only an uploader for every country makes). Runs before
        the duplicate check; the sentences name nothing stored. What the store holds was read
        with the chunk's keys (:meth:`_add_to_state`) and identities (:meth:`_versions`).
        """
        if self.scope is None or self.empty_store:  # rows of this batch lie inside the scope
            return
        positions = np.flatnonzero(chunk.accepted)
        if not len(positions):
            return
        ids = state_ids[positions]
        case = self.state["outside"][ids]
        interview = np.zeros(len(positions), dtype=bool)
        if len(known):
            foreign = known.loc[~known["country"].isin(self.scope), "sid"].unique()
            if len(foreign):
                interview = np.isin(chunk.submission_id[positions], foreign)
                interview &= ~case
        home = self.state["home"][ids]
        sent = chunk.metadata["country"].to_numpy(zero_copy_only=False)[positions]
        moved = ~case & ~interview & pd.notna(home) & (home != sent)
        issues: list[RowIssue] = []
        for mask, column, message, values in (
            (case, "returnee_id", CASE_OUTSIDE_SCOPE, None),
            (interview, "submission_id", SUBMISSION_OUTSIDE_SCOPE, chunk.submission_id),
            (moved, "country", COUNTRY_CHANGE, chunk.metadata["country"]),
        ):
            hit = positions[mask]
            self.scope_refused[column] += len(hit)
            header = chunk.header(column)
            shown = [""] * len(hit) if values is None else _texts(values, hit)
            issues += [
                RowIssue(int(chunk.rows[i]), header, value, message)
                for i, value in zip(hit, shown, strict=True)
            ]
        if issues:
            chunk.reject(positions[case | interview | moved], issues)

    def _reject_other_returnees_ids(self, chunk: PreparedChunk, known: pd.DataFrame) -> None:
        """A submission id belongs to the returnee it was first stored or sent under.

        A row is rejected when a version of its id is stored under another returnee key
        (whether current or not; this batch's earlier chunks are in the store), or, for an id
        not stored yet, when an earlier accepted row of the chunk bears it under another key.
        Runs after the scope check (a row refused for the scope keeps that sentence) and
        before the other checks, so a refused row weighs on no other row. The sentence names
        neither the other case number nor anything stored.
        """
        positions = np.flatnonzero(chunk.accepted)
        if not len(positions):
            return
        positions = positions[np.argsort(chunk.rows[positions], kind="stable")]  # file order
        keys = chunk.returnee_key[positions]
        codes, sids = pd.factorize(chunk.submission_id[positions])
        _, first = np.unique(codes, return_index=True)  # each id's first row in the chunk
        owner = np.asarray(keys[first], dtype=object)  # by id (code)
        if len(known):
            pairs = known[["sid", "key"]].drop_duplicates()
            # An id stored under two keys (before this check existed) belongs to neither.
            single = pairs.drop_duplicates("sid", keep=False).set_index("sid")["key"]
            ids = pd.Series(sids, dtype=object)
            stored = ids.isin(pairs["sid"]).to_numpy()
            owner[stored] = ids[stored].map(single).to_numpy(dtype=object)  # NaN: neither
        other = owner[codes] != keys
        if not other.any():
            return
        hit = positions[other]
        column = chunk.header("submission_id")
        chunk.reject(
            hit,
            [
                RowIssue(int(chunk.rows[i]), column, value, SUBMISSION_OF_ANOTHER)
                for i, value in zip(hit, _texts(chunk.submission_id, hit), strict=True)
            ],
        )

    def _reject_late_returns(self, chunk: PreparedChunk, state_ids: np.ndarray) -> None:
        """A return date after another round's interview of the same returnee is an error."""
        positions = np.flatnonzero(chunk.accepted)
        if not len(positions):
            return
        frame = pd.DataFrame(
            {
                "interview": chunk.days["interview_date"][positions],
                "returned": chunk.days["return_date"][positions],
            }
        )
        ids = state_ids[positions]
        first = frame["interview"].groupby(ids).transform("min")
        first = pd.Series(np.minimum(first.to_numpy(), self.state["min_day"][ids]))
        late = frame["returned"].to_numpy() > first.to_numpy()
        column = chunk.header("return_date")
        issues = []
        for k, i in zip(np.flatnonzero(late), positions[late], strict=True):
            returned = iso_day(frame["returned"].iat[k])
            if self.sees_stored:
                message = (
                    f"return date {returned} is after this returnee's interview of "
                    f"{iso_day(first.iat[k])} in another round"
                )
            else:  # that interview may be stored, and its date is not theirs to read
                message = (
                    f"return date {returned} is after an interview of this returnee "
                    "in another round"
                )
            issues.append(RowIssue(int(chunk.rows[i]), column, returned, message))
        chunk.reject(positions[late], issues)

    # -- writing -------------------------------------------------------------------------------
    def write(self, chunk: PreparedChunk) -> Counts:
        """Store a chunk's accepted rows (new or updated); count duplicates and rejections."""
        erased = self._reject_erased(chunk)
        state_ids = self._state_ids(chunk)
        # The stored versions of the identities still accepted: the scope check and the
        # duplicate check both read them (the rows rejected meanwhile are not looked up).
        known = self._versions(pd.unique(chunk.submission_id[chunk.accepted]).tolist())
        self._reject_outside_scope(chunk, state_ids, known)
        self._reject_other_returnees_ids(chunk, known)
        self._reject_late_returns(chunk, state_ids)
        counts = Counts()
        positions = np.flatnonzero(chunk.accepted)
        sids = chunk.submission_id[positions]
        hashes = chunk.content_hash[positions]
        sid_codes, unique_sids = pd.factorize(sids)
        hash_codes, unique_hashes = pd.factorize(hashes)
        pairs = pd.Series(sid_codes.astype(np.int64) * len(unique_hashes) + hash_codes)
        duplicate = pairs.duplicated().to_numpy().copy()
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
        rejected = ~chunk.accepted
        counts.rejected = int(rejected.sum())
        if counts.rejected:
            # An erased returnee's rows leave nothing but their count.
            self._store_rejected(chunk, np.flatnonzero(rejected & ~erased))
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
            "weight": _weights(meta, n),
            "answers": pc.take(chunk.answers, take),
            "spec_version": constant(self.questionnaire.spec_version, n),
            "created_at": constant(now, n),
            "survey_round": rounds,
            "record_key": new_record_keys(n),  # every version its own, drawn now, never updated
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
        warn where rounds differ; audit the rows refused for the uploader's scope."""
        self._audit_scope_refusals()
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
        differing = touched[state["differs"][touched]]
        differing = differing[np.argsort(state["first_row"][differing], kind="stable")]
        if not len(differing):
            return []
        histories = self._histories(keys[differing].tolist())
        notes: list[FileNote] = []
        for key, first_row in zip(
            keys[differing].tolist(), state["first_row"][differing].tolist(), strict=True
        ):
            notes += self._disagreements(int(first_row), histories.get(key, []))
        return notes

    def _audit_scope_refusals(self) -> None:
        """One audit entry for the rows this batch refused for the uploader's scope: counts
        by the column the refusal named, never which rows or returnees."""
        refused = sum(self.scope_refused.values())
        if refused:
            self.conn.execute(
                audit.insert().values(
                    at=datetime.now(UTC),
                    actor=self.uploader.name,
                    action=SCOPE_REFUSED,
                    batch_id=self.batch_id,
                    detail={"rows": refused, **self.scope_refused},
                )
            )

    def _histories(self, keys: list[str]) -> dict[str, list[Any]]:
        """The current interviews of these returnees, by date then identity, in one query."""
        self._load(KEYS, "key", sorted(keys))
        c = submission.c
        rows = self.conn.execute(
            sa.select(c.returnee_key, c.interview_date, *(c[name] for name in ROUND_ATTRIBUTES))
            .where(c.returnee_key.in_(sa.select(KEYS.c.key)), c.current)
            .order_by(c.returnee_key, c.interview_date, c.submission_id)
        ).all()
        histories: dict[str, list[Any]] = {}
        for row in rows:
            histories.setdefault(row.returnee_key, []).append(row)
        return histories

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
        """Warnings for the attributes that differ between a returnee's rounds; the values
        and dates of each round only for an uploader who may read every stored row."""
        notes = []
        for column in ROUND_ATTRIBUTES:
            values = [getattr(interview, column) for interview in history]
            if len(set(values)) < 2:
                continue
            what = column.replace("_", " ")
            if self.sees_stored:
                shown = ", ".join(
                    f"{_show(v)} on {interview.interview_date.isoformat()}"
                    for v, interview in zip(values, history, strict=True)
                )
                message = (
                    f"this returnee's {what} differs between rounds ({shown}); "
                    "the latest interview's is kept"
                )
            else:
                message = (
                    f"this returnee's {what} differs between rounds; the latest interview's is kept"
                )
            notes.append(FileNote(message, row=row, column=column))
        return notes


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """A frame of query rows with text kept as Python objects: pandas' Arrow-backed strings
    are slow for the element-wise work done here."""
    frame = pd.DataFrame.from_records([tuple(row) for row in rows], columns=columns)
    return frame.astype({c: object for c in columns if frame[c].dtype == "str"})


def _texts(values: np.ndarray | pa.Array, positions: np.ndarray) -> list[str]:
    """The text of these rows of a column (NumPy objects or Arrow)."""
    if isinstance(values, pa.Array):
        return [str(v) for v in pc.take(values, pa.array(positions, pa.int64())).to_pylist()]
    return [str(v) for v in values[positions]]


def _labels(codes: np.ndarray, labels: tuple[str, ...]) -> pa.Array:
    """Label of each code (-1: missing), gathered by Arrow."""
    return pc.take(pa.array(labels, pa.string()), pa.array(codes, mask=codes < 0))


def _show(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
