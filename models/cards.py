"""Model cards: one Markdown document per registered version, logged with its run.

A card says what the version was made from, how well it does overall and for each subgroup,
how it is calibrated, what drives it, and what it cannot do. Group sizes follow the
small-cell suppression of DESIGN.md; a card carries counts and metrics, never rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from models.evaluation import INSUFFICIENT, OVERALL, shown_n, suppressed_groups


def _number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _subgroup_rows(rows: Sequence[Mapping[str, Any]], min_cell: int) -> list[list[str]]:
    hidden = suppressed_groups(rows, min_cell)
    out = []
    for r in rows:
        n = shown_n(r["n"], min_cell, r["group"] in hidden)
        if not r["sufficient"]:
            out.append([r["group"], n, INSUFFICIENT, "", ""])
        else:
            out.append(
                [
                    r["group"],
                    n,
                    _number(r["roc_auc"]),
                    _number(r["average_precision"]),
                    _number(r["brier"]),
                ]
            )
    return out


def risk_card(
    *,
    version: int,
    data: Mapping[str, Any],
    model: Mapping[str, Any],
    baseline: Mapping[str, Any],
    subgroups: Sequence[Mapping[str, Any]],
    calibration: Sequence[Mapping[str, Any]],
    importance: Sequence[Mapping[str, Any]],
    bands: Mapping[str, float],
    min_group: int,
    min_cell: int,
) -> str:
    """The card of a ``reintegration-risk`` version (Markdown)."""
    beats = (
        model["roc_auc"] is not None
        and baseline["roc_auc"] is not None
        and model["roc_auc"] > baseline["roc_auc"]
    )
    verdict = (
        "The gradient-boosting model beats the logistic-regression baseline on held-out "
        "returnees (ROC AUC)."
        if beats
        else "**The gradient-boosting model does not beat the logistic-regression baseline** on "
        "held-out returnees (ROC AUC); consider whether its extra complexity is warranted."
    )
    calibration_rows = [
        [
            f"{c['bin_low']:.1f}–{c['bin_high']:.1f}",
            shown_n(c["n"], min_cell),
            _number(c["mean_predicted"]) if c["n"] >= min_cell else "–",
            _number(c["observed"]) if c["n"] >= min_cell else "–",
        ]
        for c in calibration
    ]
    importance_rows = [
        [imp["feature"], _number(imp["mean"], 4), _number(imp["sd"], 4)] for imp in importance
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
                    ["returnees with a first survey and a follow-up", str(data["n"])],
                    ["training returnees", str(data["n_train"])],
                    ["held-out returnees (grouped by returnee)", str(data["n_test"])],
                    ["share not sustainable at the follow-up", _number(data["positive_rate"])],
                    ["data version of the store", str(data["data_version"])],
                ],
            ),
            "Features, all from the first survey: the coded items, the dimension scores and "
            "composite computed from them, sex, age at return, return type, country, the "
            "assistance recorded, and months since return. Nothing from the follow-up.",
            "## Metrics on held-out returnees",
            _table(
                ["model", "ROC AUC", "average precision", "Brier score"],
                [
                    [
                        name,
                        _number(m["roc_auc"]),
                        _number(m["average_precision"]),
                        _number(m["brier"]),
                    ]
                    for name, m in (
                        ("gradient boosting, calibrated (this version)", model),
                        ("logistic regression (baseline)", baseline),
                    )
                ],
            ),
            verdict,
            f"## By subgroup\n\nGroups with fewer than {min_group} held-out returnees, or with "
            f"only one outcome, show {INSUFFICIENT!r}; sizes below {min_cell} are suppressed.",
            _table(
                ["group", "n", "ROC AUC", "average precision", "Brier score"],
                _subgroup_rows(subgroups, min_cell),
            ),
            "## Calibration (held-out returnees)",
            _table(["predicted", "n", "mean predicted", "observed"], calibration_rows),
            "## What drives it\n\nPermutation importance on held-out returnees: the drop in "
            "ROC AUC when one input is shuffled (mean and standard deviation over repeats).",
            _table(["input", "importance", "sd"], importance_rows),
            "## Risk bands\n\n"
            f"low below {bands['medium_from']:.3f}, medium from {bands['medium_from']:.3f}, "
            f"high from {bands['high_from']:.3f} (thirds of the held-out returnees' predicted "
            "risk at training time). Each risk row also names the weakest dimension and the "
            "lowest-scoring items of the first survey.",
            "## Known limits\n\n"
            "- Returnees lost to follow-up have no outcome and are not in the data: if they "
            "differ from those followed up, so may the model's risks for people like them.\n"
            "- The outcome is the index's *sustainable* flag, whose thresholds are provisional; "
            "a new index version changes the outcome, so retrain after promoting one.\n"
            "- A risk is a prediction for people like this returnee, not a judgement of them, "
            "and not a cause: assistance recorded at the first survey is associated with, not "
            "proven to change, the outcome.\n"
            "- Subgroups marked insufficient were not evaluated; the model may do worse there.\n"
            "- Metrics come from one held-out split; small groups vary from split to split.",
        ]
    )


def index_card(
    *,
    label: str,
    version: int,
    provenance: Mapping[str, Any],
    weights: Sequence[Mapping[str, Any]],
    dimension_weights: Mapping[str, float],
    explained_variance: Mapping[str, float] | None,
    zero_variance: Sequence[str],
    correlation: float | None,
    shift: Sequence[Mapping[str, Any]],
    champion_label: str | None,
    min_cell: int,
) -> str:
    """The card of an ``rss-index`` version (Markdown)."""
    weight_rows = [
        [
            w["dimension"],
            w["item"],
            _number(w["weight"]),
            _number(w.get("loading")),
            "yes" if w.get("zero_variance") else "",
        ]
        for w in weights
    ]
    parts = [
        f"# rss-index, version {version}: {label}",
        "## Provenance",
        _table(["", "value"], [[k, str(v)] for k, v in provenance.items()]),
        "## Weights",
        "Item weights within each dimension sum to 1. Dimension weights: "
        + ", ".join(f"{d} {w:.3f}" for d, w in dimension_weights.items())
        + ".",
        _table(["dimension", "item", "weight", "loading", "no variance"], weight_rows),
    ]
    if explained_variance:
        parts.append(
            "Share of the standardised items' variance explained by the first principal "
            "component: " + ", ".join(f"{d} {v:.3f}" for d, v in explained_variance.items()) + "."
        )
    if zero_variance:
        parts.append(
            "Items without variance in the data window keep their dimension's smallest weight: "
            + ", ".join(zero_variance)
            + "."
        )
    if champion_label is not None:
        hidden = {r["group"] for r in shift if r.get("suppressed")}
        shift_rows = [
            [
                r["group"],
                shown_n(r["n"], min_cell, r["group"] in hidden),
                _number(r["composite_champion"]),
                _number(r["composite_challenger"]),
                _signed(r["composite_change"]),
                _number(r["sustainable_champion"]),
                _number(r["sustainable_challenger"]),
                _signed(r["sustainable_change"]),
            ]
            for r in shift
        ]
        parts += [
            f"## Against the champion ({champion_label})",
            f"Correlation of the composite with the champion's: {_number(correlation)}. "
            "Mean composite and share sustainable, each returnee at their latest interview:",
            _table(
                [
                    "group",
                    "n",
                    "composite (champion)",
                    "composite (this)",
                    "change",
                    "sustainable (champion)",
                    "sustainable (this)",
                    "change",
                ],
                shift_rows,
            ),
        ]
    parts.append(
        "## Known limits\n\n"
        "- Weights describe which items vary together in this data window; they are not "
        "evidence that an item matters more for a returnee's life.\n"
        "- Levels and the sustainable flag keep the spec's provisional thresholds.\n"
        "- Scores from different index versions are not comparable without saying so; every "
        "stored score names its version.\n"
        "- A promotion is a methodological decision: it needs a reason and is audited."
    )
    return "\n\n".join(parts)


def overall(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The overall row of a list of group rows."""
    return next(r for r in rows if r["group"] == OVERALL)
