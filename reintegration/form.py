"""The XLSForm of the questionnaire, built from the spec.

:func:`build_xlsform` turns a :class:`~reintegration.questionnaire.Questionnaire` into the rows of
an XLSForm's ``survey``, ``choices`` and ``settings`` sheets; :func:`write_xlsform` saves them as
an ``.xlsx`` workbook that Kobo, ODK Central or pyxform read. No item id, option code or weight
is written here: every name, label and choice comes from the questionnaire, so an edit to the
spec changes the form on the next ``reintegration form --out data/forms/rss.xlsx``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path

import pycountry
from openpyxl import Workbook

from reintegration.errors import FormWriteError, SpecError
from reintegration.questionnaire import Item, MetadataField, Option, Questionnaire

Row = dict[str, object]

SHEETS = ("survey", "choices", "settings")

# Columns in the order a person reading the sheet expects; a translated column expands to one
# column per language of the questionnaire (``label::English (en)``, ``label::French (fr)``,
# ``label::Arabic (ar)``).
_SURVEY_COLUMNS = (
    "type",
    "name",
    "label::",
    "required",
    "relevant",
    "constraint",
    "constraint_message::",
    "calculation",
)
_CHOICES_COLUMNS = ("list_name", "name", "label::")
_SETTINGS_COLUMNS = ("form_title", "form_id", "version", "default_language")

# Kobo and ODK already record the form version with every submission, but the canonical
# column must be in the export too; the builder knows the value, so the form fills it in
# rather than asking an enumerator to type it.
_FORM_VERSION_COLUMN = "form_version"

# Constraint messages are the form's own words, not the questionnaire's; a language of the
# spec that is missing here gets no message column and Collect falls back to the default one.
_MESSAGES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "not_future": "This date cannot be in the future.",
        "not_after": "This date cannot be later than: {other}.",
        "range": "Enter a whole number from {minimum} to {maximum}.",
        "at_least": "Enter a whole number of at least {minimum}.",
        "at_most": "Enter a whole number of at most {maximum}.",
        "country": "Enter the three-letter country code (ISO 3166-1 alpha-3).",
        "positive": "Enter a number greater than 0, or leave it blank.",
        "exclusive": "Do not combine {choices} with another answer.",
        "quoted": '"{label}"',
        "or": "or",
    },
    "fr": {
        "not_future": "Cette date ne peut pas être dans le futur.",
        "not_after": "Cette date ne peut pas être postérieure à : {other}.",
        "range": "Saisissez un nombre entier de {minimum} à {maximum}.",
        "at_least": "Saisissez un nombre entier supérieur ou égal à {minimum}.",
        "at_most": "Saisissez un nombre entier inférieur ou égal à {maximum}.",
        "country": "Saisissez le code pays à trois lettres (ISO 3166-1 alpha-3).",
        "positive": "Saisissez un nombre supérieur à 0, ou laissez vide.",
        "exclusive": "Ne combinez pas {choices} avec une autre réponse.",
        "quoted": "« {label} »",
        "or": "ou",
    },
    "ar": {
        "not_future": "لا يمكن أن يكون هذا التاريخ في المستقبل.",
        "not_after": "لا يمكن أن يكون هذا التاريخ بعد: {other}.",
        "range": "أدخل عددًا صحيحًا من {minimum} إلى {maximum}.",
        "at_least": "أدخل عددًا صحيحًا لا يقل عن {minimum}.",
        "at_most": "أدخل عددًا صحيحًا لا يزيد على {maximum}.",
        "country": "أدخل رمز البلد المكوّن من ثلاثة أحرف (ISO 3166-1 alpha-3).",
        "positive": "أدخل رقمًا أكبر من 0، أو اتركه فارغًا.",
        "exclusive": "لا تجمع بين {choices} وأي إجابة أخرى.",
        "quoted": "«{label}»",
        "or": "أو",
    },
}

# The loader insists on English labels; Kobo and ODK exports "with labels" use the default one.
_DEFAULT_LANGUAGE = "en"

_KIND_TYPES = {
    "case_number": "text",
    "date": "date",
    "choice": "select_one",
    "multi_choice": "select_multiple",
    "integer": "integer",
    "country": "text",
    "text": "text",
    # A survey weight: an optional decimal (Collect's number keypad, a point for decimals),
    # usually left blank by the enumerator and filled in by whoever holds the sampling
    # design, in the form or in the export before it is uploaded.
    "positive_number": "decimal",
}


def build_xlsform(questionnaire: Questionnaire) -> dict[str, list[Row]]:
    """Build the XLSForm of a questionnaire as sheets of row dicts.

    The consent question comes first; every other question is shown only once consent is given.
    Metadata questions are named as the canonical batch columns, followed by one group per
    dimension holding its items in spec order. Every item's choice list carries the missing
    codes, and its not-applicable and exclusive codes when it has them.

    Parameters
    ----------
    questionnaire : Questionnaire
        The loaded spec, usually ``load_questionnaire()``.

    Returns
    -------
    dict of str to list of dict
        The sheets ``survey``, ``choices`` and ``settings``, each a list of rows mapping a column
        name to its value; blank cells are left out of a row.

    Raises
    ------
    SpecError
        When the spec has no consent column (a choice column with ``rejects_row_on``), or when
        two choice lists would share a name but not their choices.

    Examples
    --------
    >>> from reintegration.questionnaire import load_questionnaire
    >>> sheets = build_xlsform(load_questionnaire())
    >>> sheets["survey"][0]["type"], sheets["settings"][0]["default_language"]
    ('select_one consent', 'English (en)')
    """
    languages = questionnaire.languages
    consent = _consent_field(questionnaire)
    gate = " or ".join(
        f"${{{consent.name}}} = '{c.code}'"
        for c in consent.choices
        if c.code != consent.rejects_row_on
    )
    lists = _ChoiceLists(languages)
    survey: list[Row] = [_metadata_row(consent, questionnaire, lists)]
    for metadata in questionnaire.metadata:
        if metadata is consent:
            continue
        row = _metadata_row(metadata, questionnaire, lists)
        # The identifier is computed whatever the answer to consent, so that a refused
        # interview can still be named in a batch report.
        if row["type"] != "calculate":
            row["relevant"] = gate
        survey.append(row)
    for dimension in questionnaire.index.dimensions:
        survey.append(
            {
                "type": "begin_group",
                "name": dimension,
                **_translated("label", questionnaire.groups[dimension], languages),
                "relevant": gate,
            }
        )
        survey.extend(
            _item_row(item, questionnaire, lists) for item in questionnaire.items_of(dimension)
        )
        survey.append({"type": "end_group", "name": dimension})
    settings: Row = {
        "form_title": questionnaire.title[_DEFAULT_LANGUAGE],
        "form_id": questionnaire.form_id,
        "version": questionnaire.form_version,
        "default_language": _language_name(_DEFAULT_LANGUAGE),
    }
    return {"survey": survey, "choices": lists.rows, "settings": [settings]}


def write_xlsform(questionnaire: Questionnaire, path: Path | str) -> None:
    """Write the XLSForm of a questionnaire to an ``.xlsx`` file.

    Each sheet starts with a header row; columns follow a fixed order and only columns that
    hold a value appear. An existing file at ``path`` is replaced.

    Parameters
    ----------
    questionnaire : Questionnaire
        The loaded spec, usually ``load_questionnaire()``.
    path : path-like
        Where to write the workbook; its folder must exist.

    Raises
    ------
    FormWriteError
        When the file cannot be written; the message names the path and the reason.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from reintegration.questionnaire import load_questionnaire
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     write_xlsform(load_questionnaire(), pathlib.Path(folder) / "rss.xlsx")
    """
    path = Path(path)
    sheets = build_xlsform(questionnaire)
    orders = {
        "survey": _expand(_SURVEY_COLUMNS, questionnaire.languages),
        "choices": _expand(_CHOICES_COLUMNS, questionnaire.languages),
        "settings": _SETTINGS_COLUMNS,
    }
    workbook = Workbook()
    workbook.remove(workbook.active)
    for name in SHEETS:
        rows = sheets[name]
        header = [c for c in orders[name] if any(c in row for row in rows)]
        sheet = workbook.create_sheet(name)
        sheet.append(header)
        for row in rows:
            sheet.append([row.get(column) for column in header])
    # Built in memory first: nothing touches the destination until the workbook is complete.
    buffer = io.BytesIO()
    workbook.save(buffer)
    try:
        path.write_bytes(buffer.getvalue())
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise FormWriteError(f"the form cannot be written to {path}: {reason}") from exc


def _consent_field(questionnaire: Questionnaire) -> MetadataField:
    for metadata in questionnaire.metadata:
        if metadata.kind == "choice" and metadata.rejects_row_on is not None:
            return metadata
    raise SpecError("the spec has no consent column (a choice column with rejects_row_on)")


def _metadata_row(
    metadata: MetadataField, questionnaire: Questionnaire, lists: _ChoiceLists
) -> Row:
    languages = questionnaire.languages
    label = _translated("label", metadata.labels, languages)
    if metadata.kind == "identifier":
        # A calculate rather than a text field: nobody has to type an id, and once() keeps the
        # value when a submission is edited (meta/instanceID changes on every edit).
        return {"type": "calculate", "name": metadata.name, **label, "calculation": "once(uuid())"}
    if metadata.name == _FORM_VERSION_COLUMN:
        return {
            "type": "calculate",
            "name": metadata.name,
            **label,
            "calculation": f"'{questionnaire.form_version}'",
        }
    if metadata.kind not in _KIND_TYPES:
        raise SpecError(f"metadata column {metadata.name}: kind {metadata.kind!r} has no form type")
    row: Row = {"type": _KIND_TYPES[metadata.kind], "name": metadata.name, **label}
    if metadata.choices:
        options = metadata.choices + ((metadata.exclusive,) if metadata.exclusive else ())
        lists.add(metadata.name, options)
        row["type"] = f"{row['type']} {metadata.name}"
    # Free text nobody's command needs (a region, an enumerator code) may be unknown: forcing an
    # answer would only collect placeholders. Every choice column has an answer for "unknown"
    # or "none", so it is required like the columns that ingest needs.
    if metadata.required_for or metadata.choices:
        row["required"] = "yes"
    constraint, messages = _metadata_constraint(metadata, questionnaire)
    if constraint:
        row["constraint"] = constraint
        row.update(_translated("constraint_message", messages, languages))
    return row


def _metadata_constraint(
    metadata: MetadataField, questionnaire: Questionnaire
) -> tuple[str, dict[str, str]]:
    texts = {lang: _MESSAGES[lang] for lang in questionnaire.languages if lang in _MESSAGES}
    if metadata.kind == "date":
        if metadata.not_after:
            other = questionnaire.metadata_field(metadata.not_after).labels
            return f". <= ${{{metadata.not_after}}}", {
                lang: t["not_after"].format(other=other[lang]) for lang, t in texts.items()
            }
        return ". <= today()", {lang: t["not_future"] for lang, t in texts.items()}
    if metadata.kind == "integer":
        low, high = metadata.minimum, metadata.maximum
        if low is not None and high is not None:
            constraint, key = f". >= {low} and . <= {high}", "range"
        elif low is not None:
            constraint, key = f". >= {low}", "at_least"
        elif high is not None:
            constraint, key = f". <= {high}", "at_most"
        else:
            return "", {}
        return constraint, {
            lang: t[key].format(minimum=low, maximum=high) for lang, t in texts.items()
        }
    if metadata.kind == "country":
        return "regex(., '^[A-Za-z]{3}$')", {lang: t["country"] for lang, t in texts.items()}
    if metadata.kind == "positive_number":
        # A blank answer passes (a constraint is checked only on an answer).
        return ". > 0", {lang: t["positive"] for lang, t in texts.items()}
    if metadata.kind == "multi_choice" and metadata.exclusive:
        return _exclusive_constraint([metadata.exclusive], texts)
    return "", {}


def _item_row(item: Item, questionnaire: Questionnaire, lists: _ChoiceLists) -> Row:
    languages = questionnaire.languages
    exclusive = ((item.exclusive,) if item.exclusive else ()) + questionnaire.missing_codes
    options = item.options + item.not_applicable + exclusive
    if item.is_multiple or item.not_applicable or item.scale is None:
        list_name = item.id
    else:
        list_name = item.scale
    lists.add(list_name, options)
    # Don't know and refused are always on offer, so a blank is never the only honest answer.
    row: Row = {
        "type": f"{item.type} {list_name}",
        "name": item.id,
        **_translated("label", item.question, languages),
        "required": "yes",
    }
    if item.is_multiple:
        texts = {lang: _MESSAGES[lang] for lang in languages if lang in _MESSAGES}
        constraint, messages = _exclusive_constraint(list(exclusive), texts)
        row["constraint"] = constraint
        row.update(_translated("constraint_message", messages, languages))
    return row


def _exclusive_constraint(
    exclusive: list[Option], texts: Mapping[str, Mapping[str, str]]
) -> tuple[str, dict[str, str]]:
    constraint = " and ".join(
        f"not(selected(., '{o.code}') and count-selected(.) > 1)" for o in exclusive
    )
    messages: dict[str, str] = {}
    for lang, t in texts.items():
        quoted = [t["quoted"].format(label=o.labels[lang]) for o in exclusive]
        choices = (
            quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {t['or']} {quoted[-1]}"
        )
        messages[lang] = t["exclusive"].format(choices=choices)
    return constraint, messages


class _ChoiceLists:
    """The rows of the choices sheet, each list written once however many questions use it."""

    def __init__(self, languages: tuple[str, ...]) -> None:
        self.languages = languages
        self.rows: list[Row] = []
        self._lists: dict[str, tuple[Option, ...]] = {}

    def add(self, list_name: str, options: tuple[Option, ...]) -> None:
        known = self._lists.get(list_name)
        if known is not None:
            if known != options:
                raise SpecError(
                    f"choice list {list_name}: two questions need different choices under this "
                    "name; rename the item or the scale"
                )
            return
        self._lists[list_name] = options
        self.rows.extend(
            {
                "list_name": list_name,
                "name": o.code,
                **_translated("label", o.labels, self.languages),
            }
            for o in options
        )


def _translated(column: str, texts: Mapping[str, str], languages: Iterable[str]) -> Row:
    return {f"{column}::{_language_name(lang)}": texts[lang] for lang in languages if lang in texts}


def _expand(columns: tuple[str, ...], languages: tuple[str, ...]) -> tuple[str, ...]:
    expanded: list[str] = []
    for column in columns:
        if column.endswith("::"):
            expanded.extend(f"{column}{_language_name(lang)}" for lang in languages)
        else:
            expanded.append(column)
    return tuple(expanded)


def _language_name(code: str) -> str:
    """XLSForm's language column name: ``English (en)``, the form ODK matches to the device."""
    language = pycountry.languages.get(alpha_2=code)
    return f"{language.name if language else code} ({code})"
