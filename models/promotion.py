"""``reintegration models promote``: move the ``champion`` alias, gated and audited.

A risk model must beat the baseline rule (1 - the first survey's composite; the verdict its card
states, recorded with its run), and is compared with the champion on the held-out returnees of
the current data (the same returnees for both, none of them seen in training by either): it is
refused for a subgroup only when the lower bound of the paired bootstrap 95% interval of its AUC
drop exceeds the tolerance, among the subgroups with at least ``min_group`` returnees and
``models.gate.MIN_EVENTS`` of each outcome (:mod:`models.gate`). An index version is a
methodological decision: it always needs a reason, and the comparison shows how the mean
composite and the share sustainable move, overall and per subgroup. ``force`` (with a reason)
overrides a refusal. Every promotion, and every refusal, is audited. Promoting a risk model
adds its risk rows for the stored first surveys.

Promoting an index version is a ``rescore`` job (:mod:`models.jobs`): the request is checked
and recorded (audit ``promote_requested``) and the job queued; the job compares the versions,
rescores every stored interview under the new label in one transaction (progress: interviews
rescored of those to do), and only then moves the ``champion`` alias, so analytics keep
answering with the previous champion's scores until all the new ones are committed; the new
label is never seen half written. A failed job moves nothing, leaves the previous champion
serving, says why (the job's message, audit ``promote_failed``). The API runs the job in a
worker process (``background=True``); the command line runs it in its own process, with the
same job row and progress. One index promotion runs at a time.

The gate decides on exact figures computed in memory; the report it returns and audits (its
rows, the groups a refusal names) is what :mod:`models.disclosure_models` publishes: no group
under ``min_cell``, numbers of returnees rounded, AUCs to three decimals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from models import _mlflow, registry
from models import disclosure_models as rule
from models import jobs as model_jobs
from models.evaluation import OVERALL
from models.gate import MIN_EVENTS, compare
from models.hooks import score_risks
from models.index_report import index_comparison
from models.index_training import champion_index
from models.preview import index_preview, risk_bands_preview
from models.risk_evaluation import BASELINE_RULE
from models.risk_registration import BASELINE_PARAM, BEATS_BASELINE
from reintegration.errors import ModelError, PromotionRefused
from reintegration.policy import User
from reintegration.questionnaire import load_questionnaire
from reintegration.risk_features import GROUPS
from reintegration.settings import Settings, get_settings
from reintegration.store import jobs as job_store
from reintegration.store.data_version import bump_data_version
from reintegration.store.model_audit import audit_model
from reintegration.store.rescore import rescore

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def _predictions(model: Any, data: Any) -> np.ndarray:
    return np.asarray(model.risk(data.X[data.test]))


def _logged_rows(client: MlflowClient, champion: ModelVersion, challenger: ModelVersion) -> list:
    """Each version's own logged AUCs side by side (shown, not decided on: no paired data)."""

    def table(version: ModelVersion) -> dict[str, dict[str, Any]]:
        found: dict[str, Any] = {}
        if version.run_id:
            found = registry.read_json_artifact(client, version.run_id, registry.EVALUATION) or {}
        rows = {OVERALL: {"n": (found.get("model") or {}).get("n") or 0, **found.get("model", {})}}
        for row in found.get("subgroups", []):
            if row.get("sufficient"):
                rows[row["group"]] = row
        return rows

    new, old = table(challenger), table(champion)
    rows = []
    for group, mine in new.items():
        theirs = old.get(group)
        if theirs is None or mine.get("roc_auc") is None or theirs.get("roc_auc") is None:
            continue
        rows.append(
            {
                "group": group,
                "n": mine["n"],
                "champion": theirs["roc_auc"],
                "challenger": mine["roc_auc"],
                "change": mine["roc_auc"] - theirs["roc_auc"],
                "drop_low": None,
                "drop_high": None,
                "refused": False,
            }
        )
    return rows


