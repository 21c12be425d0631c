"""Views of uploads: batches newest first, one batch with its report, errors, rejected rows,
the audit trail."""

from __future__ import annotations

from reintegration import batch_views
from reintegration.policy import CLI


def test_batches_are_listed_newest_first_and_by_uploader(engine, ingest, batch_file):
    first = ingest(batch_file({}, name="a.csv"), "amina")
    second = ingest(batch_file({}, name="b.csv"), "omar")

    everyone = batch_views.list_batches(engine)
    amina = batch_views.list_batches(engine, uploader="amina")
    page = batch_views.list_batches(engine, limit=1, offset=1)

    assert [b["id"] for b in everyone] == [second.batch_id, first.batch_id]
    assert [b["file_name"] for b in amina] == ["a.csv"]
    assert [b["id"] for b in page] == [first.batch_id]
    assert everyone[0]["created_at"].tzinfo is not None


def test_a_batch_has_its_counts_report_and_errors(engine, ingest, batch_file):
    report = ingest(batch_file({}, {"sex": "robot"}), "amina")

    found = batch_views.get_batch(engine, report.batch_id)
    errors = list(batch_views.batch_errors(engine, report.batch_id))

    assert found is not None and found["status"] == "done"
    assert (found["accepted"], found["rejected"]) == (1, 1)
    assert errors == [
        {
            "row": 3,
            "column": "sex",
            "value": "robot",
            "message": "'robot' is not a valid sex; use one of female, male, other, unknown "
            "(or its label)",
        }
    ]
    assert found["report"]["errors"] == errors
    rejected = batch_views.batch_rejected(engine, report.batch_id)
    assert [r.row for r in rejected] == [3]


def test_an_unknown_batch_is_none_and_has_no_errors(engine):
    assert batch_views.get_batch(engine, "no-such-batch") is None
    assert list(batch_views.batch_errors(engine, "no-such-batch")) == []


def test_the_audit_trail_is_newest_first_and_filtered(engine, ingest, batch_file):
    ingest(batch_file({}), "amina")
    ingest(batch_file({}), "omar")

    uploads = batch_views.audit_entries(engine, caller=CLI, action="upload")
    omar = batch_views.audit_entries(engine, caller=CLI, actor="omar")

    assert [e["actor"] for e in uploads] == ["omar", "amina"]
    assert {e["action"] for e in omar} == {"upload"}
    assert uploads[0]["detail"]["received"] == 1
