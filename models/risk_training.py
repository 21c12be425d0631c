"""``reintegration train risk``: the early-warning classifier, evaluated and registered.

A scikit-learn pipeline (the first survey's dimension scores added, categories one-hot encoded,
a histogram gradient-boosting classifier, calibrated with ``CalibratedClassifierCV``) is
compared in the same run with a logistic-regression baseline on held-out returnees. The split
is grouped by returnee and fixed by the returnee's key (a hash of the case number), so every
model trained on the same store holds out the same returnees and the promotion gate can
compare two versions on data neither was trained on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from models import _mlflow, registry
from models import disclosure_models as rule
from models.cards import risk_card
from models.evaluation import calibration_table, metric_key, risk_metrics, risk_subgroups
from models.serving import Champions
from reintegration.errors import ModelError
from reintegration.index import ReintegrationIndex
from reintegration.questionnaire import Questionnaire, load_questionnaire
from reintegration.risk_features import CATEGORICAL, GROUPS, feature_columns, training_frame
from reintegration.settings import Settings, get_settings
from reintegration.store.data_version import read_data_version
from reintegration.store.engine import for_reading
from reintegration.store.submissions import read_submissions

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from models.estimators import RiskModel

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
HELD_OUT_SHARE = 0.25
MIN_RETURNEES = 100
"""Fewest returnees with a first survey and an outcome a risk model is trained on."""
IMPORTANCE_ROWS = 2000
IMPORTANCE_REPEATS = 3
SEED = 0
BOOSTING = {
    "max_iter": 100,
    "learning_rate": 0.1,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "early_stopping": False,
}
CALIBRATION_FOLDS = 3


def one_thread() -> Any:
    """Limit OpenMP (gradient boosting) to one thread for the duration of a ``with`` block.

    The platform shares its cores with the API and other jobs; OpenMP threads that spin on an
    oversubscribed machine made one fit ten times slower here than a single thread did.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def held_out(keys: pd.Series) -> np.ndarray:
    """True for returnees held out for evaluation: fixed by their key, about a quarter.

    Examples
    --------
    >>> held_out(pd.Series(["00" + "f" * 62, "ff" + "0" * 62])).tolist()
    [True, False]
    """
    head = keys.astype(str).str.slice(0, 8).map(lambda h: int(h, 16))
    return (head.to_numpy(dtype=np.float64) / 2**32) < HELD_OUT_SHARE


@dataclass
class RiskData:
    """A training frame split into training and held-out returnees."""

    frame: pd.DataFrame
    test: np.ndarray
    columns: tuple[str, ...]
    index_label: str
    data_version: int

    @property
    def X(self) -> pd.DataFrame:
        return self.frame[list(self.columns)]

    @property
    def y(self) -> np.ndarray:
        return self.frame["not_sustainable"].to_numpy()


def risk_data(
    engine: sa.Engine, questionnaire: Questionnaire, index: ReintegrationIndex
) -> RiskData:
    """First surveys and outcomes of every returnee who has both, split by returnee."""
    with for_reading(engine).connect() as conn:
        version = read_data_version(conn)
        stored = read_submissions(conn, questionnaire)
    frame = training_frame(stored, index, questionnaire)
    return RiskData(
        frame=frame,
        test=held_out(frame["returnee_key"]),
        columns=feature_columns(questionnaire),
        index_label=index.label_,
        data_version=version,
    )


def _scores(index: ReintegrationIndex) -> Any:
    from models.estimators import DimensionScores

    return DimensionScores(
        item_weights=index.item_weights_, dimension_weights=index.dimension_weights_
    )


