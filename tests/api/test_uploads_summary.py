"""The API's upload answers lead with a one-sentence outcome, and give the report's messages
in the language of ``Accept-Language`` (stored in English, written again when read)."""

from __future__ import annotations

import pytest

from reintegration import i18n
from tests.api.test_batches import BATCHES, upload

FRENCH = {
    "{n} stored": ("{n} enregistrée", "{n} enregistrées"),
    "{n} needs fixing": ("{n} à corriger", "{n} à corriger"),
    "{first}, {then}": "{first}, {then}",
    "'{value}' is not a date: {month} has {days} days": (
        "« {value} » n’est pas une date : {month} compte {days} jours"
    ),
    "Nothing new: the row was already stored": (
        "Rien de nouveau : la ligne était déjà enregistrée",
        "Rien de nouveau : les {n} lignes étaient déjà enregistrées",
    ),
}


@pytest.fixture
def french(monkeypatch):
    real = i18n.catalogue
    monkeypatch.setattr(i18n, "catalogue", lambda lang: FRENCH if lang == "fr" else real(lang))


def test_the_upload_report_leads_with_its_outcome(fresh, batch_file):
    path = batch_file({}, {"interview_date": "2024-02-30"})
    report = upload(fresh, "analyst", path, wait=30).json()
    assert report["summary"] == "1 stored, 1 needs fixing"
    assert (report["accepted"], report["rejected"]) == (1, 1)  # the counts stay
    assert report["errors"][0]["message"] == (
        "'2024-02-30' is not a date: February 2024 has 29 days"
    )


def test_a_second_upload_says_nothing_new_was_stored(fresh, batch_file):
    path = batch_file({}, {})
    first = upload(fresh, "analyst", path, wait=30).json()
    again = upload(fresh, "analyst", path, wait=30).json()
    assert first["summary"] == "All 2 rows stored"
    assert again["summary"] == "Nothing new: all 2 rows were already stored"
    status = fresh.get(f"{BATCHES}/{again['batch_id']}", "analyst").json()
    assert status["summary"] == "Nothing new: all 2 rows were already stored"
    listed = fresh.get(BATCHES, "analyst").json()
    assert {b["id"]: b["summary"] for b in listed}[first["batch_id"]] == "All 2 rows stored"


def test_a_failed_batch_summary_says_nothing_was_stored(fresh, tmp_path):
    path = tmp_path / "nothing.csv"
    path.write_text("colour,shape\nred,round\n")
    response = upload(fresh, "analyst", path, wait=30)
    batch_id = response.json()["batch_id"]
    status = fresh.get(f"{BATCHES}/{batch_id}", "analyst").json()
    assert status["status"] == "failed"
    assert status["summary"].startswith("Nothing was stored: ")


def test_the_report_is_in_the_language_of_accept_language(fresh, batch_file, french):
    path = batch_file({}, {"interview_date": "2024-02-30"})
    french_header = {"Accept-Language": "fr-SN,fr;q=0.9"}
    report = fresh.post(
        BATCHES,
        "analyst",
        files={"file": (path.name, path.read_bytes(), "text/csv")},
        params={"wait": 30},
        headers=french_header,
    ).json()
    expected = "« 2024-02-30 » n’est pas une date : février 2024 compte 29 jours"
    assert report["summary"] == "1 enregistrée, 1 à corriger"
    assert report["errors"][0]["message"] == expected
    assert report["errors"][0]["column"] == "interview_date"  # canonical, never translated
    status_url = f"{BATCHES}/{report['batch_id']}"
    status = fresh.get(status_url, "analyst", headers=french_header).json()
    assert status["report"]["errors"][0]["message"] == expected
    errors = fresh.get(f"{status_url}/errors", "analyst", headers=french_header).json()
    assert errors[0]["message"] == expected
    # The same batch read in English: as stored.
    english = fresh.get(f"{status_url}/errors", "analyst").json()
    assert english[0]["message"] == "'2024-02-30' is not a date: February 2024 has 29 days"
