"""The demo's models: a derived index as challenger and a first early-warning model as champion.

``reintegration demo`` calls :func:`train_demo_models` once, after ingesting its synthetic
panel, so the dashboards show a champion and a challenger side by side and the worklist has
risks with reasons from the first run.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from models.index_training import train_index
from models.promotion import promote
from models.risk_training import train_risk
from reintegration.policy import cli_caller
from reintegration.settings import Settings

DEMO_ACTOR = "demo"


def train_demo_models(engine: sa.Engine, settings: Settings) -> list[str]:
    """Train both models on the stored panel; promote the risk model, keep the index challenger.

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
    promoted: dict[str, Any] = promote(
        engine,
        "risk",
        risk["version"],
        reason="the demo's first early-warning model",
        force=False,
        caller=cli_caller(DEMO_ACTOR),
        settings=settings,
    )
    auc = risk["model"]["roc_auc"]
    baseline = risk["baseline"]["roc_auc"]
    return [
        f"Derived index {index['label']} registered as challenger (n={index['n']}; "
        f"correlation with {index['champion_label']}: {index['correlation']:.3f}); "
        "the champion stays rss-v1-provisional until an M&E officer promotes it.",
        f"Early-warning model version {risk['version']}: ROC AUC {auc:.3f} on held-out "
        f"returnees (logistic baseline {baseline:.3f}); promoted to champion, "
        f"{promoted['risks']} returnees given a risk with reasons.",
    ]
