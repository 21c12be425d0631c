"""An upload's report in the reader's language: the outcome sentence, and stored English
messages written again from their templates."""

from __future__ import annotations

import pytest

from reintegration import i18n, upload_report
from reintegration.coding import code_chunk
from reintegration.i18n import use_language
from reintegration.reading import BatchReader
from reintegration.store import writer
from reintegration.upload_report import issue_text, outcome, template_of, translate
from tests.conftest import canonical_row, write_csv

COUNTS = {"received": 0, "accepted": 0, "rejected": 0, "duplicate": 0, "updated": 0}

FRENCH = {
    "'{value}' is not a date: {month} has {days} days": (
        "« {value} » n’est pas une date : {month} compte {days} jours"
    ),
    "'{value}' is not a valid {what}; {hint}": "« {value} » n’est pas un {what} valide ; {hint}",
    "use one of {codes} (or its label), {missing} or a blank": (
        "utilisez {codes} (ou son libellé), {missing} ou une case vide"
    ),
    "row {row}, column {column}: {problem}": "ligne {row}, colonne {column} : {problem}",
    "{n} stored": ("{n} enregistrée", "{n} enregistrées"),
    "{n} need fixing": ("{n} à corriger", "{n} à corriger"),
    "{n} needs fixing": ("{n} à corriger", "{n} à corriger"),
    "{first}, {then}": "{first}, {then}",
    "Nothing new: the row was already stored": (
        "Rien de nouveau : la ligne était déjà enregistrée",
        "Rien de nouveau : les {n} lignes étaient déjà enregistrées",
    ),
}


@pytest.fixture
def french(monkeypatch):
    real = i18n.catalogue
    monkeypatch.setattr(i18n, "catalogue", lambda lang: FRENCH if lang == "fr" else real(lang))
    with use_language("fr"):
        yield


# -- the outcome sentence --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "sentence"),
    [
        ({"received": 93, "duplicate": 93}, "Nothing new: all 93 rows were already stored"),
        ({"received": 1, "duplicate": 1}, "Nothing new: the row was already stored"),
        ({"received": 93, "accepted": 88, "rejected": 5}, "88 stored, 5 need fixing"),
        ({"received": 50, "accepted": 50}, "All 50 rows stored"),
        ({"received": 1, "accepted": 1}, "The row was stored"),
        ({"received": 7, "rejected": 7}, "Nothing stored: all 7 rows need fixing"),
        (
            {"received": 93, "duplicate": 86, "rejected": 7},
            "Nothing new: 86 already stored, 7 need fixing",
        ),
        (
            {"received": 10, "accepted": 8, "duplicate": 1, "rejected": 1},
            "8 stored, 1 already stored, 1 needs fixing",
        ),
        (
            {"received": 4, "accepted": 4, "updated": 2},
            "4 stored (2 of them as new versions of stored interviews)",
        ),
        ({"received": 1200, "accepted": 1200}, "All 1,200 rows stored"),
        ({}, "The file holds no rows: nothing was stored"),
    ],
)
def test_the_outcome_is_one_sentence(counts, sentence):
    assert outcome({**COUNTS, **counts}) == sentence


def test_a_failed_batch_says_nothing_was_stored_and_why():
    failed = {**COUNTS, "status": "failed", "reason": "b.csv is empty"}
    assert outcome(failed) == "Nothing was stored: b.csv is empty"
    assert outcome({**failed, "reason": None}) == "Nothing was stored: the batch failed"


def test_the_outcome_in_french_uses_its_plural_forms(french):
    assert outcome({**COUNTS, "received": 93, "accepted": 88, "rejected": 5}) == (
        "88 enregistrées, 5 à corriger"
    )
    assert outcome({**COUNTS, "received": 2, "duplicate": 2}) == (
        "Rien de nouveau : les 2 lignes étaient déjà enregistrées"
    )


# -- stored messages in the reader's language -------------------------------------------------


def test_a_stored_message_is_written_again_in_french(french):
    stored = "'2024-02-30' is not a date: February 2024 has 29 days"
    assert translate(stored) == "« 2024-02-30 » n’est pas une date : février 2024 compte 29 jours"
    assert issue_text(14, "interview_date", stored) == (
        "ligne 14, colonne interview_date : « 2024-02-30 » n’est pas une date : février 2024 "
        "compte 29 jours"
    )


