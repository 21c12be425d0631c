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


@app.callback()
def _private_files() -> None:
    # Everything a command creates (the store and its WAL, MLflow's files, the key, jobs'
    # logs, outputs) is readable by its owner only (DESIGN.md, "Privacy rules");
    # reintegration.housekeeping.PRIVATE_UMASK, without importing the store here.
    import os

    os.umask(0o077)


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
    """The index version ``score`` uses: the registry's champion once it exists, else v1.

    Looking creates nothing: without a tracking store (no file, for the SQLite default) the
    built-in v1 is used and MLflow is not even imported.
    """
    from models.serving import shared_champions
    from reintegration.settings import get_settings

    return shared_champions(get_settings()).index()[0]


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
    weights: Annotated[
        bool,
        typer.Option(
            "--weights", help="Write a weight column (design x retention weights, see the truth)."
        ),
    ] = False,
) -> None:
    """Generate a synthetic longitudinal panel, with its ground truth in FILE.truth.json."""
    from reintegration.errors import ReintegrationError
    from reintegration.synth import generate_panel, write_panel, write_truth

    try:
        with _progress("Generating") as bar:
            bar.add_task("synth", total=None)
            frame, truth = generate_panel(returnees, rounds, seed=seed, weights=weights)
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


DEMO_ROLES = ("enumerator", "manager", "analyst", "admin")


@app.command()
def demo(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve on.")] = 8000,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Rebuild the demo's data folder from scratch.")
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Address to serve on.")] = "127.0.0.1",
    returnees: Annotated[
        int, typer.Option("--returnees", min=200, help="Returnees in the synthetic panel.")
    ] = 5000,
    rounds: Annotated[int, typer.Option("--rounds", min=2, max=6, help="Survey rounds.")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic panel.")] = 0,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the server when ready.", hidden=True)
    ] = True,
) -> None:
    """The whole platform on synthetic data: its own data folder, a panel of returnees
    ingested as a KoboToolbox export, trained models, and the server with one token per role."""
    import os

    from api.cli import port_taken
    from reintegration.errors import ReintegrationError

    why = port_taken(host, port) if serve_after else None
    if why:
        _fail(why)
    try:
        folder, build = _demo_folder(fresh)
        engine, settings = _demo_store(folder)
        if build:
            _build_demo(engine, settings, folder, returnees=returnees, rounds=rounds, seed=seed)
        tokens = _demo_tokens(engine)
        _print_demo_summary(engine, settings)
    except ReintegrationError as exc:
        _fail(str(exc))
    shown = f"[{host}]" if ":" in host else host
    out = _stdout()
    out.print(f"\n[bold]Dashboards:[/bold] http://{shown}:{port}/dashboard/  (log in with a token)")
    out.print(f"[bold]API:[/bold]        http://{shown}:{port}/api/v1  (docs at /docs)")
    out.print(f"[bold]Data folder:[/bold] {folder}")
    out.print("\nOne token per role (shown once; `reintegration demo` makes new ones each run):")
    for role, token in tokens.items():
        out.print(f"  {role:<11} {token}", markup=False, highlight=False)
    if not serve_after:
        return
    os.environ["REINTEGRATION_HOME"] = str(folder)  # the server reads the demo's settings
    from api.cli import serve

    serve(host=host, port=port)


def _stdout():  # type: ignore[no-untyped-def]
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:  # piped: wide enough for every column of the summary tables
        console = Console(highlight=False, soft_wrap=True, width=110)
    return console


def _demo_folder(fresh: bool):  # type: ignore[no-untyped-def]
    from reintegration.demo import demo_folder
    from reintegration.settings import get_settings

    return demo_folder(get_settings().home, fresh=fresh)


def _demo_store(folder: Path):  # type: ignore[no-untyped-def]
    """The demo runs on the embedded stores of its own folder, whatever the environment says."""
    import os

    from reintegration.settings import get_settings
    from reintegration.store.engine import open_store

    for name in ("REINTEGRATION_DATABASE_URL", "MLFLOW_TRACKING_URI", "REINTEGRATION_SECRET_KEY"):
        os.environ.pop(name, None)
    os.environ["REINTEGRATION_HOME"] = str(folder)
    os.environ["REINTEGRATION_ENV"] = "development"
    get_settings.cache_clear()
    settings = get_settings()
    return open_store(settings.database_url), settings


