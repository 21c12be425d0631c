"""The catalogues: every string the code marks with _() / ngettext() is translated into French
and Arabic, not fuzzy, with the same {placeholders} (scripts/i18n_update.py merges them)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from reintegration import i18n_catalogues
from reintegration.i18n_catalogues import extract, placeholders, problems


def test_every_marked_string_is_translated_in_french_and_arabic() -> None:
    found = problems()

    assert not found, f"{len(found)} catalogue problems:\n" + "\n".join(found)


def _project(tmp_path: Path, code: str, translations: dict[str, dict[str, str]]) -> Path:
    """A small project: babel.cfg, one module, and a catalogue per language."""
    (tmp_path / "babel.cfg").write_text("[python: pkg/**.py]\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "page.py").write_text(code)
    for language, table in translations.items():
        catalogue = Catalog(locale=language)
        for msgid, msgstr in table.items():
            catalogue.add(msgid, msgstr, flags=("fuzzy",) if msgstr.startswith("~") else ())
        path = tmp_path / "locale" / language / "LC_MESSAGES" / "messages.po"
        path.parent.mkdir(parents=True)
        with path.open("wb") as handle:
            write_po(handle, catalogue)
    return tmp_path


def _problems_of(monkeypatch, root: Path) -> list[str]:
    monkeypatch.setattr(
        i18n_catalogues,
        "po_path",
        lambda language: root / "locale" / language / "LC_MESSAGES" / "messages.po",
    )
    return problems(root)


CODE = 'from reintegration.i18n import _\n\ndef f(n):\n    return _("Row {row} is empty", row=n)\n'


def test_a_marked_string_missing_from_a_catalogue_is_reported(tmp_path, monkeypatch) -> None:
    root = _project(tmp_path, CODE, {"fr": {"Row {row} is empty": "Ligne {row} vide"}, "ar": {}})

    assert _problems_of(monkeypatch, root) == [
        "ar: 'Row {row} is empty' (pkg/page.py) is not in the catalogue"
    ]


def test_an_empty_or_fuzzy_translation_is_reported(tmp_path, monkeypatch) -> None:
    root = _project(
        tmp_path,
        CODE,
        {"fr": {"Row {row} is empty": ""}, "ar": {"Row {row} is empty": "~السطر {row} فارغ"}},
    )

    assert _problems_of(monkeypatch, root) == [
        "fr: 'Row {row} is empty' (pkg/page.py) is untranslated",
        "ar: 'Row {row} is empty' (pkg/page.py) is fuzzy",
    ]


def test_a_translation_with_other_placeholders_is_reported(tmp_path, monkeypatch) -> None:
    root = _project(
        tmp_path,
        CODE,
        {
            "fr": {"Row {row} is empty": "Ligne {ligne} vide"},
            "ar": {"Row {row} is empty": "السطر {row} فارغ"},
        },
    )

    assert _problems_of(monkeypatch, root) == [
        "fr: the translation of 'Row {row} is empty' has placeholders ['ligne'], the original ['row']"
    ]


def test_extraction_reads_named_placeholders_and_plurals(tmp_path) -> None:
    code = (
        "from reintegration.i18n import _, ngettext\n\n"
        "def f(n):\n"
        '    return _("Hello {name}", name="x"), ngettext("{n} row", "{n} rows", n)\n'
    )
    root = _project(tmp_path, code, {})

    ids = [m.id for m in extract(root) if m.id]

    assert ids == ["Hello {name}", ("{n} row", "{n} rows")]


def test_placeholders_ignore_doubled_braces() -> None:
    assert placeholders("{{x}} {y:.2f} {z!r}") == {"y", "z"}
