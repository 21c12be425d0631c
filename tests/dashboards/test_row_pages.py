"""The row-level pages through their callbacks: the worklist ranks the risk champion's rows within
the user's countries and audits its export; data quality shows each user the batches they may
see; uploads run to their report; admin adds and revokes users."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from reintegration.store.schema import audit
from reintegration.users import authenticate
from tests.conftest import canonical_row, write_csv
from tests.dashboards.conftest import (
    SCOPED_COUNTRY,
    Client,
    add_risk_rows,
    components,
    response_text,
    response_text_of,
)
from tests.dashboards.test_aggregate_pages import outputs

WORKLIST_FILTERS = ("country", "sex", "age", "return", "band")


def worklist_values(**chosen) -> dict:
    return {f"worklist-{name}-filter.value": chosen.get(name, []) for name in WORKLIST_FILTERS}


@pytest.fixture
def with_risk(own_dashboard):
    stored = add_risk_rows(own_dashboard.services.engine)
    own_dashboard.services.champions.risk_version = 1
    return own_dashboard, stored


def test_the_worklist_ranks_returnees_by_risk_within_the_users_countries(with_risk):
    dashboard, stored = with_risk
    client = Client(dashboard)
    client.login("scoped-analyst")
    answer = outputs(client.callback("worklist-table.data", worklist_values(band=["high"])))
    table = answer["worklist-table.data"]
    expected = stored[(stored["country"] == SCOPED_COUNTRY)].sort_values(
        "probability", ascending=False
    )
    # bands are REINTEGRATION_RISK_BANDS' (high from 0.6), not the stored labels, on the risk
    # as shown (to 0.1%, halves up as SQL rounds): 0.5996 reads 60.0% and is high
    expected = expected[np.floor(expected["probability"] * 1000 + 0.5) / 1000 >= 0.6]
    # ranked on the risk as shown (0.1%): within a shown risk, ties go to the composite
    shown = expected["probability"].round(3)
    cut = shown.iloc[len(table) - 1]
    keys = [row["key"] for row in table]
    assert set(keys) <= {
        f"[{k[:12]}…](/dashboard/returnee?key={k})" for k in expected["key"][shown >= cut]
    }
    risks = [float(row["risk"].rstrip("%")) for row in table]
    assert risks == sorted(risks, reverse=True)
    assert {row["country"] for row in table} == {SCOPED_COUNTRY}
    assert table[0]["rank"] == "1" and table[0]["band"] == "High"
    assert answer["worklist-query.data"] == "?band=high"
    assert answer["worklist-summary.children"].startswith(
        f"{len(expected):,} returnees match: showing 1 to 25, ranked by reintegration-risk "
        "version 1."
    )
    assert answer["worklist-table.page_count"] == -(-len(expected) // 25)


def test_the_worklist_says_when_no_risk_model_is_champion(client):
    client.login("analyst")
    answer = outputs(client.callback("worklist-table.data", worklist_values()))
    assert (
        "ranked by the baseline rule (1 − first-survey composite): no promoted risk model"
        in (answer["worklist-summary.children"])
    )


def test_the_worklist_export_holds_every_matching_row_audited_and_formula_safe(with_risk):
    dashboard, _ = with_risk
    client = Client(dashboard)
    client.login("analyst")
    shown = outputs(client.callback("worklist-table.data", worklist_values(sex=["female"])))
    response = client.callback(
        "worklist-csv.data", {"worklist-csv-button.n_clicks": 1}, worklist_values(sex=["female"])
    )
    download = outputs(response)["worklist-csv.data"]
    assert download["filename"] == "worklist-reintegration-risk-v1.csv"
    table = pd.read_csv(io.StringIO(download["content"]), dtype=str, keep_default_na=False)
    assert (table["sex"] == "female").all()  # files keep the canonical codes
    assert table["key"].str.fullmatch("[0-9a-f]{64}").all()  # whole keys in the export
    assert table["reasons"].str.startswith("=").sum() == 0
    # the screen's count is the export's
    assert shown["worklist-summary.children"].startswith(f"{len(table):,} returnees match")
    assert table["rank"].tolist() == [str(k) for k in range(1, len(table) + 1)]
    with dashboard.services.engine.connect() as conn:
        entry = conn.execute(sa.select(audit).where(audit.c.action == "export")).one()
    assert entry.actor == "analyst" and entry.target == "worklist"
    assert entry.detail["rows"] == len(table) and entry.detail["filters"] == "?sex=female"


def test_an_enumerator_sees_only_their_own_batches(own_dashboard):
    client = Client(own_dashboard)
    client.login("enumerator")  # the session's panel was uploaded as "enumerator"
    text = response_text(client.page("/quality"))
    assert "the batches you uploaded" in text and "panel.csv" in text
    client.login("scoped-analyst")  # row-level, but not for every country: own batches only
    assert "panel.csv" not in response_text(client.page("/quality"))
    client.login("analyst")
    text = response_text(client.page("/quality"))
    assert "every batch" in text and "panel.csv" in text


def test_a_batch_shows_its_errors_and_its_fixable_file(own_dashboard, questionnaire, tmp_path):
    path = write_csv(
        tmp_path / "errors.csv",
        [
            canonical_row(questionnaire, 1),
            canonical_row(questionnaire, 2, return_date="2025-13-01"),
        ],
    )
    batch_id = own_dashboard.services.uploads.submit(
        _alone(path, tmp_path),
        "errors.csv",
        authenticate(own_dashboard.services.engine, own_dashboard.tokens["enumerator"]),
    )
    assert own_dashboard.services.uploads.wait(batch_id, 60) is not None
    client = Client(own_dashboard)
    client.login("enumerator")
    listed = client.page("/quality", f"?batch={batch_id}")
    table = [
        c for c in components(listed.get_json()) if c["props"]["id"] == "quality-batches-table"
    ][0]
    rows, selected = table["props"]["data"], table["props"]["selected_rows"]
    assert rows[selected[0]]["id"] == batch_id
    detail = client.callback(
        "quality-batch-detail.children",
        {"quality-batches-table.selected_rows": selected},
        {"quality-batches-table.data": rows},
    )
    text = response_text(detail)
    assert "Rejected cells (1)" in text and "return_date" in text
    fixable = client.callback(
        "quality-fixable.data",
        {"quality-fixable-button.n_clicks": 1},
        {"quality-batches-table.selected_rows": selected, "quality-batches-table.data": rows},
    )
    content = outputs(fixable)["quality-fixable.data"]["content"]
    assert content.splitlines()[0].endswith(",error")
    assert "2025-13-01" in content and "CASE-0002" not in content
    # Answers and enumerators are row-level: not for an enumerator.
    refused = client.callback(
        "quality-missingness-graph.figure",
        {"quality-batches-table.selected_rows": selected},
        {"quality-batches-table.data": rows},
    )
    assert refused.status_code == 204


def test_analysts_see_missing_answers_and_flagged_enumerators(client, dashboard, questionnaire):
    client.login("analyst")
    answer = outputs(
        client.callback(
            "quality-missingness-graph.figure",
            {"quality-batches-table.selected_rows": []},
            {"quality-batches-table.data": []},
        )
    )
    missing = answer["quality-missingness-graph.figure"]
    assert len(missing["data"][0]["y"]) == len(questionnaire.items)
    flagged = [row for row in answer["quality-enumerators-table.data"] if row["reasons"]]
    assert {row["enumerator_id"] for row in flagged} == set(
        dashboard.truth["enumerators"]["anomalous"]
    )


def test_an_upload_runs_to_its_report(own_dashboard, questionnaire, tmp_path):
    client = Client(own_dashboard)
    client.login("enumerator")
    path = write_csv(
        tmp_path / "new.csv",
        [canonical_row(questionnaire, 101), canonical_row(questionnaire, 102, sex="robot")],
    )
    contents = "data:text/csv;base64," + base64.b64encode(path.read_bytes()).decode()
    sent = outputs(
        client.callback(
            "upload-batch.data",
            {"upload-file.contents": contents},
            {"upload-file.filename": "new.csv"},
        )
    )
    batch_id = sent["upload-batch.data"]
    assert sent["upload-poll.disabled"] is False
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
            break
        time.sleep(0.2)
    text = response_text_of(polled["upload-report.children"])
    assert polled["upload-status.children"] == "Done."
    assert "Report of new.csv" in text and "status done" in text
    assert "Rejected cells (1)" in text and "sex" in text


def test_an_upload_over_the_limit_is_refused_with_a_sentence(own_dashboard):
    client = Client(own_dashboard)
    client.login("analyst")
    big = base64.b64encode(
        b"x" * ((own_dashboard.services.settings.max_upload_mb << 20) + 1)
    ).decode()
    sent = outputs(
        client.callback(
            "upload-batch.data",
            {"upload-file.contents": "data:text/csv;base64," + big},
            {"upload-file.filename": "big.csv"},
        )
    )
    assert sent["upload-batch.data"] is None
    assert sent["upload-status.children"] == (
        "Not uploaded: the file is larger than the upload limit of 50 MB; split it into smaller "
        "batches (or ingest it with the command line, which has no limit)"
    )


def test_an_admin_adds_a_user_whose_token_is_shown_once_and_works(own_dashboard):
    client = Client(own_dashboard)
    client.login("admin")
    answer = outputs(
        client.callback(
            "admin-add-result.children",
            {"admin-add-button.n_clicks": 1},
            {
                "admin-name-input.value": "field-officer",
                "admin-role-input.value": "enumerator",
                "admin-countries-input.value": "sen, gin",
            },
        )
    )
    token = [
        c
        for c in components(answer["admin-add-result.children"])
        if c["props"]["id"] == "admin-new-token"
    ][0]["props"]["children"]
    user = authenticate(own_dashboard.services.engine, token)
    assert user is not None and user.role.value == "enumerator" and user.countries == {"GIN", "SEN"}
    assert {"name": "field-officer", "role": "enumerator", "countries": "GIN, SEN"} in answer[
        "admin-users-table.data"
    ]
    assert answer["admin-audit-table.data"][0]["action"] == "user added"


def test_an_admin_is_told_why_a_user_cannot_be_added_or_revoked(own_dashboard):
    client = Client(own_dashboard)
    client.login("admin")
    answer = outputs(
        client.callback(
            "admin-add-result.children",
            {"admin-add-button.n_clicks": 1},
            {
                "admin-name-input.value": "x",
                "admin-role-input.value": "manager",
                "admin-countries-input.value": "SENN",
            },
        )
    )
    assert (
        "Not added: 'SENN' is not a country code; use the three-letter ISO code."
        in response_text_of(answer["admin-add-result.children"])
    )
    answer = outputs(
        client.callback(
            "admin-revoke-result.children",
            {"admin-revoke-confirm.submit_n_clicks": 1},
            {"admin-revoke-input.value": "admin"},
        )
    )
    assert "You cannot revoke your own token here" in response_text_of(
        answer["admin-revoke-result.children"]
    )
    answer = outputs(
        client.callback(
            "admin-revoke-result.children",
            {"admin-revoke-confirm.submit_n_clicks": 2},
            {"admin-revoke-input.value": "manager"},
        )
    )
    assert "manager is revoked: their token no longer works." in response_text_of(
        answer["admin-revoke-result.children"]
    )
    assert authenticate(own_dashboard.services.engine, own_dashboard.tokens["manager"]) is None


def _alone(path, tmp_path):
    """The file moved into a folder of its own (an upload owns and removes both)."""
    folder = tmp_path / f"upload-{path.stem}"
    folder.mkdir()
    return path.rename(folder / path.name)
