"""Code answers to values and validate metadata, vectorised over distinct cell values.

A column of a million cells holds a handful of distinct answers, so each distinct text is
coded once (as a field worker reads it: trimmed, any case, code or label in any language of
the spec) and the result is spread back to every row through Arrow's dictionary indices. Every
failing cell of every row is reported at once, with its spreadsheet row, its column as the
file names it, its value and a sentence a field worker can act on.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reintegration.errors import ConsentColumnError, MissingColumnsError, SpecError
from reintegration.index import NOT_APPLICABLE
from reintegration.limits import STORED_TEXT_CHARS
from reintegration.questionnaire import (
    Item,
    MetadataField,
    Option,
    Questionnaire,
    normalise_answer,
)
from reintegration.reading import CellProblem, Chunk, FileNote, Layout

MISSING = float("nan")
PARALLEL_FROM_ROWS = 50_000
TEXT_KINDS = ("identifier", "case_number", "text")
"""Metadata kinds kept as (trimmed) text: checked only for blanks, never coded value by value."""
EPOCH = dt.date(1970, 1, 1)
NO_DAY = np.iinfo(np.int64).min
"""Coded date of a blank or invalid date cell (dates are coded as days since 1970-01-01)."""
SHOWN_CHARS = 40
"""How much of a text that is too long to store a row error shows."""
LATEST_OFFSET = dt.timezone(dt.timedelta(hours=14))
"""UTC+14 (Kiribati's Line Islands): the time zone whose calendar is furthest ahead."""


def latest_today(now: dt.datetime | None = None) -> dt.date:
    """Today's date where it is latest on Earth (UTC+14): no date of an interview is after it.

    A date in a file carries no time zone, so "after today" is decided against the latest
    calendar date anywhere on Earth: a field team east of the server (or of UTC) is never
    refused for an interview held today in its own time, while a date no place has reached
    yet is refused. A date up to a day ahead of the server's own calendar can therefore pass.

    Parameters
    ----------
    now : datetime, optional
        The moment to judge at (aware); the current time by default.

    Returns
    -------
    datetime.date

    Examples
    --------
    >>> latest_today(dt.datetime(2026, 12, 5, 9, 59, tzinfo=dt.UTC)).isoformat()
    '2026-12-05'
    >>> latest_today(dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)).isoformat()
    '2026-12-06'
    """
    return (now or dt.datetime.now(dt.UTC)).astimezone(LATEST_OFFSET).date()


@dataclass(frozen=True)
class RowIssue:
    """One failing cell: spreadsheet row, column as the file names it, value, and why."""

    row: int
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        if not self.column:  # the whole row (a line that could not be parsed)
            return f"row {self.row}: {self.message}"
        return f"row {self.row}, column {self.column}: {self.message}"


@dataclass
class CodedChunk:
    """Coded items and metadata of a chunk, which rows are rejected, and why."""

    rows: np.ndarray
    items: dict[str, np.ndarray]
    metadata: dict[str, Any]
    """dates as int64 days (NO_DAY blank), integers float64, choices object arrays of codes,
    text kinds as trimmed Arrow string arrays"""
    rejected: np.ndarray
    issues: list[RowIssue] = field(default_factory=list)
    notes: list[FileNote] = field(default_factory=list)
    refused: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    """rows without a recorded consent: rejected, and nothing of them may be stored"""

    @property
    def accepted(self) -> np.ndarray:
        return ~self.rejected


class _Invalid:
    """The result of coding a text that is not a valid answer; carries the message."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _Warned:
    """A valid coded value that deserves a warning on its row (the row is kept)."""

    __slots__ = ("message", "value")

    def __init__(self, value: Any, message: str) -> None:
        self.value = value
        self.message = message


def check_required(layout: Layout, questionnaire: Questionnaire, command: str) -> None:
    """Refuse a file that lacks a column the command needs.

    Raises
    ------
    MissingColumnsError
        Naming every missing column in one sentence.
    """
    present = set(layout.source) | set(layout.split)
    missing = [c for c in questionnaire.required_columns(command) if c not in present]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise MissingColumnsError(
            f"the file has no column{plural} {', '.join(missing)}, which {command} needs"
        )


def code_chunk(
    chunk: Chunk, layout: Layout, questionnaire: Questionnaire, required: Iterable[str] = ()
) -> CodedChunk:
    """Code every item and validate every metadata column of a chunk.

    Parameters
    ----------
    chunk : Chunk
        Text columns by canonical name, from :class:`reintegration.reading.BatchReader`.
    layout : Layout
        Where each canonical column came from, to name it as the file does.
    questionnaire : Questionnaire
    required : iterable of str
        Columns that may not be blank (those the command requires).

    Returns
    -------
    CodedChunk
        Items as float64 (NaN missing, ``NOT_APPLICABLE``), metadata coded per kind (dates as
        int64 days, integers as float64, choices as object arrays of codes), and the issues.
    """
    n = chunk.num_rows
    rows = chunk.rows.to_numpy()
    required = set(required)
    issues: list[RowIssue] = []
    notes: list[FileNote] = []
    bad = np.zeros(n, dtype=bool)
    items: dict[str, np.ndarray] = {}
    present = [item for item in questionnaire.items if item.id in chunk.columns]

    def code_item(item: Item) -> tuple[np.ndarray, dict[int, tuple[str, str]]]:
        coder = (
            _select_multiple_coder(item, questionnaire)
            if item.is_multiple
            else _select_one_coder(item, questionnaire)
        )
        values, failed, _ = _code_distinct(chunk.columns[item.id], coder, np.float64, MISSING)
        return values, failed

    # Arrow and NumPy release the GIL for the per-row work, so columns code in parallel.
    workers = min(os.cpu_count() or 1, 4) if n >= PARALLEL_FROM_ROWS else 1
    with ThreadPoolExecutor(workers) as pool:
        for item, (values, failed) in zip(present, pool.map(code_item, present), strict=True):
            items[item.id] = values
            bad |= _collect(failed, rows, _header(layout, item.id), issues)
    metadata: dict[str, Any] = {}
    for spec in questionnaire.metadata:
        if spec.name not in chunk.columns:
            continue
        if spec.kind in TEXT_KINDS:
            text = _trimmed_text(chunk.columns[spec.name])
            metadata[spec.name] = text
            if spec.name in STORED_TEXT_CHARS:
                bad |= _too_long_for_store(
                    text, spec.name, rows, _header(layout, spec.name), issues
                )
            if spec.name in required:
                empty = np.asarray(pc.equal(text, "").to_numpy(zero_copy_only=False))
                failed = {
                    int(i): ("", f"{spec.name} is empty; every interview needs it")
                    for i in np.flatnonzero(empty)
                }
                bad |= _collect(failed, rows, _header(layout, spec.name), issues)
            continue
        coder, dtype, empty = _metadata_coder(spec, questionnaire, spec.name in required)
        values, failed, warned = _code_distinct(chunk.columns[spec.name], coder, dtype, empty)
        metadata[spec.name] = values
        column = _header(layout, spec.name)
        bad |= _collect(failed, rows, column, issues)
        notes.extend(FileNote(m, row=int(rows[i]), column=column) for i, (_, m) in warned.items())
    for spec in questionnaire.metadata:
        if spec.not_after and spec.name in metadata and spec.not_after in metadata:
            later = (metadata[spec.name] != NO_DAY) & (metadata[spec.not_after] != NO_DAY)
            later &= metadata[spec.name] > metadata[spec.not_after]
            for i in np.flatnonzero(later):
                issues.append(
                    RowIssue(
                        int(rows[i]),
                        _header(layout, spec.name),
                        iso_day(metadata[spec.name][i]),
                        f"{_words(spec.name)} {iso_day(metadata[spec.name][i])} is after the "
                        f"{_words(spec.not_after)} {iso_day(metadata[spec.not_after][i])}",
                    )
                )
            bad |= later
    refused = refusals(chunk, questionnaire)
    if refused.any():
        # A row without consent is reported by its consent cell alone: nothing else of it is
        # read back to anyone or kept in the batch's report.
        consent = consent_column(questionnaire)
        assert consent is not None
        gate = _header(layout, consent.name)
        unheard = {int(r) for r in rows[refused]}
        issues = [i for i in issues if i.row not in unheard or i.column == gate]
        notes = [n for n in notes if n.row not in unheard]
    if chunk.problems:  # after consent: a line that could not be read has no consent cell
        bad |= _reader_problems(chunk, rows, issues)
        issues = _drop_shadowed(issues, chunk.problems)
    positions = {c: layout.position(c) for c in {i.column for i in issues}}
    issues.sort(key=lambda issue: (issue.row, positions[issue.column]))
    return CodedChunk(
        rows=rows,
        items=items,
        metadata=metadata,
        rejected=bad | refused,
        issues=issues,
        notes=notes,
        refused=refused,
    )


def _too_long_for_store(
    text: pa.Array, name: str, rows: np.ndarray, column: str, issues: list[RowIssue]
) -> np.ndarray:
    """Reject rows whose text is longer than the store's column holds (the same limit on
    SQLite and PostgreSQL): one vectorised length pass, Python only for the rows over it."""
    limit = STORED_TEXT_CHARS[name]
    over = pc.fill_null(pc.greater(pc.utf8_length(text), limit), False)
    mask = np.asarray(over.to_numpy(zero_copy_only=False))
    for i in np.flatnonzero(mask):
        value = text[int(i)].as_py()
        issues.append(
            RowIssue(
                int(rows[i]),
                column,
                f"{value[:SHOWN_CHARS]}…",
                f"is longer than {limit} characters",
            )
        )
    return mask


def _reader_problems(chunk: Chunk, rows: np.ndarray, issues: list[RowIssue]) -> np.ndarray:
    """Rows the reader found a cell it would not pass on in (too long, nested JSON): each
    is rejected with that cell's sentence; the cell itself was blanked, so no value is shown."""
    mask = np.zeros(len(rows), dtype=bool)
    for problem in chunk.problems:
        where = np.flatnonzero(rows == problem.row)
        if where.size:
            mask[where] = True
            issues.append(RowIssue(problem.row, problem.column, "", problem.message))
    return mask


