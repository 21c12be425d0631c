"""Population stability index (PSI) of each item: recent answers against a reference.

Coded items take a handful of values (an option's value, or not applicable), so each distinct
value is a bin; missing answers are left out, and n counts the answers compared. A reference is
kept as counts per bin (JSON-ready, no rows), so a model version can carry the distribution of
its training data. PSI = Σ (p_now − p_ref) · ln(p_now / p_ref); shares are floored at
:data:`FLOOR` so a bin empty on one side gives a large, finite value. Usual reading: below 0.1
stable, 0.1–0.25 moderate shift, above 0.25 a shift worth a look.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

FLOOR = 1e-4
STABLE_BELOW = 0.1
SHIFT_FROM = 0.25


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


def item_psi(ref: Mapping[str, Mapping[str, int]], items: pd.DataFrame) -> pd.DataFrame:
    """PSI of each item of ``items`` against the reference counts.

    Parameters
    ----------
    ref : mapping
        Item id -> counts per value (see :func:`reference`); an item absent from it has PSI
        None.
    items : DataFrame
        The recent interviews' coded items.

    Returns
    -------
    DataFrame
        ``item``, ``psi`` (float or None) and ``n`` (answers compared), one row per column.
    """
    rows = []
    for name in items.columns:
        now = counts(items[name])
        rows.append({"item": str(name), "psi": psi(ref.get(name, {}), now), "n": sum(now.values())})
    return pd.DataFrame(rows, columns=["item", "psi", "n"])
