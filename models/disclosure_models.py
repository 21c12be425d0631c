"""What a model output may publish about groups of returnees (DESIGN.md, "Privacy rules").

Evaluations, model cards, promotion reports and the metrics of a version describe groups of
held-out returnees (sex, child or adult, return type, their intersections, bins of predicted
risk). One rule decides what of them is published; it runs when an output is stored and again
whenever a stored one is served, so versions registered before the rule lose their small groups
when they are read.

The rule
--------
1. A group with fewer than ``min_cell`` returnees is not published: no row, no name, no figure.
   Its metrics are computed (the promotion gate uses them in memory) but never stored. A group
   that is not listed may be empty or small: the two read the same.
2. Every published number of returnees (a group's n, the held-out and training totals, the
   returnees an index was derived from) is rounded to the nearest multiple of ``min_cell``
   (halves up). Every sum or difference of published sizes is then a multiple of ``min_cell``,
   so none equals a hidden group's size (1 to ``min_cell - 1``): a card that had "overall 251,
   adult 249" (so 2 children) says 250 and 250. This also covers a grouping with exactly one
   hidden group, whose complement would otherwise give it away (rounding instead of
   complementary suppression, which cannot be kept consistent over the overlapping groupings
   and intersections a card lists).
3. A share (a mean of yes or no: the share sustainable, the observed risk of a calibration bin)
   is published on its group's published size, ``round(share * n) / n`` with the rounded n:
   an exact share gives its exact denominator back (121/249 is no fraction over 248, 250, 251
   or 252), and with it the exact size that rule 2 hides. Its error is at most 1/(2n).
4. Other figures (ROC AUC, average precision, Brier score, mean composites and their changes,
   correlations) are published to :data:`DIGITS` decimals, as the cards print them.

Applied to something already published, the rule changes nothing, so serving a new version
through it costs nothing and serving an old one removes what it should not show.

What it does not promise: rounding is not additive, so an attacker combining every published
size of every grouping (an integer program over the intersections) bounds each hidden group,
and now and then the bounds meet (1 hidden group in 283 over 20 synthetic cards of 251
held-out returnees; ``tests/models/test_model_disclosure.py`` keeps it under 1 in 100). A
"sufficient" flag also says whether a group reached ``min_group``, which narrows a size near
that threshold.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

OVERALL = "overall"
DIGITS = 3
COUNT_KEYS = frozenset({"n", "n_test", "n_train", "returnees"})
"""Metrics and parameters of a run that count returnees (rule 2)."""
_RETURNEES = re.compile(r"\b(\d+) returnees\b")


def rule_sentence(min_cell: int) -> str:
    """The sentence every published table of groups carries.

    Examples
    --------
    >>> rule_sentence(5)[:72]
    'Groups with fewer than 5 returnees are not listed, and numbers of return'
    """
    return (
        f"Groups with fewer than {min_cell} returnees are not listed, and numbers of returnees "
        f"are rounded to a multiple of {min_cell}, so that no group can be worked out from the "
        "others."
    )


def rounded(n: float | int | None, min_cell: int) -> int | None:
    """A number of returnees rounded to the nearest multiple of ``min_cell`` (halves up).

    Examples
    --------
    >>> rounded(251, 5), rounded(249, 5), rounded(7, 5), rounded(8, 5), rounded(None, 5)
    (250, 250, 5, 10, None)
    >>> rounded(7, 1)  # a threshold of 1 hides nothing and rounds nothing
    7
    """
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return None
    base = max(int(min_cell), 1)
    return base * math.floor(int(round(float(n))) / base + 0.5)


def published_size(n: float | int | None, min_cell: int) -> int | None:
    """A group's size as published: None (not published) below ``min_cell``, else rounded.

    Examples
    --------
    >>> published_size(2, 5), published_size(0, 5), published_size(249, 5)
    (None, None, 250)
    """
    if n is None or float(n) < min_cell or float(n) <= 0:
        return None
    return rounded(n, min_cell)


def published_share(share: float | None, n: int | None) -> float | None:
    """A share published on its group's published size ``n`` (rule 3).

    Examples
    --------
    >>> published_share(121 / 249, 250), published_share(0.5, None)
    (0.484, None)
    """
    if share is None or n is None or n <= 0 or math.isnan(float(share)):
        return None
    return math.floor(float(share) * n + 0.5) / n


def figure(value: float | None) -> float | None:
    """Any other figure, to :data:`DIGITS` decimals (None stays None).

    Examples
    --------
    >>> figure(0.81234), figure(None)
    (0.812, None)
    """
    if value is None or math.isnan(float(value)):
        return None
    return round(float(value), DIGITS)


def _difference(a: float | None, b: float | None, n: int | None) -> float | None:
    """``b - a`` of two shares published on ``n``, as a whole number of 1/n steps."""
    if a is None or b is None or not n:
        return None
    return (math.floor(b * n + 0.5) - math.floor(a * n + 0.5)) / n


def publish_shift(rows: Sequence[Mapping[str, Any]], min_cell: int) -> list[dict[str, Any]]:
    """The published rows of an index comparison (``models.evaluation.index_shift``).

    Parameters
    ----------
    rows : sequence of mapping
        Overall first, then every subgroup and intersection: group, n, composite_champion,
        composite_challenger, composite_change, sustainable_champion, sustainable_challenger,
        sustainable_change, and (rows stored before this rule) suppressed.
    min_cell : int

    Returns
    -------
    list of dict
        The rows the rule keeps, with their sizes rounded and figures published. Nothing when
        the overall group itself is under ``min_cell``.
    """
    overall = next((r for r in rows if r["group"] == OVERALL), None)
    if overall is not None and published_size(overall["n"], min_cell) is None:
        return []
    out = []
    for row in rows:
        n = published_size(row["n"], min_cell)
        if n is None:
            continue
        a = published_share(row.get("sustainable_champion"), n)
        b = published_share(row.get("sustainable_challenger"), n)
        before = figure(row.get("composite_champion"))
        after = figure(row.get("composite_challenger"))
        change = figure(row.get("composite_change"))
        if before is not None and after is not None:
            change = figure(after - before)  # the change people read is that of the figures shown
        out.append(
            {
                "group": row["group"],
                "n": n,
                "composite_champion": before,
                "composite_challenger": after,
                "composite_change": change,
                "sustainable_champion": a,
                "sustainable_challenger": b,
                "sustainable_change": _difference(a, b, n),
                "suppressed": bool(row.get("suppressed", False)),
            }
        )
    return out


def _overall_metrics(metrics: Mapping[str, Any], min_cell: int) -> dict[str, Any]:
    out: dict[str, Any] = {"n": rounded(metrics.get("n"), min_cell)}
    for key, value in metrics.items():
        if key == "prevalence":  # a share: on the published n (rule 3)
            out[key] = published_share(value, out["n"])
        elif key not in ("n", "positives"):
            out[key] = figure(value) if isinstance(value, int | float) else value
    return out


def _subgroup(row: Mapping[str, Any], n: int) -> dict[str, Any]:
    return {
        "group": row["group"],
        "n": n,
        "sufficient": bool(row.get("sufficient", False)),
        **{m: figure(row.get(m)) for m in ("roc_auc", "average_precision", "brier") if m in row},
    }


def _calibration_bin(row: Mapping[str, Any], n: int) -> dict[str, Any]:
    return {
        "bin_low": row["bin_low"],
        "bin_high": row["bin_high"],
        "n": n,
        "mean_predicted": figure(row.get("mean_predicted")),
        "observed": published_share(row.get("observed"), n),
    }


def publish_risk_evaluation(evaluation: Mapping[str, Any], min_cell: int) -> dict[str, Any]:
    """The published evaluation of a risk model version.

    ``model`` and ``baseline`` keep their metrics (to :data:`DIGITS` decimals) and a rounded
    n; ``subgroups`` and ``calibration`` keep the groups and bins of at least ``min_cell``
    returnees, sizes rounded; counts of positives are not published (they are sizes of a group
    and an outcome together, and nothing shown needs them), the prevalence is a share on the
    published n. ``calibration_by_group`` and ``band_rates`` are published like calibration
    bins; ``versus_baseline``, ``temporal`` and ``exclusions`` get their counts of returnees
    rounded and their figures to :data:`DIGITS` decimals. Other keys (importance, bands)
    are kept as they are.
    """
    out = dict(evaluation)
    for key in ("model", "baseline"):
        if isinstance(out.get(key), Mapping):
            out[key] = _overall_metrics(out[key], min_cell)
    for key, shown in (
        ("subgroups", _subgroup),
        ("calibration", _calibration_bin),
        ("calibration_by_group", _group_rate),
        ("band_rates", _group_rate),
    ):
        if key in evaluation:
            out[key] = _published_rows(evaluation[key], min_cell, shown)
    for key in ("versus_baseline", "temporal", "exclusions"):
        if isinstance(evaluation.get(key), Mapping):
            out[key] = _counts_and_figures(evaluation[key], min_cell)
    return out


def _group_rate(row: Mapping[str, Any], n: int) -> dict[str, Any]:
    """A group's mean predicted risk and observed share (calibration by group, risk bands)."""
    return {
        "group": row["group"],
        "n": n,
        "mean_predicted": figure(row.get("mean_predicted")),
        "observed": published_share(row.get("observed"), n),
    }