def _drop_shadowed(issues: list[RowIssue], problems: Iterable[CellProblem]) -> list[RowIssue]:
    """Issues that a blanked cell caused (e.g. "is empty") say nothing the reader's own
    sentence does not; a whole-line problem speaks for its row alone."""
    cells = {(p.row, p.column) for p in problems if p.column}
    lines = {p.row for p in problems if not p.column}
    own = {(p.row, p.column, p.message) for p in problems}
    return [
        i
        for i in issues
        if (i.row, i.column, i.message) in own
        or ((i.row, i.column) not in cells and i.row not in lines)
    ]


# -- the distinct-value engine ------------------------------------------------------------------


def _distinct(values: pa.Array | pa.ChunkedArray) -> tuple[pa.DictionaryArray, list[str]]:
    """A column as one dictionary array, and its distinct texts with '' last (for nulls)."""
    if isinstance(values, pa.ChunkedArray):
        if pa.types.is_dictionary(values.type):
            values = values.unify_dictionaries()
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if not pa.types.is_dictionary(values.type):
        values = pc.dictionary_encode(values)
    return values, [*values.dictionary.to_pylist(), ""]


def _code_distinct(
    values: pa.Array | pa.ChunkedArray, coder: Callable[[str], Any], dtype: Any, empty: Any
) -> tuple[np.ndarray, dict[int, tuple[str, str]], dict[int, tuple[str, str]]]:
    """Apply ``coder`` once per distinct text and spread the results to every row.

    Returns the coded values and, for failing and for warned rows,
    ``{position: (value, message)}``.
    """
    values, texts = _distinct(values)
    indices = pc.fill_null(values.indices, len(texts) - 1).to_numpy(zero_copy_only=False)
    coded = [coder(t) for t in texts]
    plain = [
        empty if isinstance(c, _Invalid) else c.value if isinstance(c, _Warned) else c
        for c in coded
    ]
    out = np.array(plain, dtype=dtype)[indices]
    return out, _spread(coded, _Invalid, texts, indices), _spread(coded, _Warned, texts, indices)


