"""Population stability index (PSI) of each item: recent answers against a reference.

Coded items take a handful of values (an option's value, or not applicable), so each distinct
value is a bin; missing answers are left out, and n counts the answers compared. A reference is
kept as counts per bin (JSON-ready, no rows), so a model version can carry the distribution of
its training data. PSI = Σ (p_now − p_ref) · ln(p_now / p_ref); shares are floored at
:data:`FLOOR` so a bin empty on one side gives a large, finite value. Usual reading: below 0.1
stable, 0.1–0.25 moderate shift, above 0.25 a shift worth a look.

A PSI of a handful of answers is noise (four answers put at least a quarter of the mass in
each bin they touch), so an item's PSI is computed only when both the batch and the reference
have at least :data:`MIN_ROWS` answers to it; otherwise it is None and the item reads "too few
rows" (``docs/methods.md``, "Drift").
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

FLOOR = 1e-4
STABLE_BELOW = 0.1
SHIFT_FROM = 0.25
MIN_ROWS = 30
"""Fewest answers to an item, in the batch and in the reference, for its PSI to be computed."""
TOO_FEW = "too few rows"
STABLE = "stable"
MODERATE = "moderate shift"
MAJOR = "major shift"


def _bin(value: float) -> str:
    return f"{value:.6g}"


def counts(values: np.ndarray | pd.Series) -> dict[str, int]:
    """Answers per distinct coded value (missing left out), keyed by the value as text.

    Examples
    --------
    >>> counts(np.array([1.0, 0.5, 1.0, np.nan, -1.0]))
    {'-1': 1, '0.5': 1, '1': 2}
    """
    array = np.asarray(values, dtype=np.float64)
    observed = array[~np.isnan(array)]
    keys, n = np.unique(observed, return_counts=True)
    return {_bin(float(k)): int(c) for k, c in zip(keys, n, strict=True)}


def reference(items: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Counts per value of every item column: the reference a model version carries."""
    return {str(name): counts(items[name]) for name in items.columns}


def psi(ref: Mapping[str, int], now: Mapping[str, int]) -> float | None:
    """Population stability index of two distributions given as counts per bin.

    Returns
    -------
    float or None
        None when either side has no answers.

    Examples
    --------
    >>> psi({"0": 50, "1": 50}, {"0": 50, "1": 50})
    0.0
    >>> round(psi({"0": 90, "1": 10}, {"0": 50, "1": 50}), 4)
    0.8789
    """
    total_ref, total_now = sum(ref.values()), sum(now.values())
    if total_ref == 0 or total_now == 0:
        return None
    bins = sorted(set(ref) | set(now))
    p_ref = np.maximum(np.array([ref.get(b, 0) for b in bins]) / total_ref, FLOOR)
    p_now = np.maximum(np.array([now.get(b, 0) for b in bins]) / total_now, FLOOR)
    return float(np.sum((p_now - p_ref) * np.log(p_now / p_ref)))


def status(value: float | None, n: int | float | None, min_rows: int = MIN_ROWS) -> str:
    """How a PSI reads: "too few rows" (no PSI, or fewer than ``min_rows`` answers), "stable",
    "moderate shift" or "major shift".

    Examples
    --------
    >>> status(0.9, 4), status(None, 200), status(0.05, 200), status(0.3, 200)
    ('too few rows', 'too few rows', 'stable', 'major shift')
    """
    if value is None or n is None or pd.isna(value) or pd.isna(n) or n < min_rows:
        return TOO_FEW
    if value < STABLE_BELOW:
        return STABLE
    return MODERATE if value < SHIFT_FROM else MAJOR


def item_psi(
    ref: Mapping[str, Mapping[str, int]], items: pd.DataFrame, *, min_rows: int = MIN_ROWS
) -> pd.DataFrame:
    """PSI of each item of ``items`` against the reference counts.

    Parameters
    ----------
    ref : mapping
        Item id -> counts per value (see :func:`reference`); an item absent from it has PSI
        None.
    items : DataFrame
        The recent interviews' coded items.
    min_rows : int, default MIN_ROWS
        Fewest answers to an item on each side (batch and reference) for its PSI.

    Returns
    -------
    DataFrame
        ``item``, ``psi`` (float, or None with fewer than ``min_rows`` answers on either side),
        ``n`` (answers in the batch), ``n_reference`` (in the reference) and ``status`` (see
        :func:`status`), one row per column.

    Examples
    --------
    >>> batch = pd.DataFrame({"q": [1.0, 0.0, 1.0, 1.0]})
    >>> table = item_psi({"q": {"0": 500, "1": 500}}, batch)
    >>> table[["item", "psi", "n", "status"]].to_dict("records")
    [{'item': 'q', 'psi': None, 'n': 4, 'status': 'too few rows'}]
    """
    rows = []
    for name in items.columns:
        now = counts(items[name])
        before = ref.get(name, {})
        n, n_ref = sum(now.values()), sum(before.values())
        value = psi(before, now) if min(n, n_ref) >= min_rows else None
        rows.append(
            {
                "item": str(name),
                "psi": value,
                "n": n,
                "n_reference": n_ref,
                "status": status(value, min(n, n_ref), min_rows),
            }
        )
    return pd.DataFrame(rows, columns=["item", "psi", "n", "n_reference", "status"])
