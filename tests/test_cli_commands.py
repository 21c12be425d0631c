"""`reintegration synth` and `form` as the README shows them (the demo: tests/test_demo.py)."""

from __future__ import annotations

import json

import openpyxl
from typer.testing import CliRunner

from reintegration.cli import app
from reintegration.form import build_xlsform


def test_synth_writes_the_panel_and_its_ground_truth(tmp_path):
    out = tmp_path / "panel.csv"
    result = CliRunner().invoke(
        app, ["synth", "--returnees", "50", "--rounds", "3", "--out", str(out), "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "panel.csv.truth.json").read_text())
    assert truth["seed"] == 4 and truth["returnees"] == 50
    header = out.read_text().splitlines()[0].split(",")
    assert header[0] == "submission_id"
    result = CliRunner().invoke(app, ["score", str(out), "--out", str(tmp_path / "scores.csv")])
    assert result.exit_code == 0, result.output


def test_synth_refuses_an_unknown_format(tmp_path):
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "x"), "--format", "parquet"])
    assert result.exit_code == 2


def test_synth_into_a_missing_folder_is_exit_status_2(tmp_path):
    result = CliRunner().invoke(
        app, ["synth", "--returnees", "5", "--out", str(tmp_path / "no" / "x.csv")]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot write")


def test_form_writes_the_xlsform_from_the_spec(tmp_path, questionnaire):
    out = tmp_path / "rss.xlsx"
    result = CliRunner().invoke(app, ["form", "--out", str(out)])
    assert result.exit_code == 0, result.output
    workbook = openpyxl.load_workbook(out)
    assert set(build_xlsform(questionnaire)) <= set(workbook.sheetnames)
