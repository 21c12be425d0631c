"""The upload page's report: its outcome in one sentence before anything else, no warning for
the form's own Kobo export, messages that name the impossible day, all in the reader's
language."""

from __future__ import annotations

import base64
import json
import time

from plotly.utils import PlotlyJSONEncoder

from reintegration import i18n
from reintegration.synth import generate_panel, write_panel
from tests.conftest import canonical_row, write_csv
from tests.dashboards.conftest import Client, components, response_text_of
from tests.dashboards.test_aggregate_pages import outputs


def send(client, path):
    contents = "data:text/csv;base64," + base64.b64encode(path.read_bytes()).decode()
    sent = outputs(
        client.callback(
            "upload-batch.data",
            {"upload-file.contents": contents},
            {"upload-file.filename": path.name},
        )
    )
    batch_id = sent["upload-batch.data"]
    assert batch_id, sent
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
            return polled["upload-report.children"]
        time.sleep(0.2)


def outcome_of(report) -> str:
    first = next(c for c in components(report) if c["props"].get("id") == "upload-outcome")
    return first["props"]["children"]


def test_a_second_upload_of_the_same_file_says_nothing_new_was_stored(
    own_dashboard, questionnaire, tmp_path
):
    client = Client(own_dashboard)
    client.login("enumerator")
    rows = [canonical_row(questionnaire, 300 + k) for k in range(3)]
    path = write_csv(tmp_path / "three.csv", rows)
    assert outcome_of(send(client, path)) == "All 3 rows stored"
    again = send(client, path)
    assert outcome_of(again) == "Nothing new: all 3 rows were already stored"
    # The sentence comes before the counts.
    assert components(again).__next__()["props"].get("id") != "upload-counts"
    assert response_text_of(again).index("Nothing new") < response_text_of(again).index("Received")


def test_rejected_rows_are_counted_in_the_outcome_and_named_in_the_table(
    own_dashboard, questionnaire, tmp_path
):
    client = Client(own_dashboard)
    client.login("enumerator")
    rows = [canonical_row(questionnaire, 310), canonical_row(questionnaire, 311)]
    rows[1]["interview_date"] = "2024-02-30"
    report = send(client, write_csv(tmp_path / "bad.csv", rows))
    assert outcome_of(report) == "1 stored, 1 needs fixing"
    assert "'2024-02-30' is not a date: February 2024 has 29 days" in response_text_of(report)


def test_the_forms_own_kobo_export_brings_no_warning(own_dashboard, tmp_path):
    client = Client(own_dashboard)
    client.login("enumerator")
    frame, _truth = generate_panel(5, 1, seed=41)
    write_panel(frame, tmp_path / "kobo.csv", "kobo")
    report = send(client, tmp_path / "kobo.csv")
    text = response_text_of(report)
    assert "Warning" not in text and "comes as one column" not in text
    assert outcome_of(report) == "All 5 rows stored"


FRENCH = {
    "{n} stored": ("{n} enregistrée", "{n} enregistrées"),
    "{n} needs fixing": ("{n} à corriger", "{n} à corriger"),
    "{first}, {then}": "{first}, {then}",
    "'{value}' is not a date: {month} has {days} days": (
        "« {value} » n’est pas une date : {month} compte {days} jours"
    ),
    "Rejected cells ({n})": "Cellules rejetées ({n})",
}


def test_the_report_is_rendered_in_the_readers_language(
    own_dashboard, questionnaire, tmp_path, monkeypatch
):
    from dashboards.pages import upload
    from reintegration.users import authenticate

    client = Client(own_dashboard)
    client.login("enumerator")
    rows = [canonical_row(questionnaire, 320), canonical_row(questionnaire, 321)]
    rows[1]["interview_date"] = "2024-02-30"
    report = send(client, write_csv(tmp_path / "fr.csv", rows))
    status = next(c for c in components(report) if c["props"].get("id") == "upload-batch-status")
    batch_id = status["props"]["children"].split()[1]
    enumerator = authenticate(own_dashboard.services.engine, own_dashboard.tokens["enumerator"])
    real = i18n.catalogue
    monkeypatch.setattr(i18n, "catalogue", lambda lang: FRENCH if lang == "fr" else real(lang))
    # Stored in English; rendered in French when a French reader opens it.
    with own_dashboard.app.server.test_request_context(), i18n.use_language("fr"):
        rendered = json.loads(
            json.dumps(upload._report(enumerator, batch_id), cls=PlotlyJSONEncoder)
        )
    text = response_text_of(rendered)
    assert outcome_of(rendered) == "1 enregistrée, 1 à corriger"
    assert "Cellules rejetées (1)" in text
    assert "« 2024-02-30 » n’est pas une date : février 2024 compte 29 jours" in text
