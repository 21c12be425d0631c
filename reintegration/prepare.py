"""Turn a chunk of a batch into rows ready to store: coded, keyed, hashed and scored.

Pure functions of data (no store): the ingest step wires them to the database. Each accepted
row gets its pseudonymous returnee key, its canonical answer codes, a content hash over every
canonical value but the identity (so a label export of a stored code export is the same
content), its months since return and its scores. Columns stay Arrow arrays: text is built
with Arrow's string kernels, never one Python object per cell, so a million rows prepare in
seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reintegration.coding import (
    NO_DAY,
    CodedChunk,
    RowIssue,
    answer_codes,
    code_chunk,
    weight_text,
)
from reintegration.index import ReintegrationIndex
from reintegration.pseudonym import KEY_PREFIX, returnee_keys
from reintegration.questionnaire import Questionnaire
from reintegration.reading import Chunk, FileNote, Layout
from reintegration.store.answers import encode_answers

DAYS_PER_MONTH = 30.4375
ID = "submission_id"
CASE = "returnee_id"
COUNTRY = "country"
FIELD_SEPARATOR = "\x1f"
HASH_DIGITS = 32  # 128 bits: no collision among the interviews of any survey
HASHED_WHEN_GIVEN = ("weight",)
"""Optional columns added after interviews were stored: hashed only in rows that give a value."""


@dataclass
class PreparedChunk:
    """A chunk's rows, coded; accepted rows carry everything the store needs.

    Text columns (``metadata``) are Arrow string arrays, '' where blank; ``answers`` is each
    row's answers in the stored form (:func:`~reintegration.store.answers.encode_answers`);
    ``days`` holds the interview and return dates as int64 days since 1970-01-01.
    """

    rows: np.ndarray
    accepted: np.ndarray
    issues: list[RowIssue]
    notes: list[FileNote]
    submission_id: np.ndarray
    returnee_key: np.ndarray
    content_hash: np.ndarray
    answers: pa.Array
    metadata: dict[str, pa.Array]
    days: dict[str, np.ndarray]
    months_since_return: np.ndarray
    scores: dict[str, np.ndarray]
    raw_cells: dict[str, pa.Array] = field(default_factory=dict)
    refused: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """rows that refused the interview: rejected, and nothing of them is stored"""
    headers: dict[str, str] = field(default_factory=dict)

    def header(self, column: str) -> str:
        """A canonical column as the file names it."""
        return self.headers.get(column, column)

    def reject(self, positions: np.ndarray, issues: list[RowIssue]) -> None:
        """Reject more rows (checks that needed the store)."""
        self.accepted[positions] = False
        self.issues.extend(issues)
        self.issues.sort(key=lambda issue: issue.row)


def _text(values: Any) -> pa.Array:
    """Arrow text, '' where missing, from an Arrow array or a NumPy object array."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(values, pa.string(), from_pandas=True)
    return pc.fill_null(pc.cast(values, pa.string()), "")


def _date_text(days: np.ndarray) -> pa.Array:
    valid = days != NO_DAY
    dates = pa.array(np.where(valid, days, 0).astype(np.int32), pa.int32(), mask=~valid)
    return pc.fill_null(pc.cast(dates.cast(pa.date32()), pa.string()), "")


def _number_text(values: np.ndarray) -> pa.Array:
    """Numbers as canonical text (:func:`~reintegration.coding.weight_text`), '' where NaN;
    each distinct number is written once."""
    distinct, inverse = np.unique(values, return_inverse=True)
    texts = pa.array(["" if np.isnan(v) else weight_text(v) for v in distinct], pa.string())
    return pc.take(texts, pa.array(inverse.reshape(-1).astype(np.int64)))


def canonical_metadata(coded: CodedChunk, questionnaire: Questionnaire) -> dict[str, pa.Array]:
    """Metadata as canonical text per row: codes, ISO dates, whole numbers, trimmed text."""
    out: dict[str, pa.Array] = {}
    for spec in questionnaire.metadata:
        if spec.name not in coded.metadata:
            continue
        values = coded.metadata[spec.name]
        if spec.kind == "date":
            out[spec.name] = _date_text(values)
        elif spec.kind == "integer":
            missing = np.isnan(values)
            numbers = pa.array(np.where(missing, 0, values).astype(np.int64), mask=missing)
            out[spec.name] = pc.fill_null(pc.cast(numbers, pa.string()), "")
        elif spec.kind == "positive_number":
            out[spec.name] = _number_text(values)
        else:
            out[spec.name] = _text(values)
    return out