def test_a_hint_inside_a_message_is_translated_too(french):
    stored = (
        "'f' is not a valid sex; use one of female, male (or its label), dont_know, refused "
        "or a blank"
    )
    assert translate(stored) == (
        "« f » n’est pas un sex valide ; utilisez female, male (ou son libellé), dont_know, "
        "refused ou une case vide"
    )


def test_a_message_without_a_translation_stays_whole_in_english(french):
    stored = "'old' is not a whole number of years"
    assert translate(stored) == stored
    assert translate("a sentence no template wrote") == "a sentence no template wrote"


def test_english_readers_get_the_message_as_stored():
    stored = "'2024-02-30' is not a date: February 2024 has 29 days"
    assert translate(stored) == stored
    assert issue_text(3, "interview_date", stored) == f"row 3, column interview_date: {stored}"
    assert issue_text(3, "", stored) == f"row 3: {stored}"
    assert issue_text(None, None, stored) == stored


# -- every message ingest writes has its template ---------------------------------------------

BAD_CELLS = [
    {"interview_date": "2024-02-30"},
    {"interview_date": "2025-13-01"},
    {"interview_date": "0000-01-01"},
    {"interview_date": "01/06/2025"},
    {"interview_date": "2999-01-01"},
    {"return_date": "2025-07-01", "interview_date": "2025-06-01"},
    {"age_at_return": "111"},
    {"age_at_return": "old"},
    {"sex": "f"},
    {"country": "SN"},
    {"consent": "no"},
    {"assistance": "cash lottery"},
    {"can_borrow": "maybe"},
    {"distress_signs": "anger refused"},
    {"distress_signs": "anger none"},
]


def test_every_message_of_a_cell_matches_a_template(tmp_path, questionnaire):
    rows = [canonical_row(questionnaire, k + 1, **r) for k, r in enumerate(BAD_CELLS)]
    reader = BatchReader(write_csv(tmp_path / "b.csv", rows), questionnaire)
    (chunk,) = list(reader.chunks())
    coded = code_chunk(chunk, reader.layout, questionnaire)
    found = [issue.message for issue in coded.issues] + [n.message for n in coded.notes]
    assert len(found) >= len(BAD_CELLS)
    assert [m for m in found if template_of(m) is None] == []


@pytest.mark.parametrize(
    "message",
    [
        writer.ERASED,
        writer.CASE_OUTSIDE_SCOPE,
        writer.SUBMISSION_OUTSIDE_SCOPE,
        writer.COUNTRY_CHANGE,
        writer.SUBMISSION_OF_ANOTHER,
    ],
)
def test_every_message_of_the_store_matches_a_template(message):
    assert template_of(message) is not None


def test_templates_are_read_once_in_english():
    with use_language("fr"):
        assert upload_report._english()[0].startswith("'{value}' is not written as YYYY-MM-DD")


def test_a_catalogue_read_again_is_obeyed(monkeypatch):
    stored = "'2024-02-30' is not a date: February 2024 has 29 days"
    template = "'{value}' is not a date: {month} has {days} days"
    first = {template: "{value}: {month}, {days} jours"}
    second = {template: "{value} : {days} jours en {month}"}
    with use_language("fr"):
        monkeypatch.setattr(i18n, "catalogue", lambda lang: first)
        assert translate(stored) == "2024-02-30: février 2024, 29 jours"
        monkeypatch.setattr(i18n, "catalogue", lambda lang: second)
        assert translate(stored) == "2024-02-30 : 29 jours en février 2024"


def test_a_column_named_in_words_is_translated_too(monkeypatch):
    table = {
        "{what} {number} is outside {low}–{high}": "{what} {number} est hors de {low}–{high}",
        "age at return": "l’âge au retour",
    }
    monkeypatch.setattr(i18n, "catalogue", lambda lang: table)
    with use_language("fr"):
        assert translate("age at return 400 is outside 0–110") == (
            "l’âge au retour 400 est hors de 0–110"
        )
