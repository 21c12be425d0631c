"""What KoboToolbox and ODK Central exports look like, as data read by the batch reader.

A Kobo export (CSV or XLSX) names its columns by the form's names (``economic/can_borrow``) or,
exported "with labels", by the question labels (``Economic dimension/If you needed to, could
you borrow money?``); a select-multiple comes as one column, one 0/1 column per choice
(``<question>/<choice>``), or both. Kobo adds system columns (``_id``, ``_uuid``,
``_submission_time``, ...) and the form's ``meta`` group (``meta/instanceID``,
``meta/rootUuid``, ``meta/deprecatedID``). ODK Central's CSV joins groups with ``-``, adds
``SubmissionDate`` first and ``KEY``, ``SubmitterID``, ... ``FormVersion`` last, and splits a
select-multiple as ``<group>-<question>/<choice>``; its "zip export" holds ``<formId>.csv``,
one ``<formId>-<repeat>.csv`` per repeat group and the submitted media.

This module knows those layouts: which headers are system columns, which give a row its
identity and in what order (DESIGN.md, "Identity"), which look like direct identifiers and are
never read, how label headers map to canonical columns, and which zip files are safe to open.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from reintegration.errors import UnreadableFileError
from reintegration.questionnaire import Option, Questionnaire, normalise_answer

SEPARATORS = "/-:."
"""Group separators: Kobo's default ``/`` (configurable), ODK Central's ``-``."""
_SPLIT = re.compile(r"[/\-:.]")

SYSTEM_COLUMNS = frozenset(
    # Kobo: formpack's copy fields, repeat-table links, older exports
    "_id _uuid _submission_time _validation_status _notes _status _submitted_by __version__ "
    "_version_ _tags _index _parent_index _parent_table_name _attachments _xform_id_string "
    "_bamboo_dataset_id _media_all_received _total_media _media_count _supplementaldetails "
    "formhub/uuid "
    # ODK Central's root and repeat tables
    "submissiondate key parent_key submitterid submittername attachmentspresent "
    "attachmentsexpected status reviewstate deviceid edits formversion "
    # XLSForm metadata, in the meta group or not ("remove group names" in Central)
    "instanceid rootuuid deprecatedid audit meta/instanceid meta/rootuuid meta/deprecatedid "
    "meta/audit start end today username".split()
)
"""System columns as :func:`header_path` folds them: recognised, listed, never read as data."""

IDENTITY_RANKS: Mapping[str, int] = {
    "meta/rootuuid": 0,
    "rootuuid": 0,
    "key": 1,
    "meta/instanceid": 2,
    "instanceid": 2,
    "_uuid": 3,
}
"""Which system columns give a submission its identity, most trusted first (DESIGN.md):
Kobo ``meta/rootUuid`` (stable across edits), ODK ``KEY`` (the first instanceID, stable
across edits), then ``meta/instanceID`` / ``_uuid`` (new at every edit). The canonical
``submission_id`` comes after all of them (rank :data:`CANONICAL_IDENTITY_RANK`)."""
CANONICAL_IDENTITY_RANK = 4

IDENTIFIER_WORDS = frozenset(
    # names, in English and French, and camelCase names written together
    "name names surname firstname lastname fullname givenname familyname middlename maidenname "
    "nickname instancename nom prenom prenoms "
    # telephone numbers and SIM identities
    "phone phones telephone mobile cellphone msisdn whatsapp phonenumber simserial subscriberid "
    # postal and e-mail addresses
    "address adresse email mail courriel "
    # places: Kobo _geolocation, _<q>_latitude ...; ODK <q>-Latitude ... <q>-Accuracy
    "gps geopoint geolocation geotrace geoshape coordinates latitude longitude altitude "
    "precision accuracy "
    # identity documents and birth dates
    "passport nationalid nin ssn dob birthdate dateofbirth".split()
)
"""Words that make a header look like a direct identifier (matched as whole words)."""
IDENTIFIER_PHRASES: tuple[tuple[str, ...], ...] = (
    ("national", "id"),
    ("id", "number"),
    ("id", "card"),
    ("id", "no"),
    ("identity", "card"),
    ("identity", "number"),
    ("social", "security"),
    ("birth", "date"),
    ("date", "of", "birth"),
    ("date", "de", "naissance"),
)
"""Runs of words that make a header look like a direct identifier."""

MAX_COMPRESSION_RATIO = 100
"""A zip member may unpack to at most this many times its packed size. XLSX sheets and export
CSVs pack 5 to 30 times; deflate can reach about 1,000, which only a zip bomb does."""
RATIO_FLOOR_BYTES = 1 << 20
"""Members that unpack to less than this are too small to matter, whatever their ratio."""
MAX_SHARED_STRINGS_BYTES = 64 << 20
"""Largest shared-strings part read. Both workbook readers hold it whole in memory (about
three times its size at worst), whatever else they stream; a workbook of a million rows
with two distinct texts per row stays under it."""


def header_path(header: str) -> str:
    """A header folded for matching system columns: lower case, any group separator as ``/``.

    Examples
    --------
    >>> header_path(" meta-instanceID ")
    'meta/instanceid'
    """
    return "/".join(p for p in _SPLIT.split(header.strip().lower()) if p)


def is_system_column(header: str) -> bool:
    """Whether a header is a Kobo or ODK Central system column (see :data:`SYSTEM_COLUMNS`)."""
    return header_path(header) in SYSTEM_COLUMNS


def identity_rank(header: str) -> int | None:
    """Where a system column stands in the identity precedence (0 first), or None."""
    return IDENTITY_RANKS.get(header_path(header))


def looks_like_identifier(header: str) -> bool:
    """Whether a header's last segment names a direct identifier (a name, a phone, a place...).

    The last segment (after the group separators) is split into words, camelCase included,
    accents dropped; it matches when a word is in :data:`IDENTIFIER_WORDS`, when its words
    written together are (``phoneNumber``), or when it holds a run of
    :data:`IDENTIFIER_PHRASES`. The case number (``returnee_id``) is no direct identifier:
    ingest pseudonymises it.

    Examples
    --------
    >>> [looks_like_identifier(h) for h in ("phone_number", "_geolocation", "gps-Latitude")]
    [True, True, True]
    >>> [looks_like_identifier(h) for h in ("returnee_id", "enumerator_id", "household_size")]
    [False, False, False]
    """
    parts = [p for p in _SPLIT.split(header.strip()) if p.strip()]
    if not parts:
        return False
    last = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", parts[-1])
    last = unicodedata.normalize("NFKD", last).encode("ascii", "ignore").decode().lower()
    words = [w for w in re.split(r"[^a-z0-9]+", last) if w]
    if any(w in IDENTIFIER_WORDS for w in words) or "".join(words) in IDENTIFIER_WORDS:
        return True
    return any(
        tuple(words[k : k + len(phrase)]) == phrase
        for phrase in IDENTIFIER_PHRASES
        for k in range(len(words) - len(phrase) + 1)
    )


# -- matching headers to canonical columns ---------------------------------------------------


@dataclass(frozen=True)
class _Vocabulary:
    """Every text a header may use for a canonical column, folded."""

    columns: frozenset[str]
    group_names: frozenset[str]
    groups: tuple[str, ...]
    """group names and labels, longest first"""
    labels: Mapping[str, str]
    """question or column label -> canonical column (labels shared by two columns left out)"""
    codes: Mapping[str, frozenset[str]]
    """select-multiple column -> its choice codes"""
    questions: tuple[tuple[str, str], ...]
    """(select-multiple label, column), longest label first"""
    choices: Mapping[str, Mapping[str, str]]
    """select-multiple column -> {choice code or label: code}"""


def _choice_options(questionnaire: Questionnaire) -> dict[str, tuple[Option, ...]]:
    """Select-multiple columns (items and metadata) -> the options a 0/1 column may stand for."""
    out: dict[str, tuple[Option, ...]] = {}
    for item in questionnaire.items:
        if item.is_multiple:
            exclusive = (item.exclusive,) if item.exclusive else ()
            out[item.id] = (*item.options, *exclusive, *questionnaire.missing_codes)
    for spec in questionnaire.metadata:
        if spec.kind == "multi_choice":
            out[spec.name] = (*spec.choices, *((spec.exclusive,) if spec.exclusive else ()))
    return out


@functools.cache
def _vocabulary(questionnaire: Questionnaire) -> _Vocabulary:
    labels: dict[str, str | None] = {}
    questions: list[tuple[str, str]] = []

    def add(text: str, column: str) -> None:
        key = normalise_answer(text)
        labels[key] = column if labels.get(key, column) == column else None

    for spec in questionnaire.metadata:
        for text in spec.labels.values():
            add(text, spec.name)
    for item in questionnaire.items:
        for text in item.question.values():
            add(text, item.id)
    multiple = _choice_options(questionnaire)
    for column in multiple:
        texts = (
            questionnaire.item(column).question
            if column in questionnaire.item_ids
            else questionnaire.metadata_field(column).labels
        )
        questions.extend((normalise_answer(t), column) for t in texts.values())
    groups = {normalise_answer(g) for g in questionnaire.groups}
    groups |= {normalise_answer(t) for g in questionnaire.groups.values() for t in g.values()}
    return _Vocabulary(
        columns=frozenset(questionnaire.columns),
        group_names=frozenset(questionnaire.groups),
        groups=tuple(sorted(groups, key=len, reverse=True)),
        labels={k: v for k, v in labels.items() if v is not None},
        codes={c: frozenset(o.code for o in options) for c, options in multiple.items()},
        questions=tuple(sorted(set(questions), key=lambda q: len(q[0]), reverse=True)),
        choices={
            column: {
                normalise_answer(text): o.code
                for o in options
                for text in (o.code, *o.labels.values())
            }
            for column, options in multiple.items()
        },
    )


def match_column(header: str, questionnaire: Questionnaire) -> tuple[str, str | None] | None:
    """The canonical column a header stands for, and the choice code of a 0/1 column.

    Names match any case with group prefixes ignored (``economic/can_borrow``,
    ``economic-can_borrow``); labels match in any language of the spec, possibly prefixed by
    the group label (``Economic dimension/If you needed to, could you borrow money?``). A
    select-multiple's 0/1 column is ``<question>/<choice>`` by names or by labels.

    Returns
    -------
    (column, code) or None
        ``code`` is None for a whole column.

    Examples
    --------
    >>> from reintegration.questionnaire import load_questionnaire
    >>> q = load_questionnaire()
    >>> item = q.items[0]
    >>> label = f"{q.groups[item.dimension]['fr']}/{item.question['fr']}"
    >>> match_column(label, q) == (item.id, None)
    True
    >>> multiple = next(i for i in q.items if i.is_multiple)
    >>> code = multiple.options[0].code
    >>> match_column(f"{multiple.dimension}-{multiple.id}/{code}", q) == (multiple.id, code)
    True
    """
    vocab = _vocabulary(questionnaire)
    found = _match_label(normalise_answer(header), vocab)
    if found is not None:
        return found
    parts = [p for p in _SPLIT.split(normalise_answer(header).replace(" ", "_")) if p]
    while len(parts) > 1 and parts[0] in vocab.group_names:
        parts = parts[1:]
    if len(parts) == 1 and parts[0] in vocab.columns:
        return parts[0], None
    if len(parts) == 2 and parts[1] in vocab.codes.get(parts[0], ()):
        return parts[0], parts[1]
    return None


def _match_label(text: str, vocab: _Vocabulary) -> tuple[str, str | None] | None:
    while text:
        if text in vocab.labels:
            return vocab.labels[text], None
        for question, column in vocab.questions:
            rest = _after_separator(text, question)
            if rest is not None and rest in vocab.choices[column]:
                return column, vocab.choices[column][rest]
        for group in vocab.groups:
            rest = _after_separator(text, group)
            if rest is not None:
                text = rest
                break
        else:
            return None
    return None


def _after_separator(text: str, prefix: str) -> str | None:
    """``text`` without ``prefix`` and the group separator after it, or None."""
    if not text.startswith(prefix):
        return None
    rest = text[len(prefix) :].lstrip()
    return rest[1:].strip() if rest[:1] and rest[0] in SEPARATORS else None


# -- identity ----------------------------------------------------------------------------------


def coalesce_identity(
    columns: Sequence[pa.Array | pa.ChunkedArray],
) -> pa.Array | pa.ChunkedArray:
    """Per row, the first identity that is not blank, without its ``uuid:`` prefix.

    ``columns`` are the identity columns in precedence order; a row blank in all of them
    gets null (or its blank cell, when there is one column). Vectorised in Arrow, and a
    column without any ``uuid:`` is passed through untouched: no Python work per row.
    """
    cleaned = []
    for k, values in enumerate(columns):
        last = k == len(columns) - 1
        cleaned.append(_identity_text(values, blank_as_null=not last))
        if cleaned[-1].null_count == 0:
            break  # every row has its identity: the columns after this one are not needed
    return cleaned[0] if len(cleaned) == 1 else pc.coalesce(*cleaned)


def _identity_text(
    values: pa.Array | pa.ChunkedArray, blank_as_null: bool
) -> pa.Array | pa.ChunkedArray:
    text = pc.utf8_ltrim_whitespace(pc.cast(values, pa.string()))
    # Two exact matches cost a tenth of one case-insensitive (regular expression) match.
    prefixed = pc.or_(pc.starts_with(text, "uuid:"), pc.starts_with(text, "UUID:"))
    if pc.any(prefixed).as_py():
        sliced = pc.utf8_slice_codeunits(text, 5)
        # Exports prefix every row or none: then no per-row choice is needed.
        text = sliced if pc.all(prefixed).as_py() else pc.if_else(prefixed, sliced, text)
    if blank_as_null:
        text = pc.utf8_trim_whitespace(text)
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    return text


# -- zip files: workbooks and ODK Central's export -------------------------------------------


def zip_kind(path: Path) -> str:
    """``xlsx`` for an Excel workbook, ``zip`` for a zip holding CSV files (ODK Central).

    Raises
    ------
    UnreadableFileError
        For a zip that cannot be opened or holds neither.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnreadableFileError(
            f"{path.name} is a zip file but not an Excel workbook or an ODK Central export; "
            "it cannot be opened"
        ) from exc
    if "xl/workbook.xml" in names:
        return "xlsx"
    if _csv_members(names):
        return "zip"
    raise UnreadableFileError(
        f"{path.name} is a zip file but not an Excel workbook or an ODK Central export: "
        "it holds no CSV file"
    )


