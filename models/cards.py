"""Model cards: one Markdown document per registered version, logged with its run.

A card says what the version was made from, how well it does overall and for each subgroup,
how it is calibrated, what drives it, and what it cannot do. A card carries counts and
metrics, never rows, and its tables of groups follow :mod:`models.disclosure_models`: the card
functions publish what they are given through it, and :func:`publishable_card` rebuilds those
tables of a stored card from its version's published evaluation when the card is served, so a
card written before the rule loses its small groups when read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from models import disclosure_models as rule
from models.evaluation import INSUFFICIENT, OVERALL

SUBGROUP_HEADER = ("group", "n", "ROC AUC", "average precision", "Brier score")
CALIBRATION_HEADER = ("predicted", "n", "mean predicted", "observed")
GROUP_RATE_HEADER = ("n", "mean predicted", "observed")
SHIFT_HEADER = (
    "group",
    "n",
    "composite (champion)",
    "composite (this)",
    "change",
    "sustainable (champion)",
    "sustainable (this)",
    "change",
)
_RULE = re.compile(r"Groups with fewer than \d+ returnees are not listed")
_OLD_SUPPRESSION = re.compile(r"; sizes below \d+ are suppressed\.")
WITHDRAWN = (
    "(Table withdrawn: this version was registered before groups were published by the "
    "disclosure rule, and its evaluation is not there to rebuild the table from.)"
)


def _number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _n(n: int | None) -> str:
    return "–" if n is None else str(n)


def subgroup_table(subgroups: Sequence[Mapping[str, Any]], min_cell: int) -> str:
    """The card's table of a risk model's metrics by subgroup, published by the rule."""
    rows = []
    for r in rule.publish_risk_evaluation({"subgroups": subgroups}, min_cell)["subgroups"]:
        if not r["sufficient"]:
            rows.append([r["group"], _n(r["n"]), INSUFFICIENT, "", ""])
        else:
            rows.append(
                [
                    r["group"],
                    _n(r["n"]),
                    _number(r.get("roc_auc")),
                    _number(r.get("average_precision")),
                    _number(r.get("brier")),
                ]
            )
    return _table(SUBGROUP_HEADER, rows)


def calibration_markdown(calibration: Sequence[Mapping[str, Any]], min_cell: int) -> str:
    """The card's calibration table: bins of at least ``min_cell`` returnees, published."""
    published = rule.publish_risk_evaluation({"calibration": calibration}, min_cell)
    rows = [
        [
            f"{c['bin_low']:.1f}–{c['bin_high']:.1f}",
            _n(c["n"]),
            _number(c["mean_predicted"]),
            _number(c["observed"]),
        ]
        for c in published["calibration"]
    ]
    return _table(CALIBRATION_HEADER, rows)


def shift_table(shift: Sequence[Mapping[str, Any]], min_cell: int) -> str:
    """The card's table of how an index version moves figures, published by the rule."""
    rows = [
        [
            r["group"],
            _n(r["n"]),
            _number(r["composite_champion"]),
            _number(r["composite_challenger"]),
            _signed(r["composite_change"]),
            _number(r["sustainable_champion"]),
            _number(r["sustainable_challenger"]),
            _signed(r["sustainable_change"]),
        ]
        for r in rule.publish_shift(shift, min_cell)
    ]
    return _table(SHIFT_HEADER, rows)


def group_rate_table(rows: Sequence[Mapping[str, Any]], min_cell: int, first: str) -> str:
    """Calibration by group (``first="group"``) or the risk bands (``"band"``), published."""
    key = "calibration_by_group" if first == "group" else "band_rates"
    published = rule.publish_risk_evaluation({key: rows}, min_cell)[key]
    body = [
        [r["group"], _n(r["n"]), _number(r["mean_predicted"]), _number(r["observed"])]
        for r in published
    ]
    return _table((first, *GROUP_RATE_HEADER), body)


def _calibration_by_group(rows: Sequence[Mapping[str, Any]], min_cell: int) -> str:
    return group_rate_table(rows, min_cell, "group")


def _band_rates(rows: Sequence[Mapping[str, Any]], min_cell: int) -> str:
    return group_rate_table(rows, min_cell, "band")


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
        _table(["", "value"], _value_rows([[k, str(v)] for k, v in provenance.items()], min_cell)),
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
        parts += [
            f"## Against the champion ({champion_label})",
            f"Correlation of the composite with the champion's: {_number(correlation)}. "
            "Mean composite and share sustainable, each returnee at their latest interview:",
            rule.rule_sentence(min_cell),
            shift_table(shift, min_cell),
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


def _value_rows(rows: Sequence[Sequence[str]], min_cell: int) -> list[list[str]]:
    """Rows of a two-column table with every whole number of returnees rounded."""
    out = []
    for label, value in rows:
        if "returnees" in label and value.strip().isdigit():
            value = _n(rule.rounded(int(value), min_cell))
        out.append([label, value])
    return out


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _rebuilt(header: Sequence[str], evaluation: Mapping[str, Any] | None, min_cell: int) -> str:
    found = evaluation if isinstance(evaluation, Mapping) else {}
    if header[0] == "predicted":
        key = "calibration"
    elif header[0] == "band":
        key = "band_rates"
    elif "composite (champion)" in header:
        key = "shift"
    elif "mean predicted" in header:
        key = "calibration_by_group"
    else:
        key = "subgroups"
    if key not in found:
        return WITHDRAWN
    return _RENDERERS[key](found[key] or [], min_cell)


_RENDERERS = {
    "calibration": calibration_markdown,
    "calibration_by_group": _calibration_by_group,
    "band_rates": _band_rates,
    "shift": shift_table,
    "subgroups": subgroup_table,
}


def publishable_card(text: str, evaluation: Mapping[str, Any] | None, min_cell: int) -> str:
    """A stored card as it may be served: its tables of groups rebuilt by the rule.

    The tables of groups (by subgroup, calibration, against the champion) are rendered again
    from the version's evaluation, published by :mod:`models.disclosure_models`, each after the
    rule's sentence; numbers of returnees in the data and provenance tables are rounded. A
    card written under the rule comes back unchanged; one written before it loses its small
    groups and exact sizes. Without an evaluation to rebuild from, a table of groups is
    withdrawn rather than served as stored.

    Parameters
    ----------
    text : str
        The card as stored (Markdown).
    evaluation : mapping or None
        The version's stored evaluation artifact.
    min_cell : int
    """
    out: list[str] = []
    for block in text.split("\n\n"):
        if _RULE.match(block):
            continue  # put back, with today's threshold, before the table it belongs to
        if not block.startswith("|"):
            out.append(_OLD_SUPPRESSION.sub(".", block))
            continue
        lines = block.splitlines()
        header = _cells(lines[0])
        if header[:2] == ["", "value"]:
            body = _value_rows([_cells(line)[:2] for line in lines[2:]], min_cell)
            out.append(_table(header, body))
        elif len(header) > 1 and header[0] in ("group", "predicted", "band") and header[1] == "n":
            out += [rule.rule_sentence(min_cell), _rebuilt(header, evaluation, min_cell)]
        else:
            out.append(block)
    return "\n\n".join(out)


def overall(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The overall row of a list of group rows."""
    return next(r for r in rows if r["group"] == OVERALL)
