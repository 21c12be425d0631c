"""Data access of the models page: versions, cards and a version's run (parameters, evaluation)
through the server's model lifecycle (the API's, over ``models.registry``), drift from
``models.registry``. Each takes the session's user, which ``models/`` checks: a user limited to
some countries sees no model (a model describes every country's returnees). Whatever the
lifecycle gives, metrics, cards and evaluations leave here as ``models.disclosure_models``
publishes them (no group under min_cell, numbers of returnees rounded): the rule does not
change what it already published, so the registry's own pass and this one agree."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from dashboards.auth import services
from reintegration.errors import Forbidden, ReintegrationError
from reintegration.i18n import _
from reintegration.users import User

log = logging.getLogger(__name__)

RISK = "reintegration-risk"
INDEX = "rss-index"
WEIGHT_PREFIX = "weight/"
DIMENSION_WEIGHT_PREFIX = "dimension_weight/"


def model_names() -> tuple[str, str]:
    """The registered names of the risk model and the index (from ``models.registry``)."""
    try:
        from models.registry import INDEX_MODEL, RISK_MODEL
    except ImportError:
        return RISK, INDEX
    return RISK_MODEL, INDEX_MODEL


def _min_cell() -> int:
    return int(services().settings.min_cell)


def versions(name: str, user: User) -> list[dict[str, Any]]:
    """Every version of a registered model, newest first (empty when nothing is registered),
    with its metrics and description published.

    Raises
    ------
    Forbidden
        ``user`` may not see models (checked by ``models/``).
    """
    from models import disclosure_models as rule

    lifecycle = getattr(services(), "lifecycle", None)
    try:
        if lifecycle is not None:
            found = list(lifecycle.list_versions(name, caller=user))
        else:
            from models.registry import list_versions

            found = list_versions(name, services().settings, caller=user)
    except Forbidden:
        raise
    except ReintegrationError as exc:
        log.warning("model versions unavailable: %s", type(exc).__name__)
        return []
    min_cell = _min_cell()
    return [
        {
            **v,
            "metrics": rule.publish_metrics(v.get("metrics") or {}, min_cell),
            "description": rule.publish_text(v.get("description"), min_cell),
        }
        for v in found
    ]


def card(name: str, version: int, user: User) -> str | None:
    """A version's model card (Markdown), or None when it has none; its tables of groups
    rebuilt from the version's published evaluation (``models.cards.publishable_card``).

    Raises
    ------
    Forbidden
        ``user`` may not see models.
    """
    from models.cards import publishable_card

    lifecycle = getattr(services(), "lifecycle", None)
    try:
        if lifecycle is not None:
            text = str(lifecycle.model_card(name, version, caller=user))
        else:
            from models.registry import model_card

            text = model_card(name, version, services().settings, caller=user)
    except Forbidden:
        raise
    except (ReintegrationError, KeyError):
        return None
    found = next((v for v in versions(name, user) if int(v["version"]) == version), None)
    evaluation = run_details(found.get("run_id") if found else None, user)["evaluation"]
    return publishable_card(text, evaluation, _min_cell())


def run_details(run_id: str | None, user: User) -> dict[str, Any]:
    """A run's ``params`` and ``evaluation`` (the evaluation artifact; None when absent), as
    published: the evaluation names no group under min_cell and rounds numbers of returnees.

    Raises
    ------
    Forbidden
        ``user`` may not see models.
    """
    from models import disclosure_models as rule

    if not run_id:
        return {"params": {}, "evaluation": None}
    lifecycle = getattr(services(), "lifecycle", None)
    if lifecycle is not None:
        details = dict(lifecycle.run_details(run_id, caller=user))
    else:
        from models.registry import run_details as registry_details

        details = registry_details(run_id, services().settings, caller=user)
    return {
        "params": rule.publish_params(details.get("params") or {}, _min_cell()),
        "evaluation": rule.publish_evaluation(details.get("evaluation"), _min_cell()),
    }


def weights(params: dict[str, Any]) -> pd.DataFrame:
    """An index version's weights from its run's parameters: one row per item.

    Returns
    -------
    DataFrame
        ``dimension``, ``dimension_weight``, ``item``, ``weight`` (as stored), ``share`` (of
        its dimension: weights are normalised within each dimension when scoring).
    """
    dimension_weights = {
        key.removeprefix(DIMENSION_WEIGHT_PREFIX): float(value)
        for key, value in params.items()
        if key.startswith(DIMENSION_WEIGHT_PREFIX)
    }
    rows = []
    for key, value in params.items():
        if key.startswith(WEIGHT_PREFIX):
            _, dimension, item = key.split("/", 2)
            rows.append(
                {
                    "dimension": dimension,
                    "dimension_weight": dimension_weights.get(dimension),
                    "item": item,
                    "weight": float(value),
                }
            )
    frame = pd.DataFrame(rows, columns=["dimension", "dimension_weight", "item", "weight"])
    totals = frame.groupby("dimension")["weight"].transform("sum")
    return frame.assign(share=(frame["weight"] / totals).where(totals > 0))


def drift(index_version: int | None, user: User) -> pd.DataFrame:
    """Drift per item of the recent batches against an index version's reference data.

    Raises
    ------
    Forbidden
        ``user`` may not see models (drift spans every country).
    """
    from models.registry import drift as registry_drift

    return registry_drift(services().engine, index_version, caller=user)


# -- actions: train, preview, promote -------------------------------------------------------


def train(name: str, user: User) -> str:
    """Queue a training run of a registered model; returns its job id.

    Raises
    ------
    Forbidden
        ``user`` may not train models (checked by ``models/``).
    ReintegrationError
        The job could not be queued (its sentence says why).
    """
    return str(services().lifecycle.train(name, caller=user, params={}))


def job(job_id: str, user: User) -> dict[str, Any] | None:
    """A job's status, progress, message and result, or None when there is no such job.

    Raises
    ------
    Forbidden
        ``user`` may not see jobs.
    """
    return services().lifecycle.get_job(job_id, caller=user)


def jobs(user: User) -> list[dict[str, Any]]:
    """Recent jobs, newest first.

    Raises
    ------
    Forbidden
        ``user`` may not see jobs.
    """
    return list(services().lifecycle.list_jobs(caller=user))


def preview(name: str, version: int, user: User) -> dict[str, Any]:
    """What promoting a version would change (``models.preview.preview_promotion``): nothing
    changes.

    Raises
    ------
    Forbidden
        ``user`` may not promote models.
    ReintegrationError
        Unknown version, or already the champion.
    """
    return dict(services().lifecycle.preview(name, version, caller=user))


def promote(name: str, version: int, reason: str | None, force: bool, user: User) -> dict[str, Any]:
    """Promote a version as the API does: a risk model at once, an index version as a
    rescoring job (``job_id`` in the answer); the server's champions are refreshed for a risk
    model (an index job refreshes them when it is done).

    Raises
    ------
    Forbidden
        ``user`` may not promote models.
    ReintegrationError
        ``PromotionRefused`` (the gate's sentence), a missing reason, a promotion under way.
    """
    found = services()
    result = dict(found.lifecycle.promote(name, version, reason=reason, force=force, caller=user))
    if not result.get("job_id"):
        found.champions.refresh()
        found.versions.invalidate()
        found.labels.invalidate()
    return result


def comparison(name: str, first: int, second: int, user: User) -> dict[str, Any]:
    """Two versions side by side: headline metrics and, where evaluated, metrics by subgroup.

    Returns
    -------
    dict
        ``metrics`` (DataFrame: metric, first, second, difference) and ``subgroups``
        (DataFrame: group, n_first, first, n_second, second), as published.

    Raises
    ------
    Forbidden
        ``user`` may not see models.
    """
    found = {int(v["version"]): v for v in versions(name, user)}
    chosen = [found.get(first), found.get(second)]
    metrics = [dict((v or {}).get("metrics") or {}) for v in chosen]
    seen = list(dict.fromkeys([*metrics[0], *metrics[1]]))  # both versions' order, once
    rows = []
    for key in seen:
        a, b = metrics[0].get(key), metrics[1].get(key)
        numeric = isinstance(a, int | float) and isinstance(b, int | float)
        rows.append(
            {"metric": key, "first": a, "second": b, "difference": b - a if numeric else None}
        )
    evaluations = [run_details((v or {}).get("run_id"), user)["evaluation"] or {} for v in chosen]
    groups: dict[str, dict[str, Any]] = {}
    for which, evaluation in zip(("first", "second"), evaluations, strict=True):
        model = evaluation.get("model") or {}
        overall = {"group": "overall", "n": model.get("n"), "roc_auc": model.get("roc_auc")}
        for row in [overall, *(evaluation.get("subgroups") or [])]:
            if " & " in str(row.get("group")) or (not evaluation.get("subgroups")):
                continue
            entry = groups.setdefault(str(row["group"]), {"group": str(row["group"])})
            entry[f"n_{which}"] = row.get("n")
            entry[which] = row.get("roc_auc") if row.get("sufficient", True) else None
    subgroup_columns = ["group", "n_first", "first", "n_second", "second"]
    return {
        "metrics": pd.DataFrame(rows, columns=["metric", "first", "second", "difference"]),
        "subgroups": pd.DataFrame(list(groups.values()), columns=subgroup_columns),
    }


def alias_names(aliases: Any) -> str:
    """A version's registry aliases in the reader's language (the API keeps the codes)."""
    names = {"champion": _("champion"), "challenger": _("challenger")}
    return ", ".join(names.get(str(a), str(a)) for a in aliases or [])