def _spread(
    coded: list[Any], kind: type, texts: list[str], indices: np.ndarray
) -> dict[int, tuple[str, str]]:
    hits = [k for k, c in enumerate(coded) if isinstance(c, kind)]
    if not hits:
        return {}
    return {
        int(i): (texts[indices[i]], coded[indices[i]].message)
        for i in np.flatnonzero(np.isin(indices, hits))
    }


def _trimmed_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    text = pc.fill_null(pc.utf8_trim_whitespace(pc.cast(values, pa.string())), "")
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def _collect(
    failed: Mapping[int, tuple[str, str]], rows: np.ndarray, column: str, issues: list[RowIssue]
) -> np.ndarray:
    mask = np.zeros(len(rows), dtype=bool)
    for i, (value, message) in failed.items():
        issues.append(RowIssue(int(rows[i]), column, value, message))
        mask[i] = True
    return mask


def _header(layout: Layout, name: str) -> str:
    if name in layout.source:
        return layout.source[name]
    if name in layout.split:
        return f"{name} ({', '.join(layout.split[name].values())})"
    return name


# -- items -------------------------------------------------------------------------------------


def _texts(option: Option) -> list[str]:
    return [normalise_answer(option.code), *(normalise_answer(t) for t in option.labels.values())]


def _add(table: dict[str, Any], key: str, value: Any, item_id: str) -> None:
    previous = table.get(key, value)
    same = previous is value or previous == value or (previous != previous and value != value)
    if not same:
        raise SpecError(f"item {item_id}: the answer {key!r} would mean two different options")
    table[key] = value


