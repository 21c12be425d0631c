"""Interviewer (enumerator) effects: which interviews the flagged enumerators ran, and the
intra-class correlation of the composite with the enumerator as group.

Flagged enumerators are those :func:`reintegration.quality.enumerator_anomalies` flags on exact
figures, over every country, on the most recent ``quality.DEFAULT_LIMIT`` current interviews
(what the Data quality page shows an analyst with no batch selected): a deterministic function
of the stored data and the index version, so an answer that excludes them is cached per data
version like any other. Excluding them drops every current interview they ran, whatever its
date.

The intra-class correlation (ICC) is the one-way analysis-of-variance estimator (Donner 1986;
Searle, Casella and McCulloch 1992, ch. 3) with the unbalanced-design group size ``n0``, and the
F-based 95% interval that is exact for equal group sizes and an approximation otherwise. See
``docs/methods.md``, "Interviewer effects".
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from scipy import stats

from reintegration import quality
from reintegration.disclosure import KEY_MODULUS, Protection, perturb_counts
from reintegration.questionnaire import Questionnaire
from reintegration.store.engine import for_reading
from reintegration.store.schema import score, submission

LEVEL = 0.95


def flagged_enumerators(
    engine: sa.Engine, questionnaire: Questionnaire, index_version: str
) -> pd.DataFrame:
    """The enumerators :func:`reintegration.quality.enumerator_anomalies` flags, and the current
    interviews they ran.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    questionnaire : Questionnaire
    index_version : str
        The index label whose composite the flags compare.

    Returns
    -------
    DataFrame
        One row per current interview of a flagged enumerator: ``id`` (submission.id) and
        ``enumerator_id``; empty when no enumerator is flagged.
    """
    table = quality.enumerator_anomalies(engine, questionnaire, index_version=index_version)
    flagged = sorted(str(e) for e in table.loc[table["flagged"], "enumerator_id"])
    if not flagged:
        return pd.DataFrame({"id": pd.Series(dtype="int64"), "enumerator_id": pd.Series(dtype=str)})
    query = sa.select(submission.c.id, submission.c.enumerator_id).where(
        submission.c.current.is_(True), submission.c.enumerator_id.in_(flagged)
    )
    with for_reading(engine).connect() as conn:
        rows = conn.execute(query).all()
    out = pd.DataFrame(rows, columns=["id", "enumerator_id"])
    return out.astype({"id": "int64"}).sort_values("id", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Icc:
    """The intra-class correlation of a score with a grouping (one-way ANOVA estimator).

    Attributes
    ----------
    icc : float or None
        The estimate (can be slightly negative when groups differ less than chance would
        make them); None with fewer than two groups or no within-group spread to compare.
    low, high : float or None
        The 95% interval (F-based; exact for equal group sizes).
    groups : int
        Groups (enumerators) with at least one value.
    n : int
        Values (interviews).
    n0 : float or None
        The ANOVA's average group size, ``(N - sum n_j**2 / N) / (k - 1)``.
    design_effect : float or None
        ``1 + (n0 - 1) * max(icc, 0)``: how much a mean's variance grows over a simple random
        sample of the same size, when interviews cluster by enumerator as here.
    """

    icc: float | None
    low: float | None
    high: float | None
    groups: int
    n: int
    n0: float | None
    design_effect: float | None

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def icc_oneway(
    values: np.ndarray | pd.Series, groups: np.ndarray | pd.Series, *, level: float = LEVEL
) -> Icc:
    """One-way ANOVA intra-class correlation of ``values`` grouped by ``groups``.

    ``ICC = (MSB - MSW) / (MSB + (n0 - 1) MSW)``, with the interval from ``F = MSB / MSW``:
    ``F_L = F / F(1 - a/2; k - 1, N - k)``, ``F_U = F / F(a/2; k - 1, N - k)`` and each bound
    ``(F_x - 1) / (F_x + n0 - 1)``. Missing values are left out.

    Examples
    --------
    >>> est = icc_oneway(np.array([1.0, 1.1, 0.9, 3.0, 3.1, 2.9]), np.array([1, 1, 1, 2, 2, 2]))
    >>> round(est.icc, 3), est.groups, est.n
    (0.995, 2, 6)
    >>> icc_oneway(np.array([1.0, 2.0]), np.array(["a", "a"])).icc is None
    True
    """
    y = np.asarray(values, dtype=np.float64)
    g = np.asarray(groups, dtype=object)
    known = ~np.isnan(y) & pd.notna(g)
    y, g = y[known], g[known]
    n = len(y)
    codes = np.unique(g.astype(str), return_inverse=True)[1].reshape(-1)
    sizes = np.bincount(codes) if n else np.zeros(0, np.int64)
    k = int((sizes > 0).sum())
    if k < 2 or n - k < 1:
        return Icc(None, None, None, k, n, None, None)
    sums = np.bincount(codes, weights=y)
    means = sums / sizes
    grand = y.mean()
    msb = float(np.sum(sizes * (means - grand) ** 2) / (k - 1))
    msw = float(np.sum((y - means[codes]) ** 2) / (n - k))
    n0 = float((n - np.sum(sizes.astype(np.float64) ** 2) / n) / (k - 1))
    if msw <= 0:
        return Icc(None, None, None, k, n, n0, None)
    icc = (msb - msw) / (msb + (n0 - 1) * msw)
    f = msb / msw
    alpha = 1 - level
    f_low = f / stats.f.ppf(1 - alpha / 2, k - 1, n - k)
    f_high = f / stats.f.ppf(alpha / 2, k - 1, n - k)
    low = (f_low - 1) / (f_low + n0 - 1)
    high = min((f_high - 1) / (f_high + n0 - 1), 1.0)
    design = 1 + (n0 - 1) * max(icc, 0.0)
    return Icc(float(icc), float(low), float(high), k, n, n0, float(design))


def interviewer_icc(
    engine: sa.Engine,
    *,
    index_version: str,
    countries: Collection[str] | None = None,
    batch_id: str | None = None,
    limit: int = quality.DEFAULT_LIMIT,
    protected: bool = False,
    min_cell: int = quality.DEFAULT_MIN_CELL,
    protection: Protection = quality.DEFAULT_PROTECTION,
) -> dict[str, Any]:
    """The enumerator ICC of the composite over the interviews the Data quality page reads.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    index_version : str
        The index label whose stored composite is used (scored interviews only; interviews
        naming no enumerator are left out).
    countries, batch_id, limit
        As in :func:`reintegration.quality.missingness`.
    protected : bool
        Protected figures: only enumerators with at least ``min_cell`` scored interviews take
        part; the number of interviews is perturbed (cell key of their record keys); nothing
        is shown (``icc`` None, ``note`` saying why) when fewer than ``min_cell`` enumerators
        remain. False (default): exact, every enumerator.
    min_cell : int
    protection : Protection

    Returns
    -------
    dict
        ``icc``, ``low``, ``high``, ``groups`` (enumerators), ``n`` (interviews), ``n0``,
        ``design_effect`` (see :class:`Icc`), ``figures`` ("exact" or "protected") and
        ``note`` (a sentence, or None).
    """
    frame = quality._recent(
        engine,
        columns=[submission.c.enumerator_id, score.c.composite, submission.c.record_key],
        countries=countries,
        batch_id=batch_id,
        limit=limit,
        index_version=index_version,
    )
    composite = pd.to_numeric(frame["composite"], errors="coerce")
    frame = frame[frame["enumerator_id"].notna() & composite.notna()].assign(composite=composite)
    note = None
    if protected:
        sizes = frame.groupby("enumerator_id")["composite"].transform("size")
        frame = frame[sizes >= min_cell]
    estimate = icc_oneway(frame["composite"].to_numpy(), frame["enumerator_id"].to_numpy())
    out = estimate.as_dict()
    if protected:
        if estimate.groups < min_cell:
            out = dict.fromkeys(out)
            note = (
                f"Not shown in publishable figures: fewer than {min_cell} enumerators have at "
                f"least {min_cell} scored interviews."
            )
        else:
            keys = frame["record_key"].astype("int64").to_numpy()
            out["n"] = int(
                perturb_counts(
                    np.array([len(frame)]), np.array([int(keys.sum() % KEY_MODULUS)]), protection
                )[0]
            )
            note = (
                f"Over the enumerators with at least {min_cell} scored interviews; the number "
                "of interviews is perturbed for privacy."
            )
    elif estimate.icc is None:
        note = "Needs at least two enumerators with scored interviews, one with two or more."
    return {**out, "figures": "protected" if protected else "exact", "note": note}