def baseline_verdict(client: MlflowClient, version: ModelVersion) -> dict[str, Any]:
    """Whether a risk version beat the baseline rule when it was trained (its run says so).

    Returns
    -------
    dict
        beats (bool), and the figures its card states: model_auc, baseline_auc, low, high
        (None for a version trained before the rule was recorded).
    """
    run = client.get_run(version.run_id) if version.run_id else None
    params = run.data.params if run is not None else {}
    metrics = run.data.metrics if run is not None else {}
    measured = params.get(BASELINE_PARAM) == BASELINE_RULE
    return {
        "measured": measured,
        "beats": measured and metrics.get(BEATS_BASELINE) == 1.0,
        "model_auc": metrics.get("paired_roc_auc"),
        "baseline_auc": metrics.get("paired_baseline_roc_auc"),
        "low": metrics.get("auc_difference_low") if measured else None,
        "high": metrics.get("auc_difference_high") if measured else None,
    }


def compare_risk(
    engine: sa.Engine,
    settings: Settings,
    client: MlflowClient,
    champion: ModelVersion | None,
    challenger: ModelVersion,
) -> dict[str, Any]:
    """The challenger against the baseline rule, and against the champion per subgroup.

    The baseline verdict is the one recorded at training (:func:`baseline_verdict`). Against
    the champion, both versions predict the current data's held-out returnees and
    :func:`models.gate.compare` decides per subgroup with paired bootstrap intervals.
    ``refused`` is decided on the exact figures of every group; ``rows`` and ``refusals`` are
    published (:func:`models.disclosure_models.publish_comparison`).
    """
    from models.risk_training import one_thread, outcome_index, risk_data

    tolerance = settings.promotion_tolerance
    verdict = baseline_verdict(client, challenger)
    outcome: dict[str, Any] = {
        "baseline": verdict,
        "rows": [],
        "refusals": [],
        "tolerance": tolerance,
        "min_events": MIN_EVENTS,
    }
    rows: list[dict[str, Any]] = []
    if champion is None:
        outcome["basis"] = "no champion to compare with"
    else:
        data = risk_data(engine, load_questionnaire(), outcome_index(settings))
        y_test = data.y[data.test]
        if data.test.sum() >= settings.min_group and len(np.unique(y_test)) == 2:
            with one_thread():
                new = _predictions(registry.load_model(client, challenger), data)
                old = _predictions(registry.load_model(client, champion), data)
            rows = compare(
                y_test,
                new,
                old,
                data.frame.loc[data.test, list(GROUPS)],
                tolerance=tolerance,
                min_group=settings.min_group,
            )
            held = rule.rounded(int(data.test.sum()), settings.min_cell)
            outcome["basis"] = (
                f"{held} held-out returnees of the current data; groups of at least "
                f"{settings.min_group} returnees with {MIN_EVENTS} or more of each outcome"
            )
        else:
            rows = _logged_rows(client, champion, challenger)
            outcome["basis"] = (
                "each version's own held-out evaluation, shown only: too little current data "
                "for a paired comparison"
            )
    refusals = [r for r in rows if r["refused"]]
    outcome["rows"] = _published(rows, settings.min_cell)
    outcome["refusals"] = _published(refusals, settings.min_cell)
    # Decided on every group, named or not, and on the baseline rule.
    outcome["refused"] = bool(refusals) or not verdict["beats"]
    outcome["refused_by_gate"] = bool(refusals)
    return outcome


def _published(rows: list[dict[str, Any]], min_cell: int) -> list[dict[str, Any]]:
    out = rule.publish_comparison(rows, min_cell)
    for row in out:
        row["drop_low"] = rule.figure(row.get("drop_low"))
        row["drop_high"] = rule.figure(row.get("drop_high"))
    return out


def _baseline_reason(verdict: dict[str, Any]) -> str:
    if not verdict["measured"]:
        return (
            "it was trained before versions were measured against the baseline rule "
            f"({BASELINE_RULE}), so it is not shown to beat it: retrain it"
        )
    if verdict["low"] is None:
        return f"it is not shown to beat the baseline rule ({BASELINE_RULE})"
    return (
        f"it does not beat the baseline rule ({BASELINE_RULE}): ROC AUC "
        f"{verdict['model_auc']:.3f} against {verdict['baseline_auc']:.3f}, paired bootstrap "
        f"95% interval of the difference {verdict['low']:+.3f} to {verdict['high']:+.3f}, "
        "not above 0"
    )


