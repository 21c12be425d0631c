"""``reintegration train index``: derive weights from stored data and register a new index version.

The new version is registered with alias ``challenger``; scores use it only once it is promoted.
Its run records the parameters, the weight table, the explained variance per dimension, the
data window and n, how its composite correlates with the champion's, how the mean composite and
the share sustainable would move per subgroup, and the distribution of each item in its
training data (the reference of drift).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from models import _mlflow, registry
from models import disclosure_models as rule
from models.cards import index_card
from models.evaluation import correlation, index_shift, metric_key
from models.index_report import REVERSE_KEYED_TAG, reverse_keyed_sentence
from reintegration import drift
from reintegration.derive import derive_weights, latest_per_returnee
from reintegration.errors import ModelError
from reintegration.index import ReintegrationIndex
from reintegration.questionnaire import Questionnaire, load_questionnaire
from reintegration.risk_features import GROUPS, age_group
from reintegration.settings import Settings, get_settings
from reintegration.store.data_version import read_data_version
from reintegration.store.engine import for_reading
from reintegration.store.submissions import read_submissions

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


def _silent(fraction: float, message: str) -> None:
    return None


def index_records(
    engine: sa.Engine,
    questionnaire: Questionnaire,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
) -> tuple[pd.DataFrame, int]:
    """One record per returnee (their latest current interview in the window) and the data version.

    Returns
    -------
    records : DataFrame
        The coded items and the subgroup columns (``sex``, ``age_group``, ``return_type``).
    data_version : int
        The store's data version the records were read at.
    """
    with for_reading(engine).connect() as conn:
        version = read_data_version(conn)
        stored = read_submissions(conn, questionnaire, date_from=date_from, date_to=date_to)
    latest = latest_per_returnee(stored)
    records = latest[[*questionnaire.item_ids, "sex", "return_type"]].copy()
    records["age_group"] = age_group(latest["age_at_return"], questionnaire)
    return records.reset_index(drop=True), version


def _params_of_index(index: ReintegrationIndex) -> dict[str, str]:
    """The whole index version as run parameters (``repr`` keeps every float exact)."""
    params = {
        f"{registry.WEIGHT_PARAM}{d}/{i}": repr(w)
        for d, items in index.item_weights_.items()
        for i, w in items.items()
    }
    params |= {
        f"{registry.DIMENSION_WEIGHT_PARAM}{d}": repr(w)
        for d, w in index.dimension_weights_.items()
    }
    params |= {f"{registry.THRESHOLD_PARAM}{k}": repr(v) for k, v in index.thresholds_.items()}
    return params


def _log_index(
    client: MlflowClient,
    settings: Settings,
    index: ReintegrationIndex,
    *,
    run_name: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    artifacts: Mapping[str, str],
    tags: Mapping[str, str],
    alias: str,
) -> tuple[int, str]:
    """Log an index version in a run of its own, then register it (the very last step)."""
    import mlflow
    import mlflow.sklearn

    experiment = _mlflow.experiment_id(client, settings, registry.INDEX_MODEL)
    with (
        _mlflow.fluent(settings),
        mlflow.start_run(experiment_id=experiment, run_name=run_name) as run,
    ):
        run_id = run.info.run_id
        mlflow.log_params({**params, **_params_of_index(index)})
        if metrics:
            mlflow.log_metrics(dict(metrics))
        mlflow.set_tags({"index_version": index.label_, **tags})
        registry.log_artifacts(client, run_id, artifacts)
        # The platform rebuilds an index version from its parameters and never unpickles
        # this artifact; it is there for whoever exports the version (see registry.load_index).
        # Pickle spares the seconds that importing skops costs a command that trains.
        info = mlflow.sklearn.log_model(
            index,
            name=registry.MODEL_ARTIFACT,
            pip_requirements=registry.pip_requirements(),
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
        )
        version = registry.register(
            client,
            registry.INDEX_MODEL,
            run_id=run_id,
            model_uri=info.model_uri,
            tags={registry.LABEL_TAG: index.label_, **tags},
            alias=alias,
        )
    return version, run_id


def _weight_rows(index: ReintegrationIndex) -> list[dict[str, Any]]:
    return [
        {"dimension": d, "item": i, "weight": w, "loading": None, "zero_variance": False}
        for d, items in index.item_weights_.items()
        for i, w in items.items()
    ]


def log_builtin_index(client: MlflowClient, settings: Settings) -> int:
    """Register the spec's index (v1, provisional equal weights) as the champion."""
    index = ReintegrationIndex().fit()
    card = index_card(
        label=index.label_,
        version=registry.next_version(client, registry.INDEX_MODEL),
        provenance={
            "source": "the questionnaire spec (RSS.md, index v1): provisional weights, not "
            "derived from data",
        },
        weights=_weight_rows(index),
        dimension_weights=index.dimension_weights_,
        explained_variance=None,
        zero_variance=(),
        correlation=None,
        shift=[],
        champion_label=None,
        min_cell=settings.min_cell,
    )
    version, _ = _log_index(
        client,
        settings,
        index,
        run_name=f"built-in {index.label_}",
        params={"source": "spec"},
        metrics={},
        artifacts={registry.CARD: card},
        tags={"summary": "built-in index v1 (the spec's provisional weights)"},
        alias=registry.CHAMPION,
    )
    return version


def champion_index(client: MlflowClient) -> tuple[ReintegrationIndex, int | None]:
    """The registry's champion index and its version (the built-in v1 when there is none)."""
    found = registry.version_by_alias(client, registry.INDEX_MODEL, registry.CHAMPION)
    if found is None:
        return ReintegrationIndex().fit(), None
    return registry.load_index(client, found), int(found.version)


