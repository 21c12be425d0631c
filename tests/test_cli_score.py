"""`reintegration score FILE --out OUT.csv` as DESIGN.md specifies it, exit codes included."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from reintegration.cli import app
from tests.conftest import canonical_row, write_csv, write_jsonl

OUTPUT_COLUMNS = [
    "submission_id",
    "economic",
    "social",
    "psychosocial",
    "composite",
    "coverage_economic",
    "coverage_social",
    "coverage_psychosocial",
    "level",
    "weakest_dimension",
    "sustainable",
    "index_version",
]


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def read_out(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_scores_every_valid_row_in_input_order(tmp_path, batch_file):
    src = batch_file({}, {"currently_working": "no"}, {"submission_id": "a,b"})
    out = tmp_path / "out.csv"
    result = run("score", str(src), "--out", str(out))
    assert result.exit_code == 0, result.output
    raw = out.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert raw.splitlines()[0].decode() == ",".join(OUTPUT_COLUMNS)
    rows = read_out(out)
    assert [r["submission_id"] for r in rows] == ["sub-0001", "sub-0002", "a,b"]
    assert rows[1]["economic"] == "0.8750"
    assert rows[0]["sustainable"] == "true"
    assert "Scored 3 of 3 rows with rss-v1-provisional." in result.stderr


def test_rejected_rows_go_to_stderr_and_exit_status_is_1(tmp_path, batch_file):
    src = batch_file({}, {"can_borrow": "maybe"}, {"return_date": "2026-01-01"})
    out = tmp_path / "out.csv"
    result = run("score", str(src), "--out", str(out))
    assert result.exit_code == 1
    assert [r["submission_id"] for r in read_out(out)] == ["sub-0001"]
    lines = result.stderr.splitlines()
    assert (
        "row 3, column can_borrow: 'maybe' is not an answer to can_borrow; use one of yes, no (or its label), dont_know, refused or a blank"
        in lines
    )
    assert (
        "row 4, column return_date: return date 2026-01-01 is after the interview date 2025-06-01"
        in lines
    )
    assert "Scored 1 of 3 rows with rss-v1-provisional; 2 rejected." in lines


def test_missing_values_are_empty_cells(tmp_path, questionnaire, batch_file):
    econ = [i.id for i in questionnaire.items_of("economic")]
    src = batch_file(dict.fromkeys(econ[:4], ""))
    out = tmp_path / "out.csv"
    assert run("score", str(src), "--out", str(out)).exit_code == 0
    (row,) = read_out(out)
    assert (row["economic"], row["composite"], row["level"], row["sustainable"]) == ("", "", "", "")
    assert row["coverage_economic"] == "0.5000"


def test_score_needs_only_submission_id(tmp_path, questionnaire):
    row = {
        "submission_id": "x1",
        **{i.id: canonical_row(questionnaire)[i.id] for i in questionnaire.items},
    }
    src = write_csv(tmp_path / "items.csv", [row])
    out = tmp_path / "out.csv"
    assert run("score", str(src), "--out", str(out)).exit_code == 0
    assert read_out(out)[0]["composite"] == "1.0000"


def test_consent_no_rejects_the_row(tmp_path, batch_file):
    out = tmp_path / "out.csv"
    result = run("score", str(batch_file({"consent": "no"})), "--out", str(out))
    assert result.exit_code == 1
    assert (
        "row 2, column consent: consent was not recorded as yes; nothing of this row is stored"
        in result.stderr
    )
    assert read_out(out) == []


@pytest.mark.parametrize("fmt", ["xlsx", "jsonl", "semicolon-bom"])
def test_xlsx_jsonl_and_semicolon_csv_score_like_csv(tmp_path, questionnaire, fmt):
    rows = [
        canonical_row(questionnaire, 1),
        canonical_row(questionnaire, 2, food_reduction="often"),
    ]
    if fmt == "xlsx":
        src = tmp_path / "b.xlsx"
        workbook = Workbook()
        workbook.active.append(list(rows[0]))
        for r in rows:
            workbook.active.append(list(r.values()))
        workbook.save(src)
    elif fmt == "jsonl":
        src = write_jsonl(tmp_path / "b.jsonl", rows)
    else:
        src = write_csv(tmp_path / "b.csv", rows, delimiter=";", encoding="utf-8-sig")
    reference = write_csv(tmp_path / "ref.csv", rows)
    assert run("score", str(src), "--out", str(tmp_path / "a.csv")).exit_code == 0
    assert run("score", str(reference), "--out", str(tmp_path / "b.csv")).exit_code == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_a_repeated_submission_id_is_scored_twice(tmp_path, batch_file):
    src = batch_file({"submission_id": "same"}, {"submission_id": "same"})
    out = tmp_path / "out.csv"
    assert run("score", str(src), "--out", str(out)).exit_code == 0
    assert len(read_out(out)) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "error: b.csv is empty."),
        (
            b"sex,age_at_return\nfemale,30\n",
            "error: the file has no column submission_id, which score needs.",
        ),
        (b"\x00\xff" * 100, "error: b.csv is not a text file, a CSV or an Excel workbook."),
    ],
)
def test_nothing_done_is_exit_status_2_with_one_sentence(tmp_path, content, message):
    src = tmp_path / "b.csv"
    src.write_bytes(content)
    out = tmp_path / "out.csv"
    result = run("score", str(src), "--out", str(out))
    assert result.exit_code == 2
    assert result.stderr.strip() == message
    assert not out.exists()
    assert not list(tmp_path.glob(".*partial"))


def test_a_missing_input_file_is_exit_status_2(tmp_path):
    result = run("score", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "out.csv"))
    assert result.exit_code == 2
    assert "does not exist or is not a file" in result.stderr


def test_an_unwritable_output_is_exit_status_2_and_leaves_nothing(tmp_path, batch_file):
    result = run("score", str(batch_file({})), "--out", str(tmp_path / "no-such-dir" / "out.csv"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot write")


def test_a_failed_run_keeps_the_previous_output(tmp_path, batch_file):
    out = tmp_path / "out.csv"
    out.write_text("previous\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("sex\nfemale\n")
    assert run("score", str(bad), "--out", str(out)).exit_code == 2
    assert out.read_text() == "previous\n"


def test_missing_required_option_is_a_usage_error(tmp_path, batch_file):
    result = run("score", str(batch_file({})))
    assert result.exit_code == 2


def test_the_installed_command_runs_and_writes_nothing_else(tmp_path, batch_file):
    src = batch_file({})
    work = tmp_path / "cwd"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REINTEGRATION_")}
    done = subprocess.run(
        [sys.executable, "-m", "reintegration.cli", "score", str(src), "--out", "out.csv"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in work.iterdir()) == ["out.csv"]
