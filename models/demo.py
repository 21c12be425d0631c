"""The demo's models: a derived index as challenger and a first early-warning model.

``reintegration demo`` calls :func:`train_demo_models` once, after ingesting its synthetic
panel, so the dashboards show a champion and a challenger side by side. The early-warning model
is promoted only if it beats the baseline rule; if not, the worklist ranks by the rule and says
so. Either way it has returnees with reasons from the first run.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from models.index_training import train_index
from models.promotion import promote
from models.risk_training import train_risk
from reintegration.baseline_worklist import BASELINE_NOTE
from reintegration.policy import cli_caller
from reintegration.settings import Settings

DEMO_ACTOR = "demo"


def train_demo_models(engine: sa.Engine, settings: Settings) -> list[str]:
    """Train both models on the stored panel; promote the risk model only if it beats the rule.

    The risk model is promoted when its card shows it beats the baseline rule (1 - first-survey
    composite); otherwise it stays challenger and the worklist ranks by the baseline rule, as
    it would in the field. Either way the worklist works from the first run.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The demo's store, with its panel ingested.
    settings : Settings
        The demo's settings (its own registry).

    Returns
    -------
    list of str
        One sentence per step, for the terminal.
    """
    index = train_index(engine, settings, actor=DEMO_ACTOR)
    risk = train_risk(engine, settings, actor=DEMO_ACTOR)
    versus = risk["versus_baseline"]
    measured = (
        f"ROC AUC {versus['model_auc']:.3f} on held-out returnees against the baseline rule's "
        f"{versus['baseline_auc']:.3f} (paired bootstrap 95% interval of the difference "
        f"{versus['low']:+.3f} to {versus['high']:+.3f})"
        if versus.get("low") is not None
        else "ROC AUC undefined on the held-out returnees"
    )
    lines = [
        f"Derived index {index['label']} registered as challenger (n={index['n']}; "
        f"correlation with {index['champion_label']}: {index['correlation']:.3f}); "
        "the champion stays rss-v1-provisional until an M&E officer promotes it."
    ]
    if not risk["beats_baseline"]:
        lines.append(
            f"Early-warning model version {risk['version']}: {measured}. It does not beat the "
            "baseline rule, so it stays challenger and the worklist is "
            f"{BASELINE_NOTE}."
        )
        return lines
    promoted: dict[str, Any] = promote(
        engine,
        "risk",
        risk["version"],
        reason="the demo's first early-warning model",
        force=False,
        caller=cli_caller(DEMO_ACTOR),
        settings=settings,
    )
    lines.append(
        f"Early-warning model version {risk['version']}: {measured}; it beats the baseline rule "
        f"and is promoted to champion, {promoted['risks']} returnees given a risk with reasons."
    )
    return lines
