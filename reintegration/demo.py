"""The one-command demo: a synthetic panel, scored, summarised for a programme manager.

Until the server exists (the API and dashboards issues), the demo prints its summary with rich:
mean scores with 95% intervals by sex, child or adult, and forced or voluntary return, and
the trajectory by survey round. Every aggregate follows the suppression rule of DESIGN.md.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from reintegration.aggregate import TOTAL, add_groups, breakdown, latest_per_returnee
from reintegration.index import ReintegrationIndex
from reintegration.questionnaire import load_questionnaire
from reintegration.scoring import scored_records
from reintegration.synth import generate_panel, write_panel

MIN_CELL = 5
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


def run_demo(
    returnees: int = 2000, rounds: int = 3, seed: int = 0, console: Console | None = None
) -> pd.DataFrame:
    """Generate, score and summarise a synthetic panel; returns the scored records.

    Nothing is stored: the panel lives in a temporary folder that is removed afterwards.
    """
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped output: wide enough for every column
            console = Console(width=110)
    questionnaire = load_questionnaire()
    index = ReintegrationIndex().fit()
    with (
        console.status("Generating a synthetic panel and scoring it…"),
        tempfile.TemporaryDirectory() as tmp,
    ):
        frame, _ = generate_panel(returnees, rounds, seed=seed, questionnaire=questionnaire)
        path = Path(tmp) / "panel.csv"
        write_panel(frame, path, "csv")
        records, report = scored_records(path, index, questionnaire)
    records = add_groups(records, questionnaire)
    records["returnee_key"] = records["returnee_id"]
    records["round"] = (
        records.groupby("returnee_key")["interview_date"].rank(method="first").astype(int)
    )
    latest = latest_per_returnee(records)
    figures = [*index.dimensions_, "composite"]
    console.print(
        f"Cells with fewer than {MIN_CELL} returnees are suppressed (<{MIN_CELL}).", style="dim"
    )
    console.print(
        f"[bold]Reintegration sustainability[/bold] — "
        f"{records['returnee_key'].nunique()} returnees, "
        f"{len(records)} interviews in {rounds} rounds ({report.rejected_rows} rows rejected). "
        f"Each returnee counts once, at their latest scored interview."
    )
    for by, title in (
        ("sex", "By sex"),
        ("age_group", "Child and adult returnees"),
        ("return_type", "Forced and voluntary return"),
    ):
        table = breakdown(latest, [by], figures=figures, min_cell=MIN_CELL)
        console.print(summary_table(table, by, title, figures, index.label_))
    by_round = breakdown(records, ["round"], figures=figures, min_cell=MIN_CELL)
    console.print(
        summary_table(by_round, "round", "By survey round (every interview)", figures, index.label_)
    )
    return records
