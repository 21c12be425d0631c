"""A batch's errors and warnings live in the store, one row each: a report keeps the first ones
and the totals, so a file of a million rejected rows is never held whole (issue 11)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from reintegration import batch_views
from reintegration.cli import app
from reintegration.ingest import REPORT_KEPT
from reintegration.store.schema import batch_issue
from tests.conftest import canonical_row, write_csv

REJECTED = REPORT_KEPT + 30


def _many_rejected(questionnaire, tmp_path):
    rows = [canonical_row(questionnaire, 1)]
    rows += [canonical_row(questionnaire, n, sex="robot") for n in range(2, 2 + REJECTED)]
    return write_csv(tmp_path / "many.csv", rows)


def test_the_report_keeps_the_first_errors_and_the_store_has_all(
    engine, ingest, questionnaire, tmp_path
):
    report = ingest(_many_rejected(questionnaire, tmp_path))

    assert (report.accepted, report.rejected) == (1, REJECTED)
    assert len(report.errors) == REPORT_KEPT and report.errors_total == REJECTED
    stored = batch_views.get_batch(engine, report.batch_id)
    assert stored is not None
    assert len(stored["report"]["errors"]) == REPORT_KEPT
    assert stored["report"]["errors_total"] == REJECTED
    every = list(batch_views.batch_errors(engine, report.batch_id))
    # Sheet rows 3.. (row 2 is the accepted one), in order, each naming the cell sent.
    assert [e["row"] for e in every] == list(range(3, 3 + REJECTED))
    assert {(e["column"], e["value"]) for e in every} == {("sex", "robot")}
    assert stored["report"]["errors"] == every[:REPORT_KEPT]


def test_errors_are_read_a_page_at_a_time(engine, ingest, questionnaire, tmp_path, monkeypatch):
    monkeypatch.setattr("reintegration.store.issues.PAGE", 7)  # many pages, each read alone
    report = ingest(_many_rejected(questionnaire, tmp_path))

    every = list(batch_views.batch_errors(engine, report.batch_id))
    page = list(batch_views.batch_errors(engine, report.batch_id, limit=10, offset=95))

    assert len(every) == REJECTED
    assert page == every[95:105]
    assert list(batch_views.batch_errors(engine, report.batch_id, offset=REJECTED)) == []


def test_a_failed_batch_keeps_no_issues(engine, ingest, questionnaire, tmp_path, monkeypatch):
    def broken(self):
        raise RuntimeError("the store went away")

    monkeypatch.setattr("reintegration.ingest.BatchWriter.finish", broken)

    with pytest.raises(RuntimeError):
        ingest(_many_rejected(questionnaire, tmp_path))

    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(batch_issue)).scalar() == 0
        reason = conn.execute(sa.text("SELECT status, reason FROM batch")).one()
    assert tuple(reason) == ("failed", "internal error (RuntimeError)")


def test_cli_json_lists_every_error(tmp_path, questionnaire, home):
    path = _many_rejected(questionnaire, tmp_path)

    result = CliRunner().invoke(app, ["ingest", str(path), "--json", "--uploader", "amina"])

    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["rejected"] == REJECTED
    assert [e["row"] for e in report["errors"]] == list(range(3, 3 + REJECTED))
    assert "errors_total" not in report  # every one is listed


def test_cli_text_prints_every_error_as_a_line_past_the_table(tmp_path, questionnaire, home):
    path = _many_rejected(questionnaire, tmp_path)

    result = CliRunner().invoke(app, ["ingest", str(path), "--uploader", "amina"])

    assert result.exit_code == 1, result.output
    assert f"{REJECTED:,} rejected cells:" in result.stdout
    last = 2 + REJECTED
    assert (
        f"row {last}, column sex: 'robot' is not a valid sex; use one of female, male, other, "
        "unknown (or its label)"
    ) in result.stdout
