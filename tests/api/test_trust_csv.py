"""The API's files for people are formula-safe (issue 11, finding 7): the errors CSV, the fixable
file and the score export, read back as a spreadsheet would and checked as raw bytes."""

from __future__ import annotations

import json

from tests.conftest import canonical_row
from tests.test_trust_csv import HOSTILE, assert_nothing_runs, spreadsheet_cells

BATCHES = "/api/v1/batches"


def upload_hostile(stack, questionnaire):
    rows = [
        canonical_row(questionnaire, n + 1, submission_id=f"{h}-{n}", admin1=h)
        for n, h in enumerate(HOSTILE)
    ]
    rows += [
        canonical_row(questionnaire, 100 + n, submission_id=f"r{n}", sex=h, admin1=h)
        for n, h in enumerate(HOSTILE)
    ]
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    response = stack.post(
        BATCHES,
        "analyst",
        files={"file": ("hostile.jsonl", body, "application/x-ndjson")},
        params={"wait": 60},
    )
    assert response.status_code == 201, response.text
    assert (response.json()["accepted"], response.json()["rejected"]) == (
        len(HOSTILE),
        len(HOSTILE),
    )
    return response.json()["batch_id"]


def test_the_errors_csv_is_formula_safe(fresh, questionnaire):
    batch_id = upload_hostile(fresh, questionnaire)

    response = fresh.get(f"{BATCHES}/{batch_id}/errors", "analyst", headers={"Accept": "text/csv"})

    assert response.status_code == 200
    rows = spreadsheet_cells(response.text)
    assert len(rows) == 1 + len(HOSTILE)  # no row split by a bare CR
    assert_nothing_runs(rows)
    assert [r[:3] for r in rows[1:]] == [
        [str(n), "sex", written]
        for n, written in enumerate(HOSTILE.values(), start=len(HOSTILE) + 1)
    ]
    raw = response.content
    assert b',"ok\r=1+1",' in raw and b',"\'\r=1",' in raw and b",'\t=1," in raw


def test_the_fixable_file_download_is_formula_safe(fresh, questionnaire):
    batch_id = upload_hostile(fresh, questionnaire)

    response = fresh.get(f"{BATCHES}/{batch_id}/rejected", "analyst")

    assert response.status_code == 200
    rows = spreadsheet_cells(response.text)
    assert len(rows) == 1 + len(HOSTILE)
    assert_nothing_runs(rows)
    admin1 = rows[0].index("admin1")
    assert [r[admin1] for r in rows[1:]] == list(HOSTILE.values())
    assert b',"ok\r=1+1",' in response.content


def test_the_score_export_download_is_formula_safe(fresh, questionnaire):
    upload_hostile(fresh, questionnaire)

    response = fresh.get("/api/v1/exports/scores", "analyst")

    assert response.status_code == 200
    rows = spreadsheet_cells(response.text)
    assert len(rows) == 1 + len(HOSTILE)
    assert_nothing_runs(rows)
    ids = {r[rows[0].index("submission_id")] for r in rows[1:]}
    assert {"'=1+1-0", "'-x-2", "'=1-4", "'=1-5", "ok\r=1+1-6", "ok\n=1+1-7"} <= ids
    assert b'"ok\r=1+1-6"' in response.content