def content_hashes(
    metadata: dict[str, pa.Array], codes: dict[str, pa.Array], keys: np.ndarray
) -> np.ndarray:
    """128-bit content hash (SHA-256 cut to 32 hex digits) of every canonical value of a row
    but its identity, in a fixed order.

    The column names are part of what is hashed, so a batch lacking a column and one holding
    it blank differ only where they really do. Rows stored before the cut keep the whole
    SHA-256, whose first 32 digits are this hash: the store compares those.

    A column of :data:`HASHED_WHEN_GIVEN` (the weight) counts only in the rows that give it:
    a row with a blank weight hashes as a file without the column does, so an interview
    stored before weights existed stays a duplicate when an export that writes the column
    blank comes back, and a weight added, changed or removed is an edit.
    """
    given = [k for k in HASHED_WHEN_GIVEN if k in metadata]
    if not given:
        return _hashes(metadata, codes, keys)
    rest = {k: v for k, v in metadata.items() if k not in given}
    present = np.column_stack(
        [np.asarray(pc.not_equal(metadata[k], "").to_numpy(zero_copy_only=False)) for k in given]
    )
    # One group of rows per set of given columns (today: rows with a weight, rows without).
    patterns = np.unique(present, axis=0)
    out = np.empty(len(keys), dtype=object)
    for pattern in patterns:
        hashed = rest | {k: metadata[k] for k, on in zip(given, pattern, strict=True) if on}
        if len(patterns) == 1:
            return _hashes(hashed, codes, keys)
        rows = np.flatnonzero((present == pattern).all(axis=1))
        take = pa.array(rows)
        out[rows] = _hashes(
            {k: pc.take(v, take) for k, v in hashed.items()},
            {k: pc.take(v, take) for k, v in codes.items()},
            keys[rows],
        )
    return out


def _hashes(
    metadata: dict[str, pa.Array], codes: dict[str, pa.Array], keys: np.ndarray
) -> np.ndarray:
    names = [k for k in sorted(metadata) if k not in (ID, CASE)]
    columns = [pa.array(keys, pa.string())] + [metadata[k] for k in names]
    columns += [codes[k] for k in sorted(codes)]
    header = FIELD_SEPARATOR.join(names + sorted(codes)) + "\x1e"
    joined = pc.binary_join_element_wise(*columns, FIELD_SEPARATOR)
    # The header is the same for every row: hash it once and continue from a copy per row.
    start = hashlib.sha256(header.encode())

    def digest(row: bytes) -> str:
        sha = start.copy()
        sha.update(row)
        return sha.hexdigest()[:HASH_DIGITS]

    return np.array([digest(row) for row in joined.cast(pa.binary()).to_pylist()], dtype=object)


def prepare_chunk(
    chunk: Chunk,
    layout: Layout,
    questionnaire: Questionnaire,
    scorer: ReintegrationIndex,
    secret: bytes,
    *,
    countries: Collection[str] | None = None,
    key_cache: dict[str, str] | None = None,
) -> PreparedChunk:
    """Code, validate, pseudonymise, hash and score one chunk for ingest.

    Rows of a country outside ``countries`` are rejected first, so the answer reveals nothing
    about what the store holds for other countries.
    """
    coded = code_chunk(chunk, layout, questionnaire, questionnaire.required_columns("ingest"))
    n = chunk.num_rows
    accepted = coded.accepted.copy()
    issues = list(coded.issues)
    if countries is not None and COUNTRY in coded.metadata:
        allowed = set(countries)
        country = coded.metadata[COUNTRY]
        outside = np.array([c is not None and c not in allowed for c in country], dtype=bool)
        column = layout.source.get(COUNTRY, COUNTRY)
        for i in np.flatnonzero(outside & accepted):
            issues.append(
                RowIssue(
                    int(coded.rows[i]),
                    column,
                    str(country[i]),
                    f"country {country[i]} is outside the countries this upload may hold "
                    f"({', '.join(sorted(allowed))})",
                )
            )
        accepted &= ~outside
        issues.sort(key=lambda issue: issue.row)
    codes = answer_codes(chunk, questionnaire)
    metadata = canonical_metadata(coded, questionnaire)
    if CASE in coded.metadata:
        keys = returnee_keys(coded.metadata[CASE], secret, key_cache)
    else:
        keys = np.full(n, "", dtype=object)
    interview = coded.metadata.get("interview_date", np.full(n, NO_DAY))
    returned = coded.metadata.get("return_date", np.full(n, NO_DAY))
    known = (interview != NO_DAY) & (returned != NO_DAY)
    months = np.where(known, (interview - returned) / DAYS_PER_MONTH, np.nan)
    raw = {layout.source.get(c, c): _text(v) for c, v in chunk.columns.items()}
    case_header = layout.source.get(CASE)
    if case_header in raw:  # fixable files carry the key, never the case number
        raw[case_header] = pa.array([f"{KEY_PREFIX}{k}" for k in keys], pa.string())
    return PreparedChunk(
        rows=coded.rows,
        accepted=accepted,
        issues=issues,
        notes=list(coded.notes),
        submission_id=np.asarray(_text(coded.metadata[ID]).to_pylist(), dtype=object),
        returnee_key=keys,
        content_hash=content_hashes(metadata, codes, keys),
        answers=encode_answers(codes, questionnaire, n),
        metadata=metadata,
        days={"interview_date": interview, "return_date": returned},
        months_since_return=months,
        scores=scorer.score_arrays(coded.items, n_rows=n),
        raw_cells=raw,
        refused=coded.refused,
        headers=dict(layout.source),
    )
