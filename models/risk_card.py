"""The card of a ``reintegration-risk`` version: what it is, against the baseline rule, by group.

Built from the version's *published* evaluation (:mod:`models.disclosure_models`); its tables
of groups are those of :mod:`models.cards`, so :func:`models.cards.publishable_card` can rebuild
them when the card is served.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models import disclosure_models as rule
from models.cards import (
    _band_rates,
    _calibration_by_group,
    _n,
    _number,
    _signed,
    _table,
    calibration_markdown,
    subgroup_table,
)
from models.evaluation import INSUFFICIENT

BASELINE_WORDS = "1 − the composite of their first survey (lowest composite first)"


def _verdict(versus: Mapping[str, Any]) -> str:
    if versus.get("low") is None:
        return (
            "**This version is not shown to beat the baseline rule**: the held-out returnees "
            "do not have both outcomes, so no AUC can be compared. It will not be promoted."
        )
    interval = (
        f"ROC AUC {_number(versus['model_auc'])} against the baseline rule's "
        f"{_number(versus['baseline_auc'])} on {_n(versus['n'])} held-out returnees whose first "
        f"survey has a composite: difference {_signed(versus['difference'])}, paired bootstrap "
        f"95% interval {_signed(versus['low'])} to {_signed(versus['high'])} "
        f"({versus['replicates']} replicates, the same resampled returnees for both)."
    )
    if versus.get("beats"):
        return (
            f"{interval} **This version beats the baseline rule**: the whole interval is above 0."
        )
    return (
        f"{interval} **This version does not beat the baseline rule**: the interval does not lie "
        "above 0, so its extra complexity is not shown to rank returnees better than the first "
        "survey's composite alone. It will not be promoted; without a promoted model the "
        "worklist ranks by the baseline rule."
    )


def _exclusion_rows(found: Mapping[str, Any]) -> list[list[str]]:
    labels = (
        ("returnees", "returnees with a current interview"),
        ("no_first_survey", "left out: first interview more than 4 months after return"),
        ("no_follow_up", "left out: no follow-up 9 or more months after return"),
        ("follow_up_unscored", "left out: follow-up without a composite (outcome unknown)"),
        ("included", "included: first survey and outcome"),
    )
    return [[label, _n(found.get(key))] for key, label in labels if key in found]


def _temporal(found: Mapping[str, Any]) -> str:
    random_auc = _number(found.get("random_split_auc"))
    if "cutoff" not in found and not found.get("skipped"):
        return "Not done for this version."
    if found.get("skipped"):
        return (
            f"Not done: {found['skipped']}. ROC AUC on the random (key-fixed) held-out split: "
            f"{random_auc}."
        )
    return "\n\n".join(
        [
            f"Trained on returnees who returned before {found['cutoff']}, tested on those who "
            "returned from then on (whole monthly cohorts on each side).",
            _table(
                ["split", "returnees trained on", "returnees tested", "ROC AUC", "baseline rule"],
                [
                    [
                        f"later cohorts (from {found['cutoff']})",
                        _n(found.get("n_train")),
                        _n(found.get("n_test")),
                        _number(found.get("model_auc")),
                        _number(found.get("baseline_auc")),
                    ],
                    ["random held-out returnees (this version)", "", "", random_auc, ""],
                ],
            ),
        ]
    )


def risk_card(
    *,
    version: int,
    data: Mapping[str, Any],
    evaluation: Mapping[str, Any],
    min_group: int,
    min_cell: int,
) -> str:
    """The card of a ``reintegration-risk`` version (Markdown), from its published evaluation."""
    model, baseline = evaluation["model"], evaluation["baseline"]
    bands = evaluation["bands"]
    n = rule.rounded(data["n"], min_cell)
    importance_rows = [
        [imp["feature"], _number(imp["mean"], 4), _number(imp["sd"], 4)]
        for imp in evaluation.get("importance", [])
    ]
    return "\n\n".join(
        [
            f"# reintegration-risk, version {version}",
            "Early warning: the probability that a returnee is **not sustainable** (RSS.md) at "
            "their first follow-up 9 or more months after return, from what is known at their "
            "first survey (within 4 months of return).",
            "## Data",
            _table(
                ["", "value"],
                [
                    ["outcome defined with the index", str(data["index_label"])],
                    ["returnees with a first survey and a follow-up", _n(n)],
                    ["training returnees", _n(rule.rounded(data["n_train"], min_cell))],
                    [
                        "held-out returnees (grouped by returnee)",
                        _n(rule.rounded(data["n_test"], min_cell)),
                    ],
                    [
                        "share not sustainable at the follow-up",
                        _number(rule.published_share(data["positive_rate"], n)),
                    ],
                    ["data version of the store", str(data["data_version"])],
                ],
            ),
            "## Who is left out\n\nThe model can only learn from, and be checked on, returnees "
            "with a first survey and an outcome. Those lost to follow-up are left out; if they "
            "differ from those followed up, so may the model's risks for people like them.",
            _table(["", "returnees"], _exclusion_rows(evaluation.get("exclusions") or {})),
            "Features, all from the first survey: the coded items, the dimension scores and "
            "composite computed from them, sex, age at return, return type, country, the "
            "assistance recorded, and months since return. Nothing from the follow-up.",
            "## Against the baseline rule\n\nThe baseline rule ranks returnees by "
            f"{BASELINE_WORDS}. A version beats it only when the lower bound of the paired "
            "bootstrap 95% interval of the AUC difference is above 0.",
            _table(
                [
                    "model",
                    "held-out returnees",
                    "ROC AUC",
                    "average precision",
                    "prevalence",
                    "Brier score",
                ],
                [
                    [
                        name,
                        _n(m.get("n")),
                        _number(m.get("roc_auc")),
                        _number(m.get("average_precision")),
                        _number(m.get("prevalence")),
                        _number(m.get("brier")),
                    ]
                    for name, m in (
                        ("gradient boosting, calibrated (this version)", model),
                        ("baseline rule (1 − first-survey composite)", baseline),
                    )
                ],
            ),
            "Average precision is read against the prevalence (the share not sustainable among "
            "the held-out returnees): a random ranking scores the prevalence. The baseline rule "
            "is a ranking, not a probability, so it has no Brier score; it ranks only returnees "
            "whose first survey has a composite.",
            _verdict(evaluation.get("versus_baseline") or {}),
            f"## By subgroup\n\nGroups with fewer than {min_group} held-out returnees, or with "
            f"only one outcome, show {INSUFFICIENT!r}.",
            rule.rule_sentence(min_cell),
            subgroup_table(evaluation.get("subgroups") or [], min_cell),
            "## Calibration (held-out returnees)",
            rule.rule_sentence(min_cell),
            calibration_markdown(evaluation.get("calibration") or [], min_cell),
            "## Calibration by group\n\nObserved share not sustainable against the mean "
            f"predicted risk, per group of at least {min_group} held-out returnees.",
            rule.rule_sentence(min_cell),
            _calibration_by_group(evaluation.get("calibration_by_group") or [], min_cell),
            "## Temporal validation",
            _temporal(evaluation.get("temporal") or {}),
            "## What drives it\n\nPermutation importance on held-out returnees: the drop in "
            "ROC AUC when one input is shuffled (mean and standard deviation over repeats).",
            _table(["input", "importance", "sd"], importance_rows),
            "## Risk bands\n\n"
            f"low below {bands['medium_from']:.3f}, medium from {bands['medium_from']:.3f}, "
            f"high from {bands['high_from']:.3f}: absolute risks set by the analyst "
            "(REINTEGRATION_RISK_BANDS). Held-out returnees in each band:",
            rule.rule_sentence(min_cell),
            _band_rates(evaluation.get("band_rates") or [], min_cell),
            "Each risk row also names the weakest dimension and the lowest-scoring items of the "
            "first survey.",
            "## Known limits\n\n"
            "- The outcome is the index's *sustainable* flag, whose thresholds are provisional; "
            "a new index version changes the outcome, so retrain after promoting one.\n"
            "- A risk is a prediction for people like this returnee, not a judgement of them, "
            "and not a cause: assistance recorded at the first survey is associated with, not "
            "proven to change, the outcome.\n"
            "- Subgroups marked insufficient were not evaluated; the model may do worse there.\n"
            "- Metrics come from one held-out split; small groups vary from split to split.",
        ]
    )