def _build_demo(engine, settings, folder, *, returnees, rounds, seed) -> None:  # type: ignore[no-untyped-def]
    from models.demo import train_demo_models
    from models.hooks import after_batch
    from models.registry import ensure_builtin_index
    from models.serving import Champions
    from reintegration.demo import build_demo_data, mark_ready
    from reintegration.housekeeping import verified_key

    err = _stderr()
    with err.status("Registering the built-in index (rss-v1-provisional)…"):
        ensure_builtin_index()
    champions = Champions(settings)
    index, _label, version = champions.index()
    with _progress("Ingesting the synthetic panel (KoboToolbox export)…") as bar:
        task = bar.add_task("ingest", total=None)
        report = build_demo_data(
            engine,
            folder,
            scorer=index,
            secret=verified_key(settings, engine),
            returnees=returnees,
            rounds=rounds,
            seed=seed,
            model_version=version,
            progress=lambda n: bar.update(task, completed=n),
        )
    err.print(f"Ingested {report.accepted} interviews ({report.rejected} rejected).", markup=False)
    after_batch(engine, report.batch_id, champions)  # drift of the batch, as an upload gets
    with err.status("Training the models (index weights, early-warning risk)…"):
        trained = train_demo_models(engine, settings)
    for line in trained:
        err.print(line, markup=False)
    mark_ready(folder)


def _demo_tokens(engine) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from reintegration.errors import UserError
    from reintegration.policy import cli_caller
    from reintegration.users import add_user, revoke_user

    tokens = {}
    demo = cli_caller("demo")
    for role in DEMO_ROLES:
        name = f"demo-{role}"
        try:
            revoke_user(engine, name, caller=demo)
        except UserError:
            pass  # the first run: nobody to revoke
        tokens[role] = add_user(engine, name, role, caller=demo)
    return tokens


def _print_demo_summary(engine, settings) -> None:  # type: ignore[no-untyped-def]
    from reintegration.analytics import Analytics, Filters
    from reintegration.demo import summary_table

    analytics = Analytics(engine, min_cell=settings.min_cell)
    labels = analytics.index_versions()
    if not labels:
        return
    label = "rss-v1-provisional" if "rss-v1-provisional" in labels else labels[0]
    out = _stdout()
    figures = ["economic", "social", "psychosocial", "composite"]
    for by, title in (
        ("sex", "By sex"),
        ("age_group", "Child and adult returnees"),
        ("return_type", "Forced and voluntary return"),
    ):
        table = analytics.aggregates([by], Filters(), label)
        out.print(summary_table(table, by, title, figures, label))


def _store():  # type: ignore[no-untyped-def]
    """The app's store from the settings, created and migrated on first use, after the
    housekeeping of a start (:mod:`reintegration.housekeeping`): files private, interrupted
    batches failed, uploads left behind removed."""
    from reintegration.housekeeping import at_start, keep_private
    from reintegration.settings import get_settings
    from reintegration.store.engine import open_store

    keep_private()
    settings = get_settings()
    engine = open_store(settings.database_url)
    at_start(settings.home, engine)
    return engine


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="Canonical batch, Kobo or ODK export.")],
    uploader: Annotated[str, typer.Option("--uploader", help="Who uploads.")] = "cli",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    consent_recorded_elsewhere: Annotated[
        bool,
        typer.Option(
            "--consent-recorded-elsewhere",
            help="The file has no consent column because consent was recorded outside the "
            "form (audited with the batch).",
        ),
    ] = False,
) -> None:
    """Validate, score and store a batch; print its report (rows rejected: exit status 1)."""

    from reintegration.errors import ReintegrationError
    from reintegration.housekeeping import verified_key
    from reintegration.ingest import ingest_file
    from reintegration.questionnaire import load_questionnaire
    from reintegration.roles import Role
    from reintegration.settings import get_settings
    from reintegration.users import User

    if not file.is_file():
        _fail_json(f"{file} does not exist or is not a file", as_json)
    from models.serving import shared_champions

    try:
        settings = get_settings()
        engine = _store()
        champions = shared_champions(settings)
        index, _label, index_version = champions.index()  # every score names its version
        with _progress("Ingesting") as bar:
            task = bar.add_task("ingest", total=None)
            report = ingest_file(
                file,
                engine,
                scorer=index,
                questionnaire=load_questionnaire(),
                secret=verified_key(settings, engine),  # the key the database knows
                uploader=User(uploader, Role.ADMIN, None),  # the CLI acts for every country
                model_version=index_version,
                progress=lambda n: bar.update(task, completed=n),
                consent_recorded_elsewhere=consent_recorded_elsewhere,
            )
    except ReintegrationError as exc:
        _fail_json(str(exc), as_json)
    from models.hooks import after_batch

    after_batch(engine, report.batch_id, champions)
    if as_json:
        from reintegration.batch_views import report_json

        for piece in report_json(engine, report.to_json()):
            sys.stdout.write(piece)
        sys.stdout.write("\n")
    else:
        _print_report(report, engine)
    raise typer.Exit(EXIT_REJECTED if report.rejected else EXIT_DONE)