def refusal_message(
    name: str, version: int, champion_version: int | None, comparison: dict[str, Any]
) -> str:
    """One paragraph: the baseline rule not beaten, and every group where the challenger is
    shown to fall short of the champion by more than the tolerance."""
    reasons = []
    if not comparison["baseline"]["beats"]:
        reasons.append(_baseline_reason(comparison["baseline"]))
    if comparison.get("refused_by_gate"):
        # Overall first, then the groups where the challenger falls furthest behind.
        worst = sorted(comparison["refusals"], key=lambda r: (r["group"] != OVERALL, r["change"]))
        shown = worst[:5]
        groups = "; ".join(
            f"{r['group']}: {r['challenger']:.3f} against {r['champion']:.3f} (drop "
            f"{r['drop_low']:.3f} to {r['drop_high']:.3f})"
            for r in shown
        )
        if not shown:  # refused only in groups too small to be named
            groups = "a group too small to be named"
        more = f" (and {len(worst) - len(shown)} more groups)" if len(worst) > len(shown) else ""
        reasons.append(
            f"its ROC AUC is lower than the champion's (version {champion_version}) by more "
            f"than the tolerance of {comparison['tolerance']:g}, the whole 95% paired bootstrap "
            f"interval of the drop above it, in {groups}{more}"
        )
    return (
        f"{name} version {version} is refused: {'; and '.join(reasons)}. To promote it anyway, "
        "use --force with --reason saying why"
    )


def _index_comparison(
    engine: sa.Engine, settings: Settings, client: MlflowClient, challenger: ModelVersion
) -> dict[str, Any]:
    # The report of models.index_report: its n is the returnees both versions score (its
    # rows'), with the unscored under each version and the challenger's reverse-keyed items;
    # and the preview's figures (models.preview), from the same records read once.
    current, _ = champion_index(client)
    candidate = registry.load_index(client, challenger)
    effect, records, _ = index_preview(engine, settings, current, candidate)
    comparison = index_comparison(
        engine, settings, client, challenger, current=current, records=records
    )
    return {**comparison, "preview": effect}


def promote(
    engine: sa.Engine,
    name: str,
    version: int,
    *,
    reason: str | None,
    force: bool,
    caller: User,
    settings: Settings | None = None,
    progress: Progress | None = None,
    background: bool = False,
) -> dict[str, Any]:
    """Make a registered version the champion, as DESIGN.md's "Models and versions" says.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store (rescored or given risk rows; the promotion is audited there).
    name : str
        ``index``, ``risk``, or the registered name.
    version : int
        The version to promote.
    reason : str or None
        Why; required for an index version and with ``force``.
    force : bool
        Promote a risk model the gate refuses.
    caller : User
        Who promotes (audited): MODELS for every country (``registry.require_models``).
    settings : Settings, optional
    progress : callable, optional
        Rescoring progress: called with (rows done, rows to do).
    background : bool, default False
        For an index version: queue the rescoring job, start its worker process and return
        at once (``job_id``, ``status`` "queued"); the alias moves when the job is done.
        Otherwise the job runs in this process and this returns when it is over.

    Returns
    -------
    dict
        name, version, previous (the former champion's version or None), kind, basis, rows
        (the comparison shown), refusals, forced, rescored, risks, reason, ``preview`` (what
        :func:`models.preview.preview_promotion` showed before: an index's means and shares,
        a risk model's bands); for an index version also ``job_id`` (and, in the background,
        only the request's fields).

    Raises
    ------
    Forbidden
        The caller may not promote models.
    PromotionRefused
        A risk model that does not beat the baseline rule, or is shown to fall below the
        champion by more than the tolerance (names the metric, the intervals and the groups).
    ModelError
        Unknown model or version, the version is already champion, a reason is missing, an
        index promotion is already under way, or (in this process) the rescoring failed: the
        previous champion then stays in use.
    JobError
        In the background: the worker process could not be started (the job is failed).
    """
    registry.require_models(caller)
    actor = caller.name
    settings = settings or get_settings()
    name = registry.resolve_name(name)
    reason = (reason or "").strip() or None
    if force and reason is None:
        raise ModelError("--force needs --reason: say why the gate is overridden")
    if name == registry.INDEX_MODEL and reason is None:
        raise ModelError(
            "promoting an index version is a methodological decision: give --reason saying why"
        )
    client = _mlflow.client(settings)
    target = registry.get_version(client, name, version)
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    previous = int(champion.version) if champion is not None else None
    if previous == version:
        raise ModelError(f"{name} version {version} is already the champion")
    if name == registry.INDEX_MODEL:
        job_id = _queue_index_promotion(engine, name, version, reason, actor, previous)
        if background:
            model_jobs.start_worker(engine, job_id)
            return {
                "name": name,
                "version": version,
                "previous": previous,
                "kind": "index",
                "reason": reason,
                "forced": False,
                "job_id": job_id,
                "status": "queued",
            }
        return _run_here(engine, job_id, settings, progress)
    comparison = compare_risk(engine, settings, client, champion, target)
    outcome = {
        "name": name,
        "version": version,
        "previous": previous,
        "kind": "risk",
        "forced": comparison["refused"] and force,
        "reason": reason,
        "rescored": 0,
        "risks": 0,
        **comparison,
    }
    if not comparison["refused"] or force:
        # What the worklist's bands become, as the preview showed (computed before they move).
        outcome["preview"] = risk_bands_preview(engine, settings, client, champion, target)
    detail = {k: outcome[k] for k in ("previous", "reason", "basis", "rows", "forced")}
    target_name = f"{name}@{version}"
    if comparison["refused"] and not force:
        with engine.begin() as conn:
            audit_model(
                conn, actor=actor, action="promote_refused", target=target_name, detail=detail
            )
        raise PromotionRefused(refusal_message(name, version, previous, comparison))
    _move_alias(client, name, version)
    index, _ = champion_index(client)
    model = registry.load_model(client, target)
    outcome["risks"] = score_risks(engine, model, version, index, load_questionnaire())
    _record(engine, client, outcome, detail, actor)
    return outcome