def _counts_and_figures(found: Mapping[str, Any], min_cell: int) -> dict[str, Any]:
    """Exclusions, the comparison with the baseline rule, the temporal validation: numbers of
    returnees rounded (rule 2), AUCs and differences to DIGITS decimals (rule 4)."""
    out: dict[str, Any] = {}
    for key, value in found.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            out[key] = value
        elif key == "replicates":
            out[key] = value
        elif isinstance(value, int):
            out[key] = rounded(value, min_cell)
        else:
            out[key] = figure(value)
    return out


def _published_rows(
    rows: Any, min_cell: int, shown: Callable[[Mapping[str, Any], int], dict[str, Any]]
) -> list[dict[str, Any]]:
    """``shown(row, published n)`` of each row whose size may be published, in order."""
    kept = []
    for row in rows or []:
        n = published_size(row.get("n"), min_cell)
        if n is not None:
            kept.append(shown(row, n))
    return kept


def publish_evaluation(evaluation: Mapping[str, Any] | None, min_cell: int) -> Any:
    """A stored evaluation artifact as it may be served (an index's or a risk model's).

    Examples
    --------
    >>> old = {"shift": [{"group": "overall", "n": 251}, {"group": "age_group=child", "n": 2},
    ...                  {"group": "age_group=adult", "n": 249}]}
    >>> [(r["group"], r["n"]) for r in publish_evaluation(old, 5)["shift"]]
    [('overall', 250), ('age_group=adult', 250)]
    """
    if not isinstance(evaluation, Mapping):
        return evaluation
    out = dict(evaluation)
    if "shift" in evaluation:
        out["shift"] = publish_shift(evaluation.get("shift") or [], min_cell)
        if "correlation" in evaluation:
            out["correlation"] = figure(evaluation.get("correlation"))
        return out
    return publish_risk_evaluation(evaluation, min_cell)


