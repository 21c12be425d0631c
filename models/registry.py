"""The MLflow registry of this platform: two registered models, their versions and aliases.

``rss-index`` holds index versions (weights and thresholds); each version carries the tag
``index_version``, its label (``rss-v1-provisional`` for the built-in v1, ``rss-vN-derived``
for a derived version N), which every stored score names. ``reintegration-risk`` holds the
early-warning classifier. Each has the aliases ``champion`` (in use) and ``challenger``
(newly trained). A version is registered as the very last step of its training run, so a
training that fails leaves at most a failed run, never a half-registered model.

Every read of a version (its metrics, description, card, evaluation and parameters) is served
through :mod:`models.disclosure_models`, so a version registered before that rule shows no
group under ``min_cell`` and no exact number of returnees either.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models import _mlflow
from models import disclosure_models as rule
from reintegration.errors import ModelError
from reintegration.index import ReintegrationIndex
from reintegration.policy import User, require
from reintegration.questionnaire import load_questionnaire
from reintegration.roles import Capability
from reintegration.settings import Settings, get_settings

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

INDEX_MODEL = "rss-index"
RISK_MODEL = "reintegration-risk"
SHORT_NAMES = {"index": INDEX_MODEL, "risk": RISK_MODEL}
CHAMPION = "champion"
CHALLENGER = "challenger"
LABEL_TAG = "index_version"
CARD = "model_card.md"
EVALUATION = "evaluation.json"
REFERENCE = "reference_distribution.json"
MODEL_ARTIFACT = "model"
WEIGHT_PARAM = "weight/"
DIMENSION_WEIGHT_PARAM = "dimension_weight/"
THRESHOLD_PARAM = "threshold/"
RUNTIME = ("numpy", "pandas", "scipy", "scikit-learn", "PyYAML", "pyarrow")
"""Packages a logged model needs at load time, pinned to the versions of pyproject.toml."""


def resolve_name(name: str) -> str:
    """The registered name for a short (``index``, ``risk``) or registered name.

    Raises
    ------
    ModelError
        For any other name.

    Examples
    --------
    >>> resolve_name("risk"), resolve_name("rss-index")
    ('reintegration-risk', 'rss-index')
    """
    if name in SHORT_NAMES:
        return SHORT_NAMES[name]
    if name in SHORT_NAMES.values():
        return name
    known = ", ".join([*SHORT_NAMES, *SHORT_NAMES.values()])
    raise ModelError(f"there is no model called {name!r}; use one of {known}")


def derived_label(version: int) -> str:
    """The label of derived index version N: ``rss-vN-derived``."""
    return f"rss-v{version}-derived"


def pip_requirements() -> list[str]:
    """The runtime packages of a logged model, pinned as the project pins them."""
    try:
        declared = importlib.metadata.requires("reintegration") or []
    except importlib.metadata.PackageNotFoundError:  # a source checkout that is not installed
        declared = []
    pins = {}
    for requirement in declared:
        spec = requirement.split(";")[0].strip()
        name = spec.split("==")[0].split("[")[0].strip()
        if "==" in spec and ";" not in requirement:
            pins[name.lower()] = f"{name}=={spec.split('==')[1].strip()}"
    out = []
    for name in RUNTIME:
        pinned = pins.get(name.lower())
        out.append(pinned or f"{name}=={importlib.metadata.version(name)}")
    out.append(f"skops=={importlib.metadata.version('skops')}")
    return out


def _client(settings: Settings | None) -> tuple[MlflowClient, Settings]:
    settings = settings or get_settings()
    return _mlflow.client(settings), settings


def get_version(client: MlflowClient, name: str, version: int) -> ModelVersion:
    """A registered version, or ModelError naming it."""
    try:
        return client.get_model_version(name, str(version))
    except Exception as exc:
        if _mlflow.is_missing(exc):
            raise ModelError(f"{name} has no version {version}") from None
        raise


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version an alias points to, or None (also when the model is not registered)."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except Exception as exc:
        if _mlflow.is_missing(exc):
            return None
        raise


def label_of(version: ModelVersion) -> str | None:
    """The index label of an ``rss-index`` version (its tag), None for other models."""
    return (version.tags or {}).get(LABEL_TAG)


def load_index(client: MlflowClient, version: ModelVersion) -> ReintegrationIndex:
    """An index version, rebuilt from its run's parameters; its label is the version's tag.

    An index is its weights and thresholds, all recorded exactly as run parameters, so nothing
    is deserialised (no code from an artifact runs, and no serialisation library loads).
    Items and dimensions follow the spec's order, which breaks ties of the weakest dimension.

    Raises
    ------
    ModelError
        When the version is not an index, or its run lacks the weights.
    """
    params = dict(client.get_run(version.run_id).data.params) if version.run_id else {}
    weights: dict[str, dict[str, float]] = {}
    for key, value in params.items():
        if key.startswith(WEIGHT_PARAM):
            dimension, item = key.removeprefix(WEIGHT_PARAM).split("/", 1)
            weights.setdefault(dimension, {})[item] = float(value)
    if not weights:
        raise ModelError(f"{version.name} version {version.version} is not an index version")
    spec = load_questionnaire()
    unknown = sorted(set(weights) - set(spec.index.dimensions))
    if unknown:
        raise ModelError(
            f"{version.name} version {version.version} weights a dimension this spec does not "
            f"have: {unknown[0]}"
        )
    order = {item: k for k, item in enumerate(spec.item_ids)}
    ordered = {
        d: dict(sorted(weights[d].items(), key=lambda kv: order.get(kv[0], len(order))))
        for d in spec.index.dimensions
        if d in weights
    }
    dimension_weights = {
        d: float(params[f"{DIMENSION_WEIGHT_PARAM}{d}"])
        for d in ordered
        if f"{DIMENSION_WEIGHT_PARAM}{d}" in params
    }
    thresholds = {
        key.removeprefix(THRESHOLD_PARAM): float(value)
        for key, value in params.items()
        if key.startswith(THRESHOLD_PARAM)
    }
    return ReintegrationIndex(
        item_weights=ordered,
        dimension_weights=dimension_weights or None,
        label=label_of(version),
        **thresholds,
    ).fit()


def load_model(client: MlflowClient, version: ModelVersion) -> Any:
    """Load any registered version's scikit-learn object."""
    import mlflow.artifacts
    import mlflow.sklearn

    # The version's own storage location: no process-wide registry URI is involved. Files on
    # a path (this machine's or shared storage) are read where they are; any other location
    # (an object store, ``mlflow-artifacts:/`` served by a tracking server, resolved through
    # this client's tracking URI) is downloaded to a temporary folder first.
    location = client.get_model_version_download_uri(version.name, version.version)
    if location.startswith(("file:", "/")):
        folder = _mlflow.local_path(location) or Path(location)
        if not folder.exists():
            raise ModelError(
                f"{version.name} version {version.version} keeps its files at {folder}, which "
                "is not on this server: servers sharing a registry need "
                "REINTEGRATION_ARTIFACT_LOCATION on storage they all mount (docs/deployment.md)"
            )
        return mlflow.sklearn.load_model(location)
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=tmp, tracking_uri=client.tracking_uri
        )
        return mlflow.sklearn.load_model(local)


