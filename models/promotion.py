"""``reintegration models promote``: move the ``champion`` alias, gated and audited.

A risk model must beat the baseline rule (1 - the first survey's composite; the verdict its card
states, recorded with its run), and is compared with the champion on the held-out returnees of
the current data (the same returnees for both, none of them seen in training by either): it is
refused for a subgroup only when the lower bound of the paired bootstrap 95% interval of its AUC
drop exceeds the tolerance, among the subgroups with at least ``min_group`` returnees and
``models.gate.MIN_EVENTS`` of each outcome (:mod:`models.gate`). An index version is a
methodological decision: it always needs a reason, and the comparison shows how the mean
composite and the share sustainable move, overall and per subgroup. ``force`` (with a reason)
overrides a refusal. Every promotion, and every refusal, is audited. Promoting an index rescores
the stored interviews with it first; promoting a risk model adds its risk rows for the stored
first surveys.

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
from models.evaluation import OVERALL
from models.gate import MIN_EVENTS, compare
from models.hooks import score_risks
from models.index_report import index_comparison
from models.index_training import champion_index
from models.risk_evaluation import BASELINE_RULE
from models.risk_registration import BASELINE_PARAM, BEATS_BASELINE
from reintegration.errors import ModelError, PromotionRefused
from reintegration.policy import User
from reintegration.questionnaire import load_questionnaire
from reintegration.risk_features import GROUPS
from reintegration.settings import Settings, get_settings
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
    # rows'), with the unscored under each version and the challenger's reverse-keyed items.
    current, _ = champion_index(client)
    return index_comparison(engine, settings, client, challenger, current=current)


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

    Returns
    -------
    dict
        name, version, previous (the former champion's version or None), kind, basis, rows
        (the comparison shown), refusals, forced, rescored, risks, reason.

    Raises
    ------
    Forbidden
        The caller may not promote models.
    PromotionRefused
        A risk model that does not beat the baseline rule, or is shown to fall below the
        champion by more than the tolerance (names the metric, the intervals and the groups).
    ModelError
        Unknown model or version, the version is already champion, or a reason is missing.
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
        comparison = _index_comparison(engine, settings, client, target)
    else:
        comparison = compare_risk(engine, settings, client, champion, target)
    outcome = {
        "name": name,
        "version": version,
        "previous": previous,
        "kind": "index" if name == registry.INDEX_MODEL else "risk",
        "forced": comparison["refused"] and force,
        "reason": reason,
        "rescored": 0,
        "risks": 0,
        **comparison,
    }
    detail = {k: outcome[k] for k in ("previous", "reason", "basis", "rows", "forced")}
    target_name = f"{name}@{version}"
    if comparison["refused"] and not force:
        with engine.begin() as conn:
            audit_model(
                conn, actor=actor, action="promote_refused", target=target_name, detail=detail
            )
        raise PromotionRefused(refusal_message(name, version, previous, comparison))
    questionnaire = load_questionnaire()
    if name == registry.INDEX_MODEL:
        index = registry.load_index(client, target)
        outcome["rescored"] = rescore(
            engine, index, questionnaire, model=name, model_version=version, progress=progress
        )
    _move_alias(client, name, version)
    if name == registry.RISK_MODEL:
        index, _ = champion_index(client)
        model = registry.load_model(client, target)
        outcome["risks"] = score_risks(engine, model, version, index, questionnaire)
    with engine.begin() as conn:
        audit_model(
            conn,
            actor=actor,
            action="promote",
            target=target_name,
            detail={**detail, "rescored": outcome["rescored"], "risks": outcome["risks"]},
        )
        bump_data_version(conn)  # what the dashboards show by default has changed
    client.set_model_version_tag(
        name, str(version), "promoted_because", reason or "passed the gate"
    )
    log.info("%s version %d promoted by %s", name, version, actor)
    return outcome


def _move_alias(client: MlflowClient, name: str, version: int) -> None:
    challenger = registry.version_by_alias(client, name, registry.CHALLENGER)
    client.set_registered_model_alias(name, registry.CHAMPION, str(version))
    if challenger is not None and int(challenger.version) == version:
        client.delete_registered_model_alias(name, registry.CHALLENGER)
