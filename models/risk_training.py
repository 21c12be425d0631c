"""``reintegration train risk``: the early-warning classifier, evaluated and registered.

A scikit-learn pipeline (the first survey's dimension scores added, categories one-hot encoded,
a histogram gradient-boosting classifier, calibrated with ``CalibratedClassifierCV``) is
compared in the same run with the baseline rule, ``1 - the first survey's composite``, on
held-out returnees, with a paired bootstrap interval of the AUC difference
(:mod:`models.risk_evaluation`): a version that does not beat the rule is registered (its card
says so) but is not promoted. The split is grouped by returnee and fixed by the returnee's key
(a hash of the case number), so every model trained on the same store holds out the same
returnees and the promotion gate can compare two versions on data neither was trained on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from models import _mlflow, registry
from models import disclosure_models as rule
from models.risk_evaluation import evaluate, temporal_validation
from models.risk_registration import log_risk_model
from models.serving import Champions
from reintegration.errors import ModelError
from reintegration.index import ReintegrationIndex
from reintegration.questionnaire import Questionnaire, load_questionnaire
from reintegration.risk_features import (
    CATEGORICAL,
    FOLLOW_UP_MIN_MONTHS,
    feature_columns,
    first_surveys,
    training_frame,
)
from reintegration.settings import Settings, get_settings
from reintegration.store.data_version import read_data_version
from reintegration.store.engine import for_reading
from reintegration.store.submissions import read_submissions

if TYPE_CHECKING:
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
    exclusions: dict[str, int]

    @property
    def X(self) -> pd.DataFrame:
        return self.frame[list(self.columns)]

    @property
    def y(self) -> np.ndarray:
        return self.frame["not_sustainable"].to_numpy()


def risk_data(
    engine: sa.Engine, questionnaire: Questionnaire, index: ReintegrationIndex
) -> RiskData:
    """First surveys and outcomes of every returnee who has both, split by returnee.

    The frame also carries each returnee's ``return_date`` (for the temporal validation), and
    ``exclusions`` counts who is left out and why (:func:`exclusions`).
    """
    with for_reading(engine).connect() as conn:
        version = read_data_version(conn)
        stored = read_submissions(conn, questionnaire)
    frame = training_frame(stored, index, questionnaire)
    returned = stored.set_index("pk")["return_date"] if len(stored) else pd.Series(dtype=object)
    frame["return_date"] = pd.to_datetime(frame["first_pk"].map(returned)).to_numpy()
    return RiskData(
        frame=frame,
        test=held_out(frame["returnee_key"]),
        columns=feature_columns(questionnaire),
        index_label=index.label_,
        data_version=version,
        exclusions=exclusions(stored, frame),
    )


def exclusions(stored: pd.DataFrame, frame: pd.DataFrame) -> dict[str, int]:
    """Who the risk model is trained and evaluated on, and who is left out and why.

    Returns
    -------
    dict
        returnees (with a current interview), no_first_survey (first interview more than 4
        months after return), no_follow_up (a first survey, no interview 9 or more months
        after return), follow_up_unscored (a follow-up whose composite cannot be computed),
        included (first survey and outcome). Exact counts: publish them through the rule.
    """
    if stored.empty:
        return dict.fromkeys(
            ("returnees", "no_first_survey", "no_follow_up", "follow_up_unscored", "included"), 0
        )
    everyone = stored["returnee_key"].nunique()
    first = set(first_surveys(stored)["returnee_key"])
    later = set(stored.loc[stored["months_since_return"] >= FOLLOW_UP_MIN_MONTHS, "returnee_key"])
    included = len(frame)
    return {
        "returnees": int(everyone),
        "no_first_survey": int(everyone - len(first)),
        "no_follow_up": len(first - later),
        "follow_up_unscored": len(first & later) - included,
        "included": included,
    }


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
    """A logistic regression on the same inputs (benchmarks only: the baseline every version
    must beat is the rule ``1 - first-survey composite``, :mod:`models.risk_evaluation`)."""
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


def fit(data: RiskData, index: ReintegrationIndex, y: np.ndarray | None = None) -> RiskModel:
    """Fit the model on the training returnees (``y`` overrides the outcome)."""
    train = ~data.test
    target = (data.y if y is None else np.asarray(y))[train]
    return fit_on(data.X[train], target, index)


def fit_on(X: pd.DataFrame, y: np.ndarray, index: ReintegrationIndex) -> RiskModel:
    """Fit the pipeline to ``X`` and ``y``.

    Raises
    ------
    ModelError
        Every returnee has the same outcome.
    """
    if len(np.unique(y)) < 2:
        raise ModelError(
            "every training returnee has the same outcome, so no risk model can be trained"
        )
    return build_model(index).fit(X, y)


def evaluate_risk(
    model: RiskModel, data: RiskData, index: ReintegrationIndex, settings: Settings
) -> dict[str, Any]:
    """Everything the card reports: :func:`models.risk_evaluation.evaluate`, importance, and
    the temporal validation (one more fit, on the earlier return cohorts)."""
    evaluation = evaluate(
        model, data, index, min_group=settings.min_group, bands=settings.risk_band_limits
    )
    evaluation["importance"] = _importance(model, data.X[data.test], data.y[data.test])
    evaluation["temporal"] = temporal_validation(
        data,
        index,
        lambda X, y: fit_on(X, y, index),
        random_split_auc=evaluation["model"]["roc_auc"],
    )
    return evaluation


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
        version, run_id, model and baseline-rule metrics, versus_baseline (the paired
        interval), beats_baseline (its lower bound above 0), n, n_test, subgroups, exclusions,
        temporal, bands: as published (:mod:`models.disclosure_models`), numbers of returnees
        rounded.

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
        model = fit(data, index)
        step(0.5, "evaluating on held-out returnees, then on later return cohorts")
        evaluation = evaluate_risk(model, data, index, settings)
    model.set_params(**evaluation["bands"])
    step(0.85, "registering the new version")
    version, run_id = log_risk_model(client, settings, model, data, evaluation, actor=actor)
    step(1.0, "done")
    published = rule.publish_risk_evaluation(evaluation, settings.min_cell)
    log.info("registered %s version %d", registry.RISK_MODEL, version)
    return {
        "version": version,
        "run_id": run_id,
        "model": published["model"],
        "baseline": published["baseline"],
        "versus_baseline": published["versus_baseline"],
        "beats_baseline": bool(evaluation["versus_baseline"]["beats"]),
        "n": rule.rounded(len(data.frame), settings.min_cell),
        "n_test": rule.rounded(int(data.test.sum()), settings.min_cell),
        "subgroups": published["subgroups"],
        "exclusions": published["exclusions"],
        "temporal": published["temporal"],
        "bands": evaluation["bands"],
        "outcome_index": data.index_label,
    }
