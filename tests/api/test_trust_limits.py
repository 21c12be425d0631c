"""Issue 11, reading limits through the API upload, on SQLite and PostgreSQL: nested JSON and
over-long cells are row errors (never a 503), a file over the row cap and a CSV row with the
wrong number of cells fail the batch with a sentence free of cell text, nothing stored."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from reintegration.store.schema import audit, batch, rejected_row, returnee, score, submission
from tests.conftest import canonical_row, write_csv

BATCHES = "/api/v1/batches"
DEEP = '{"submission_id": "deep", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(request):
    """The app on an empty store: SQLite, and PostgreSQL when configured."""
    return request.getfixturevalue("fresh" if request.param == "sqlite" else "fresh_pg")


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (submission, score, returnee, rejected_row)
        }


def upload(stack, path):
    files = {"file": (path.name, path.read_bytes(), "application/octet-stream")}
    return stack.post(BATCHES, "enumerator", files=files, params={"wait": 30})


def test_nested_json_lines_are_row_errors_not_503(stack, tmp_path, questionnaire):
    rows = [canonical_row(questionnaire, n) for n in (1, 2, 3)]
    path = tmp_path / "b.jsonl"
    lines = [json.dumps(rows[0]), DEEP, json.dumps({**rows[1], "admin1": ["Dakar"]})]
    path.write_text("\n".join([*lines, json.dumps(rows[2])]) + "\n")

    response = upload(stack, path)

    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["accepted"], report["rejected"]) == (2, 2)
    assert [(e["row"], e["column"], e["value"]) for e in report["errors"]] == [
        (2, "", ""),
        (3, "admin1", ""),
    ]
    assert counts(stack.services.engine)["submission"] == 2


def test_an_over_long_admin1_is_a_row_error_on_both_stores(stack, tmp_path, questionnaire):
    rows = [canonical_row(questionnaire, n) for n in (1, 2, 3)]
    rows[0]["admin1"] = "Dakar " * 40_000  # over the cell cap (and the column)
    rows[1]["admin1"] = "T" * 201  # over the column only

    response = upload(stack, write_csv(tmp_path / "b.csv", rows))

    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["accepted"], report["rejected"]) == (1, 2)
    assert [(e["row"], e["column"], e["value"], e["message"]) for e in report["errors"]] == [
        (2, "admin1", "", "is longer than 32,767 characters, the most a cell may hold"),
        (3, "admin1", "T" * 40 + "…", "is longer than 200 characters"),
    ]
    assert "Dakar Dakar" not in response.text
    assert counts(stack.services.engine)["submission"] == 1


def test_an_over_cap_upload_fails_and_stores_nothing(stack, tmp_path, questionnaire):
    stack.services.uploads.max_rows = 3
    path = write_csv(tmp_path / "b.csv", [canonical_row(questionnaire, n) for n in range(1, 6)])

    response = upload(stack, path)

    assert response.status_code == 422
    sentence = "b.csv has more than 3 rows; split it into files of at most 3 rows"
    assert response.json()["detail"].endswith(f"{sentence}.")
    status = stack.get(response.json()["status_url"], "enumerator").json()
    assert (status["status"], status["reason"]) == ("failed", sentence)
    assert counts(stack.services.engine) == dict.fromkeys(
        ("submission", "score", "returnee", "rejected_row"), 0
    )


def test_a_wrong_cell_count_fails_without_cell_text_in_reason_or_audit(
    stack, tmp_path, questionnaire
):
    rows = [canonical_row(questionnaire, n) for n in (1, 2)]
    path = write_csv(tmp_path / "b.csv", rows)
    lines = path.read_text().splitlines()
    lines[2] += ",extra"
    path.write_text("\n".join(lines) + "\n")

    response = upload(stack, path)

    assert response.status_code == 422
    assert "CASE-0002" not in response.text
    with stack.services.engine.connect() as conn:
        reason = conn.execute(sa.select(batch.c.reason)).scalar_one()
        detail = conn.execute(
            sa.select(audit.c.detail).where(audit.c.action == "upload_failed")
        ).scalar_one()
    n = len(rows[0])
    assert reason == (
        f"b.csv: row 3 has {n + 1} cells where the header has {n}; every row needs one cell "
        "per column"
    )
    assert detail == {"reason": reason}
    assert counts(stack.services.engine)["submission"] == 0