@functools.cache
def answer_table(item: Item, questionnaire: Questionnaire) -> dict[str, float]:
    """Every accepted text of a select-one item (codes and labels, folded) -> coded value."""
    table: dict[str, float] = {"": MISSING}
    for option in item.options:
        for text in _texts(option):
            _add(table, text, float(option.value) if option.value is not None else MISSING, item.id)
    for option in item.not_applicable:
        for text in _texts(option):
            _add(table, text, NOT_APPLICABLE, item.id)
    for option in questionnaire.missing_codes:
        for text in _texts(option):
            _add(table, text, MISSING, item.id)
    return table


def _choices_hint(options: Iterable[Option], questionnaire: Questionnaire | None) -> str:
    codes = [o.code for o in options]
    tail = ""
    if questionnaire is not None:
        tail = ", " + ", ".join(m.code for m in questionnaire.missing_codes) + " or a blank"
    return f"use one of {', '.join(codes)} (or its label){tail}"


@functools.cache
def _select_one_coder(item: Item, questionnaire: Questionnaire) -> Callable[[str], Any]:
    table = answer_table(item, questionnaire)
    hint = _choices_hint((*item.options, *item.not_applicable), questionnaire)

    def code(text: str) -> Any:
        key = normalise_answer(text)
        if key in table:
            return table[key]
        return _Invalid(f"'{text}' is not an answer to {item.id}; {hint}")

    return code


def parse_multiple(text: str, vocabulary: Mapping[str, str]) -> list[str] | None:
    """Split a select-multiple cell into codes: codes separated by spaces, or labels.

    Labels are matched against the known labels, longest first, so a label that contains
    another ("Feeling very sad" and "Feeling sad") is read whole. Separators are spaces,
    commas and semicolons. Returns None when some part matches nothing.

    Examples
    --------
    >>> vocab = {"red": "red", "deep red": "red", "blue": "blue"}
    >>> parse_multiple("Deep red blue", vocab)
    ['red', 'blue']
    """
    folded = normalise_answer(text.replace(",", " ").replace(";", " "))
    if not folded:
        return []
    tokens = folded.split(" ")
    if all(t in vocabulary for t in tokens):
        return [vocabulary[t] for t in tokens]
    found: list[str] = []
    keys = sorted(vocabulary, key=len, reverse=True)
    pos = 0
    while pos < len(folded):
        if folded[pos] == " ":
            pos += 1
            continue
        for key in keys:
            end = pos + len(key)
            if folded.startswith(key, pos) and (end == len(folded) or folded[end] == " "):
                found.append(vocabulary[key])
                pos = end
                break
        else:
            return None
    return found


@functools.cache
def _vocabulary(options: tuple[Option, ...]) -> dict[str, str]:
    vocab: dict[str, str] = {}
    for option in options:
        for text in _texts(option):
            if vocab.get(text, option.code) != option.code:
                raise SpecError(
                    f"the answer {text!r} would mean both {vocab[text]} and {option.code}"
                )
            vocab[text] = option.code
    return vocab


