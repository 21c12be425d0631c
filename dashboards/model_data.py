"""Data access of the models page: versions and cards through the server's model lifecycle (the
API's, over ``models.registry``), and a version's run (parameters, evaluation) from the
registry. A run never changes once logged, so its details are kept after the first read."""

from __future__ import annotations

import functools
import logging
from typing import Any

import pandas as pd

from dashboards.auth import services
from reintegration.errors import ReintegrationError

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


def versions(name: str) -> list[dict[str, Any]]:
    """Every version of a registered model, newest first (empty when nothing is registered)."""
    lifecycle = getattr(services(), "lifecycle", None)
    try:
        if lifecycle is not None:
            return list(lifecycle.list_versions(name))
        from models.registry import list_versions

        return list_versions(name, services().settings)
    except ReintegrationError as exc:
        log.warning("model versions unavailable: %s", type(exc).__name__)
        return []


def card(name: str, version: int) -> str | None:
    """A version's model card (Markdown), or None when it has none."""
    lifecycle = getattr(services(), "lifecycle", None)
    try:
        if lifecycle is not None:
            return str(lifecycle.model_card(name, version))
        from models.registry import model_card

        return model_card(name, version, services().settings)
    except (ReintegrationError, KeyError):
        return None


def run_details(run_id: str | None) -> dict[str, Any]:
    """A run's ``params`` and ``evaluation`` (the evaluation artifact; None when absent)."""
    if not run_id:
        return {"params": {}, "evaluation": None}
    lifecycle = getattr(services(), "lifecycle", None)
    own = getattr(lifecycle, "run_details", None)
    if own is not None:
        return dict(own(run_id))
    return _registry_details(services().settings.mlflow_tracking_uri, run_id)


@functools.lru_cache(maxsize=64)
def _registry_details(tracking_uri: str, run_id: str) -> dict[str, Any]:
    from models import _mlflow, registry

    settings = services().settings
    if not _mlflow.store_exists(settings):
        return {"params": {}, "evaluation": None}
    client = _mlflow.client(settings)
    return {
        "params": _mlflow.params_of(client, run_id),
        "evaluation": registry.read_json_artifact(client, run_id, registry.EVALUATION),
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


def drift(index_version: int | None) -> pd.DataFrame:
    """Drift per item of the recent batches against an index version's reference data."""
    from reintegration.quality import drift_by_item

    if index_version is None:  # no index registered: nothing was compared
        return pd.DataFrame(columns=["item", "batches", "n", "psi_latest", "psi_mean", "psi_max"])
    return drift_by_item(services().engine, model=model_names()[1], model_version=index_version)