def _ensure_registered(client: MlflowClient, name: str, description: str) -> None:
    try:
        client.create_registered_model(name, description=description)
    except Exception as exc:
        if "already exists" not in str(exc).lower():
            raise


def next_version(client: MlflowClient, name: str) -> int:
    """The version number MLflow will give the next registration of ``name``."""
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except Exception as exc:
        if _mlflow.is_missing(exc):
            return 1
        raise
    return 1 + max((int(v.version) for v in versions), default=0)


DESCRIPTIONS = {
    INDEX_MODEL: "The reintegration sustainability index (RSS.md): item and dimension weights.",
    RISK_MODEL: (
        "Early warning: probability that a returnee is not sustainable at the first follow-up "
        "9 or more months after return, from the first survey (within 4 months)."
    ),
}


def logged_model_id(model_uri: str) -> str | None:
    """The logged model's id in a ``models:/<id>`` URI; None for any other source.

    Examples
    --------
    >>> logged_model_id("models:/m-0a1b2c"), logged_model_id("runs:/abc/model")
    ('m-0a1b2c', None)
    >>> logged_model_id("models:/rss-index/3") is None
    True
    """
    if not model_uri.startswith("models:/"):
        return None
    rest = model_uri.removeprefix("models:/").strip("/")
    return rest if rest and "/" not in rest and "@" not in rest else None