def _fail_json(message: str, as_json: bool) -> NoReturn:
    if as_json:
        import json

        typer.echo(json.dumps({"error": message}, ensure_ascii=False))
    _fail(message)


def _print_report(report, engine) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)
    counts = Table(title=f"Batch {report.batch_id}", title_justify="left")
    for name in ("received", "accepted", "rejected", "duplicate", "updated"):
        counts.add_column(name, justify="right")
    counts.add_row(
        *(
            str(getattr(report, n))
            for n in ("received", "accepted", "rejected", "duplicate", "updated")
        )
    )
    console.print(counts)
    for label, columns in (
        ("ignored columns", report.ignored_columns),
        ("missing item columns", report.missing_columns),
        ("dropped identifier columns", report.dropped_identifier_columns),
    ):
        if columns:
            console.print(f"{label}: {', '.join(columns)}", markup=False)
    if report.errors_total > len(report.errors):
        # Too many for a table: every one, a line each, read from the store as printed.
        from reintegration.batch_views import batch_errors

        console.print(f"{report.errors_total:,} rejected cells:")
        for e in batch_errors(engine, report.batch_id):
            where = f"row {e['row']}, column {e['column']}" if e["column"] else f"row {e['row']}"
            console.print(f"{where}: {e['message']}", markup=False, soft_wrap=True)
    elif report.errors:
        errors = Table(title="Rejected rows", title_justify="left")
        for name in ("row", "column", "value", "message"):
            errors.add_column(name, overflow="fold")
        for e in report.errors:
            errors.add_row(str(e.row), e.column, e.value, e.message)
        console.print(errors)
    from reintegration.batch_views import batch_warnings

    for w in batch_warnings(engine, report.batch_id):
        where = f"row {w['row']}, column {w['column']}: " if w["row"] is not None else ""
        console.print(f"warning: {where}{w['message']}", markup=False)


db_app = typer.Typer(help="The app's database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations to the configured database."""
    from reintegration.errors import ReintegrationError
    from reintegration.settings import get_settings
    from reintegration.store.engine import upgrade

    try:
        url = get_settings().database_url
        upgrade(url)
    except ReintegrationError as exc:
        _fail(str(exc))
    _stderr().print("The database is up to date.", markup=False)


returnee_app = typer.Typer(help="Returnees' data.", no_args_is_help=True)
app.add_typer(returnee_app, name="returnee")


@returnee_app.command("erase")
def returnee_erase(
    case_number: Annotated[str, typer.Argument(help="The returnee's case number.")],
    actor: Annotated[str, typer.Option("--actor", help="Who erases (audited).")] = "cli",
) -> None:
    """Right to erasure: remove a returnee's interviews, scores and rejected rows."""
    from reintegration.errors import ReintegrationError
    from reintegration.housekeeping import verified_key
    from reintegration.pseudonym import returnee_key
    from reintegration.settings import get_settings
    from reintegration.store.batches import erase_returnee

    try:
        settings = get_settings()
        settings.secret_key_bytes()  # no store is made for a process that has no key
        engine = _store()
        key = returnee_key(case_number, verified_key(settings, engine))
        removed = erase_returnee(engine, key, actor)
    except ReintegrationError as exc:
        _fail(str(exc))
    _stderr().print(
        f"Erased {removed['submissions']} interviews, {removed['scores']} scores and "
        f"{removed['rejected_rows']} rejected rows; later uploads of this returnee are refused.",
        markup=False,
    )


def _register_outer_commands() -> None:
    # The composition root reaches outward here; these modules import nothing heavy at load.
    from api.cli import serve, users_app
    from models.cli import models_app, train_app

    app.add_typer(train_app, name="train")
    app.add_typer(models_app, name="models")
    app.add_typer(users_app, name="users")
    app.command("serve")(serve)


_register_outer_commands()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