def build_model(index: ReintegrationIndex) -> RiskModel:
    """The unfitted early-warning model: scores, one-hot categories, calibrated boosting."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from models.estimators import RiskModel

    # Scores and one-hot codes are fixed functions of the inputs, so they run once per
    # prediction; only the boosting is fitted per calibration fold.
    boosting = HistGradientBoostingClassifier(random_state=SEED, **BOOSTING)
    pipeline = Pipeline(
        [
            ("scores", _scores(index)),
            (
                "columns",
                ColumnTransformer(
                    [
                        (
                            "categories",
                            OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                            list(CATEGORICAL),
                        )
                    ],
                    remainder="passthrough",
                    verbose_feature_names_out=False,
                ),
            ),
            (
                "boosting",
                CalibratedClassifierCV(boosting, method="isotonic", cv=CALIBRATION_FOLDS),
            ),
        ]
    )
    return RiskModel(estimator=pipeline)


def build_baseline(index: ReintegrationIndex) -> Any:
    """The logistic-regression baseline on the same inputs."""
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numbers = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    return Pipeline(
        [
            ("scores", _scores(index)),
            (
                "columns",
                ColumnTransformer(
                    [
                        ("categories", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL)),
                        ("numbers", numbers, make_column_selector(dtype_include=np.number)),
                    ]
                ),
            ),
            ("logistic", LogisticRegression(max_iter=2000)),
        ]
    )


def _importance(model: RiskModel, X: pd.DataFrame, y: np.ndarray) -> list[dict[str, Any]]:
    from sklearn.inspection import permutation_importance

    if len(np.unique(y)) < 2:
        return []
    rows = min(len(X), IMPORTANCE_ROWS)
    pick = np.random.default_rng(SEED).choice(len(X), size=rows, replace=False)
    found = permutation_importance(
        model,
        X.iloc[pick],
        y[pick],
        scoring="roc_auc",
        n_repeats=IMPORTANCE_REPEATS,
        random_state=SEED,
    )
    table = [
        {"feature": name, "mean": float(m), "sd": float(s)}
        for name, m, s in zip(X.columns, found.importances_mean, found.importances_std, strict=True)
    ]
    return sorted(table, key=lambda r: -r["mean"])[:15]


def evaluate(model: RiskModel, baseline: Any, data: RiskData, *, min_group: int) -> dict[str, Any]:
    """Held-out metrics of the model and the baseline, by subgroup, calibration, importance."""
    X, y = data.X[data.test], data.y[data.test]
    p = model.risk(X)
    p_base = baseline.predict_proba(X)[:, 1]
    groups = data.frame.loc[data.test, list(GROUPS)]
    medium_from, high_from = (float(q) for q in np.quantile(p, [1 / 3, 2 / 3]))
    return {
        "model": risk_metrics(y, p),
        "baseline": risk_metrics(y, p_base),
        "subgroups": risk_subgroups(groups, y, p, min_group=min_group),
        "calibration": calibration_table(y, p),
        "importance": _importance(model, X, y),
        "bands": {"medium_from": medium_from, "high_from": high_from},
    }


def fit(data: RiskData, index: ReintegrationIndex, y: np.ndarray | None = None) -> tuple[Any, Any]:
    """Fit the model and the baseline on the training returnees (``y`` overrides the outcome)."""
    train = ~data.test
    target = (data.y if y is None else np.asarray(y))[train]
    if len(np.unique(target)) < 2:
        raise ModelError(
            "every training returnee has the same outcome, so no risk model can be trained"
        )
    X = data.X[train]
    model = build_model(index).fit(X, target)
    baseline = build_baseline(index).fit(X, target)
    return model, baseline


def log_risk_model(
    client: MlflowClient,
    settings: Settings,
    model: RiskModel,
    data: RiskData,
    evaluation: dict[str, Any],
    *,
    actor: str,
) -> tuple[int, str]:
    """Log the run (parameters, metrics, card, evaluation, model) and register the version.

    ``evaluation`` holds the exact figures (:func:`evaluate`); what the run stores of them (the
    evaluation artifact, the card, the metrics, the count of returnees) is what
    :mod:`models.disclosure_models` publishes: no group under ``settings.min_cell``, numbers
    of returnees rounded.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from models.estimators import TRUSTED_TYPES

    m, b = evaluation["model"], evaluation["baseline"]
    beats = m["roc_auc"] is not None and b["roc_auc"] is not None and m["roc_auc"] > b["roc_auc"]
    published = rule.publish_risk_evaluation(evaluation, settings.min_cell)
    shown_m, shown_b = published["model"], published["baseline"]
    expected = registry.next_version(client, registry.RISK_MODEL)
    n_test = int(data.test.sum())
    card = risk_card(
        version=expected,
        data={
            "index_label": data.index_label,
            "n": len(data.frame),
            "n_train": len(data.frame) - n_test,
            "n_test": n_test,
            "positive_rate": float(data.y.mean()),
            "data_version": data.data_version,
        },
        model=shown_m,
        baseline=shown_b,
        subgroups=published["subgroups"],
        calibration=published["calibration"],
        importance=evaluation["importance"],
        bands=evaluation["bands"],
        min_group=settings.min_group,
        min_cell=settings.min_cell,
    )
    metrics = {
        **{k: v for k, v in shown_m.items() if v is not None and k != "n"},
        **{f"baseline_{k}": v for k, v in shown_b.items() if v is not None and k != "n"},
        "beats_baseline": float(beats),
        "n_test": float(rule.rounded(n_test, settings.min_cell) or 0),
    }
    for row in published["subgroups"]:
        if row["sufficient"] and " & " not in row["group"]:
            metrics[metric_key("roc_auc", row["group"])] = row["roc_auc"]
    experiment = _mlflow.experiment_id(client, settings, registry.RISK_MODEL)
    X = data.X
    with (
        _mlflow.fluent(settings),
        mlflow.start_run(experiment_id=experiment, run_name="early warning") as run,
    ):
        run_id = run.info.run_id
        mlflow.log_params(
            {
                "outcome_index": data.index_label,
                "returnees": rule.rounded(len(data.frame), settings.min_cell),
                "held_out_share": HELD_OUT_SHARE,
                "data_version": data.data_version,
                "calibration": f"isotonic, {CALIBRATION_FOLDS} folds",
                "actor": actor,
                **{f"boosting/{k}": v for k, v in BOOSTING.items()},
                **{f"band/{k}": round(v, 6) for k, v in evaluation["bands"].items()},
            }
        )
        mlflow.log_metrics(metrics)
        registry.log_artifacts(
            client,
            run_id,
            {registry.CARD: card, registry.EVALUATION: json.dumps(published, indent=1)},
        )
        # The signature records column names and types only: no row of data is logged.
        signature = infer_signature(X.head(50), model.predict_proba(X.head(50)))
        info = mlflow.sklearn.log_model(
            model,
            name=registry.MODEL_ARTIFACT,
            signature=signature,
            pip_requirements=registry.pip_requirements(),
            skops_trusted_types=TRUSTED_TYPES,
            pyfunc_predict_fn="predict_proba",
        )
        both = shown_m["roc_auc"] is not None and shown_b["roc_auc"] is not None
        summary = (
            f"ROC AUC {shown_m['roc_auc']:.3f}, baseline {shown_b['roc_auc']:.3f}"
            if both
            else "ROC AUC undefined on the held-out returnees"
        )
        version = registry.register(
            client,
            registry.RISK_MODEL,
            run_id=run_id,
            model_uri=info.model_uri,
            tags={"summary": summary, "outcome_index": data.index_label},
            alias=registry.CHALLENGER,
        )
    return version, run_id