def register(
    client: MlflowClient,
    name: str,
    *,
    run_id: str,
    model_uri: str,
    tags: Mapping[str, str],
    alias: str,
) -> int:
    """Register a logged model as a new version with tags and an alias; returns the version.

    ``model_uri`` is what ``log_model`` answered: ``models:/<model id>`` in MLflow 3. The
    model's id goes with it, as a tracking server requires (it refuses such a source with only
    the run's id: "Invalid model version source"); a database store accepts both.
    """
    _ensure_registered(client, name, DESCRIPTIONS[name])
    created = client.create_model_version(
        name,
        source=model_uri,
        run_id=run_id,
        tags=dict(tags),
        description=tags.get("summary"),
        model_id=logged_model_id(model_uri),
    )
    version = int(created.version)
    label = tags.get(LABEL_TAG, "")
    if label.endswith("-derived") and label != derived_label(version):
        # Another registration took the number this one expected: the label follows the number.
        client.set_model_version_tag(name, str(version), LABEL_TAG, derived_label(version))
    client.set_registered_model_alias(name, alias, str(version))
    return version


def log_artifacts(client: MlflowClient, run_id: str, texts: Mapping[str, str]) -> None:
    """Write text artifacts (cards, JSON) into a run."""
    with tempfile.TemporaryDirectory() as tmp:
        for file_name, text in texts.items():
            path = Path(tmp) / file_name
            path.write_text(text, encoding="utf-8")
            client.log_artifact(run_id, str(path))