def publish_comparison(rows: Sequence[Mapping[str, Any]], min_cell: int) -> list[dict[str, Any]]:
    """The published rows of a risk promotion report (ROC AUC of champion and challenger).

    The gate decides on the exact figures first (``refused`` is kept as decided); the rows
    shown, stored in the audit and returned keep groups of at least ``min_cell`` returnees,
    sizes rounded, AUCs and their change to :data:`DIGITS` decimals.
    """
    out = []
    for row in rows:
        n = published_size(row.get("n"), min_cell)
        if n is None:
            continue
        out.append(
            {
                **row,
                "n": n,
                "champion": figure(row.get("champion")),
                "challenger": figure(row.get("challenger")),
                "change": figure(row.get("change")),
            }
        )
    return out


def publish_metrics(metrics: Mapping[str, float], min_cell: int) -> dict[str, float]:
    """A run's metrics as served: counts of returnees rounded, the others to DIGITS decimals."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if key in COUNT_KEYS:
            count = rounded(value, min_cell)
            if count is not None:
                out[key] = float(count)
        else:
            published = figure(value)
            if published is not None:
                out[key] = published
    return out


def publish_params(params: Mapping[str, str], min_cell: int) -> dict[str, str]:
    """A run's parameters as served: those counting returnees rounded, the others as logged."""
    out = dict(params)
    for key in COUNT_KEYS & set(params):
        try:
            out[key] = str(rounded(float(params[key]), min_cell))
        except ValueError:
            continue
    return out


def publish_text(text: str | None, min_cell: int) -> str | None:
    """A sentence with "N returnees" in it, N rounded (descriptions of versions).

    Examples
    --------
    >>> publish_text("derived from 2498 returnees, start to end", 5)
    'derived from 2500 returnees, start to end'
    """
    if text is None:
        return None
    return _RETURNEES.sub(lambda m: f"{rounded(int(m.group(1)), min_cell)} returnees", text)
