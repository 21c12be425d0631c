"""Log a trained risk model's run (parameters, metrics, card, evaluation) and register it.

What a run stores of an evaluation is what :mod:`models.disclosure_models` publishes: no group
under ``settings.min_cell``, numbers of returnees rounded. The run records the baseline rule it
was measured against (parameter ``baseline``) and the verdict (metric ``beats_baseline``, 1
only when the paired bootstrap interval of the AUC difference lies above 0): the promotion gate
reads both.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from models import _mlflow, registry
from models import disclosure_models as rule
from models.evaluation import metric_key
from models.risk_card import risk_card
from models.risk_evaluation import BASELINE_RULE
from reintegration.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from models.estimators import RiskModel
    from models.risk_training import RiskData

BEATS_BASELINE = "beats_baseline"
"""Run metric: 1.0 when the version beats the baseline rule, else 0.0."""
BASELINE_PARAM = "baseline"


def _metrics(published: dict[str, Any], beats: bool, n_test: int, min_cell: int) -> dict:
    shown_m, shown_b = published["model"], published["baseline"]
    versus = published["versus_baseline"]
    metrics = {
        **{k: v for k, v in shown_m.items() if isinstance(v, int | float) and k != "n"},
        **{
            f"baseline_{k}": v
            for k, v in shown_b.items()
            if isinstance(v, int | float) and k != "n"
        },
        BEATS_BASELINE: float(beats),
        "n_test": float(rule.rounded(n_test, min_cell) or 0),
    }
    # The pair compared (returnees whose first survey has a composite), then the difference.
    if versus.get("model_auc") is not None:
        metrics["paired_roc_auc"] = versus["model_auc"]
        metrics["paired_baseline_roc_auc"] = versus["baseline_auc"]
    for key, name in (("difference", ""), ("low", "_low"), ("high", "_high")):
        if versus.get(key) is not None:
            metrics[f"auc_difference{name}"] = versus[key]
    temporal = published.get("temporal") or {}
    if temporal.get("model_auc") is not None:
        metrics["temporal_roc_auc"] = temporal["model_auc"]
    for row in published["subgroups"]:
        if row["sufficient"] and " & " not in row["group"]:
            metrics[metric_key("roc_auc", row["group"])] = row["roc_auc"]
    return metrics


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

    Parameters
    ----------
    client : MlflowClient
    settings : Settings
    model : RiskModel
        Fitted, with its bands set.
    data : RiskData
        What it was trained and evaluated on.
    evaluation : dict
        The exact figures (:func:`models.risk_training.evaluate_risk`).
    actor : str
        Who trains.

    Returns
    -------
    tuple of int and str
        The registered version (alias ``challenger``) and the run id.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from models.estimators import TRUSTED_TYPES
    from models.risk_training import BOOSTING, CALIBRATION_FOLDS, HELD_OUT_SHARE

    beats = bool(evaluation["versus_baseline"]["beats"])
    published = rule.publish_risk_evaluation(evaluation, settings.min_cell)
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
        evaluation=published,
        min_group=settings.min_group,
        min_cell=settings.min_cell,
    )
    metrics = _metrics(published, beats, n_test, settings.min_cell)
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
                BASELINE_PARAM: BASELINE_RULE,
                "bootstrap_replicates": evaluation["versus_baseline"]["replicates"],
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
        version = registry.register(
            client,
            registry.RISK_MODEL,
            run_id=run_id,
            model_uri=info.model_uri,
            tags={"summary": summary(published, beats), "outcome_index": data.index_label},
            alias=registry.CHALLENGER,
        )
    return version, run_id


def summary(published: dict[str, Any], beats: bool) -> str:
    """One line for the version list: both AUCs, the paired interval, the verdict."""
    versus = published["versus_baseline"]
    if versus.get("model_auc") is None or versus.get("low") is None:
        return "ROC AUC undefined on the held-out returnees"
    verdict = "beats the baseline rule" if beats else "does not beat the baseline rule"
    return (
        f"ROC AUC {versus['model_auc']:.3f}, baseline rule {versus['baseline_auc']:.3f} "
        f"(difference 95% CI {versus['low']:+.3f} to {versus['high']:+.3f}): {verdict}"
    )
