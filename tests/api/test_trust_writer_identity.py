"""An upload reusing a submission id under another case number answers 201 with a row error,
never 503 (issue 11: no endpoint answers 500/503 to anything a client can send). On SQLite
and PostgreSQL."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from reintegration.store.schema import rejected_row, returnee, score, submission
from tests.conftest import canonical_row, write_csv

BATCHES = "/api/v1/batches"
OTHERS = (
    "this submission id is already used by another returnee's interview; "
    "give this interview its own id"
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(request):
    """The app on an empty store: SQLite, and PostgreSQL when configured."""
    return request.getfixturevalue("fresh" if request.param == "sqlite" else "fresh_pg")


def upload(stack, who, path):
    files = {"file": (path.name, path.read_bytes(), "text/csv")}
    return stack.post(BATCHES, who, files=files, params={"wait": 30})


def stored(engine) -> dict[str, list[tuple]]:
    c = submission.c
    with engine.connect() as conn:
        return {
            "submission": sorted(
                conn.execute(sa.select(c.submission_id, c.version, c.returnee_key)).all()
            ),
            "returnee": sorted(conn.execute(sa.select(returnee.c.key)).all()),
            "score": sorted(conn.execute(sa.select(score.c.submission_pk)).all()),
        }


def test_an_id_reused_under_another_case_number_answers_201_with_the_row_error(
    stack, tmp_path, questionnaire
):
    engine = stack.services.engine
    first = upload(
        stack, "enumerator", write_csv(tmp_path / "a.csv", [canonical_row(questionnaire, 1)])
    )
    assert first.status_code == 201 and first.json()["accepted"] == 1
    before = stored(engine)

    rows = [
        canonical_row(questionnaire, 2),
        canonical_row(questionnaire, 3, submission_id="sub-0001"),  # stored under CASE-0001
        canonical_row(questionnaire, 4, submission_id="sub-0002"),  # row 2's id, in the file
    ]
    response = upload(stack, "enumerator", write_csv(tmp_path / "b.csv", rows))

    assert response.status_code == 201
    report = response.json()
    assert report["status"] == "done"
    assert (report["received"], report["accepted"], report["rejected"]) == (3, 1, 2)
    assert report["errors"] == [
        {"row": 3, "column": "submission_id", "value": "sub-0001", "message": OTHERS},
        {"row": 4, "column": "submission_id", "value": "sub-0002", "message": OTHERS},
    ]
    assert "CASE-0001" not in json.dumps(report) and "CASE-0002" not in json.dumps(report)
    after = stored(engine)
    assert [s for s in after["submission"] if s[0] == "sub-0001"] == before["submission"]
    assert [s[:2] for s in after["submission"]] == [("sub-0001", 1), ("sub-0002", 1)]
    assert len(after["returnee"]) == 2 and len(after["score"]) == 2
    status = stack.get(f"{BATCHES}/{report['batch_id']}", "enumerator").json()
    assert status["status"] == "done"
    with engine.connect() as conn:
        kept = conn.execute(
            sa.select(rejected_row.c.row).where(rejected_row.c.batch_id == report["batch_id"])
        ).scalars()
        assert sorted(kept) == [3, 4]
