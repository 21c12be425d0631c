"""Every rejected cell of a batch at /errors, streamed from the store, as JSON and as CSV; the
report shows the first ones and the totals (issue 11: a million errors are never held whole)."""

from __future__ import annotations

import csv
import io

from reintegration.ingest import REPORT_KEPT
from tests.api.test_batches import BATCHES, finished, upload
from tests.conftest import canonical_row, write_csv

REJECTED = REPORT_KEPT + 30


def _many(questionnaire, tmp_path):
    rows = [canonical_row(questionnaire, n, age_at_return="300") for n in range(1, 1 + REJECTED)]
    rows[0]["admin1"] = "=HYPERLINK(1)"  # formula-safe CSV still
    return write_csv(tmp_path / "many.csv", rows)


def test_the_report_shows_the_first_errors_and_the_totals(fresh, questionnaire, tmp_path):
    body = upload(fresh, "enumerator", _many(questionnaire, tmp_path), wait=30).json()

    assert body["rejected"] == REJECTED
    assert len(body["errors"]) == REPORT_KEPT and body["errors_total"] == REJECTED
    assert body["warnings_total"] == len(body["warnings"])
    detail = fresh.get(f"{BATCHES}/{body['batch_id']}", "enumerator").json()
    assert detail["report"]["errors_total"] == REJECTED
    assert detail["report"]["errors"] == body["errors"]


def test_errors_lists_every_rejected_cell_as_json(fresh, questionnaire, tmp_path):
    batch_id = upload(fresh, "enumerator", _many(questionnaire, tmp_path), wait=30).json()[
        "batch_id"
    ]

    response = fresh.get(f"{BATCHES}/{batch_id}/errors", "enumerator")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    errors = response.json()
    assert [e["row"] for e in errors] == list(range(2, 2 + REJECTED))
    assert errors[-1] == {
        "row": 1 + REJECTED,
        "column": "age_at_return",
        "value": "300",
        "message": "age at return 300 is outside 0–110",
    }


def test_errors_as_csv_lists_every_rejected_cell(fresh, questionnaire, tmp_path):
    batch_id = upload(fresh, "enumerator", _many(questionnaire, tmp_path), wait=30).json()[
        "batch_id"
    ]

    response = fresh.get(
        f"{BATCHES}/{batch_id}/errors", "enumerator", headers={"Accept": "text/csv"}
    )

    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["row", "column", "value", "message"]
    assert len(rows) == 1 + REJECTED
    assert rows[1][:3] == ["2", "age_at_return", "300"]


def test_errors_of_an_unknown_batch_is_404_not_an_empty_stream(fresh):
    response = fresh.get(f"{BATCHES}/8c1f0f3e-0000-4000-8000-00000000dead/errors", "enumerator")

    assert response.status_code == 404
    assert response.json()["detail"] == (
        "there is no batch 8c1f0f3e-0000-4000-8000-00000000dead that this token may see."
    )


def test_a_batch_still_processing_waits_in_its_report(fresh, questionnaire, tmp_path):
    body = upload(fresh, "enumerator", _many(questionnaire, tmp_path), wait=0).json()
    done = finished(fresh, "enumerator", body["batch_id"])

    assert done["report"]["errors_total"] == REJECTED
