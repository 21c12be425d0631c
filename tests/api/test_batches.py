"""Uploads and batches through the API: background processing, limits, visibility, reports."""

from __future__ import annotations

import csv
import io
import logging
import time

import sqlalchemy as sa

from reintegration.store.schema import returnee, score, submission
from tests.conftest import canonical_row, write_csv

BATCHES = "/api/v1/batches"


def upload(stack, who, path, *, wait=None, name=None, content=None):
    params = {} if wait is None else {"wait": wait}
    data = content if content is not None else path.read_bytes()
    files = {"file": (name or path.name, data, "text/csv")}
    return stack.post(BATCHES, who, files=files, params=params)


def finished(stack, who, batch_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = stack.get(f"{BATCHES}/{batch_id}", who).json()
        if body.get("status") in ("done", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} did not finish")


def store_contents(engine):
    with engine.connect() as conn:
        return {
            "submissions": sorted(
                conn.execute(
                    sa.select(
                        submission.c.submission_id, submission.c.version, submission.c.content_hash
                    )
                ).all()
            ),
            "returnees": sorted(conn.execute(sa.select(returnee.c.key, returnee.c.country)).all()),
            "scores": conn.execute(sa.select(sa.func.count()).select_from(score)).scalar_one(),
        }


def test_an_upload_answers_202_with_a_status_url_and_finishes_in_the_background(fresh, batch_file):
    response = upload(fresh, "enumerator", batch_file({}, {}))

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "processing"
    assert body["status_url"] == f"{BATCHES}/{body['batch_id']}"
    assert response.headers["location"] == body["status_url"]
    done = finished(fresh, "enumerator", body["batch_id"])
    assert done["status"] == "done" and done["accepted"] == 2 and done["progress"] == 1.0
    assert done["uploader"] == "enumerator" and done["file_name"] == "batch.csv"


def test_waiting_answers_201_with_the_report(fresh, batch_file):
    response = upload(fresh, "analyst", batch_file({}, {"age_at_return": "300"}), wait=30)

    assert response.status_code == 201
    report = response.json()
    assert (report["received"], report["accepted"], report["rejected"]) == (2, 1, 1)
    assert report["errors"] == [
        {
            "row": 3,
            "column": "age_at_return",
            "value": "300",
            "message": "age at return 300 is outside 0–110",
        }
    ]
    assert report["errors_total"] == 1 and report["status"] == "done"


def test_the_after_batch_hook_runs_for_each_stored_batch(fresh, batch_file):
    report = upload(fresh, "analyst", batch_file({}), wait=30).json()
    assert fresh.after == [report["batch_id"]]


def test_a_file_over_the_upload_limit_is_refused_with_413(fresh):
    big = b"submission_id\n" + b"x" * (1 << 20) + b"\n"  # the test stack's limit is 1 MB

    response = upload(fresh, "enumerator", None, name="big.csv", content=big)

    assert response.status_code == 413
    assert response.json()["detail"] == (
        "the file is larger than the upload limit of 1 MB; split it into smaller batches (or "
        "ingest it with the command line, which has no limit)."
    )
    assert not list((fresh.services.settings.home / "uploads").glob("*/*"))


def test_a_binary_file_is_refused_with_415(fresh):
    response = upload(fresh, "enumerator", None, name="photo.jpg", content=b"\xff\xd8\x00\x01" * 50)

    assert response.status_code == 415
    assert response.json()["detail"] == (
        "photo.jpg is not a text file, a CSV or an Excel workbook; send a CSV, XLSX or JSON "
        "lines file."
    )


def test_a_body_that_is_not_multipart_is_refused_with_415(fresh):
    response = fresh.post(BATCHES, "enumerator", json={"file": "a,b"})

    assert response.status_code == 415
    assert response.json()["detail"] == (
        "send the batch as multipart/form-data, with the file in a field named file."
    )


def test_a_form_without_the_file_field_is_refused_with_422(fresh, batch_file):
    path = batch_file({})
    response = fresh.post(BATCHES, "enumerator", files={"upload": ("b.csv", path.read_bytes())})

    assert response.status_code == 422
    assert response.json()["detail"] == "the request has no field named file: send the batch in it."


def test_an_empty_file_is_refused_with_422(fresh):
    response = upload(fresh, "enumerator", None, name="empty.csv", content=b"")

    assert response.status_code == 422
    assert response.json()["detail"] == "empty.csv is empty; send the batch's rows in it."


def test_a_batch_missing_a_required_column_fails_and_says_why(fresh, tmp_path, questionnaire):
    row = canonical_row(questionnaire)
    del row["country"]
    path = write_csv(tmp_path / "nocountry.csv", [row])

    response = upload(fresh, "enumerator", path, wait=30)

    assert response.status_code == 422
    problem = response.json()
    assert "nothing was stored" in problem["detail"] and "country" in problem["detail"]
    status = fresh.get(problem["status_url"], "enumerator").json()
    assert status["status"] == "failed" and "country" in status["reason"]
    assert fresh.after == []


def test_a_manager_may_not_upload(fresh, batch_file):
    response = upload(fresh, "manager", batch_file({}))

    assert response.status_code == 403
    assert store_contents(fresh.services.engine)["submissions"] == []


def test_an_enumerator_cannot_read_another_enumerators_batch(fresh, batch_file):
    batch_id = upload(fresh, "enumerator", batch_file({}), wait=30).json()["batch_id"]

    other = fresh.get(f"{BATCHES}/{batch_id}", "enumerator2")
    errors = fresh.get(f"{BATCHES}/{batch_id}/errors", "enumerator2")
    rejected = fresh.get(f"{BATCHES}/{batch_id}/rejected", "enumerator2")

    assert other.status_code == errors.status_code == rejected.status_code == 404
    assert other.json()["detail"] == f"there is no batch {batch_id} that this token may see."
    assert fresh.get(f"{BATCHES}/{batch_id}", "enumerator").status_code == 200
    assert fresh.get(f"{BATCHES}/{batch_id}", "analyst").status_code == 200


def test_an_enumerator_lists_only_their_own_batches(fresh, batch_file):
    upload(fresh, "enumerator", batch_file({}, name="mine.csv"), wait=30)
    upload(fresh, "analyst", batch_file({}, name="theirs.csv"), wait=30)

    mine = fresh.get(BATCHES, "enumerator").json()
    everything = fresh.get(BATCHES, "analyst").json()
    asked_for_other = fresh.get(BATCHES, "enumerator", params={"uploader": "analyst"}).json()

    assert [b["file_name"] for b in mine] == ["mine.csv"]
    assert sorted(b["file_name"] for b in everything) == ["mine.csv", "theirs.csv"]
    assert asked_for_other == []


def test_a_country_limited_token_has_other_countries_rows_rejected(fresh, batch_file):
    path = batch_file({"country": "SEN"}, {"country": "GIN"})

    report = upload(fresh, "enumerator_sen", path, wait=30).json()

    assert (report["accepted"], report["rejected"]) == (1, 1)
    assert report["errors"][0]["row"] == 3
    assert report["errors"][0]["message"] == (
        "country GIN is outside the countries this upload may hold (SEN)"
    )
    countries = {r.country for r in store_contents(fresh.services.engine)["returnees"]}
    assert countries == {"SEN"}


def test_a_country_limited_analyst_sees_only_their_own_batches(fresh, batch_file):
    upload(fresh, "analyst", batch_file({}, name="everyone.csv"), wait=30)
    upload(fresh, "analyst_sen", batch_file({"country": "SEN"}, name="sen.csv"), wait=30)

    listed = fresh.get(BATCHES, "analyst_sen").json()

    assert [b["file_name"] for b in listed] == ["sen.csv"]


def test_the_same_kobo_export_twice_gives_the_same_store_as_once(fresh, tmp_path):
    from reintegration.synth import generate_panel, write_panel

    frame, _ = generate_panel(30, 2, seed=3)
    path = tmp_path / "kobo.csv"
    write_panel(frame, path, "kobo")

    first = upload(fresh, "analyst", path, wait=60).json()
    once = store_contents(fresh.services.engine)
    second = upload(fresh, "analyst", path, wait=60).json()

    assert first["accepted"] == len(frame) and first["rejected"] == 0
    assert second["duplicate"] == second["received"] == len(frame)
    assert second["accepted"] == second["updated"] == 0
    assert store_contents(fresh.services.engine) == once
    assert first["batch_id"] != second["batch_id"]


def test_errors_come_as_json_or_as_formula_safe_csv(fresh, batch_file):
    path = batch_file({}, {"sex": '=HYPERLINK("http://x")'})
    batch_id = upload(fresh, "enumerator", path, wait=30).json()["batch_id"]

    as_json = fresh.get(f"{BATCHES}/{batch_id}/errors", "enumerator")
    as_csv = fresh.get(f"{BATCHES}/{batch_id}/errors", "enumerator", headers={"Accept": "text/csv"})

    assert as_json.json()[0]["value"] == '=HYPERLINK("http://x")'
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["row", "column", "value", "message"]
    assert rows[1][:3] == ["3", "sex", '\'=HYPERLINK("http://x")']


def test_the_rejected_rows_come_as_a_fixable_file_without_case_numbers(fresh, batch_file):
    path = batch_file({}, {"age_at_return": "-1", "returnee_id": "CASE-SECRET-9"})
    batch_id = upload(fresh, "enumerator", path, wait=30).json()["batch_id"]

    response = fresh.get(f"{BATCHES}/{batch_id}/rejected", "enumerator")

    assert response.status_code == 200
    assert 'filename="batch-rejected.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1
    assert rows[0]["returnee_id"].startswith("key:")
    assert rows[0]["age_at_return"] == "-1"  # a number is data, not a formula
    assert rows[0]["error"].startswith("age_at_return: ")
    assert "CASE-SECRET-9" not in response.text


def test_an_unknown_batch_is_404(fresh):
    response = fresh.get(f"{BATCHES}/00000000-0000-4000-8000-000000000000", "admin")
    assert response.status_code == 404


def test_the_log_of_an_upload_carries_no_answer_and_no_case_number(
    fresh, batch_file, questionnaire, caplog
):
    path = batch_file(
        {"returnee_id": "CASE-LOGGED-1"},
        {"returnee_id": "CASE-LOGGED-2", "age_at_return": "999"},
    )
    answers = {
        value
        for row in csv.DictReader(path.open(encoding="utf-8"))
        for column, value in row.items()
        if column in questionnaire.item_ids and len(value) > 3
    }
    caplog.set_level(logging.DEBUG)

    report = upload(fresh, "enumerator", path, wait=30).json()
    fresh.get(f"{BATCHES}/{report['batch_id']}/errors", "enumerator")

    text = "\n".join(r.getMessage() for r in caplog.records)
    assert report["batch_id"] in text  # the log says what happened, by batch id
    assert "CASE-LOGGED" not in text
    assert [a for a in answers if a in text] == []
    assert "999" not in text