def train_index(
    engine: sa.Engine,
    settings: Settings | None = None,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    dimension_weights: Mapping[str, float] | None = None,
    actor: str = "cli",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Derive index weights from the store and register them as the ``challenger``.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store.
    settings : Settings, optional
    date_from, date_to : date, optional
        The data window (interview dates, inclusive); all stored interviews by default.
    dimension_weights : mapping, optional
        Dimension weights (non-negative, sum 1); 1/3 each by default.
    actor : str
        Who trains (recorded with the run).
    progress : callable, optional
        Called with (fraction done, what is being done).

    Returns
    -------
    dict
        version, label, run_id, n, explained_variance, zero_variance, reverse_keyed (items
        with a negative loading), correlation (with the
        champion's composite), champion_label, weights (rows of the weight table), shift; n,
        correlation and shift as :mod:`models.disclosure_models` publishes them, which is also
        all the run stores of them.

    Raises
    ------
    ModelError
        Too few returnees in the window, or a dimension without variance.
    IndexParameterError
        Invalid dimension weights.
    """
    settings = settings or get_settings()
    step = progress or _silent
    if date_from and date_to and date_from > date_to:
        raise ModelError(f"the data window starts ({date_from}) after it ends ({date_to})")
    questionnaire = load_questionnaire()
    step(0.05, "reading interviews")
    records, data_version = index_records(
        engine, questionnaire, date_from=date_from, date_to=date_to
    )
    step(0.3, "deriving weights")
    derived = derive_weights(records, questionnaire, dimension_weights=dimension_weights)
    step(0.45, "comparing with the champion")
    client = _mlflow.client(settings)
    registry.ensure_builtin_index(settings)
    champion, champion_version = champion_index(client)
    expected = registry.next_version(client, registry.INDEX_MODEL)
    label = registry.derived_label(expected)
    index = derived.index(label)
    items = records[list(questionnaire.item_ids)]
    new_scores = index.transform(items)
    old_scores = champion.transform(items)
    corr = correlation(
        new_scores["composite"].to_numpy(dtype=float), old_scores["composite"].to_numpy(dtype=float)
    )
    # Exact in memory; the run stores and the card shows only what the rule publishes.
    shift = rule.publish_shift(
        index_shift(records[[*questionnaire.item_ids, *GROUPS]], champion, index),
        settings.min_cell,
    )
    n = rule.rounded(derived.n, settings.min_cell)
    window = {
        "from": date_from.isoformat() if date_from else "start",
        "to": date_to.isoformat() if date_to else "end",
    }
    weights = derived.table().to_dict("records")
    provenance = {
        "data window (interview dates)": f"{window['from']} to {window['to']}",
        "returnees (latest interview each)": n,
        "data version of the store": data_version,
        "method": "first principal component of the standardised items per dimension "
        "(pairwise-complete correlations); weights = absolute loadings normalised to sum 1; "
        "items with a negative loading are reported as reverse-keyed",
        "reverse-keyed items (negative loading)": ", ".join(derived.reverse_keyed) or "none",
        "trained by": actor,
    }
    card = index_card(
        label=label,
        version=expected,
        provenance=provenance,
        weights=weights,
        dimension_weights=derived.dimension_weights,
        explained_variance=derived.explained_variance,
        zero_variance=derived.zero_variance,
        correlation=corr,
        shift=shift,
        champion_label=champion.label_,
        min_cell=settings.min_cell,
    )
    card += "\n\n## Reverse-keyed items\n\n" + reverse_keyed_sentence(derived.reverse_keyed) + "\n"
    overall: dict[str, Any] = shift[0] if shift else {"composite_challenger": None}
    metrics: dict[str, float] = {"n": float(n or 0)}
    metrics |= {f"explained_variance/{d}": v for d, v in derived.explained_variance.items()}
    corr = rule.figure(corr)
    if corr is not None:
        metrics["correlation_with_champion"] = corr
    for row in shift:
        if " & " in row["group"]:
            continue  # intersections are in the card and the evaluation artifact
        for key in ("composite_change", "sustainable_change"):
            if row[key] is not None:
                metrics[metric_key(key, row["group"])] = row[key]
    if overall["composite_challenger"] is not None:
        metrics["mean_composite"] = overall["composite_challenger"]
        metrics["share_sustainable"] = overall["sustainable_challenger"]
    step(0.7, "registering the new version")
    version, run_id = _log_index(
        client,
        settings,
        index,
        run_name=f"derived {label}",
        params={
            "data_window_from": window["from"],
            "data_window_to": window["to"],
            "n": n,
            "data_version": data_version,
            "champion": champion.label_,
            "champion_version": champion_version,
            "zero_variance_items": ",".join(derived.zero_variance) or "none",
            REVERSE_KEYED_TAG: ",".join(derived.reverse_keyed) or "none",
            "actor": actor,
        },
        metrics=metrics,
        artifacts={
            registry.CARD: card,
            "weights.json": json.dumps(weights, indent=1),
            registry.EVALUATION: json.dumps({"correlation": corr, "shift": shift}, indent=1),
            registry.REFERENCE: json.dumps(drift.reference(items)),
        },
        tags={
            "summary": f"derived from {n} returnees, {window['from']} to {window['to']}",
            REVERSE_KEYED_TAG: ",".join(derived.reverse_keyed) or "none",
        },
        alias=registry.CHALLENGER,
    )
    step(1.0, "done")
    log.info("registered %s as %s version %d", label, registry.INDEX_MODEL, version)
    return {
        "version": version,
        "label": registry.derived_label(version),
        "run_id": run_id,
        "n": n,
        "explained_variance": derived.explained_variance,
        "zero_variance": list(derived.zero_variance),
        "reverse_keyed": list(derived.reverse_keyed),
        "correlation": corr,
        "champion_label": champion.label_,
        "weights": weights,
        "shift": shift,
    }
