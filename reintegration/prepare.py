"""Turn a chunk of a batch into rows ready to store: coded, keyed, hashed and scored.

Pure functions of data (no store): the ingest step wires them to the database. Each accepted
row gets its pseudonymous returnee key, its canonical answer codes, a content hash over every
canonical value but the identity (so a label export of a stored code export is the same
content), its months since return and its scores.
"""

from __future__ import annotations

import hashlib
import json
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
    refusals,
)
from reintegration.index import LEVELS, ReintegrationIndex
from reintegration.pseudonym import KEY_PREFIX, returnee_keys
from reintegration.questionnaire import Questionnaire
from reintegration.reading import Chunk, Layout

DAYS_PER_MONTH = 30.4375
ID = "submission_id"
CASE = "returnee_id"
COUNTRY = "country"


@dataclass
class PreparedChunk:
    """A chunk's rows, coded; accepted rows carry everything the store needs."""

    rows: np.ndarray
    accepted: np.ndarray
    issues: list[RowIssue]
    notes: list[Any]
    submission_id: np.ndarray
    returnee_key: np.ndarray
    content_hash: np.ndarray
    answers_json: np.ndarray
    metadata: dict[str, np.ndarray]
    months_since_return: np.ndarray
    scores: dict[str, Any]
    raw_cells: dict[str, list[str]] = field(default_factory=dict)
    refused: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """rows that refused the interview: rejected, and nothing of them is stored"""
    headers: dict[str, str] = field(default_factory=dict)

    def header(self, column: str) -> str:
        """A canonical column as the file names it."""
        return self.headers.get(column, column)

    def reject(self, position: int, issue: RowIssue) -> None:
        """Reject one more row (a check that needed the store)."""
        self.accepted[position] = False
        self.issues.append(issue)


def _text(values: Any) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray | pa.Array):
        return np.asarray(pc.cast(values, pa.string()).to_pylist(), dtype=object)
    return np.asarray(values, dtype=object)


def _iso_days(days: np.ndarray) -> np.ndarray:
    valid = days != NO_DAY
    out = np.full(len(days), "", dtype=object)
    out[valid] = np.datetime_as_string(days[valid].astype("datetime64[D]"))
    return out


def canonical_metadata(coded: CodedChunk, questionnaire: Questionnaire) -> dict[str, np.ndarray]:
    """Metadata as canonical text per row: codes, ISO dates, whole numbers, trimmed text."""
    out: dict[str, np.ndarray] = {}
    for spec in questionnaire.metadata:
        if spec.name not in coded.metadata:
            continue
        values = coded.metadata[spec.name]
        if spec.kind == "date":
            out[spec.name] = _iso_days(values)
        elif spec.kind == "integer":
            text = np.full(len(values), "", dtype=object)
            ok = ~np.isnan(values)
            text[ok] = values[ok].astype(np.int64).astype(str)
            out[spec.name] = text
        else:
            arr = _text(values)
            out[spec.name] = np.where(arr == None, "", arr)  # noqa: E711 - element-wise
    return out


def content_hashes(
    metadata: dict[str, np.ndarray], codes: dict[str, np.ndarray], keys: np.ndarray
) -> np.ndarray:
    """SHA-256 of every canonical value of a row but its identity, in a fixed order."""
    columns = [keys] + [metadata[k] for k in sorted(metadata) if k not in (ID, CASE)]
    columns += [codes[k] for k in sorted(codes)]
    names = [k for k in sorted(metadata) if k not in (ID, CASE)] + sorted(codes)
    header = "\x1e".join(names)
    joined = [
        header + "\x1e" + "\x1f".join("" if v is None else str(v) for v in values)
        for values in zip(*columns, strict=True)
    ]
    return np.array(
        [hashlib.sha256(text.encode("utf-8")).hexdigest() for text in joined], dtype=object
    )


def answers_json(codes: dict[str, np.ndarray], n: int) -> np.ndarray:
    """The answers of each row as a JSON object of item id to code (blanks left out)."""
    names = sorted(codes)
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = json.dumps({k: codes[k][i] for k in names if codes[k][i]}, separators=(",", ":"))
    return out


def prepare_chunk(
    chunk: Chunk,
    layout: Layout,
    questionnaire: Questionnaire,
    scorer: ReintegrationIndex,
    secret: bytes,
    *,
    countries: Collection[str] | None = None,
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
    keys = (
        returnee_keys(coded.metadata[CASE], secret)
        if CASE in coded.metadata
        else np.full(n, "", dtype=object)
    )
    interview = coded.metadata.get("interview_date", np.full(n, NO_DAY))
    returned = coded.metadata.get("return_date", np.full(n, NO_DAY))
    months = np.where(
        (interview != NO_DAY) & (returned != NO_DAY),
        (interview - returned) / DAYS_PER_MONTH,
        np.nan,
    )
    scores = scorer.score_arrays(coded.items, n_rows=n)
    raw = {layout.source.get(c, c): _text(v) for c, v in chunk.columns.items()}
    case_header = layout.source.get(CASE)
    if case_header in raw:  # fixable files carry the key, never the case number
        raw[case_header] = np.array([f"{KEY_PREFIX}{k}" for k in keys], dtype=object)
    return PreparedChunk(
        rows=coded.rows,
        accepted=accepted,
        issues=issues,
        notes=list(coded.notes),
        submission_id=_text(coded.metadata[ID]),
        returnee_key=keys,
        content_hash=content_hashes(metadata, codes, keys),
        answers_json=answers_json(codes, n),
        metadata=metadata,
        months_since_return=months,
        scores=scores,
        raw_cells={k: list(v) for k, v in raw.items()},
        headers=dict(layout.source),
        refused=refusals(chunk, questionnaire),
    )


def score_values(scores: dict[str, Any], dimensions: tuple[str, ...], i: int) -> dict[str, Any]:
    """One row's scores as stored: floats (None missing), level and weakest as text."""
    out: dict[str, Any] = {}
    for name, values in scores.items():
        value = values[i]
        if name == "level":
            out[name] = LEVELS[value] if value >= 0 else None
        elif name == "weakest_dimension":
            out[name] = dimensions[value] if value >= 0 else None
        elif name == "sustainable":
            out[name] = bool(value) if value >= 0 else None
        else:
            out[name] = None if np.isnan(value) else float(value)
    return out
