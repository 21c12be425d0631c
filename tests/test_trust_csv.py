"""Files for people are formula-safe (issue 11, finding 7): OWASP's leading characters get an
apostrophe, and a cell holding a carriage return or a line feed anywhere is quoted, so no
spreadsheet starts a new row inside it. One writer, :mod:`reintegration.people_csv`, for the
fixable file, the score export and the dashboards' downloads (the API's are in
``tests/api/test_trust_csv.py``)."""

from __future__ import annotations

import csv
import io
import re

import pandas as pd
import pytest
import sqlalchemy as sa

from reintegration import batch_views, casework
from reintegration.fixable import fixable_csv
from reintegration.people_csv import FORMULA_STARTS, PeopleCsvWriter, csv_text, neutralise
from reintegration.store.schema import submission
from tests.conftest import canonical_row, write_jsonl

# What each hostile cell must look like once a spreadsheet has split the file into cells.
HOSTILE = {
    "=1+1": "'=1+1",
    "+1+1": "'+1+1",
    "-x": "'-x",
    "@x": "'@x",
    "\t=1": "'\t=1",
    "\r=1": "'\r=1",
    "ok\r=1+1": "ok\r=1+1",
    "ok\n=1+1": "ok\n=1+1",
    "ok\r\n=1+1": "ok\r\n=1+1",
}
NUMBERS = ("-3.5", "+1", "-1e5", "12", "-0.25")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_cells(text: str) -> list[list[str]]:
    """The rows a spreadsheet makes of the file: an unquoted CR or LF ends a row."""
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_nothing_runs(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS) or _NUMBER.fullmatch(cell), (row, cell)


@pytest.mark.parametrize(("sent", "written"), [(k, v) for k, v in HOSTILE.items() if k[0] != "o"])
def test_a_cell_starting_like_a_formula_gets_an_apostrophe(sent, written):
    assert neutralise(sent) == written


@pytest.mark.parametrize("number", NUMBERS)
def test_a_number_stays_a_number(number):
    assert neutralise(number) == number
    assert csv_text([[number]]) == number + "\n"


def test_a_bare_carriage_return_is_quoted_and_stays_in_its_cell():
    text = csv_text([["id", "admin1"], ["a", "ok\r=1+1"], ["b", "\r=1"], ["c", "two\nlines"]])

    raw = text.encode("utf-8")
    assert b'"ok\r=1+1"' in raw and b'"\'\r=1"' in raw and b'"two\nlines"' in raw
    # Rows end with \n, as before; only quoted cells hold a CR.
    assert raw.count(b"\n") == 5 and raw.count(b"\r") == 2
    rows = spreadsheet_cells(text)
    assert rows == [["id", "admin1"], ["a", "ok\r=1+1"], ["b", "'\r=1"], ["c", "two\nlines"]]
    assert_nothing_runs(rows)


def test_the_writer_writes_row_by_row_to_a_stream():
    out = io.StringIO()
    writer = PeopleCsvWriter(out)
    writer.writerow(["=x", None, 1.5])
    writer.writerows([["ok\r=1", float("nan")]])

    assert out.getvalue() == '\'=x,,1.5\n"ok\r=1",\n'


@pytest.fixture
def hostile_batch(tmp_path, questionnaire, ingest):
    """One accepted row per hostile submission id (admin1 the same text), and one rejected row
    per hostile value of sex, as JSON lines (the cells arrive exactly as written)."""
    hostile = list(HOSTILE)
    rows = [
        canonical_row(questionnaire, n + 1, submission_id=f"{h}-{n}", admin1=h)
        for n, h in enumerate(hostile)
    ]
    rows += [
        canonical_row(questionnaire, 100 + n, submission_id=f"r{n}", sex=h, admin1=h)
        for n, h in enumerate(hostile)
    ]
    report = ingest(write_jsonl(tmp_path / "hostile.jsonl", rows))
    assert (report.accepted, report.rejected) == (len(hostile), len(hostile))
    return report


def test_the_fixable_file_is_formula_safe(engine, hostile_batch):
    text = fixable_csv(batch_views.batch_rejected(engine, hostile_batch.batch_id))

    rows = spreadsheet_cells(text)
    assert len(rows) == 1 + len(HOSTILE)  # no row was split by a bare CR
    assert_nothing_runs(rows)
    header, lines = rows[0], rows[1:]
    sexes = [line[header.index("sex")] for line in lines]
    assert sexes == list(HOSTILE.values())
    assert [line[header.index("admin1")] for line in lines] == sexes
    raw = text.encode("utf-8")
    assert b',"ok\r=1+1",' in raw and b',"\'\r=1",' in raw and b",'\t=1," in raw


def test_the_score_export_is_formula_safe(engine, hostile_batch):
    text = "".join(casework.export_scores_csv(engine, index_version="rss-v1-provisional"))

    rows = spreadsheet_cells(text)
    assert len(rows) == 1 + len(HOSTILE)
    assert_nothing_runs(rows)
    ids = {line[rows[0].index("submission_id")] for line in rows[1:]}
    # Stored ids are trimmed: "\t=1-4" is stored as "=1-4".
    assert "'=1+1-0" in ids and "'=1-4" in ids and "'=1-5" in ids and "'-x-2" in ids
    assert {"ok\r=1+1-6", "ok\n=1+1-7", "ok\r\n=1+1-8"} <= ids
    assert b'"ok\r=1+1-6"' in text.encode("utf-8")
    # Figures are numbers, not text: none of them got an apostrophe.
    composite = rows[0].index("composite")
    assert all(_NUMBER.fullmatch(line[composite]) for line in rows[1:])


def test_a_dashboard_download_is_formula_safe_and_keeps_numbers():
    from dashboards.data import csv_download

    frame = pd.DataFrame(
        {
            "group": list(HOSTILE),
            "mean": [-3.5, 0.25, None, 1.0, -0.5, 2.0, 3.0, 4.0, 5.0],
            "n": range(9),
        }
    )

    download = csv_download(frame, "x.csv")

    rows = spreadsheet_cells(download["content"])
    assert download["filename"] == "x.csv"
    assert len(rows) == 10
    assert_nothing_runs(rows)
    assert [r[0] for r in rows[1:]] == list(HOSTILE.values())
    assert [r[1] for r in rows[1:3]] == ["-3.5", "0.25"] and rows[3][1] == ""


def test_a_fixable_file_comes_back_as_the_values_it_was_made_of(
    engine, questionnaire, ingest, tmp_path
):
    # DESIGN.md: a cell an export neutralised is read without its apostrophe, so fixing the
    # one bad cell of a fixable file and uploading it stores what was first sent.
    sent = {"=1+1": "sub-a", "-abc": "-abc", "@x": "sub-c", "+x": "sub-d", "'own": "sub-e"}
    rows = [
        canonical_row(questionnaire, n + 1, submission_id=sid, admin1=admin1, sex="neither")
        for n, (admin1, sid) in enumerate(sent.items())
    ]
    first = ingest(write_jsonl(tmp_path / "first.jsonl", rows))
    assert first.rejected == len(sent)
    text = fixable_csv(batch_views.batch_rejected(engine, first.batch_id))
    assert "'-abc" in text and "'=1+1" in text  # the file for people is neutralised
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(text.replace("neither", "female"), encoding="utf-8")

    again = ingest(fixed)

    assert (again.accepted, again.rejected) == (len(sent), 0)
    with engine.connect() as conn:
        query = sa.select(submission.c.admin1, submission.c.submission_id)
        stored = {row.admin1: row.submission_id for row in conn.execute(query)}
    assert stored == sent  # "'own" was the sender's own apostrophe: kept
