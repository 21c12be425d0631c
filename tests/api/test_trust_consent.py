"""Consent through the API: uploads refuse a file without a consent column unless the form field
``consent_recorded_elsewhere=true`` declares it (audited with the batch); rows whose consent is
not yes are rejected and nothing of them is stored; ``/score`` needs no consent column but
applies the row rule when consent is present. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reintegration.store.schema import audit, batch, rejected_row, returnee, score, submission
from tests.conftest import canonical_row, write_csv

BATCHES = "/api/v1/batches"
REFUSED = "consent was not recorded as yes; nothing of this row is stored"
NO_COLUMN = (
    "this file has no consent column: add it, or declare that consent was recorded outside "
    "the form (send the form field consent_recorded_elsewhere=true with the file)"
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(request):
    """The app on an empty store: SQLite, and PostgreSQL when configured."""
    return request.getfixturevalue("fresh" if request.param == "sqlite" else "fresh_pg")


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (submission, score, returnee, rejected_row, batch)
        }


def upload(stack, who, path, *, wait=30.0, data=None):
    files = {"file": (path.name, path.read_bytes(), "text/csv")}
    params = {} if wait is None else {"wait": wait}
    return stack.post(BATCHES, who, files=files, data=data or {}, params=params)


def no_consent_file(tmp_path, questionnaire, *numbers):
    rows = [canonical_row(questionnaire, n) for n in numbers]
    for row in rows:
        del row["consent"]
    return write_csv(tmp_path / "noconsent.csv", rows)


def test_a_file_without_a_consent_column_is_refused_with_422(stack, tmp_path, questionnaire):
    path = no_consent_file(tmp_path, questionnaire, 1, 2)

    response = upload(stack, "enumerator", path)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["detail"] == (
        f"batch {problem['batch_id']} failed, nothing was stored: {NO_COLUMN}."
    )
    status = stack.get(problem["status_url"], "enumerator").json()
    assert (status["status"], status["reason"]) == ("failed", NO_COLUMN)
    assert counts(stack.services.engine) == {
        "submission": 0,
        "score": 0,
        "returnee": 0,
        "rejected_row": 0,
        "batch": 1,
    }
    assert stack.after == []


def test_without_waiting_the_batch_fails_with_the_same_sentence(stack, tmp_path, questionnaire):
    response = upload(stack, "enumerator", no_consent_file(tmp_path, questionnaire, 1), wait=None)

    assert response.status_code == 202
    batch_id = response.json()["batch_id"]
    upload_ = stack.services.uploads.wait(batch_id, 30)
    assert upload_ is not None and upload_.report is None
    status = stack.get(f"{BATCHES}/{batch_id}", "enumerator").json()
    assert (status["status"], status["reason"]) == ("failed", NO_COLUMN)
    assert counts(stack.services.engine)["submission"] == 0


def test_the_declaration_lets_the_file_in_and_is_audited(stack, tmp_path, questionnaire):
    path = no_consent_file(tmp_path, questionnaire, 1, 2)

    response = upload(stack, "enumerator", path, data={"consent_recorded_elsewhere": "true"})

    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["accepted"], report["rejected"]) == (2, 0)
    with stack.services.engine.connect() as conn:
        detail = conn.execute(
            sa.select(audit.c.detail).where(
                audit.c.action == "upload", audit.c.batch_id == report["batch_id"]
            )
        ).scalar_one()
    assert detail["consent_recorded_elsewhere"] is True
    assert counts(stack.services.engine)["submission"] == 2


@pytest.mark.parametrize("value", ["false", ""])
def test_a_false_declaration_is_no_declaration(stack, tmp_path, questionnaire, value):
    path = no_consent_file(tmp_path, questionnaire, 1)

    response = upload(stack, "enumerator", path, data={"consent_recorded_elsewhere": value})

    assert response.status_code == 422
    assert response.json()["detail"].endswith(f"{NO_COLUMN}.")
    assert counts(stack.services.engine)["submission"] == 0


def test_a_declaration_that_is_not_true_or_false_is_refused(stack, tmp_path, questionnaire):
    path = no_consent_file(tmp_path, questionnaire, 1)

    response = upload(stack, "enumerator", path, data={"consent_recorded_elsewhere": "maybe"})

    assert response.status_code == 422
    assert (
        response.json()["detail"] == "the field consent_recorded_elsewhere must be true or false."
    )
    assert counts(stack.services.engine) == dict.fromkeys(
        ("submission", "score", "returnee", "rejected_row", "batch"), 0
    )
    assert not any((stack.services.settings.home / "uploads").glob("*/*"))


def test_rows_whose_consent_is_not_yes_are_rejected_and_not_kept(stack, tmp_path, questionnaire):
    rows = [
        canonical_row(questionnaire, 1, consent=""),
        canonical_row(questionnaire, 2, consent="no"),
        canonical_row(questionnaire, 3, consent="maybe", sex="robot"),
        canonical_row(questionnaire, 4, consent=" YES "),
    ]

    response = upload(stack, "enumerator", write_csv(tmp_path / "b.csv", rows))

    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["accepted"], report["rejected"]) == (1, 3)
    assert [(e["row"], e["column"], e["message"]) for e in report["errors"]] == [
        (2, "consent", REFUSED),
        (3, "consent", REFUSED),
        (4, "consent", REFUSED),
    ]
    fixable = stack.get(f"{BATCHES}/{report['batch_id']}/rejected", "enumerator")
    assert fixable.status_code == 200 and fixable.text.count("\n") == 1  # its header alone
    assert counts(stack.services.engine)["rejected_row"] == 0
    assert counts(stack.services.engine)["submission"] == 1


def test_score_needs_no_consent_column(stack, questionnaire):
    records = [canonical_row(questionnaire, 1), canonical_row(questionnaire, 2)]
    for record in records:
        del record["consent"]

    response = stack.post("/api/v1/score", "enumerator", json={"records": records})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["scored"], body["rejected"], body["errors"]) == (2, 0, [])


def test_score_applies_the_row_rule_when_consent_is_present(stack, questionnaire):
    records = [
        canonical_row(questionnaire, 1, consent=""),
        canonical_row(questionnaire, 2, consent="no"),
        canonical_row(questionnaire, 3, consent="maybe"),
        canonical_row(questionnaire, 4, consent=" YES "),
    ]
    before = counts(stack.services.engine)

    response = stack.post("/api/v1/score", "enumerator", json={"records": records})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["scored"], body["rejected"]) == (1, 3)
    assert [s["submission_id"] for s in body["scores"]] == ["sub-0004"]
    assert [(e["row"], e["column"], e["message"]) for e in body["errors"]] == [
        (1, "consent", REFUSED),
        (2, "consent", REFUSED),
        (3, "consent", REFUSED),
    ]
    assert counts(stack.services.engine) == before


def test_an_overlong_declaration_is_refused_before_anything_is_recorded(
    stack, tmp_path, questionnaire
):
    path = no_consent_file(tmp_path, questionnaire, 1)

    response = upload(stack, "enumerator", path, data={"consent_recorded_elsewhere": "t" * 65})

    assert response.status_code == 422
    assert response.json()["detail"] == (
        "the field consent_recorded_elsewhere is too long: send true or false."
    )
    assert counts(stack.services.engine)["batch"] == 0
    assert not any((stack.services.settings.home / "uploads").glob("*/*"))
