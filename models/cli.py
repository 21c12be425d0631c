"""The model lifecycle commands: ``reintegration train {index,risk}`` and ``reintegration models``.

Registered on the root command by ``reintegration/cli.py``. Nothing heavy is imported at module
level: MLflow and scikit-learn load inside the command that needs them. Exit status as every
command's (DESIGN.md): 0 done; 1 a promotion refused; 2 nothing done (bad arguments, unknown
model or version, too little data), with one sentence on stderr saying why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

train_app = typer.Typer(
    help="Train a model and register it as the challenger.", no_args_is_help=True
)
models_app = typer.Typer(help="List and promote model versions.", no_args_is_help=True)


def _root() -> Any:
    # The root module is loaded by the time a command runs; importing it at module level
    # would be circular (it imports this module to register these commands).
    from reintegration import cli

    return cli


def _date(value: str | None, option: str) -> Any:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        _root()._fail(f"{option} {value!r} is not a date; write it as YYYY-MM-DD")


def _number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


class _Steps:
    """Training progress on stderr: a bar on a terminal, nothing otherwise."""

    def __init__(self, description: str) -> None:
        self.bar = _root()._progress(description, total=100)

    def __enter__(self) -> _Steps:
        self.bar.__enter__()
        self.task = self.bar.add_task("train", total=100)
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def __call__(self, fraction: float, message: str) -> None:
        self.bar.update(self.task, completed=round(100 * fraction))


@train_app.command("index")
def train_index_command(
    date_from: Annotated[
        str | None, typer.Option("--from", help="First interview date of the window (YYYY-MM-DD).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Last interview date of the window (YYYY-MM-DD).")
    ] = None,
    dimension_weights: Annotated[
        str | None,
        typer.Option(
            "--dimension-weights",
            help="e.g. economic=0.4,social=0.3,psychosocial=0.3 (default 1/3 each).",
        ),
    ] = None,
    actor: Annotated[str, typer.Option("--actor", help="Who trains (recorded).")] = "cli",
) -> None:
    """Derive index weights from the stored interviews and register them as the challenger."""
    from rich.console import Console
    from rich.table import Table

    from models.index_training import train_index
    from reintegration.derive import parse_dimension_weights
    from reintegration.errors import ReintegrationError
    from reintegration.questionnaire import load_questionnaire
    from reintegration.settings import get_settings

    cli = _root()
    start, end = _date(date_from, "--from"), _date(date_to, "--to")
    try:
        weights = (
            parse_dimension_weights(dimension_weights, load_questionnaire())
            if dimension_weights
            else None
        )
        with _Steps("Deriving weights") as step:
            done = train_index(
                cli._store(),
                get_settings(),
                date_from=start,
                date_to=end,
                dimension_weights=weights,
                actor=actor,
                progress=step,
            )
    except ReintegrationError as exc:
        cli._fail(str(exc))
    console = Console()
    table = Table(
        title=f"rss-index version {done['version']}: {done['label']}", title_justify="left"
    )
    for name in ("dimension", "item", "weight", "loading"):
        table.add_column(name, justify="left" if name in ("dimension", "item") else "right")
    for row in done["weights"]:
        mark = " (no variance)" if row["zero_variance"] else ""
        mark += " (reverse-keyed)" if row.get("reverse_keyed") else ""
        table.add_row(
            row["dimension"], row["item"] + mark, _number(row["weight"]), _number(row["loading"])
        )
    console.print(table)
    explained = ", ".join(f"{d} {v:.3f}" for d, v in done["explained_variance"].items())
    console.print(f"Explained variance of the first component: {explained}.", markup=False)
    overall = done["shift"][0] if done["shift"] else None
    if overall and overall["composite_change"] is not None:
        console.print(
            f"Against the champion {done['champion_label']}: correlation "
            f"{_number(done['correlation'])}, mean composite "
            f"{_signed(overall['composite_change'])}, share sustainable "
            f"{_signed(overall['sustainable_change'])}.",
            markup=False,
        )
    if done["zero_variance"]:
        console.print(
            "Items without variance keep their dimension's smallest weight: "
            + ", ".join(done["zero_variance"])
            + ".",
            markup=False,
        )
    if done.get("reverse_keyed"):
        from models.index_report import reverse_keyed_sentence

        console.print(reverse_keyed_sentence(done["reverse_keyed"]), markup=False)
    cli._stderr().print(
        f"Registered {done['label']} from {done['n']} returnees as rss-index version "
        f"{done['version']} (challenger); promote it with `reintegration models promote index "
        f"{done['version']} --reason TEXT`.",
        markup=False,
    )


@train_app.command("risk")
def train_risk_command(
    actor: Annotated[str, typer.Option("--actor", help="Who trains (recorded).")] = "cli",
) -> None:
    """Train the early-warning risk model, evaluate it by subgroup and register the challenger."""
    from rich.console import Console
    from rich.table import Table

    from models.risk_training import train_risk
    from reintegration.errors import ReintegrationError
    from reintegration.settings import get_settings

    cli = _root()
    try:
        with _Steps("Training the risk model") as step:
            done = train_risk(cli._store(), get_settings(), actor=actor, progress=step)
    except ReintegrationError as exc:
        cli._fail(str(exc))
    console = Console()
    table = Table(
        title=f"reintegration-risk version {done['version']} ({done['n_test']} held-out returnees)",
        title_justify="left",
    )
    for name in ("model", "ROC AUC", "average precision", "Brier score"):
        table.add_column(name, justify="left" if name == "model" else "right")
    for name, m in (
        ("gradient boosting (calibrated)", done["model"]),
        ("baseline rule (1 − first-survey composite)", done["baseline"]),
    ):
        table.add_row(
            name, _number(m["roc_auc"]), _number(m["average_precision"]), _number(m["brier"])
        )
    console.print(table)
    versus = done["versus_baseline"]
    interval = (
        f" (paired bootstrap 95% interval of the AUC difference {versus['low']:+.3f} to "
        f"{versus['high']:+.3f})"
        if versus.get("low") is not None
        else ""
    )
    if done["beats_baseline"]:
        console.print(f"The model beats the baseline rule{interval}.", markup=False)
    else:
        console.print(
            f"The model does NOT beat the baseline rule on held-out returnees{interval}: it "
            "will not be promoted, and the worklist ranks by the rule.",
            markup=False,
        )
    insufficient = sum(1 for r in done["subgroups"] if not r["sufficient"])
    cli._stderr().print(
        f"Registered reintegration-risk version {done['version']} (challenger), trained on "
        f"{done['n'] - done['n_test']} returnees; {insufficient} subgroups had insufficient "
        f"data. See `reintegration models card risk {done['version']}`.",
        markup=False,
    )


@models_app.command("list")
def list_command() -> None:
    """Versions, labels, aliases and headline metrics of both registered models."""
    from rich.console import Console
    from rich.table import Table

    from models.registry import INDEX_MODEL, RISK_MODEL, list_versions
    from reintegration.errors import ReintegrationError
    from reintegration.policy import CLI
    from reintegration.settings import get_settings

    try:
        settings = get_settings()
        found = {name: list_versions(name, settings, caller=CLI) for name in ("index", "risk")}
    except ReintegrationError as exc:
        _root()._fail(str(exc))
    table = Table(title="Registered models", title_justify="left")
    table.add_column("model", no_wrap=True)
    table.add_column("version", justify="right")
    table.add_column("label", no_wrap=True)
    table.add_column("aliases", no_wrap=True)
    table.add_column("headline metrics", overflow="fold")
    for short, versions in found.items():
        for v in versions:
            metrics = v["metrics"]
            if short == "index":
                headline = ", ".join(
                    f"{k} {metrics[k]:.3f}" if k != "n" else f"n {int(metrics[k])}"
                    for k in ("n", "correlation_with_champion", "mean_composite")
                    if k in metrics
                )
            else:
                headline = ", ".join(
                    f"{k} {metrics[k]:.3f}"
                    for k in ("roc_auc", "baseline_roc_auc", "brier")
                    if k in metrics
                )
            table.add_row(
                INDEX_MODEL if short == "index" else RISK_MODEL,
                str(v["version"]),
                v["label"] or "",
                ", ".join(v["aliases"]),
                headline or (v["description"] or ""),
            )
    if not any(found.values()):
        _root()._stderr().print("No model is registered yet.", markup=False)
        return
    Console().print(table)


@models_app.command("promote")
def promote_command(
    name: Annotated[str, typer.Argument(help="index, risk, or the registered name.")],
    version: Annotated[int, typer.Argument(help="The version to make champion.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why (audited).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Override a refusal of the gate (needs --reason).")
    ] = False,
    actor: Annotated[str, typer.Option("--actor", help="Who promotes (audited).")] = "cli",
) -> None:
    """Make a version the champion: gated for the risk model, with a reason for the index.

    An index version is rescored here as a ``rescore`` job (seen by the API and the dashboards
    with its progress); it becomes champion only when every stored interview is rescored. A
    failed rescoring leaves the previous champion and exits 2 saying why.
    """
    from rich.console import Console
    from rich.table import Table

    from models.promotion import promote
    from models.registry import INDEX_MODEL, resolve_name
    from reintegration.errors import PromotionRefused, ReintegrationError
    from reintegration.policy import cli_caller
    from reintegration.settings import get_settings

    cli = _root()
    try:
        rescoring = resolve_name(name) == INDEX_MODEL
    except ReintegrationError as exc:
        cli._fail(str(exc))
    bar = cli._progress("Rescoring" if rescoring else "Promoting")
    try:
        with bar:
            task = bar.add_task("rescore", total=None)
            done = promote(
                cli._store(),
                name,
                version,
                reason=reason,
                force=force,
                caller=cli_caller(actor),
                settings=get_settings(),
                progress=lambda n, total: bar.update(task, completed=n, total=total),
            )
    except PromotionRefused as exc:
        cli._stderr().print(f"{exc}.", markup=False)
        raise typer.Exit(cli.EXIT_REJECTED) from None
    except ReintegrationError as exc:
        cli._fail(str(exc))
    console = Console()
    if done["rows"]:
        table = Table(title=f"Compared on {done['basis']}", title_justify="left")
        if done["kind"] == "index":
            for column in ("group", "n", "composite", "change", "sustainable", "change "):
                table.add_column(column, justify="left" if column == "group" else "right")
            for r in done["rows"]:
                n = "suppressed" if r["suppressed"] else str(r["n"])
                table.add_row(
                    r["group"],
                    n,
                    _number(r["composite_challenger"]),
                    _signed(r["composite_change"]),
                    _number(r["sustainable_challenger"]),
                    _signed(r["sustainable_change"]),
                )
        else:
            for column in ("group", "n", "ROC AUC champion", "ROC AUC this", "change"):
                table.add_column(column, justify="left" if column == "group" else "right")
            for r in done["rows"]:
                table.add_row(
                    r["group"],
                    str(r["n"]),
                    _number(r["champion"]),
                    _number(r["challenger"]),
                    _signed(r["change"]),
                )
        console.print(table)
    extra = ""
    if done["kind"] == "index":
        extra = f"; {done['rescored']} interviews rescored with it (job {done['job_id']})"
    elif done["risks"]:
        extra = f"; {done['risks']} risk rows added"
    forced = " (the gate was overridden with --force)" if done["forced"] else ""
    cli._stderr().print(
        f"{done['name']} version {done['version']} is now the champion{forced}{extra}.",
        markup=False,
    )


@models_app.command("card")
def card_command(
    name: Annotated[str, typer.Argument(help="index, risk, or the registered name.")],
    version: Annotated[int, typer.Argument(help="The version.")],
) -> None:
    """Print the model card (Markdown) of a version."""
    from models.registry import model_card
    from reintegration.errors import ReintegrationError
    from reintegration.policy import CLI

    try:
        text = model_card(name, version, caller=CLI)
    except ReintegrationError as exc:
        _root()._fail(str(exc))
    typer.echo(text)