def _record(
    engine: sa.Engine,
    client: MlflowClient,
    outcome: dict[str, Any],
    detail: dict[str, Any],
    actor: str,
) -> None:
    """Audit a promotion that took effect and tag the version with its reason."""
    name, version = outcome["name"], outcome["version"]
    with engine.begin() as conn:
        audit_model(
            conn,
            actor=actor,
            action="promote",
            target=f"{name}@{version}",
            detail={**detail, "rescored": outcome["rescored"], "risks": outcome["risks"]},
        )
        bump_data_version(conn)  # what the dashboards show by default has changed
    client.set_model_version_tag(
        name, str(version), "promoted_because", outcome["reason"] or "passed the gate"
    )
    log.info("%s version %d promoted by %s", name, version, actor)


# -- the promotion of an index version, as a job --------------------------------------------


def _queue_index_promotion(
    engine: sa.Engine,
    name: str,
    version: int,
    reason: str | None,
    actor: str,
    previous: int | None,
) -> str:
    """Record the request (audited) and queue its ``rescore`` job; returns the job id.

    Two rescorings at once would each hold the ingest lock for their whole run and race to
    move the alias: a second request while one is queued or running is refused.
    """
    job_store.recover_jobs(engine)
    for other in job_store.list_jobs(engine):
        if other["kind"] == model_jobs.RESCORE and other["status"] in ("queued", "running"):
            asked = (other["params"] or {}).get("version")
            raise ModelError(
                f"{name} version {asked} is being promoted (job {other['id']}, "
                f"{other['status']}): wait until it is done or failed"
            )
    params = {"name": name, "version": version, "reason": reason, "previous": previous}
    job_id = job_store.create_job(engine, model_jobs.RESCORE, actor=actor, params=params)
    with engine.begin() as conn:
        audit_model(
            conn,
            actor=actor,
            action="promote_requested",
            target=f"{name}@{version}",
            detail={"previous": previous, "reason": reason, "job": job_id},
        )
    return job_id


def _run_here(
    engine: sa.Engine, job_id: str, settings: Settings, progress: Progress | None
) -> dict[str, Any]:
    """Claim a queued index promotion and run it in this process, as the worker would."""
    job = job_store.start_job(engine, job_id)
    try:
        outcome = complete_index_promotion(engine, job, settings=settings, progress=progress)
    except BaseException as exc:
        job_store.fail_job(engine, job_id, str(exc) or type(exc).__name__)
        raise
    finally:
        model_jobs.forget_rows(engine, job_id)
    job_store.finish_job(engine, job_id, job_result(outcome))
    return outcome