def check_workbook(path: Path, max_bytes: int, max_unzipped_bytes: int) -> None:
    """Refuse a workbook too large to read, or one that would unpack like a zip bomb.

    Only the file size and the sizes the zip declares are read; the workbook is not parsed.

    Raises
    ------
    UnreadableFileError
        When the file is larger than ``max_bytes``, when its parts would unpack to more than
        ``max_unzipped_bytes`` in all, when a part of at least :data:`RATIO_FLOOR_BYTES`
        would unpack to more than :data:`MAX_COMPRESSION_RATIO` times its packed size, or when
        its shared strings would unpack to more than :data:`MAX_SHARED_STRINGS_BYTES`.
    """
    size = path.stat().st_size
    if size > max_bytes:
        raise UnreadableFileError(
            f"{path.name} is {_size(size)}, more than the {_size(max_bytes)} an Excel workbook "
            "may have; export the data as CSV instead"
        )
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
    for member in members:
        check_member(path.name, member)
    unzipped = sum(m.file_size for m in members)
    if unzipped > max_unzipped_bytes:
        raise UnreadableFileError(
            f"{path.name} would unpack to {_size(unzipped)}, more than the "
            f"{_size(max_unzipped_bytes)} allowed; export the data as CSV instead"
        )
    strings = sum(m.file_size for m in members if m.filename.lower() == "xl/sharedstrings.xml")
    if strings > MAX_SHARED_STRINGS_BYTES:
        raise UnreadableFileError(
            f"{path.name} holds {_size(strings)} of distinct texts, more than the "
            f"{_size(MAX_SHARED_STRINGS_BYTES)} a workbook may; export the data as CSV instead"
        )


