"""The API on PostgreSQL: the same uploads, aggregates, row-level reads and export."""

from __future__ import annotations

import csv
import io

import pytest

from tests.api.test_batches import upload

pytestmark = pytest.mark.postgres


def test_an_upload_is_stored_and_aggregated_on_postgres(fresh_pg, batch_file):
    rows = ({"submission_id": f"s{k}", "returnee_id": f"R{k}"} for k in range(6))
    report = upload(fresh_pg, "enumerator", batch_file(*rows), wait=60).json()

    aggregates = fresh_pg.get("/api/v1/aggregates", "analyst", params={"by": "sex"}).json()
    errors = fresh_pg.get(f"/api/v1/batches/{report['batch_id']}/errors", "enumerator").json()
    export = fresh_pg.get("/api/v1/exports/scores", "analyst").text
    listed = fresh_pg.get("/api/v1/batches", "enumerator").json()

    assert report["accepted"] == 6 and errors == []
    assert aggregates["cells"][-1]["returnees"] == 6
    assert len(list(csv.DictReader(io.StringIO(export)))) == 6
    assert [b["id"] for b in listed] == [report["batch_id"]]


def test_a_country_limited_upload_on_postgres(fresh_pg, batch_file):
    path = batch_file({"country": "SEN"}, {"country": "GIN"})

    report = upload(fresh_pg, "enumerator_sen", path, wait=60).json()

    assert (report["accepted"], report["rejected"]) == (1, 1)