@functools.cache
def _select_multiple_coder(item: Item, questionnaire: Questionnaire) -> Callable[[str], Any]:
    assert item.exclusive is not None
    exclusive = item.exclusive.code
    missing = {m.code for m in questionnaire.missing_codes}
    signs = {o.code for o in item.options}
    vocab = _vocabulary((*item.options, item.exclusive, *questionnaire.missing_codes))
    hint = _choices_hint((*item.options, item.exclusive), questionnaire)

    def code(text: str) -> Any:
        codes = parse_multiple(text, vocab)
        if codes is None:
            return _Invalid(f"'{text}' is not an answer to {item.id}; {hint}")
        chosen = set(codes)
        if not chosen:
            return MISSING
        if chosen & missing:
            if len(chosen) == 1:
                return MISSING
            return _Invalid(
                f"'{text}': {' or '.join(sorted(chosen & missing))} cannot be combined with "
                "other answers; give it alone"
            )
        if exclusive in chosen:
            if len(chosen) == 1:
                return 1.0
            return _Invalid(f"'{text}': '{exclusive}' cannot be combined with other answers")
        return 1.0 - len(chosen & signs) / len(signs)

    return code


# -- metadata ----------------------------------------------------------------------------------


def _words(name: str) -> str:
    return name.replace("_", " ")


def _blank_rule(spec: MetadataField, required: bool, empty: Any) -> Callable[[], Any]:
    def blank() -> Any:
        if required:
            return _Invalid(f"{spec.name} is empty; every interview needs it")
        return empty

    return blank


def _metadata_coder(
    spec: MetadataField, questionnaire: Questionnaire, required: bool
) -> tuple[Callable[[str], Any], Any, Any]:
    """(coder, numpy dtype, blank value) for a metadata column that is coded value by value."""
    kind = spec.kind
    if kind == "date":
        blank = _blank_rule(spec, required, NO_DAY)
        today = latest_today()
        return (lambda t: _code_date(t, spec, today) if t.strip() else blank()), np.int64, NO_DAY
    if kind == "integer":
        blank = _blank_rule(spec, required, np.nan)
        return (lambda t: _code_integer(t, spec) if t.strip() else blank()), np.float64, np.nan
    if kind == "country":
        blank = _blank_rule(spec, required, None)
        return (lambda t: _code_country(t) if t.strip() else blank()), object, None
    if kind == "positive_number":
        blank = _blank_rule(spec, required, np.nan)
        return (lambda t: code_positive_number(t) if t.strip() else blank()), np.float64, np.nan
    if kind == "choice":
        return _choice_coder(spec, required), object, None
    return _multi_choice_coder(spec, required), object, None


def _code_date(text: str, spec: MetadataField, today: dt.date) -> Any:
    value = text.strip()
    # Exports may carry a time (2025-03-01T10:00:00.000+01:00); the date is what counts.
    if len(value) > 10 and value[10] in "T ":
        value = value[:10]
    day = _iso_day(text, value)
    if isinstance(day, _Invalid):
        return day
    if day > today:
        # Every date of the spec (interview, return) is of something that has happened.
        return _Invalid(
            f"{_words(spec.name)} {day.isoformat()} is after today ({today.isoformat()} at the "
            "latest anywhere on Earth); write the date it took place"
        )
    return day_number(day)


_ISO_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
"""English month names, fixed here rather than taken from the process's locale."""


def _iso_day(text: str, value: str) -> dt.date | _Invalid:
    """The date ``value`` writes, or why not: a form other than YYYY-MM-DD is told apart from
    a day the calendar lacks, so the sender fixes the right thing."""
    parts = _ISO_DAY.fullmatch(value)
    if parts is None:
        return _Invalid(f"'{text}' is not written as YYYY-MM-DD, e.g. 2025-03-31")
    year, month, day = (int(p) for p in parts.groups())
    if not 1 <= month <= 12:
        return _Invalid(f"'{text}' is not a date: there is no month {parts.group(2)}")
    if not year:
        return _Invalid(f"'{text}' is not a date: there is no year 0000")
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        return _Invalid(f"'{text}' is not a date: {MONTHS[month - 1]} {year:04d} has {days} days")
    return dt.date(year, month, day)


def day_number(day: dt.date) -> int:
    """A date as the coded form of dates: days since 1970-01-01."""
    return (day - EPOCH).days


def iso_day(day: int) -> str:
    """A coded date (days since 1970-01-01) as ISO text."""
    return (EPOCH + dt.timedelta(days=int(day))).isoformat()


def _code_integer(text: str, spec: MetadataField) -> Any:
    try:
        number = float(text.strip())
    except ValueError:
        return _Invalid(f"'{text}' is not a whole number of years")
    if not number.is_integer():
        return _Invalid(f"'{text}' is not a whole number of years")
    low, high = spec.minimum, spec.maximum
    if (low is not None and number < low) or (high is not None and number > high):
        return _Invalid(f"{_words(spec.name)} {int(number)} is outside {low}–{high}")
    return number


