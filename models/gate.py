"""The promotion gate of the risk model: per subgroup, a paired bootstrap interval of the AUC drop.

A challenger is compared with the champion on the same held-out returnees, overall and in every
subgroup (sex, child or adult, return type, their intersections) that has at least ``min_group``
returnees and at least :data:`MIN_EVENTS` returnees of each outcome (not sustainable, and
sustainable): below that, an AUC rests on a handful of pairs and its interval is too wide to
decide anything (Hanley & McNeil 1982: with 10 returnees of each outcome the standard error of
an AUC of 0.8 is about 0.10). In each such group the drop ``champion AUC - challenger AUC`` gets
a paired bootstrap interval: the held-out returnees are resampled (within each outcome) and both
versions' AUCs are computed on the same replicate, in every group at once. The intervals are
*simultaneous* 95% intervals over the compared groups (the max-t method: each group's drop is
standardised by its bootstrap standard deviation and the 95th percentile of the largest
standardised deviation over groups is the common critical value; Romano & Wolf 2005), because
the gate looks at some thirty groups: with separate 95% intervals an equally good challenger
would be refused about one time in ten (2 of 20 pairs in a simulation like that of
``tests/models/test_gate.py``). The gate refuses only where an interval's **lower bound**
exceeds the tolerance, that is where the data show the challenger to be worse by more than the
tolerance, not where they merely cannot rule it out. The replicates come from one random stream
fixed by :data:`models.bootstrap.SEED`, so a decision can be reproduced.

The figures here are exact and stay in memory; what is shown or stored of them passes
:mod:`models.disclosure_models`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from models.bootstrap import LEVEL, SEED, stratified_counts, weighted_auc
from models.evaluation import OVERALL, _labels, group_name, group_sets

MIN_EVENTS = 10
"""Fewest returnees of each outcome (events and non-events) a group needs to be compared."""
REPLICATES = 1000
"""Bootstrap replicates of the gate (shared by every group)."""


def comparable(y: np.ndarray, *, min_group: int, min_events: int = MIN_EVENTS) -> bool:
    """Whether a group is large enough, with enough of each outcome, to be compared.

    Examples
    --------
    >>> comparable(np.array([1] * 25 + [0] * 10), min_group=30)
    True
    >>> comparable(np.array([1] * 40 + [0] * 9), min_group=30)
    False
    """
    events = int(np.sum(y))
    return len(y) >= min_group and events >= min_events and len(y) - events >= min_events


def groups_of(frame: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """Overall, then each subgroup and intersection: (name, boolean mask over ``frame``)."""
    out = [(OVERALL, np.ones(len(frame), dtype=bool))]
    for columns in group_sets():
        labels = _labels(frame.reset_index(drop=True), columns)
        for values, part in labels.groupby(list(columns), sort=True):
            values = values if isinstance(values, tuple) else (values,)
            mask = np.zeros(len(frame), dtype=bool)
            mask[part.index.to_numpy()] = True
            out.append((group_name(columns, values), mask))
    return out


def compare(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    groups: pd.DataFrame,
    *,
    tolerance: float,
    min_group: int,
    min_events: int = MIN_EVENTS,
    replicates: int = REPLICATES,
    seed: int = SEED,
    masks: Sequence[tuple[str, np.ndarray]] | None = None,
) -> list[dict[str, Any]]:
    """The gate's rows: one per comparable group, with the interval of the drop and the verdict.

    Parameters
    ----------
    y : ndarray
        Held-out outcomes (1 = not sustainable).
    challenger, champion : ndarray
        Both versions' predicted risks for the same returnees.
    groups : DataFrame
        The subgroup columns of those returnees (``sex``, ``age_group``, ``return_type``).
    tolerance : float
        The largest AUC drop accepted (``REINTEGRATION_PROMOTION_TOLERANCE``).
    min_group, min_events : int
        A group is compared with at least ``min_group`` returnees and ``min_events`` of each
        outcome; the others are left out (they are neither passed nor refused).
    replicates, seed : int
        Of the bootstrap.
    masks : sequence, optional
        Precomputed :func:`groups_of` of ``groups`` (to compare many pairs quickly).

    Returns
    -------
    list of dict
        group, n, champion, challenger (AUCs), change (challenger - champion), drop_low,
        drop_high (the simultaneous 95% interval of champion - challenger), refused
        (drop_low > tolerance). Exact figures, small groups included: publish them through
        the disclosure rule.
    """
    y = np.asarray(y)
    challenger, champion = np.asarray(challenger), np.asarray(champion)
    counts = stratified_counts(y, replicates, np.random.default_rng(seed))
    ones = np.ones(len(y))
    found = []
    for name, mask in masks if masks is not None else groups_of(groups):
        part = y[mask]
        if not comparable(part, min_group=min_group, min_events=min_events):
            continue
        rows = np.flatnonzero(mask)
        old, new = (
            weighted_auc(score[rows], part, ones[rows])[0] for score in (champion, challenger)
        )
        drops = weighted_auc(champion[rows], part, counts, rows) - weighted_auc(
            challenger[rows], part, counts, rows
        )
        found.append((name, len(rows), old, new, drops))
    if not found:
        return []
    exact = np.array([old - new for _, _, old, new, _ in found])
    replicated = np.stack([drops for *_, drops in found], axis=1)  # replicates x groups
    spread = np.nanstd(replicated, axis=0)
    scale = np.where(spread > 0, spread, 1.0)
    with np.errstate(invalid="ignore"):
        largest = np.nanmax(np.abs(replicated - exact) / scale, axis=1)
    critical = float(np.nanquantile(largest, LEVEL)) if np.isfinite(largest).any() else 0.0
    out: list[dict[str, Any]] = []
    for (name, n, old, new, _), drop, sd in zip(found, exact, spread, strict=True):
        low, high = drop - critical * sd, drop + critical * sd
        out.append(
            {
                "group": name,
                "n": n,
                "champion": float(old),
                "challenger": float(new),
                "change": float(-drop),
                "drop_low": float(low),
                "drop_high": float(high),
                "refused": bool(low > tolerance),
            }
        )
    return out
