"""The one-command demo's own data folder, its synthetic data, and its terminal summary.

``reintegration demo`` (the composition root, ``reintegration/cli.py``) builds the folder and
the data with these functions, then trains the models and starts the server. The folder is
``REINTEGRATION_HOME/demo``, marked as the demo's: it is reused on the next run, rebuilt with
``--fresh``, and a folder the demo did not create is never used or removed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from rich.table import Table

from reintegration.aggregate import TOTAL
from reintegration.errors import DemoError
from reintegration.index import ReintegrationIndex
from reintegration.ingest import BatchReport, ingest_file
from reintegration.questionnaire import load_questionnaire
from reintegration.synth import generate_panel, write_panel

MIN_CELL = 5
MARKER = ".reintegration-demo"
READY = "ready"
SHORT = {"psychosocial": "psychosoc."}  # keeps the table within a terminal's width


def _cell(row: pd.Series, figure: str) -> str:
    if row["suppressed"]:
        return "[dim]suppressed[/dim]"
    mean = row[f"{figure}_mean"]
    if np.isnan(mean):
        return "–"
    low, high = row[f"{figure}_low"], row[f"{figure}_high"]
    interval = f" [dim]±{(high - low) / 2:.2f}[/dim]" if not np.isnan(low) else ""
    return f"{mean:.2f}{interval}"


def summary_table(
    table: pd.DataFrame, by: str, title: str, figures: Sequence[str], label: str
) -> Table:
    """A rich table of one breakdown: n, mean [95% CI] per figure, share sustainable, unscored."""
    out = Table(
        title=title,
        caption=f"index {label}; mean ± half-width of its 95% interval",
        title_justify="left",
        caption_justify="left",
    )
    out.add_column(by.replace("_", " "), style="bold")
    out.add_column("n", justify="right")
    for figure in figures:
        out.add_column(SHORT.get(figure, figure), justify="right", no_wrap=True)
    out.add_column("sustainable", justify="right")
    out.add_column("unscored", justify="right")
    for _, row in table.iterrows():
        suppressed = bool(row["suppressed"])
        name = str(row[by]) if row[by] == row[by] else "not recorded"
        out.add_row(
            f"[italic]{name}[/italic]" if name == TOTAL else name,
            f"<{MIN_CELL}" if suppressed else f"{int(row['returnees'])}",
            *(_cell(row, f) for f in figures),
            "" if suppressed else f"{row['share_sustainable']:.0%}",
            f"<{MIN_CELL}" if row["unscored_suppressed"] else f"{int(row['unscored'])}",
            end_section=name == TOTAL,
        )
    return out


def demo_folder(home: Path, *, fresh: bool) -> tuple[Path, bool]:
    """The demo's data folder, ``home/demo``, and whether its data must be built.

    Parameters
    ----------
    home : Path
        ``REINTEGRATION_HOME``.
    fresh : bool
        Remove the demo's folder and build it again.

    Returns
    -------
    (Path, bool)
        The folder, and True when it is new (or was left half-built by an interrupted run).

    Raises
    ------
    DemoError
        ``home/demo`` exists but the demo did not create it.
    """
    folder = Path(home) / "demo"
    if folder.exists():
        if not (folder / MARKER).is_file():
            raise DemoError(
                f"{folder} exists but was not created by the demo, so the demo will not use or "
                "remove it: move it away, or set REINTEGRATION_HOME to another folder"
            )
        if not fresh and (folder / READY).is_file():
            return folder, False
        shutil.rmtree(folder)  # asked for, or half-built by an interrupted run
    folder.mkdir(parents=True)
    (folder / MARKER).write_text(
        f"created by `reintegration demo` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n",
        encoding="utf-8",
    )
    return folder, True


def build_demo_data(
    engine: sa.Engine,
    folder: Path,
    *,
    scorer: ReintegrationIndex,
    secret: bytes,
    returnees: int = 5000,
    rounds: int = 3,
    seed: int = 0,
    model_version: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> BatchReport:
    """Generate a synthetic panel as a KoboToolbox export and ingest it, as a field team would.

    Returns
    -------
    BatchReport
        The report of the upload.
    """
    questionnaire = load_questionnaire()
    frame, truth = generate_panel(returnees, rounds, seed=seed, questionnaire=questionnaire)
    path = folder / "uploads" / "demo-panel-kobo.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_panel(frame, path, "kobo", questionnaire=questionnaire)
    return ingest_file(
        path,
        engine,
        scorer=scorer,
        questionnaire=questionnaire,
        secret=secret,
        uploader="demo-enumerator",
        model_version=model_version,
        progress=progress,
    )


def mark_ready(folder: Path) -> None:
    """Record that the demo's data and models are complete, so the next run reuses them."""
    (Path(folder) / READY).write_text("ready\n", encoding="utf-8")