_DECIMAL = re.compile(r"[+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
"""A number as data files write it: digits, an optional point and decimals, an optional
exponent (``1.25``, ``2``, ``.5``, ``1e-3``); no thousands separators, no ``inf`` or ``nan``."""


def code_positive_number(text: str) -> Any:
    """A positive finite number (a survey weight) from its text, or why it is not one.

    The weight is kept as a float64; ``2``, ``2.0`` and ``2.00`` are the same weight. A
    decimal comma (``1,5``), a thousands separator, zero, a negative number, ``inf`` and
    ``nan`` are refused: a weight must be a positive number for every estimate to use it.

    Examples
    --------
    >>> code_positive_number(" 1.25 ")
    1.25
    >>> code_positive_number("-2").message
    "'-2' is not a positive number"
    """
    value = text.strip()
    number = float(value) if _DECIMAL.fullmatch(value) else math.nan
    if math.isfinite(number) and number > 0:
        return number
    if "," in value and _DECIMAL.fullmatch(value.replace(",", ".", 1)):
        return _Invalid(f"'{text}' is not a positive number; write decimals with a point, e.g. 1.5")
    return _Invalid(f"'{text}' is not a positive number")


def weight_text(number: float) -> str:
    """The canonical text of a weight: the shortest text that reads back as the same float
    (``2.0``, ``1.25``), so equal weights written differently are the same content.

    Examples
    --------
    >>> weight_text(2.0), weight_text(0.1 + 0.2)
    ('2.0', '0.30000000000000004')
    """
    return repr(float(number))


@functools.cache
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-3 codes and the user-assigned ones (AAA–AAZ, QMA–QZZ, XAA–XZZ, ZZA–ZZZ)."""
    import pycountry

    codes = {c.alpha_3 for c in pycountry.countries}
    letters = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    codes |= {"AA" + c for c in letters} | {"ZZ" + c for c in letters}
    codes |= {"X" + a + b for a in letters for b in letters}
    codes |= {"Q" + a + b for a in letters[letters.index("M") :] for b in letters}
    return frozenset(codes)


def _code_country(text: str) -> Any:
    code = text.strip().upper()
    if code in country_codes():
        return code
    return _Invalid(f"'{text}' is not a country code; use the three-letter ISO code, e.g. SEN")


def _choice_coder(spec: MetadataField, required: bool) -> Callable[[str], Any]:
    if spec.rejects_row_on is not None:
        return _consent_coder(spec)
    vocab = _vocabulary(spec.choices)
    blank = _blank_rule(spec, required, None)
    hint = _choices_hint(spec.choices, None)

    def code(text: str) -> Any:
        key = normalise_answer(text)
        if not key:
            return blank()
        if key not in vocab:
            return _Invalid(f"'{text}' is not a valid {_words(spec.name)}; {hint}")
        return vocab[key]

    return code


# -- consent -----------------------------------------------------------------------------------


def consent_column(questionnaire: Questionnaire) -> MetadataField | None:
    """The consent column: the choice column whose answer can refuse the interview.

    Its spec names the refusing answer (``rejects_row_on``); every other choice consents.
    """
    for spec in questionnaire.metadata:
        if spec.kind == "choice" and spec.rejects_row_on is not None:
            return spec
    return None


def _consenting(spec: MetadataField) -> frozenset[str]:
    return frozenset(c.code for c in spec.choices if c.code != spec.rejects_row_on)


def consent_message(spec: MetadataField) -> str:
    """The sentence of a row whose consent is not recorded as given."""
    given = " or ".join(sorted(_consenting(spec)))
    return f"{spec.name} was not recorded as {given}; nothing of this row is stored"


def _consent_coder(spec: MetadataField) -> Callable[[str], Any]:
    # Only a recorded yes (code or label, any case) lets a row in: a blank, a refusal and
    # anything unreadable all mean that nobody recorded this person's consent.
    vocab = _vocabulary(spec.choices)
    consenting = _consenting(spec)
    refused = _Invalid(consent_message(spec))

    def code(text: str) -> Any:
        value = vocab.get(normalise_answer(text))
        return value if value in consenting else refused

    return code


def check_consent(
    layout: Layout,
    questionnaire: Questionnaire,
    recorded_elsewhere: bool,
    declare_with: str = "--consent-recorded-elsewhere",
) -> None:
    """Refuse a file without a consent column unless its uploader declares that consent was
    recorded outside the form (DESIGN.md, "Consent").

    Parameters
    ----------
    layout : Layout
    questionnaire : Questionnaire
    recorded_elsewhere : bool
        The uploader's declaration.
    declare_with : str
        How this uploader declares it (a command-line flag, a form field), for the message.

    Raises
    ------
    ConsentColumnError
        The file has no consent column and nothing was declared.
    """
    spec = consent_column(questionnaire)
    if spec is None or recorded_elsewhere or spec.name in layout.source:
        return
    raise ConsentColumnError(
        f"this file has no {spec.name} column: add it, or declare that consent was recorded "
        f"outside the form ({declare_with})"
    )


def _multi_choice_coder(spec: MetadataField, required: bool) -> Callable[[str], Any]:
    options = (*spec.choices, spec.exclusive) if spec.exclusive else spec.choices
    vocab = _vocabulary(options)
    blank = _blank_rule(spec, required, None)
    hint = _choices_hint(options, None)
    order = {o.code: k for k, o in enumerate(options)}

    def code(text: str) -> Any:
        codes = parse_multiple(text, vocab)
        if codes is None:
            return _Invalid(f"'{text}' is not a valid {_words(spec.name)}; {hint}")
        if not codes:
            return blank()
        chosen = sorted(set(codes), key=order.__getitem__)
        if spec.exclusive and spec.exclusive.code in chosen and len(chosen) > 1:
            none = spec.exclusive.code
            return _Warned(
                " ".join(c for c in chosen if c != none),
                f"'{none}' was given with other {_words(spec.name)}; '{none}' was dropped",
            )
        return " ".join(chosen)

    return code


# -- canonical answer codes (what ingest stores and compares) ---------------------------------


@functools.cache
def _canonical_coder(item: Item, questionnaire: Questionnaire) -> Callable[[str], Any]:
    """Text -> the answer's canonical code ('' for blank); None for an invalid answer."""
    if item.is_multiple:
        assert item.exclusive is not None
        options = (*item.options, item.exclusive, *questionnaire.missing_codes)
        vocab = _vocabulary(options)
        order = {o.code: k for k, o in enumerate(options)}

        def multiple(text: str) -> Any:
            codes = parse_multiple(text, vocab)
            if codes is None:
                return None
            return " ".join(sorted(set(codes), key=order.__getitem__))

        return multiple
    vocab = _vocabulary((*item.options, *item.not_applicable, *questionnaire.missing_codes))

    def single(text: str) -> Any:
        key = normalise_answer(text)
        return vocab.get(key) if key else ""

    return single


def _distinct_text(values: pa.Array | pa.ChunkedArray, coder: Callable[[str], Any]) -> pa.Array:
    """Like :func:`_code_distinct` for a coder that returns text: an Arrow string array,
    built by one gather in Arrow (no Python object per row)."""
    values, texts = _distinct(values)
    table = pa.array([coder(t) or "" for t in texts], pa.string())
    return pc.take(table, pc.fill_null(values.indices, len(texts) - 1))


def answer_codes(chunk: Chunk, questionnaire: Questionnaire) -> dict[str, pa.Array]:
    """Every item's answers as canonical codes (Arrow text; '' for blank and invalid).

    A label export and a code export of the same interview give the same codes, so ingest
    compares and stores these, and two interviews with the same codes have the same content.
    """
    return {
        item.id: _distinct_text(chunk.columns[item.id], _canonical_coder(item, questionnaire))
        for item in questionnaire.items
        if item.id in chunk.columns
    }


def refusals(chunk: Chunk, questionnaire: Questionnaire) -> np.ndarray:
    """Rows without a recorded consent (blank, ``no`` or anything but ``yes``, when the file
    has a consent column): nothing of them is stored."""
    refused = np.zeros(chunk.num_rows, dtype=bool)
    for spec in questionnaire.metadata:
        if spec.rejects_row_on is None or spec.name not in chunk.columns:
            continue
        values, _, _ = _code_distinct(chunk.columns[spec.name], _refusal_coder(spec), bool, False)
        refused |= values
    return refused


def _refusal_coder(spec: MetadataField) -> Callable[[str], bool]:
    vocab = _vocabulary(spec.choices)
    consenting = _consenting(spec)
    return lambda text: vocab.get(normalise_answer(text)) not in consenting