def read_artifact(client: MlflowClient, run_id: str, file_name: str) -> str | None:
    """A text artifact of a run, or None when the run has none by that name."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, file_name, tmp)
        except Exception as exc:
            if _mlflow.is_missing(exc) or "no such file" in str(exc).lower():
                return None
            raise
        return Path(path).read_text(encoding="utf-8")


def read_json_artifact(client: MlflowClient, run_id: str, file_name: str) -> Any:
    """A JSON artifact of a run, or None."""
    text = read_artifact(client, run_id, file_name)
    return json.loads(text) if text is not None else None


def require_models(caller: User) -> None:
    """Refuse unless ``caller`` may see models: MODELS, for every country (a model is trained
    on every country's returnees, and its card and metrics describe them all).

    Raises
    ------
    Forbidden
    """
    require(caller, Capability.MODELS, every_country=True)


def list_versions(
    name: str, settings: Settings | None = None, *, caller: User
) -> list[dict[str, Any]]:
    """Every version of a registered model, newest first.

    Parameters
    ----------
    name : str
    settings : Settings, optional
    caller : User
        Who asks (see :func:`require_models`).

    Raises
    ------
    Forbidden
        The caller may not see models.

    Returns
    -------
    list of dict
        version, label (``rss-index`` only, else None), aliases, created_at (ms since the
        epoch), metrics (the run's, published: numbers of returnees rounded, the others to three
        decimals), run_id, description (numbers of returnees rounded). Empty when nothing is
        registered (or there is no tracking store yet, which this does not create).
    """
    require_models(caller)
    settings = settings or get_settings()
    name = resolve_name(name)
    if not _mlflow.store_exists(settings):
        return []
    client = _mlflow.client(settings)
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except Exception as exc:
        if _mlflow.is_missing(exc):
            return []
        raise
    if not versions:
        return []
    aliases: dict[int, list[str]] = {}
    for alias, number in client.get_registered_model(name).aliases.items():
        aliases.setdefault(int(number), []).append(alias)
    out = []
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
        metrics = dict(client.get_run(v.run_id).data.metrics) if v.run_id else {}
        out.append(
            {
                "version": int(v.version),
                "label": label_of(v),
                "aliases": sorted(aliases.get(int(v.version), [])),
                "created_at": v.creation_timestamp,
                "metrics": rule.publish_metrics(metrics, settings.min_cell),
                "run_id": v.run_id,
                "description": rule.publish_text(v.description, settings.min_cell),
            }
        )
    return out


def list_models(settings: Settings | None = None, *, caller: User) -> list[dict[str, Any]]:
    """Both registered models: name, short name, versions, champion and challenger versions.

    Raises
    ------
    Forbidden
        The caller may not see models (:func:`require_models`).
    """
    settings = settings or get_settings()
    out = []
    for short, name in SHORT_NAMES.items():
        versions = list_versions(name, settings, caller=caller)
        by_alias = {a: v["version"] for v in versions for a in v["aliases"]}
        out.append(
            {
                "name": name,
                "short_name": short,
                "versions": len(versions),
                "champion": by_alias.get(CHAMPION),
                "challenger": by_alias.get(CHALLENGER),
            }
        )
    return out


def model_card(name: str, version: int, settings: Settings | None = None, *, caller: User) -> str:
    """The Markdown model card of a version, its tables of groups published by the rule
    (:func:`models.cards.publishable_card`, from the version's evaluation).

    Raises
    ------
    Forbidden
        The caller may not see models (:func:`require_models`).
    ModelError
        When the version does not exist or has no card.
    """
    require_models(caller)
    settings = settings or get_settings()
    name = resolve_name(name)
    if not _mlflow.store_exists(settings):
        raise ModelError(f"{name} has no version {version}: no model is registered yet")
    client = _mlflow.client(settings)
    found = get_version(client, name, version)
    text = read_artifact(client, found.run_id, CARD) if found.run_id else None
    if text is None or not found.run_id:
        raise ModelError(f"{found.name} version {version} has no model card")
    from models.cards import publishable_card

    evaluation = read_json_artifact(client, found.run_id, EVALUATION)
    return publishable_card(text, evaluation, settings.min_cell)


def run_details(run_id: str, settings: Settings | None = None, *, caller: User) -> dict[str, Any]:
    """A version's run: its ``params`` and ``evaluation`` (metrics overall and per subgroup,
    with their n, and calibration; None when absent), both as
    :mod:`models.disclosure_models` publishes them (whenever the run was logged).

    Raises
    ------
    Forbidden
        The caller may not see models (:func:`require_models`).
    """
    require_models(caller)
    settings = settings or get_settings()
    if not _mlflow.store_exists(settings):
        return {"params": {}, "evaluation": None}
    # A run never changes once logged, so its details are kept after the first read.
    key = (_mlflow.tracking_uri(settings), run_id)
    if key not in _RUNS:
        client = _mlflow.client(settings)
        if len(_RUNS) >= _RUNS_KEPT:
            _RUNS.clear()
        _RUNS[key] = {
            "params": _mlflow.params_of(client, run_id),
            "evaluation": read_json_artifact(client, run_id, EVALUATION),
        }
    stored = _RUNS[key]
    return {
        "params": rule.publish_params(stored["params"], settings.min_cell),
        "evaluation": rule.publish_evaluation(stored["evaluation"], settings.min_cell),
    }


_RUNS: dict[tuple[str, str], dict[str, Any]] = {}
_RUNS_KEPT = 64


def drift(engine: sa.Engine, index_version: int | None, *, caller: User) -> pd.DataFrame:
    """Drift per item of the recent batches (every country's) against an index version's
    reference data (:func:`reintegration.quality.drift_by_item`).

    Raises
    ------
    Forbidden
        The caller may not see models (:func:`require_models`).
    """
    import pandas as pd

    from reintegration.quality import drift_by_item

    require_models(caller)
    if index_version is None:  # no index registered: nothing was compared
        return pd.DataFrame(columns=["item", "batches", "n", "psi_latest", "psi_mean", "psi_max"])
    return drift_by_item(engine, model=INDEX_MODEL, model_version=index_version)


def ensure_builtin_index(settings: Settings | None = None) -> int:
    """Register the built-in index v1 (the spec's weights) as champion when there is none.

    Idempotent: with a champion in place nothing changes; with v1 registered but no champion,
    v1 becomes champion again. Processes sharing the registry do this one at a time
    (:func:`models._mlflow.one_at_a_time`), so servers starting together register it once.

    Returns
    -------
    int
        The champion's version.
    """
    client, settings = _client(settings)
    champion = version_by_alias(client, INDEX_MODEL, CHAMPION)
    if champion is not None:
        return int(champion.version)
    # Servers starting together on a fresh registry: one registers, the others then find it.
    with _mlflow.one_at_a_time(settings, _mlflow.BUILTIN_LOCK):
        return _register_builtin_index(client, settings)


def _register_builtin_index(client: MlflowClient, settings: Settings) -> int:
    from models.index_training import log_builtin_index

    champion = version_by_alias(client, INDEX_MODEL, CHAMPION)
    if champion is not None:
        return int(champion.version)
    builtin = ReintegrationIndex().fit().label_
    existing: list[ModelVersion] = []
    try:
        existing = list(client.search_model_versions(f"name='{INDEX_MODEL}'"))
    except Exception as exc:
        if not _mlflow.is_missing(exc):
            raise
    for v in existing:
        if label_of(v) == builtin:
            client.set_registered_model_alias(INDEX_MODEL, CHAMPION, v.version)
            return int(v.version)
    version = log_builtin_index(client, settings)
    log.info("registered the built-in index %s as version %d", builtin, version)
    return version
