"""Consent on the dashboard's upload page: a file without a consent column stores nothing and
says how to declare that consent was recorded outside the form; ticking the box declares it,
and the declaration is audited with the batch."""

from __future__ import annotations

import base64
import time

import sqlalchemy as sa

from reintegration.store.schema import audit, rejected_row, returnee, submission
from tests.conftest import canonical_row, write_csv
from tests.dashboards.conftest import Client, response_text_of
from tests.dashboards.test_aggregate_pages import outputs

NO_COLUMN = (
    "this file has no consent column: add it, or declare that consent was recorded outside "
    "the form (tick “Consent was recorded outside the form” and send the file again)"
)


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (submission, returnee, rejected_row)
        }


def send(client, path, elsewhere):
    contents = "data:text/csv;base64," + base64.b64encode(path.read_bytes()).decode()
    return outputs(
        client.callback(
            "upload-batch.data",
            {"upload-file.contents": contents},
            {"upload-file.filename": path.name, "upload-consent-elsewhere.value": elsewhere},
        )
    )


def until_done(client, batch_id):
    deadline = time.monotonic() + 60
    while True:
        polled = outputs(
            client.callback(
                "upload-report.children",
                {"upload-poll.n_intervals": 1},
                {"upload-batch.data": batch_id},
            )
        )
        if polled["upload-poll.disabled"] or time.monotonic() > deadline:
            return polled
        time.sleep(0.2)


def no_consent_file(tmp_path, questionnaire):
    rows = [canonical_row(questionnaire, 201), canonical_row(questionnaire, 202)]
    for row in rows:
        del row["consent"]
    return write_csv(tmp_path / "noconsent.csv", rows)


def test_a_file_without_consent_stores_nothing_and_says_how_to_declare(
    own_dashboard, questionnaire, tmp_path
):
    engine = own_dashboard.services.engine
    before = counts(engine)
    client = Client(own_dashboard)
    client.login("enumerator")

    sent = send(client, no_consent_file(tmp_path, questionnaire), [])
    polled = until_done(client, sent["upload-batch.data"])

    text = response_text_of(polled["upload-report.children"])
    assert "status failed" in text
    assert f"Nothing was stored: {NO_COLUMN}" in text
    assert counts(engine) == before


def test_ticking_the_box_declares_consent_recorded_elsewhere(
    own_dashboard, questionnaire, tmp_path
):
    engine = own_dashboard.services.engine
    before = counts(engine)
    client = Client(own_dashboard)
    client.login("enumerator")

    sent = send(client, no_consent_file(tmp_path, questionnaire), ["elsewhere"])
    batch_id = sent["upload-batch.data"]
    polled = until_done(client, batch_id)

    assert polled["upload-status.children"] == "Done."
    assert "status done" in response_text_of(polled["upload-report.children"])
    assert counts(engine)["submission"] == before["submission"] + 2
    with engine.connect() as conn:
        detail = conn.execute(
            sa.select(audit.c.detail).where(
                audit.c.action == "upload", audit.c.batch_id == batch_id
            )
        ).scalar_one()
    assert detail["consent_recorded_elsewhere"] is True


def test_a_crafted_box_value_declares_nothing(own_dashboard, questionnaire, tmp_path):
    client = Client(own_dashboard)
    client.login("enumerator")

    sent = send(client, no_consent_file(tmp_path, questionnaire), {"elsewhere": True})
    polled = until_done(client, sent["upload-batch.data"])

    assert NO_COLUMN in response_text_of(polled["upload-report.children"])