def outcome_index(settings: Settings) -> ReintegrationIndex:
    """The index that defines the outcome and the score features: the champion index."""
    return Champions(settings).index()[0]


def train_risk(
    engine: sa.Engine,
    settings: Settings | None = None,
    *,
    actor: str = "cli",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train, evaluate and register the early-warning model as the ``challenger``.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store.
    settings : Settings, optional
    actor : str
        Who trains (recorded with the run).
    progress : callable, optional
        Called with (fraction done, what is being done).

    Returns
    -------
    dict
        version, run_id, model and baseline metrics, beats_baseline, n, n_test, subgroups,
        bands: as published (:mod:`models.disclosure_models`), numbers of returnees rounded.

    Raises
    ------
    ModelError
        Too few returnees with a first survey and a follow-up, or only one outcome.
    """
    settings = settings or get_settings()
    step = progress or (lambda fraction, message: None)
    questionnaire = load_questionnaire()
    step(0.05, "reading first surveys and follow-ups")
    index = outcome_index(settings)
    data = risk_data(engine, questionnaire, index)
    n_train = int((~data.test).sum())
    if len(data.frame) < MIN_RETURNEES or n_train == 0 or data.test.sum() == 0:
        raise ModelError(
            f"a risk model needs at least {MIN_RETURNEES} returnees with a first survey within "
            f"4 months of return and a follow-up 9 or more months after it; there are "
            f"{len(data.frame)}"
        )
    client = _mlflow.client(settings)
    registry.ensure_builtin_index(settings)
    step(0.15, f"training on {n_train} returnees")
    with one_thread():
        model, baseline = fit(data, index)
        step(0.6, "evaluating on held-out returnees")
        evaluation = evaluate(model, baseline, data, min_group=settings.min_group)
    model.set_params(**evaluation["bands"])
    step(0.85, "registering the new version")
    version, run_id = log_risk_model(client, settings, model, data, evaluation, actor=actor)
    step(1.0, "done")
    m, b = evaluation["model"], evaluation["baseline"]
    published = rule.publish_risk_evaluation(evaluation, settings.min_cell)
    log.info("registered %s version %d", registry.RISK_MODEL, version)
    return {
        "version": version,
        "run_id": run_id,
        "model": published["model"],
        "baseline": published["baseline"],
        "beats_baseline": bool(
            m["roc_auc"] is not None and b["roc_auc"] is not None and m["roc_auc"] > b["roc_auc"]
        ),
        "n": rule.rounded(len(data.frame), settings.min_cell),
        "n_test": rule.rounded(int(data.test.sum()), settings.min_cell),
        "subgroups": published["subgroups"],
        "bands": evaluation["bands"],
        "outcome_index": data.index_label,
    }
