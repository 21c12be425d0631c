"""``reintegration models promote``: move the ``champion`` alias, gated and audited.

A risk model is compared with the champion on the held-out returnees of the current data (the
same returnees for both, none of them seen in training by either): it is refused when its ROC
AUC is lower than the champion's by more than the tolerance, overall or in any subgroup with at
least ``min_group`` returnees. An index version is a methodological decision: it always needs a
reason, and the comparison shows how the mean composite and the share sustainable move, overall
and per subgroup. ``force`` (with a reason) overrides a refusal. Every promotion, and every
refusal, is audited. Promoting an index rescores the stored interviews with it first; promoting
a risk model adds its risk rows for the stored first surveys.

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
from models.evaluation import OVERALL, risk_metrics, risk_subgroups
from models.hooks import score_risks
from models.index_report import index_comparison
from models.index_training import champion_index
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


def _auc_table(model: Any, data: Any, min_group: int) -> dict[str, dict[str, Any]]:
    X, y = data.X[data.test], data.y[data.test]
    p = model.risk(X)
    overall = risk_metrics(y, p)
    n = int(overall["n"] or 0)
    table = {
        OVERALL: {
            "n": n,
            "roc_auc": overall["roc_auc"],
            "sufficient": overall["roc_auc"] is not None and n >= min_group,
        }
    }
    groups = data.frame.loc[data.test, list(GROUPS)]
    for row in risk_subgroups(groups, y, p, min_group=min_group):
        table[row["group"]] = {k: row[k] for k in ("n", "roc_auc", "sufficient")}
    return table


def _logged_table(client: MlflowClient, version: ModelVersion) -> dict[str, dict[str, Any]]:
    evaluation: dict[str, Any] = {}
    if version.run_id:
        evaluation = registry.read_json_artifact(client, version.run_id, registry.EVALUATION) or {}
    overall = evaluation.get("model", {})
    table = {
        OVERALL: {
            "n": overall.get("n") or 0,
            "roc_auc": overall.get("roc_auc"),
            "sufficient": overall.get("roc_auc") is not None,
        }
    }
    for row in evaluation.get("subgroups", []):
        table[row["group"]] = {k: row[k] for k in ("n", "roc_auc", "sufficient")}
    return table


def compare_risk(
    engine: sa.Engine,
    settings: Settings,
    client: MlflowClient,
    champion: ModelVersion | None,
    challenger: ModelVersion,
) -> dict[str, Any]:
    """ROC AUC of challenger and champion, overall and per subgroup, and the refusals.

    ``refused`` is the gate's decision on the exact figures of every group; ``rows`` and
    ``refusals`` are published (:func:`models.disclosure_models.publish_comparison`).
    """
    from models.risk_training import one_thread, outcome_index, risk_data

    tolerance = settings.promotion_tolerance
    if champion is None:
        return {
            "basis": "no champion to compare with",
            "rows": [],
            "refusals": [],
            "refused": False,
        }
    index = outcome_index(settings)
    data = risk_data(engine, load_questionnaire(), index)
    y_test = data.y[data.test]
    if data.test.sum() >= settings.min_group and len(np.unique(y_test)) == 2:
        with one_thread():
            new = _auc_table(registry.load_model(client, challenger), data, settings.min_group)
            old = _auc_table(registry.load_model(client, champion), data, settings.min_group)
        held = rule.rounded(int(data.test.sum()), settings.min_cell)
        basis = f"{held} held-out returnees of the current data"
    else:
        new, old = _logged_table(client, challenger), _logged_table(client, champion)
        basis = "each version's own held-out evaluation (too little current data to compare)"
    rows, refusals = [], []
    for group, mine in new.items():
        theirs = old.get(group)
        if theirs is None or not (mine["sufficient"] and theirs["sufficient"]):
            continue
        change = mine["roc_auc"] - theirs["roc_auc"]
        row = {
            "group": group,
            "n": mine["n"],
            "champion": theirs["roc_auc"],
            "challenger": mine["roc_auc"],
            "change": change,
            "refused": change < -tolerance,
        }
        rows.append(row)
        if row["refused"]:
            refusals.append(row)
    return {
        "basis": basis,
        "rows": rule.publish_comparison(rows, settings.min_cell),
        "refusals": rule.publish_comparison(refusals, settings.min_cell),
        "refused": bool(refusals),  # decided on every group, named or not
        "tolerance": tolerance,
    }


def refusal_message(
    name: str, version: int, champion_version: int, comparison: dict[str, Any]
) -> str:
    """One paragraph naming the metric and every group where the challenger falls short."""
    # Overall first, then the groups where the challenger falls furthest behind.
    worst = sorted(comparison["refusals"], key=lambda r: (r["group"] != OVERALL, r["change"]))
    shown = worst[:5]
    groups = "; ".join(
        f"{r['group']}: {r['challenger']:.3f} against {r['champion']:.3f}" for r in shown
    )
    if not shown:  # refused only in groups too small to be named
        groups = "a group too small to be named"
    more = f" (and {len(worst) - len(shown)} more groups)" if len(worst) > len(shown) else ""
    return (
        f"{name} version {version} is refused: its ROC AUC is lower than the champion's "
        f"(version {champion_version}) by more than the tolerance of "
        f"{comparison['tolerance']:g} in {groups}{more}. To promote it anyway, use --force "
        "with --reason saying why"
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
        A risk model below the champion by more than the tolerance (names metric and group).
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
        assert previous is not None
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
