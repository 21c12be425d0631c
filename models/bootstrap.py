"""Paired bootstrap intervals of a difference of ROC AUCs, vectorised.

Two rankings of the same returnees (a candidate model and the baseline rule, or a challenger and
the champion) are compared on the same resampled returnees: each bootstrap replicate draws the
returnees with replacement *within each outcome* (a stratified bootstrap, so every replicate has
both outcomes and an AUC, as pROC does by default), and both AUCs are computed on that one
replicate. The 95% interval is the 2.5th and 97.5th percentiles of the replicates' differences
(percentile bootstrap; Efron & Tibshirani 1993, ch. 13; for AUCs, Carpenter & Bithell 2000).

A replicate is a vector of counts (how often each returnee was drawn), so one replicate's AUC is
a weighted Mann–Whitney statistic; :func:`weighted_auc` computes it for every replicate at once
from one sort of the scores (ties count one half, as ``sklearn.metrics.roc_auc_score`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOOTSTRAP = 2000
"""Replicates per interval."""
SEED = 0
LEVEL = 0.95


def weighted_auc(
    scores: np.ndarray, y: np.ndarray, weights: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """ROC AUC of ``scores`` for each column of ``weights`` (ties count one half).

    Parameters
    ----------
    scores : ndarray, shape (n,)
        Higher means more at risk.
    y : ndarray, shape (n,)
        Outcomes, 1 (event) or 0.
    weights : ndarray, shape (n, B) or (n,)
        How often each returnee counts in each replicate (one column per replicate).
    rows : ndarray of int, optional
        The rows of ``weights`` that ``scores`` and ``y`` are (a group of a larger sample),
        taken without copying the others first.

    Returns
    -------
    ndarray, shape (B,)
        The AUC of each replicate (NaN where a replicate lacks an outcome).

    Examples
    --------
    >>> weighted_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]), np.ones(4))
    array([0.75])
    """
    scores = np.asarray(scores, dtype=np.float64)
    events = np.asarray(y).astype(bool)
    # Counts in float32 (whole numbers below 2**24: exact), products summed in float64.
    w = np.asarray(weights, dtype=np.float32)
    w = w[:, None] if w.ndim == 1 else w
    order = np.argsort(scores, kind="stable")
    ranked = scores[order]
    events = events[order]
    # Rows in the order of the scores (every pass below runs along rows), in one gather.
    w = w[order if rows is None else np.asarray(rows)[order]]
    positives = np.einsum("i,ij->j", events.astype(w.dtype), w, dtype=np.float64)
    negatives = w.sum(axis=0, dtype=np.float64) - positives
    if len(ranked) > 1 and np.any(ranked[1:] == ranked[:-1]):
        # Tied scores form one block: its negatives count half for its positives.
        starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
        pos = np.add.reduceat(w * events[:, None], starts, axis=0)
        neg = np.add.reduceat(w * ~events[:, None], starts, axis=0)
        below = np.cumsum(neg, axis=0)
        below -= 0.5 * neg
        wins = np.einsum("ij,ij->j", pos, below, dtype=np.float64)
    else:
        wins = _wins_without_ties(w, events, positives)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(wins / (positives * negatives))


def _wins_without_ties(w: np.ndarray, events: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """Weighted positive-negative pairs ranked rightly, for distinct scores in rising order.

    One pass of ``reduceat`` cuts the rows at each negative into runs of positives and the
    negatives' own rows; a negative loses to the positives ranked above it, that is all of them
    but the runs below it (a running sum over runs).
    """
    where = np.flatnonzero(~events)
    if len(where) == 0:
        return np.zeros(w.shape[1])
    cuts = np.column_stack([where, where + 1]).ravel()
    bounds = np.r_[0, cuts]
    if bounds[-1] == len(events):
        bounds = bounds[:-1]  # the run above the top negative is empty
    segments = np.add.reduceat(w, bounds, axis=0)
    # reduceat gives a row, not 0, for an empty run (two negatives in a row, one at the bottom)
    ends = np.r_[bounds[1:], len(events)]
    segments[ends == bounds] = 0.0
    runs, own = segments[0::2], segments[1::2]
    below = np.cumsum(runs[: len(where)], axis=0, dtype=np.float64)
    return np.einsum("ij,ij->j", own, positives - below, dtype=np.float64)


def stratified_counts(y: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap counts, shape (n, replicates): events and non-events each resampled to their
    own number, so every replicate keeps both outcomes in their observed numbers."""
    y = np.asarray(y).astype(bool)
    counts = np.zeros((len(y), replicates), dtype=np.float32)
    for members in (np.flatnonzero(y), np.flatnonzero(~y)):
        k = len(members)
        if k:
            # k draws with replacement per replicate, counted: the multinomial counts, faster
            # than ``rng.multinomial`` row by row.
            drawn = rng.integers(0, k, size=(replicates, k)) + np.arange(replicates)[:, None] * k
            found = np.bincount(drawn.ravel(), minlength=replicates * k).reshape(replicates, k)
            counts[members] = found.T
    return counts


@dataclass(frozen=True)
class PairedDifference:
    """AUC of two rankings on the same returnees and the interval of ``first - second``."""

    first: float
    second: float
    difference: float
    low: float
    high: float
    replicates: int


def paired_auc_difference(
    y: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    *,
    replicates: int = BOOTSTRAP,
    seed: int | np.random.Generator = SEED,
    level: float = LEVEL,
) -> PairedDifference:
    """AUC of ``first`` and of ``second``, and a paired bootstrap interval of their difference.

    Parameters
    ----------
    y : ndarray
        Outcomes (1 = not sustainable); both must occur.
    first, second : ndarray
        Two risk scores of the same returnees (higher = more at risk).
    replicates : int
        Bootstrap replicates (the same resampled returnees for both scores).
    seed : int or numpy Generator
        Fixes the replicates, so the same inputs give the same interval.
    level : float
        Coverage of the percentile interval.

    Returns
    -------
    PairedDifference
        ``difference`` is ``first - second`` on all returnees; ``low`` and ``high`` bound it.

    Examples
    --------
    >>> y = np.array([0, 0, 0, 1, 1, 1] * 20)
    >>> good = y + np.linspace(0, 0.9, 120)
    >>> found = paired_auc_difference(y, good, np.zeros(120), replicates=200)
    >>> round(found.second, 3), found.low > 0
    (0.5, True)
    """
    y = np.asarray(y)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    counts = stratified_counts(y, replicates, rng)
    ones = np.ones(len(y))
    a, b = weighted_auc(first, y, ones)[0], weighted_auc(second, y, ones)[0]
    differences = weighted_auc(first, y, counts) - weighted_auc(second, y, counts)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.nanpercentile(differences, [tail, 100.0 - tail])
    return PairedDifference(
        first=float(a),
        second=float(b),
        difference=float(a - b),
        low=float(low),
        high=float(high),
        replicates=replicates,
    )
