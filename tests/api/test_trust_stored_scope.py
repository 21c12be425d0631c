"""Through ``POST /api/v1/batches``: a Senegal-limited token reaches nothing stored under
Guinea, is told nothing stored, and an erased returnee's rows leave nothing to download
(issue 11, findings 3, 4 and 6)."""

from __future__ import annotations

import csv
import io
import json

import pytest
import sqlalchemy as sa

from reintegration.pseudonym import returnee_key
from reintegration.store.batches import erase_returnee
from reintegration.store.schema import audit, rejected_row, risk
from tests.api.conftest import ingest_panel
from tests.api.test_batches import BATCHES, store_contents, upload
from tests.conftest import canonical_row, write_csv

CASE = "CASE-GIN-7"


@pytest.fixture(params=["fresh", pytest.param("fresh_pg", marks=pytest.mark.postgres)])
def stack(request):
    """An empty app of its own on SQLite, and on PostgreSQL when configured."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def guinea(stack, tmp_path, questionnaire):
    """A Guinean returnee with two interviews, stored by an admin through the CLI's path."""
    rows = [
        canonical_row(
            questionnaire,
            k,
            submission_id=f"gin-{k}",
            returnee_id=CASE,
            country="GIN",
            sex="male",
            interview_date=date,
            return_date="2024-01-10",
        )
        for k, date in ((1, "2024-02-15"), (2, "2024-06-01"))
    ]
    report = ingest_panel(stack, write_csv(tmp_path / "gin.csv", rows))
    assert report.accepted == 2
    return rows


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (risk, rejected_row)
        }


def test_a_senegal_token_cannot_reach_a_guinean_returnee_or_interview(
    stack, guinea, tmp_path, questionnaire
):
    engine = stack.services.engine
    before = store_contents(engine), counts(engine)
    rows = [
        canonical_row(
            questionnaire,
            3,
            returnee_id=CASE,
            country="SEN",
            sex="female",
            interview_date="2025-01-05",
            return_date="2024-01-10",
        ),
        dict(guinea[1], country="SEN", returnee_id="CASE-SEN-1", currently_working="no"),
    ]
    response = upload(stack, "enumerator_sen", write_csv(tmp_path / "sen.csv", rows), wait=30)

    assert response.status_code == 201
    report = response.json()
    assert (report["accepted"], report["rejected"], report["duplicate"]) == (0, 2, 0)
    assert report["errors"] == [
        {
            "row": 2,
            "column": "returnee_id",
            "value": "",
            "message": "this case number cannot be used from your countries",
        },
        {
            "row": 3,
            "column": "submission_id",
            "value": "gin-2",
            "message": "this submission id cannot be used from your countries",
        },
    ]
    text = json.dumps(report)
    assert "GIN" not in text and "2024-02-15" not in text and "male on" not in text
    # Only the row count of the refusals is new (the refused rows are the uploader's own).
    assert store_contents(engine) == before[0]
    assert counts(engine) == {"risk": 0, "rejected_row": 2}
    with engine.connect() as conn:
        refused = conn.execute(
            sa.select(audit.c.actor, audit.c.detail).where(
                audit.c.action == "upload_scope_refused", audit.c.batch_id == report["batch_id"]
            )
        ).all()
    assert [tuple(r) for r in refused] == [
        ("enumerator_sen", {"rows": 2, "returnee_id": 1, "submission_id": 1, "country": 0})
    ]
    fixable = stack.get(f"{BATCHES}/{report['batch_id']}/rejected", "enumerator_sen").text
    assert "GIN" not in fixable and "2024-02-15" not in fixable


def test_an_erased_returnees_rows_leave_nothing_to_download(stack, guinea, tmp_path, questionnaire):
    engine = stack.services.engine
    erase_returnee(engine, returnee_key(CASE, stack.services.settings.secret_key_bytes()), "admin")
    before = store_contents(engine)
    rows = [dict(guinea[0], age_at_return="300"), dict(guinea[1], currently_working="no")]

    response = upload(stack, "enumerator", write_csv(tmp_path / "again.csv", rows), wait=30)

    report = response.json()
    assert (report["accepted"], report["rejected"]) == (0, 2)
    erased = (
        "this returnee's data was erased; an admin must lift the erasure before it is "
        "uploaded again"
    )
    assert [(e["row"], e["column"], e["value"], e["message"]) for e in report["errors"]] == [
        (2, "returnee_id", "", erased),
        (3, "returnee_id", "", erased),
    ]
    assert store_contents(engine) == before
    assert counts(engine)["rejected_row"] == 0
    fixable = stack.get(f"{BATCHES}/{report['batch_id']}/rejected", "enumerator")
    assert fixable.status_code == 200
    assert list(csv.reader(io.StringIO(fixable.text))) == [["error"]]  # no row, no cell
