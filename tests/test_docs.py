"""The README stays true to the code (after sqlite-utils' tests/test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from reintegration.cli import app
from reintegration.index import ReintegrationIndex
from reintegration.scoring import output_columns

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_command_the_readme_shows_exists():
    shown = set(re.findall(r"^reintegration (\w+)", README, flags=re.MULTILINE))
    assert shown, "the README shows no command"
    assert shown <= set(get_command(app).commands)  # type: ignore[attr-defined]


def test_the_readme_lists_the_score_columns_in_order():
    listed = re.search(r"`scores.csv` has the columns `([^`]+)`", README.replace("\n", " "))
    assert listed is not None
    columns = [c.strip() for c in listed.group(1).split(",")]
    assert columns == output_columns(ReintegrationIndex().fit())


def test_the_package_turns_mlflow_telemetry_off():
    import os

    import reintegration  # noqa: F401

    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
