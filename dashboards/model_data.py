"""Data access of the models page: versions, cards and a version's run (parameters, evaluation)
through the server's model lifecycle (the API's, over ``models.registry``), drift from
``models.registry``. Each takes the session's user, which ``models/`` checks: a user limited to
some countries sees no model (a model describes every country's returnees)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from dashboards.auth import services
from reintegration.errors import Forbidden, ReintegrationError
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


def versions(name: str, user: User) -> list[dict[str, Any]]:
    """Every version of a registered model, newest first (empty when nothing is registered).

    Raises
    ------
    Forbidden
        ``user`` may not see models (checked by ``models/``).
    """
    lifecycle = getattr(services(), "lifecycle", None)
    try:
        if lifecycle is not None:
            return list(lifecycle.list_versions(name, caller=user))
        from models.registry import list_versions

        return list_versions(name, services().settings, caller=user)
    except Forbidden:
        raise
    except ReintegrationError as exc:
        log.warning("model versions unavailable: %s", type(exc).__name__)
        return []


def card(name: str, version: int, user: User) -> str | None:
    """A version's model card (Markdown), or None when it has none.

    Raises
    ------
    Forbidden
        ``user`` may not see models.
    """
    lifecycle = getattr(services(), "lifecycle", None)
    try:
        if lifecycle is not None:
            return str(lifecycle.model_card(name, version, caller=user))
        from models.registry import model_card

        return model_card(name, version, services().settings, caller=user)
    except Forbidden:
        raise
    except (ReintegrationError, KeyError):
        return None


def run_details(run_id: str | None, user: User) -> dict[str, Any]:
    """A run's ``params`` and ``evaluation`` (the evaluation artifact; None when absent).

    Raises
    ------
    Forbidden
        ``user`` may not see models.
    """
    if not run_id:
        return {"params": {}, "evaluation": None}
    lifecycle = getattr(services(), "lifecycle", None)
    if lifecycle is not None:
        return dict(lifecycle.run_details(run_id, caller=user))
    from models.registry import run_details as registry_details

    return registry_details(run_id, services().settings, caller=user)


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