def check_member(name: str, member: zipfile.ZipInfo) -> None:
    """Refuse a zip member whose declared sizes say it would unpack like a zip bomb."""
    if member.file_size < RATIO_FLOOR_BYTES:
        return
    ratio = member.file_size / max(member.compress_size, 1)
    if ratio > MAX_COMPRESSION_RATIO:
        raise UnreadableFileError(
            f"{name} looks like a zip bomb: its part {member.filename} would unpack "
            f"{ratio:.0f} times larger than it is stored (at most {MAX_COMPRESSION_RATIO}), "
            "so it was not opened"
        )


def main_csv_member(path: Path, form_id: str) -> zipfile.ZipInfo:
    """The root table of a zip export: ``<form_id>.csv``, else the CSV no other one extends.

    ODK Central names the root table after the form id and each repeat table
    ``<root>-<repeat>.csv`` (``<root> - audit.csv`` for client audits); media sit in folders.

    Raises
    ------
    UnreadableFileError
        When the zip holds no CSV file, several candidates, or a member that unpacks like a
        zip bomb.
    """
    with zipfile.ZipFile(path) as archive:
        members = {m.filename: m for m in archive.infolist()}
    candidates = _csv_members(list(members))
    if not candidates:
        raise UnreadableFileError(f"{path.name} holds no CSV file to read")
    named = [c for c in candidates if c.lower() == f"{form_id.lower()}.csv"]
    top = [c for c in candidates if "/" not in c] or candidates
    stems = {c: c[: -len(".csv")] for c in top}
    roots = named or [
        c
        for c in top
        if not any(
            other != c and stems[c].startswith((stems[other] + "-", stems[other] + " - "))
            for other in top
        )
    ]
    if len(roots) != 1:
        raise UnreadableFileError(
            f"{path.name} holds several CSV files ({', '.join(sorted(roots))}) and none is "
            f"named after the form ({form_id}.csv); upload the main table alone"
        )
    member = members[roots[0]]
    check_member(path.name, member)
    return member


def _csv_members(names: list[str]) -> list[str]:
    return [
        n
        for n in names
        if n.lower().endswith(".csv")
        and not n.startswith("__MACOSX/")
        and not n.rsplit("/", 1)[-1].startswith(".")
    ]


def _size(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.0f} MB"
    return f"{max(n, 1) / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"
