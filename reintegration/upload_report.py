"""An upload's report in the reader's language: its outcome in one sentence, then its messages.

Ingest writes every row issue and warning in English, and the store keeps them so: the
fixable file, the error CSV and the command line read the same sentences whatever language
their reader speaks, and a batch stored long ago is still shown. The messages are written
from the templates listed in :func:`_templates`; :func:`translate` recognises a stored
message by the English template it was written from, takes its values back out and writes
the template again in the current language (:mod:`reintegration.i18n`), so a report is
rendered in the language of whoever reads it, when they read it. A message no template
matches (an older wording, a rare file error) is shown as stored.

>>> from reintegration.i18n import use_language
>>> counts = {"received": 93, "accepted": 0, "rejected": 0, "duplicate": 93, "updated": 0}
>>> outcome(counts)
'Nothing new: all 93 rows were already stored'
>>> outcome({**counts, "accepted": 88, "rejected": 5, "duplicate": 0})
'88 stored, 5 need fixing'
>>> translate("'2024-02-30' is not a date: February 2024 has 29 days")
"'2024-02-30' is not a date: February 2024 has 29 days"
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from typing import Any

from babel import dates

from reintegration import i18n
from reintegration.i18n import DEFAULT, _, current, locale, ngettext, use_language

__all__ = ["issue_text", "outcome", "translate"]

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_ISO = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_SHAPES = {
    "number": r"-?[0-9]+",
    "low": r"-?[0-9.]+|None",
    "high": r"-?[0-9.]+|None",
    "day": _ISO,
    "other_day": _ISO,
    "today": _ISO,
    "days": r"[0-9]+",
    "month_number": r"[0-9]+",
    "limit": r"[0-9,]+",
    "line": r"[0-9]+",
}
"""What a value of a placeholder looks like, where a loose match could take words of the
sentence around it ("{what} {number}": "age at return 400")."""
_NESTED = frozenset({"hint", "declare_with"})
"""Values that are themselves messages of a template (translated in turn)."""
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def _templates() -> tuple[str, ...]:
    # Order matters: a template that another one would also match comes first. Called with
    # no values, ``_`` gives the template itself in the current language (placeholders kept).
    return (
        # reading a cell (coding.py, reading.py, row_sources.py)
        _("'{value}' is not written as YYYY-MM-DD, e.g. 2025-03-31"),
        _("'{value}' is not a date: there is no month {month_number}"),
        _("'{value}' is not a date: there is no year 0000"),
        _("'{value}' is not a date: {month} has {days} days"),
        _("'{value}' is not a whole number of years"),
        _("'{value}' is not a positive number; write decimals with a point, e.g. 1.5"),
        _("'{value}' is not a positive number"),
        _("'{value}' is not a country code; use the three-letter ISO code, e.g. SEN"),
        _("'{value}' is not an answer to {item}; {hint}"),
        _("'{value}' is not a valid {what}; {hint}"),
        _("'{value}': {codes} cannot be combined with other answers; give it alone"),
        _("'{value}': '{code}' cannot be combined with other answers"),
        _("'{none}' was given with other {what}; '{none}' was dropped"),
        _("use one of {codes} (or its label), {missing} or a blank"),
        _("use one of {codes} (or its label)"),
        _("{column} is empty; every interview needs it"),
        _("{column} was not recorded as {given}; nothing of this row is stored"),
        _(
            "{what} {day} is after today ({today} at the latest anywhere on Earth); "
            "write the date it took place"
        ),
        _("return date {day} is after this returnee's interview of {other_day} in another round"),
        _("return date {day} is after an interview of this returnee in another round"),
        _("{what} {day} is after the {other} {other_day}"),
        _("{what} {number} is outside {low}–{high}"),
        _("is longer than {limit} characters, the most a cell may hold"),
        _("is longer than {limit} characters"),
        _("holds a JSON object or array; give one value instead"),
        _(
            "the line nests objects or arrays too deeply to be read; each line must be one "
            "flat JSON object"
        ),
        # the uploader's scope and the store (prepare.py, store/writer.py)
        _("country {country} is outside the countries this upload may hold ({countries})"),
        _("this case number cannot be used from your countries"),
        _("this submission id cannot be used from your countries"),
        _(
            "this returnee is stored under another country; only a user for every country "
            "can move them"
        ),
        _(
            "this submission id is already used by another returnee's interview; give this "
            "interview its own id"
        ),
        _(
            "this returnee's data was erased; an admin must lift the erasure before it is "
            "uploaded again"
        ),
        # a file refused whole
        _(
            "this file has no {column} column: add it, or declare that consent was recorded "
            "outside the form ({declare_with})"
        ),
        _("tick “{label}” and send the file again"),
        _("send the form field consent_recorded_elsewhere=true with the file"),
        # warnings about the file or a returnee
        _(
            "this returnee's {what} differs between rounds ({shown}); "
            "the latest interview's is kept"
        ),
        _("this returnee's {what} differs between rounds; the latest interview's is kept"),
        _("{item} comes as one column and as one column per choice; the single column was used"),
        _("the file is not UTF-8; it was read as {encoding} (Windows Latin-1)"),
        _("line {line} brings keys the first lines lack ({keys}); they were ignored"),
    )


@functools.cache
def _english() -> tuple[str, ...]:
    with use_language(DEFAULT):
        return _templates()


@functools.cache
def _patterns() -> tuple[re.Pattern[str], ...]:
    return tuple(_pattern(t) for t in _english())


def _pattern(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    seen: set[str] = set()
    end = 0
    for found in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[end : found.start()]))
        name = found.group(1)
        shape = _SHAPES.get(name, ".+?")
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>{shape})")
        seen.add(name)
        end = found.end()
    parts.append(re.escape(template[end:]))
    return re.compile("".join(parts), re.DOTALL)


def template_of(message: str) -> tuple[int, dict[str, str]] | None:
    """The template (its position in the list) an English message was written from, and the
    values it was filled with; None when no template matches."""
    for position, pattern in enumerate(_patterns()):
        found = pattern.fullmatch(message)
        if found is not None:
            return position, found.groupdict()
    return None


def translate(message: str) -> str:
    """A stored (English) row issue or warning in the current language.

    Parameters
    ----------
    message : str
        As ingest wrote it.

    Returns
    -------
    str
        The message in the current language; as stored when no template matches it, or no
        translation of its template exists yet.
    """
    if current() == DEFAULT or not message:
        return message
    language = current()
    return _translated(language, id(i18n.catalogue(language)), message)


@functools.lru_cache(maxsize=4096)
def _translated(language: str, table: int, message: str) -> str:
    # A batch's messages repeat (one per rejected cell): each is matched once per language
    # and catalogue (``table``: the catalogue read, so a catalogue read again is obeyed).
    found = template_of(message)
    if found is None:
        return message
    position, values = found
    template = _templates()[position]
    if template == _english()[position]:  # not translated yet: no sentence half in English
        return message
    shown = {name: _value(name, text) for name, text in values.items()}
    try:
        return template.format(**shown)
    except (KeyError, IndexError, ValueError):  # a translation that lost a placeholder
        return message


def _value(name: str, text: str) -> str:
    if name in _NESTED:
        return translate(text)
    if name == "label":  # a label of the upload page, translated where it is shown
        return _(text)
    if name in _FIELD_WORDS:
        return _field_words().get(text, text)
    if name == "month":
        # "February 2024" -> "février 2024"
        month, _space, year = text.partition(" ")
        if month in _MONTHS and year.isdigit():
            first = dt.date(int(year), _MONTHS.index(month) + 1, 1)
            return dates.format_skeleton("yMMMM", first, locale=locale())
    return text


_FIELD_WORDS = frozenset({"what", "other"})
"""Values that name a column in words ("interview date")."""


def _field_words() -> dict[str, str]:
    # The metadata columns as messages name them in words (coding.py: the name, spaces for _).
    return {
        "interview date": _("interview date"),
        "return date": _("return date"),
        "age at return": _("age at return"),
        "sex": _("sex"),
        "return type": _("return type"),
        "interview mode": _("interview mode"),
        "assistance": _("assistance"),
        "country": _("country"),
        "consent": _("consent"),
        "weight": _("weight"),
    }


def issue_text(row: int | None, column: str | None, message: str) -> str:
    """A row issue or warning as one sentence in the current language, with its row and
    column ("row 14, column return_date: ...")."""
    shown = translate(message)
    if row and column:
        return _("row {row}, column {column}: {problem}", row=row, column=column, problem=shown)
    if row:
        return _("row {row}: {problem}", row=row, problem=shown)
    return shown


def outcome(counts: Mapping[str, Any]) -> str:
    """What an upload did, in one sentence of the current language.

    Parameters
    ----------
    counts : mapping
        ``received``, ``accepted`` (new rows stored, updates included), ``rejected``,
        ``duplicate`` (already stored) and ``updated``; ``status`` and ``reason`` too when
        known (a failed batch stored nothing).

    Returns
    -------
    str
        ``Nothing new: all 93 rows were already stored``, ``88 stored, 5 need fixing``,
        ``All 50 rows stored``...
    """
    status = counts.get("status")
    if status == "failed":
        reason = translate(str(counts.get("reason") or ""))
        if reason:
            return _("Nothing was stored: {reason}", reason=reason)
        return _("Nothing was stored: the batch failed")
    if status == "processing":
        return _("Still processing: nothing to report yet")
    received = int(counts.get("received") or 0)
    accepted = int(counts.get("accepted") or 0)
    rejected = int(counts.get("rejected") or 0)
    duplicate = int(counts.get("duplicate") or 0)
    updated = int(counts.get("updated") or 0)
    if received == 0 and accepted + rejected + duplicate == 0:
        return _("The file holds no rows: nothing was stored")
    if accepted == 0 and rejected == 0:
        return ngettext(
            "Nothing new: the row was already stored",
            "Nothing new: all {n} rows were already stored",
            duplicate,
        )
    if rejected == 0 and duplicate == 0 and not updated:
        return ngettext("The row was stored", "All {n} rows stored", accepted)
    if accepted == 0 and duplicate == 0:
        return ngettext(
            "Nothing stored: the row needs fixing",
            "Nothing stored: all {n} rows need fixing",
            rejected,
        )
    clauses = []
    if accepted:
        stored = ngettext("{n} stored", "{n} stored", accepted)
        if updated:
            stored = ngettext(
                "{stored} ({n} of them as a new version of a stored interview)",
                "{stored} ({n} of them as new versions of stored interviews)",
                updated,
                stored=stored,
            )
        clauses.append(stored)
    if duplicate:
        clauses.append(ngettext("{n} already stored", "{n} already stored", duplicate))
    if rejected:
        clauses.append(ngettext("{n} needs fixing", "{n} need fixing", rejected))
    sentence = clauses[0]
    for clause in clauses[1:]:
        sentence = _("{first}, {then}", first=sentence, then=clause)
    if accepted == 0:
        return _("Nothing new: {details}", details=sentence)
    return sentence
