"""The catalogue workflow: extract the strings the code marks, merge them into the ``.po`` files,
check that every one is translated.

``scripts/i18n_update.py`` runs :func:`update`; ``tests/test_i18n_catalogue.py`` runs
:func:`problems`. Babel does the extraction (``babel.cfg`` says where) and the merge, keeping
existing translations (a changed string comes back as a fuzzy guess for a translator to confirm).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from reintegration.i18n import DEFAULT, DOMAIN, LANGUAGES, LOCALE_DIR

ROOT = LOCALE_DIR.parents[1]
CONFIG = ROOT / "babel.cfg"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}
PROJECT = "reintegration"

__all__ = ["extract", "po_path", "problems", "update"]


def po_path(language: str) -> Path:
    """Where ``language``'s catalogue lives."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract(root: Path = ROOT) -> Catalog:
    """Every string marked in the code under ``root``, as a template catalogue.

    Parameters
    ----------
    root : Path
        The project's top folder (holding ``babel.cfg``).

    Returns
    -------
    babel.messages.catalog.Catalog
        msgids with their files (no line numbers: they churn, and translators need the file).
    """
    with (root / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    template = Catalog(project=PROJECT, charset="utf-8")
    found = extract_from_dir(
        str(root), method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True
    )
    for filename, lineno, message, comments, context in found:
        if "/.venv/" in f"/{filename}" or filename.startswith("."):
            continue
        template.add(
            message,
            None,
            [(filename, lineno)],
            auto_comments=comments,
            context=context,
        )
    return template


def _read(language: str) -> Catalog:
    path = po_path(language)
    if not path.exists():
        return Catalog(locale=language, project=PROJECT, charset="utf-8")
    with path.open("rb") as handle:
        return read_po(handle, locale=language)


def update(root: Path = ROOT) -> dict[str, tuple[int, int]]:
    """Merge the strings marked in the code into every language's ``.po`` file.

    Existing translations are kept; strings no longer in the code are dropped; new ones are
    added untranslated (or as fuzzy guesses from a similar old string).

    Returns
    -------
    dict
        language -> (messages, still untranslated or fuzzy).
    """
    template = extract(root)
    counts: dict[str, tuple[int, int]] = {}
    for language in LANGUAGES:
        if language == DEFAULT:
            continue
        catalogue = _read(language)
        catalogue.update(template, no_fuzzy_matching=False, update_header_comment=False)
        path = po_path(language)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(
                handle,
                catalogue,
                width=100,
                ignore_obsolete=True,
                include_lineno=False,
                sort_output=False,
            )
        open_ = [m for m in catalogue if m.id and (m.fuzzy or not _translated(m.string))]
        counts[language] = (len([m for m in catalogue if m.id]), len(open_))
    return counts


def _translated(value: object) -> bool:
    if isinstance(value, tuple | list):
        return all(value)
    return bool(value)


def placeholders(text: str) -> set[str]:
    """The ``{name}`` placeholders of a message.

    >>> sorted(placeholders("row {row}, column {column}: {{literal}}"))
    ['column', 'row']
    """
    names = set()
    for _literal, field, _spec, _conversion in string.Formatter().parse(text):
        if field is not None:
            names.add(re.split(r"[.\[]", field)[0])
    return names


def problems(root: Path = ROOT) -> list[str]:
    """Why the catalogues are not ready, one sentence per message (empty when they are).

    Finds strings marked in the code but missing from a catalogue, untranslated or fuzzy
    translations, and translations whose ``{placeholders}`` differ from the original's.
    """
    template = extract(root)
    found: list[str] = []
    for language in LANGUAGES:
        if language == DEFAULT:
            continue
        catalogue = _read(language)
        for message in template:
            if not message.id:
                continue
            key = message.id
            where = ", ".join(sorted({f for f, _ in message.locations}))
            entry = catalogue.get(key)
            if entry is None:
                found.append(f"{language}: {_show(key)} ({where}) is not in the catalogue")
            elif entry.fuzzy or not _translated(entry.string):
                state = "fuzzy" if entry.fuzzy else "untranslated"
                found.append(f"{language}: {_show(key)} ({where}) is {state}")
            else:
                found.extend(_placeholder_problems(language, key, entry.string))
    return found


def _placeholder_problems(language: str, key: object, translation: object) -> list[str]:
    originals: Iterable[str] = key if isinstance(key, tuple | list) else [str(key)]
    expected = set().union(*(placeholders(o) for o in originals)) - {"n"}
    forms = translation if isinstance(translation, tuple | list) else [str(translation)]
    out = []
    for form in forms:
        try:
            got = placeholders(form) - {"n"}
        except ValueError as exc:
            out.append(
                f"{language}: the translation of {_show(key)} is not a format string ({exc})"
            )
            continue
        if got != expected:
            out.append(
                f"{language}: the translation of {_show(key)} has placeholders "
                f"{sorted(got)}, the original {sorted(expected)}"
            )
    return out


def _show(key: object) -> str:
    return repr(key[0] if isinstance(key, tuple | list) else key)
