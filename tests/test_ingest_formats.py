"""Ingest of Kobo and ODK exports of the shipped form: the same interviews, stored once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reintegration.store.schema import submission
from reintegration.synth import generate_panel, write_panel
from tests.conftest import canonical_row, write_jsonl


@pytest.fixture(scope="module")
def panel():
    frame, _ = generate_panel(40, 3, seed=11)
    return frame


@pytest.mark.parametrize(
    ("fmt", "suffix"), [("kobo", "csv"), ("kobo-xlsx", "xlsx"), ("odk", "csv")]
)
def test_an_export_of_stored_interviews_is_all_duplicates(tmp_path, panel, ingest, fmt, suffix):
    canonical = tmp_path / "canonical.csv"
    write_panel(panel, canonical, "csv")
    first = ingest(canonical)
    assert first.accepted == len(panel)
    export = tmp_path / f"export.{suffix}"
    write_panel(panel, export, fmt)
    again = ingest(export)
    assert (again.received, again.accepted, again.duplicate, again.rejected) == (
        len(panel),
        0,
        len(panel),
        0,
    )
    assert again.ignored_columns == []


def test_an_export_loads_on_its_own_and_scores_like_the_canonical_file(
    tmp_path, panel, ingest, engine
):
    export = tmp_path / "kobo.csv"
    write_panel(panel, export, "kobo")
    report = ingest(export)
    assert (report.accepted, report.rejected) == (len(panel), 0)
    with engine.connect() as conn:
        ids = set(conn.execute(sa.select(submission.c.submission_id)).scalars())
    assert ids == set(panel["submission_id"])


def test_a_form_missing_an_item_column_is_reported_and_still_loads(
    tmp_path, panel, ingest, questionnaire
):
    export = tmp_path / "kobo.csv"
    write_panel(panel, export, "kobo")
    lines = export.read_text(encoding="utf-8-sig").splitlines()
    header = lines[0].split(";")
    drop = next(k for k, h in enumerate(header) if h.strip('"').endswith("/can_borrow"))
    trimmed = [";".join(c for k, c in enumerate(line.split(";")) if k != drop) for line in lines]
    export.write_text("\n".join(trimmed) + "\n", encoding="utf-8")
    report = ingest(export)
    assert report.missing_columns == ["can_borrow"]
    assert report.accepted == len(panel)


def test_a_nul_character_spelled_in_json_lines_is_dropped_not_stored(
    tmp_path, questionnaire, ingest, engine
):
    """JSON can spell a NUL (``\\u0000``) that a CSV cannot hold; PostgreSQL refuses it in
    text, so it is dropped on reading and the row is stored on both stores."""
    rows = [canonical_row(questionnaire, 1, admin1="Dak\x00ar"), canonical_row(questionnaire, 2)]
    report = ingest(write_jsonl(tmp_path / "b.jsonl", rows))
    assert (report.status, report.accepted, report.rejected) == ("done", 2, 0)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(submission.c.admin1).order_by(submission.c.id)).scalars()
        assert "Dakar" in list(stored)
