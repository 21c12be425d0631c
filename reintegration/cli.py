"""The ``reintegration`` command: the composition root.

Each command imports what it needs inside its own body, so ``reintegration score`` starts
without loading what only ``demo`` or ``synth`` use. Exit status (DESIGN.md): 0 done; 1 done
but some rows were rejected; 2 nothing done, with one sentence on stderr saying why.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

EXIT_DONE = 0
EXIT_REJECTED = 1
EXIT_NOTHING_DONE = 2

app = typer.Typer(
    help="Measure whether the reintegration of returning migrants is sustainable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _stderr():  # type: ignore[no-untyped-def]
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str) -> NoReturn:
    """Nothing was done: one sentence on stderr, exit status 2."""
    sentence = message
    if not sentence.endswith("."):
        sentence += "."
    _stderr().print(f"error: {sentence}", markup=False)
    raise typer.Exit(EXIT_NOTHING_DONE)


def _progress(description: str, total: int | None = None):  # type: ignore[no-untyped-def]
    """A progress bar on stderr when it is a terminal; otherwise a silent stand-in."""
    if not sys.stderr.isatty():  # also spares rich.progress's import where nobody watches
        return _SilentProgress()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_stderr(),
        transient=True,
    )


class _SilentProgress:
    """The part of ``rich.progress.Progress`` the commands use, doing nothing."""

    def __enter__(self) -> _SilentProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None) -> int:
        return 0

    def update(self, task: int, **fields: object) -> None:
        return None


def current_index():  # type: ignore[no-untyped-def]
    """The index version ``score`` uses: the registry's champion once it exists, else v1."""
    from reintegration.index import ReintegrationIndex

    return ReintegrationIndex().fit()


@app.command()
def score(
    file: Annotated[Path, typer.Argument(help="Canonical CSV, XLSX or JSON lines batch.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the scores (CSV).")],
) -> None:
    """Score a batch without storing it: one output row per valid input row, in input order."""
    from reintegration.errors import ReintegrationError
    from reintegration.questionnaire import load_questionnaire
    from reintegration.scoring import score_file

    if out.resolve() == file.resolve():
        _fail("the output file would overwrite the input; choose another --out")
    if not file.is_file():
        _fail(f"{file} does not exist or is not a file")
    partial = out.with_name(f".{out.name}.partial")
    try:
        questionnaire = load_questionnaire()
        index = current_index()
        with _progress("Scoring") as bar:
            task = bar.add_task("score", total=None)
            with partial.open("wb") as sink:
                report = score_file(
                    file, sink, index, questionnaire, lambda n: bar.update(task, completed=n)
                )
        partial.replace(out)
    except ReintegrationError as exc:
        partial.unlink(missing_ok=True)
        _fail(str(exc))
    except OSError as exc:
        partial.unlink(missing_ok=True)
        _fail(f"cannot write {out}: {exc.strerror or exc}")
    console = _stderr()
    for note in report.notes:
        where = f"row {note.row}, column {note.column}: " if note.row is not None else ""
        console.print(f"warning: {where}{note.message}", markup=False)
    if report.ignored_columns:
        console.print(
            f"warning: ignored columns: {', '.join(report.ignored_columns)}", markup=False
        )
    for issue in report.issues:
        console.print(str(issue), markup=False)
    console.print(
        f"Scored {report.scored} of {report.received} rows with {index.label_}"
        + (f"; {report.rejected_rows} rejected." if report.rejected_rows else "."),
        markup=False,
    )
    raise typer.Exit(EXIT_REJECTED if report.rejected_rows else EXIT_DONE)


class SynthFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"
    jsonl = "jsonl"
    kobo = "kobo"
    kobo_xlsx = "kobo-xlsx"
    odk = "odk"


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
    returnees: Annotated[int, typer.Option("--returnees", min=1, help="Returnees.")] = 1000,
    rounds: Annotated[int, typer.Option("--rounds", min=1, max=6, help="Survey rounds.")] = 3,
    fmt: Annotated[SynthFormat, typer.Option("--format", help="Output format.")] = SynthFormat.csv,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """Generate a synthetic longitudinal panel, with its ground truth in FILE.truth.json."""
    from reintegration.errors import ReintegrationError
    from reintegration.synth import generate_panel, write_panel, write_truth

    try:
        with _progress("Generating") as bar:
            bar.add_task("synth", total=None)
            frame, truth = generate_panel(returnees, rounds, seed=seed)
            write_panel(frame, out, fmt.value)
            truth_path = write_truth(truth, out)
    except ReintegrationError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {out}: {exc.strerror or exc}")
    _stderr().print(
        f"Wrote {len(frame)} interviews of {returnees} returnees to {out} "
        f"(ground truth in {truth_path}).",
        markup=False,
    )


@app.command()
def form(
    out: Annotated[Path, typer.Option("--out", help="Where to write the XLSForm.")] = Path(
        "data/forms/rss.xlsx"
    ),
) -> None:
    """Write the XLSForm (KoboToolbox / ODK Central) generated from the questionnaire spec."""
    from reintegration.errors import ReintegrationError
    from reintegration.form import write_xlsform
    from reintegration.questionnaire import load_questionnaire

    try:
        write_xlsform(load_questionnaire(), out)
    except ReintegrationError as exc:
        _fail(str(exc))
    _stderr().print(f"Wrote the XLSForm to {out}.", markup=False)


@app.command()
def demo(
    returnees: Annotated[int, typer.Option("--returnees", min=50, help="Returnees.")] = 2000,
    rounds: Annotated[int, typer.Option("--rounds", min=1, max=6, help="Rounds.")] = 3,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Generate a synthetic panel, score it and print who reintegrates sustainably."""
    from reintegration.demo import run_demo

    run_demo(returnees=returnees, rounds=rounds, seed=seed)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
