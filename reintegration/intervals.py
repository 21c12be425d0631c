"""95% intervals a survey statistician would sign (``docs/methods.md``, "Intervals").

Every estimate is a ratio: a weighted mean ``ȳ = Σ w·y / Σ w`` (a share is the mean of a 0/1
indicator; without weights every ``w`` is 1). Its variance is estimated by Taylor linearisation
with enumerators as primary sampling units (PSUs), sampled with replacement, no strata: with
``z_c = Σ_{i in c} w_i (y_i − ȳ)`` the linearised total of cluster ``c`` and ``C`` clusters,

    v(ȳ) = C / (C − 1) · Σ_c z_c² / (Σ w)²

and ``Σ_c z_c² = Q_yy − 2 ȳ Q_yw + ȳ² Q_ww`` from the per-cluster sums ``S_c = Σ w·y`` and
``W_c = Σ w``: ``Q_yy = Σ S_c²``, ``Q_yw = Σ S_c W_c``, ``Q_ww = Σ W_c²``. An interview without
an enumerator is its own cluster; with one interview per cluster and no weights, ``v`` is
``s² / n``, the usual variance of a mean. The reference distribution is Student's t with
``C − 1`` degrees of freedom (Korn and Graubard 1999, section 5.2).

- Means: ``ȳ ± t(0.975, C − 1) · √v``, clipped to ``[0, 1]``.
- Shares: Wilson's score interval on the effective sample size ``n / deff`` (``deff`` at least
  1, so never more than n), adjusted for the degrees of freedom as Korn and Graubard (1998)
  adjust theirs: ``n* = n / deff · (t(0.975, n − 1) / t(0.975, C − 1))²``. Without clusters
  (``C = n``) and weights this is Wilson's interval itself; with few clusters it widens.
- The design effect ``deff = v / (s² / n)``, with ``s²`` the (weighted) sample variance; the
  effective n is ``n / deff``.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
Z_95 = 1.959963984540054


# Degrees of freedom below this are looked up in a table of the quantiles made once (every
# count of clusters an answer at a million interviews has); larger ones are asked of SciPy.
_TABLED = 2**16


@functools.lru_cache(maxsize=1)
def _table() -> np.ndarray:
    table = np.full(_TABLED, np.nan)
    table[1:] = stats.t.ppf(0.5 + CONFIDENCE / 2, np.arange(1, _TABLED))
    return table


def t_quantile(df: np.ndarray) -> np.ndarray:
    """Student's t quantile of 0.975 for each number of degrees of freedom (missing below 1;
    a fractional one taken down to its integer part).

    Examples
    --------
    >>> t_quantile(np.array([1, 7, 1000, 0, 100000])).round(3).tolist()
    [12.706, 2.365, 1.962, nan, 1.96]
    """
    df = np.asarray(df, dtype=np.float64)
    out = np.full(df.shape, np.nan)
    known = np.isfinite(df) & (df >= 1)
    whole = np.floor(np.where(known, df, 0.0)).astype(np.int64)
    small = known & (whole < _TABLED)
    out[small] = _table()[whole[small]]
    large = known & ~small
    if large.any():
        out[large] = stats.t.ppf(0.5 + CONFIDENCE / 2, whole[large])
    return out


def linearised_variance(
    mean: np.ndarray,
    weight_total: np.ndarray,
    clusters: np.ndarray,
    q_yy: np.ndarray,
    q_yw: np.ndarray,
    q_ww: np.ndarray,
) -> np.ndarray:
    """The Taylor-linearised variance of a ratio mean from its per-cluster sums (see above);
    missing below two clusters.

    Examples
    --------
    Three interviews, each its own cluster, no weights: the variance of the mean, ``s² / n``.

    >>> y = np.array([0.2, 0.4, 0.9])
    >>> v = linearised_variance(np.array([y.mean()]), np.array([3.0]), np.array([3]),
    ...                         np.array([(y**2).sum()]), np.array([y.sum()]), np.array([3.0]))
    >>> bool(np.isclose(v[0], y.var(ddof=1) / 3))
    True
    """
    clusters = np.asarray(clusters, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = q_yy - 2 * mean * q_yw + mean**2 * q_ww
        variance = clusters / (clusters - 1) * np.clip(spread, 0.0, None) / weight_total**2
    return np.where(clusters > 1, variance, np.nan)


def design_effect(variance: np.ndarray, sd: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``variance / (sd² / n)``; 1 where the simple variance is zero, missing where unknown."""
    with np.errstate(invalid="ignore", divide="ignore"):
        simple = sd**2 / n
        deff = variance / simple
    return np.where(simple == 0, 1.0, deff)


def mean_interval(
    mean: np.ndarray, variance: np.ndarray, df: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Student-t 95% interval of a mean in ``[0, 1]``, clipped to that range.

    Examples
    --------
    >>> low, high = mean_interval(np.array([0.5]), np.array([0.01]), np.array([9]))
    >>> [round(float(low[0]), 4), round(float(high[0]), 4)]
    [0.2738, 0.7262]
    """
    half = t_quantile(df) * np.sqrt(variance)
    return np.clip(mean - half, 0.0, None), np.clip(mean + half, None, 1.0)


def wilson_interval(share: np.ndarray, n_effective: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wilson's 95% score interval of a share on an effective sample size; missing where it
    is not positive.

    Examples
    --------
    >>> low, high = wilson_interval(np.array([0.0, 0.5]), np.array([10.0, 10.0]))
    >>> [round(float(x), 4) for x in (low[0], high[0], low[1], high[1])]
    [0.0, 0.2775, 0.2366, 0.7634]
    """
    z = Z_95
    n = np.where(n_effective > 0, n_effective, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (share + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * np.sqrt(share * (1 - share) / n + z**2 / (4 * n**2))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def share_sample_size(n: np.ndarray, deff: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """The sample size of a share's Wilson interval: ``n / max(deff, 1)``, times
    ``(t(0.975, n − 1) / t(0.975, C − 1))²`` (Korn and Graubard's degrees of freedom).

    Examples
    --------
    >>> share_sample_size(np.array([100, 100]), np.array([1.0, 2.0]), np.array([100, 8])).round(1)
    array([100. ,  35.2])
    """
    n = np.asarray(n, dtype=np.float64)
    effective = n / np.clip(np.nan_to_num(deff, nan=1.0), 1.0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = t_quantile(n - 1) / t_quantile(np.asarray(clusters, dtype=np.float64) - 1)
    return effective * np.where(np.isfinite(ratio), ratio, 1.0) ** 2