def job_result(outcome: dict[str, Any]) -> dict[str, Any]:
    """What a done index promotion job keeps as its result (published figures only)."""
    keys = (
        "name",
        "version",
        "previous",
        "label",
        "rescored",
        "rows_total",
        "basis",
        "rows",
        "preview",
    )
    return {k: outcome.get(k) for k in keys}


def complete_index_promotion(
    engine: sa.Engine,
    job: dict[str, Any],
    *,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The work of a running index promotion job: compare, rescore, then move the alias.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store.
    job : dict
        The running ``rescore`` job (its params: name, version, reason, previous).
    settings : Settings, optional
    progress : callable, optional
        Called with (interviews rescored, interviews to rescore) after each chunk, besides the
        job's own progress.

    Returns
    -------
    dict
        As :func:`promote` returns for an index version, with ``label`` and ``job_id``.

    Raises
    ------
    ModelError
        Why the promotion failed, saying that the previous champion stays in use. Nothing has
        moved: the alias is where it was and no score of the new label was committed unless the
        rescoring itself completed.
    """
    settings = settings or get_settings()
    params = job["params"] or {}
    name, version = str(params["name"]), int(params["version"])
    reason, actor, job_id = params.get("reason"), str(job["actor"]), str(job["id"])
    counts = {"done": 0, "total": 0}

    def rows(done: int, total: int) -> None:
        counts.update(done=done, total=total)
        model_jobs.report_rows(engine, job_id, done, total, "interviews rescored")
        if progress is not None:
            progress(done, total)

    client = _mlflow.client(settings)
    previous = params.get("previous")
    try:
        target = registry.get_version(client, name, version)
        champion = registry.version_by_alias(client, name, registry.CHAMPION)
        previous = int(champion.version) if champion is not None else None
        if previous == version:
            raise ModelError(f"{name} version {version} is already the champion")
        job_store.report_progress(engine, job_id, 0.0, "comparing with the champion")
        comparison = _index_comparison(engine, settings, client, target)
        index = registry.load_index(client, target)
        questionnaire = load_questionnaire()
        rescored = rescore(
            engine, index, questionnaire, model=name, model_version=version, progress=rows
        )
        _move_alias(client, name, version)
    except Exception as exc:
        why = str(exc).rstrip(".") or type(exc).__name__
        shown = f"version {previous}" if previous is not None else "the built-in version"
        message = f"promoting {name} version {version} failed: {why}; {shown} stays the champion"
        log.exception("job %s: %s", job_id, message)
        _audit_failure(engine, actor, f"{name}@{version}", reason, job_id, message)
        raise ModelError(message) from exc
    try:
        # A batch stored between the rescoring's commit and the alias move was scored with
        # the previous champion only: score it with this version too (usually nothing).
        rescored += rescore(engine, index, questionnaire, model=name, model_version=version)
    except Exception:  # the promotion stands; a later promotion back or forth scores these
        log.exception("job %s: scoring the interviews stored meanwhile failed", job_id)
    outcome = {
        "name": name,
        "version": version,
        "previous": previous,
        "kind": "index",
        "forced": False,
        "reason": reason,
        "rescored": rescored,
        "rows_total": counts["total"],
        "risks": 0,
        "label": index.label_,
        "job_id": job_id,
        **comparison,
    }
    detail = {k: outcome[k] for k in ("previous", "reason", "basis", "rows", "forced")}
    _record(engine, client, outcome, {**detail, "job": job_id}, actor)
    return outcome


def _audit_failure(
    engine: sa.Engine, actor: str, target: str, reason: Any, job_id: str, message: str
) -> None:
    try:
        with engine.begin() as conn:
            audit_model(
                conn,
                actor=actor,
                action="promote_failed",
                target=target,
                detail={"reason": reason, "job": job_id, "failure": message},
            )
    except Exception:  # the store itself may be what failed; the job still says why
        log.exception("could not audit the failed promotion of %s", target)


def _move_alias(client: MlflowClient, name: str, version: int) -> None:
    challenger = registry.version_by_alias(client, name, registry.CHALLENGER)
    client.set_registered_model_alias(name, registry.CHAMPION, str(version))
    if challenger is not None and int(challenger.version) == version:
        client.delete_registered_model_alias(name, registry.CHALLENGER)
