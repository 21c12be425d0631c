"""Assistance associations: each assistance type against none, raw and adjusted.

Returnees are not assigned assistance at random: programmes reach some groups more than
others (voluntary rather than forced returnees, some countries more than others), and those
groups score differently anyway. The raw gap between the returnees who received a type and
those who received none mixes the two. :func:`associations` gives, per type, that raw gap
beside the gap *adjusted* for sex, age group, return type, country and months since return,
each with a 95% interval, and a check of the overlap of the two groups' covariates.

Method (``docs/methods.md``, "Assistance associations"):

- comparison: the returnees who received the type (whatever else they received) against the
  returnees with no assistance recorded, each at the record the caller chose (the
  analytics use each returnee's latest scored survey in the filter window);
- raw: ordinary least squares of the figure on the type indicator alone, which is exactly the
  difference of the two means;
- adjusted (regression adjustment): least squares of the figure on the indicator plus
  indicators of sex, age group, return type and country (each missing value a level of its
  own; levels seen fewer than twice pooled with the reference) and a linear spline of months
  since return (knots at 3, 6, 12 and 18 months). The coefficient of the indicator is the
  association adjusted for those covariates: an average of the within-covariate gaps, not an
  effect, since anything unrecorded that drives both assistance and outcomes remains;
- standard errors robust to unequal variances (HC2, which for the raw gap is Welch's), or
  clustered by ``cluster`` (interviewer, say) when given, with Student-t intervals (residual
  degrees of freedom, or clusters - 1);
- overlap: a logistic model of receiving the type on the same covariates gives each returnee
  a propensity; the common support is the range of propensities both groups reach. The share
  of each group outside it is reported, and overlap is poor when either share exceeds
  :data:`POOR_OVERLAP` (then the adjusted gap extrapolates from covariates one group hardly
  has, and the answer says so).

References: Imbens, G. W. and Rubin, D. B. (2015), *Causal Inference for Statistics, Social,
and Biomedical Sciences*, ch. 12 and 14 (regression adjustment, overlap); Crump, R. K. et
al. (2009), "Dealing with limited overlap in estimation of average treatment effects",
*Biometrika* 96(1); MacKinnon, J. G. and White, H. (1985) for HC2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from sklearn.linear_model import LogisticRegression

from reintegration.disclosure import Protection, uniforms
from reintegration.summaries import KEY_MODULUS

COVARIATES = ("sex", "age_group", "return_type", "country")
MONTHS = "months_since_return"
MONTH_KNOTS = (3.0, 6.0, 12.0, 18.0)
REFERENCE = "none"
SHARE = "sustainable"  # a 0/1 column: its gap is a difference of shares
POOR_OVERLAP = 0.10
MIN_GROUP = 2
COLUMNS = (
    "assistance",
    "treated",
    "untreated",
    "raw_difference",
    "raw_low",
    "raw_high",
    "adjusted_difference",
    "adjusted_low",
    "adjusted_high",
    "treated_outside_support",
    "untreated_outside_support",
    "overlap",
    "note",
)
POOR_OVERLAP_NOTE = (
    "poor overlap: {treated:.0%} of those who received it and {untreated:.0%} of those who "
    "received none lie outside the range of covariates the other group has, so the adjusted "
    "gap leans on the model there"
)
TOO_FEW_NOTE = "too few returnees in a group ({treated} with it, {untreated} with none)"
UNWEIGHTED_NOTE = "unweighted: some of these returnees have no weight"
NOT_SEPARABLE_NOTE = (
    "not adjustable: receiving it is fixed by the covariates (every returnee of some group "
    "received it, or none did)"
)


@dataclass(frozen=True)
class Fit:
    """One coefficient with its 95% interval.

    Parameters
    ----------
    estimate, low, high : float
    """

    estimate: float
    low: float
    high: float


def associations(
    records: pd.DataFrame,
    codes: pd.Series,
    figure: str = "composite",
    *,
    cluster: str | None = None,
    min_group: int = MIN_GROUP,
    types: Sequence[str] | None = None,
    weight: str | None = None,
) -> pd.DataFrame:
    """Each assistance type against none: the raw and the adjusted gap in ``figure``.

    Parameters
    ----------
    records : DataFrame
        One row per returnee: ``figure``, the :data:`COVARIATES`, ``months_since_return`` and,
        when given, the ``cluster`` column. Rows whose ``figure`` is missing are left out.
    codes : Series
        Aligned with ``records``: each returnee's assistance codes (a list; empty, or only
        ``"none"``, for none).
    figure : str, default "composite"
    cluster : str, optional
        A column whose values are clusters (interviewers): standard errors clustered on it.
    min_group : int, default 2
        Smallest size of each compared group for a gap to be estimated.
    types : sequence of str, optional
        Only these types (those received by no one are left out); default every type
        received by anyone, sorted.
    weight : str, optional
        A column of design or retention weights: weighted least squares when every compared
        returnee has a positive weight; unweighted, and the note says so, when some have none.

    Returns
    -------
    DataFrame
        One row per type, with the columns of :data:`COLUMNS`:
        the group sizes, the raw and adjusted gap (received minus none) with their 95%
        intervals, the share of each group outside the common support, ``overlap`` ("adequate",
        "limited" or None when not estimated) and a ``note`` (why a gap is missing, or the
        overlap warning). A returnee who received several types counts under each.

    Examples
    --------
    >>> rows = pd.DataFrame({"composite": [0.2, 0.3, 0.5, 0.6], "sex": "female",
    ...     "age_group": "adult", "return_type": "forced", "country": "SEN",
    ...     "months_since_return": [2.0, 3.0, 2.5, 3.5]})
    >>> got = associations(rows, pd.Series([[], [], ["cash"], ["cash"]]))
    >>> got[["assistance", "treated", "untreated", "raw_difference"]].round(2).to_dict("records")
    [{'assistance': 'cash', 'treated': 2, 'untreated': 2, 'raw_difference': 0.3}]
    """
    codes = pd.Series(list(codes), index=records.index, dtype=object)
    known = records[figure].notna().to_numpy()
    records, codes = records[known], codes[known]
    lists = codes.map(
        lambda c: [x for x in c if x != REFERENCE] if isinstance(c, list | tuple) else []
    )
    found = sorted({c for cs in lists for c in cs})
    types = found if types is None else [t for t in types if t in found]
    none = lists.map(len).to_numpy() == 0
    rows = []
    for code in types:
        has = lists.map(lambda cs, code=code: code in cs).to_numpy()
        sample = has | none
        rows.append(
            compare(
                records[sample],
                has[sample],
                figure,
                cluster=cluster,
                min_group=min_group,
                weight=weight,
            )
            | {"assistance": code}
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def compare(
    records: pd.DataFrame,
    treated: np.ndarray,
    figure: str,
    *,
    cluster: str | None = None,
    min_group: int = MIN_GROUP,
    weight: str | None = None,
) -> dict[str, Any]:
    """The raw and adjusted gap in ``figure`` between ``treated`` rows and the others.

    Parameters
    ----------
    records : DataFrame
        The compared returnees (see :func:`associations`); ``figure`` known on every row.
    treated : ndarray of bool
        Which rows received the assistance; the others received none.
    figure : str
    cluster : str, optional
    min_group : int, default 2
    weight : str, optional

    Returns
    -------
    dict
        The keys of :data:`COLUMNS` but ``assistance``.
    """
    treated = np.asarray(treated, dtype=bool)
    y = records[figure].to_numpy(np.float64)
    n_treated, n_untreated = int(treated.sum()), int((~treated).sum())
    out: dict[str, Any] = dict.fromkeys(COLUMNS)
    out |= {"treated": n_treated, "untreated": n_untreated}
    if min(n_treated, n_untreated) < max(min_group, 2):
        out["note"] = TOO_FEW_NOTE.format(treated=n_treated, untreated=n_untreated)
        return out
    groups = None if cluster is None else records[cluster].to_numpy()
    weights, unweighted = _weights(records, weight)
    indicator = treated.astype(np.float64)[:, None]
    raw = _ols(y, indicator, groups, weights)
    if raw is not None:
        out |= {"raw_difference": raw.estimate, "raw_low": raw.low, "raw_high": raw.high}
    covariates = design(records)
    adjusted = _ols(y, np.hstack([indicator, covariates]), groups, weights)
    if adjusted is None:
        out["note"] = NOT_SEPARABLE_NOTE
        return out
    out |= {
        "adjusted_difference": adjusted.estimate,
        "adjusted_low": adjusted.low,
        "adjusted_high": adjusted.high,
    }
    share_treated, share_untreated = overlap(covariates, treated)
    poor = max(share_treated, share_untreated) > POOR_OVERLAP
    out |= {
        "treated_outside_support": share_treated,
        "untreated_outside_support": share_untreated,
        "overlap": "limited" if poor else "adequate",
        "note": _note(poor, share_treated, share_untreated, unweighted),
    }
    return out


def _note(poor: bool, treated: float, untreated: float, unweighted: bool) -> str | None:
    notes = [POOR_OVERLAP_NOTE.format(treated=treated, untreated=untreated)] if poor else []
    if unweighted:
        notes.append(UNWEIGHTED_NOTE)
    return "; ".join(notes) or None


def _weights(records: pd.DataFrame, weight: str | None) -> tuple[np.ndarray | None, bool]:
    """The weights of ``records`` (None: unweighted) and whether some were missing."""
    if weight is None or weight not in records:
        return None, False
    values = pd.to_numeric(records[weight], errors="coerce").to_numpy(np.float64)
    given = np.isfinite(values) & (values > 0)
    if given.all():
        return values, False
    return None, bool(given.any())


def design(records: pd.DataFrame) -> np.ndarray:
    """The covariate columns of the adjustment (no intercept, no constant column).

    Indicators of every level of each of :data:`COVARIATES` but the most common (a missing
    value is a level of its own; a level seen fewer than twice joins the most common), then
    ``months_since_return`` and its hinges ``max(months - knot, 0)`` at :data:`MONTH_KNOTS`.

    Examples
    --------
    >>> rows = pd.DataFrame({"sex": ["f", "f", "m", "m", "x"], "age_group": "adult",
    ...     "return_type": "forced", "country": "SEN",
    ...     "months_since_return": [1.0, 2.0, 4.0, 7.0, 13.0]})
    >>> design(rows).shape
    (5, 5)
    """
    columns: list[np.ndarray] = []
    for name in COVARIATES:
        values = records[name].astype(object).where(records[name].notna(), "(missing)")
        counts = values.value_counts()
        reference = counts.index[0]
        for level, count in counts.items():
            if level != reference and count >= 2:
                columns.append((values == level).to_numpy(np.float64))
    months = records[MONTHS].to_numpy(np.float64)
    months = np.where(np.isnan(months), np.nanmedian(months) if len(months) else 0.0, months)
    columns.append(months)
    columns.extend(np.maximum(months - knot, 0.0) for knot in MONTH_KNOTS)
    matrix = np.column_stack(columns) if columns else np.empty((len(records), 0))
    varies = matrix.std(axis=0) > 0 if len(matrix) else np.zeros(matrix.shape[1], bool)
    return matrix[:, varies]


def _ols(
    y: np.ndarray,
    regressors: np.ndarray,
    groups: np.ndarray | None,
    weights: np.ndarray | None = None,
) -> Fit | None:
    """The first regressor's coefficient (an intercept added) with its robust 95% interval;
    None when it is not identified (the regressor lies in the span of the others) or no
    residual degree of freedom is left."""
    x = sm.add_constant(regressors, has_constant="add")
    x = _independent(x)
    if x is None or x.shape[0] <= x.shape[1]:
        return None
    model = sm.OLS(y, x) if weights is None else sm.WLS(y, x, weights=weights)
    if groups is not None and len(np.unique(groups)) >= 2:
        _, codes = np.unique(groups, return_inverse=True)
        fit = model.fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
    else:
        fit = model.fit(cov_type="HC2", use_t=True)
        if not np.isfinite(fit.bse[1]):  # a row with leverage 1: HC1 has no such division
            fit = model.fit(cov_type="HC1", use_t=True)
    low, high = fit.conf_int(alpha=0.05)[1]
    return Fit(float(fit.params[1]), float(low), float(high))


def _independent(x: np.ndarray) -> np.ndarray | None:
    """``x`` without the covariate columns that repeat earlier ones (kept in order), or None
    when the indicator (column 1) is itself a combination of the intercept and covariates."""
    # rank(x[:, S]) = rank(r[:, S]) for x = qr: small matrices, however many rows.
    r: np.ndarray = np.asarray(np.linalg.qr(x, mode="r"))
    kept = [0]
    for j in range(2, x.shape[1]):
        if np.linalg.matrix_rank(r[:, [*kept, j]]) == len(kept) + 1:
            kept.append(j)
    # The indicator is identified when it adds to the rank of the intercept and covariates.
    if np.linalg.matrix_rank(r[:, [*kept, 1]]) == len(kept):
        return None
    return x[:, [0, 1, *kept[1:]]]


def overlap(covariates: np.ndarray, treated: np.ndarray) -> tuple[float, float]:
    """The share of treated and of untreated rows outside the common support.

    Propensities come from a logistic regression of ``treated`` on ``covariates``
    (standardised, lightly penalised so that a covariate which separates the groups gives
    propensities near 0 or 1 rather than no answer). The common support is the interval from
    the larger of the two groups' smallest propensities to the smaller of their largest.

    Examples
    --------
    >>> x = np.array([[0.0], [0.0], [1.0], [1.0], [2.0], [2.0]])
    >>> overlap(x, np.array([False, False, False, True, True, True]))
    (0.6666666666666666, 0.6666666666666666)
    """
    treated = np.asarray(treated, dtype=bool)
    if covariates.shape[1] == 0:
        return 0.0, 0.0
    scaled = (covariates - covariates.mean(axis=0)) / covariates.std(axis=0)
    model = LogisticRegression(C=100.0, solver="newton-cholesky", max_iter=200)
    propensity = model.fit(scaled, treated).predict_proba(scaled)[:, 1]
    # Rounded: propensities equal up to the solver's precision are the same support.
    propensity = np.round(propensity, 6)
    on, off = propensity[treated], propensity[~treated]
    low, high = max(on.min(), off.min()), min(on.max(), off.max())
    outside = (propensity < low) | (propensity > high)
    return float(outside[treated].mean()), float(outside[~treated].mean())


def raw_from_published(
    table: pd.DataFrame, figure: str, types: Sequence[str], *, reference: str = REFERENCE
) -> pd.DataFrame:
    """The raw gap of each type against ``reference`` from published means, sds and counts.

    What protected answers use: the difference of the two published (perturbed) means, with
    Welch's 95% interval from the published sds and returnee counts, so that the gap is the
    one a reader sees between the bars.

    Parameters
    ----------
    table : DataFrame
        An assistance table: ``assistance``, ``returnees``, ``{figure}_mean``, ``{figure}_sd``
        (for ``"sustainable"``, ``share_sustainable``).
    figure : str
        A score, or ``"sustainable"``: the gap in the share sustainable.
    types : sequence of str
    reference : str, default "none"

    Returns
    -------
    DataFrame
        ``assistance``, ``raw_difference``, ``raw_low``, ``raw_high`` (missing where a mean,
        sd or count below 2 is).
    """
    rows = table.set_index("assistance")
    if figure == SHARE:
        # A share's sd from the share itself: sqrt(p (1 - p) n / (n - 1)).
        share, n = rows["share_sustainable"].astype(float), rows["returnees"].astype(float)
        sd = np.sqrt(share * (1 - share) * n / (n - 1).where(n > 1))
        rows = rows.assign(sustainable_mean=share, sustainable_sd=sd)
    parts = (f"{figure}_mean", f"{figure}_sd", "returnees")
    out = []
    for code in types:
        gap = low = high = np.nan
        if code in rows.index and reference in rows.index:
            gap, low, high = welch(
                *(float(rows.at[g, c]) for g in (code, reference) for c in parts)
            )
        out.append({"assistance": code, "raw_difference": gap, "raw_low": low, "raw_high": high})
    return pd.DataFrame(out, columns=["assistance", "raw_difference", "raw_low", "raw_high"])


def welch(
    mean_a: float, sd_a: float, n_a: float, mean_b: float, sd_b: float, n_b: float
) -> tuple[float, float, float]:
    """``mean_a - mean_b`` with Welch's 95% interval (Welch-Satterthwaite degrees of freedom).

    Examples
    --------
    >>> [round(v, 4) for v in welch(0.6, 0.1, 10, 0.5, 0.1, 10)]
    [0.1, 0.006, 0.194]
    """
    values = np.array([mean_a, sd_a, n_a, mean_b, sd_b, n_b], dtype=np.float64)
    if np.isnan(values).any() or min(n_a, n_b) < 2:
        return np.nan, np.nan, np.nan
    va, vb = sd_a**2 / n_a, sd_b**2 / n_b
    gap, se = mean_a - mean_b, float(np.sqrt(va + vb))
    if se == 0:
        return gap, gap, gap
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    half = float(stats.t.ppf(0.975, df)) * se
    return gap, gap - half, gap + half


def perturbed_adjusted(
    table: pd.DataFrame,
    records: pd.DataFrame,
    codes: pd.Series,
    figure: str,
    protection: Protection,
) -> pd.DataFrame:
    """``table`` (from :func:`associations`) with each adjusted gap and its bounds moved by
    cell-key noise, as protected answers publish them (``docs/privacy.md``, "Adjusted
    assistance associations").

    One returnee moves an adjusted gap by about their residual over the size of their group,
    at most about ``1 / n`` for scores in ``[0, 1]``, ``n`` the smaller group. So the gap moves
    by a uniform amount of at most ``sum_noise / n``, drawn from the key of the records
    compared (both groups' record keys summed modulo ``2**31``) and a stream named after the
    type and the figure: the same comparison always gets the same noise, and two answers that
    differ by one returnee get unrelated noise, not that returnee's influence.
    """
    out = table.copy()
    scored = records[figure].notna().to_numpy()
    keys = records["record_key"].to_numpy(np.int64)
    lists = [list(c) if isinstance(c, list) else [] for c in codes]
    untreated = np.array([not c or c == [REFERENCE] for c in lists], dtype=bool) & scored
    for at, row in out.iterrows():
        code, n = row["assistance"], min(row["treated"], row["untreated"])
        if pd.isna(row.get("adjusted_difference")) or not n or pd.isna(n):
            continue
        treated = np.array([code in c for c in lists], dtype=bool) & scored
        key = int(keys[treated | untreated].sum() % KEY_MODULUS)
        u = uniforms(np.array([key]), f"adjusted:{code}:{figure}")[0]
        shift = protection.sum_noise * (2.0 * u - 1.0) / float(n)
        for column in ("adjusted_difference", "adjusted_low", "adjusted_high"):
            out.loc[at, column] = row[column] + shift
    return out


def rounded(table: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """``table`` (from :func:`associations`) with every gap, bound and share rounded, and
    the overlap note said from the rounded shares: what protected answers publish.

    Examples
    --------
    >>> row = {"assistance": "cash", "raw_difference": 0.12345, "treated_outside_support": 0.123,
    ...        "untreated_outside_support": 0.0, "overlap": "limited", "note": "poor overlap: 12%"}
    >>> rounded(pd.DataFrame([row]))[["raw_difference", "note"]].to_dict("records")[0]
    {'raw_difference': 0.12, 'note': 'poor overlap: 12% of those who received it and 0% of \
those who received none lie outside the range of covariates the other group has, so the \
adjusted gap leans on the model there'}
    """
    out = table.copy()
    numbers = [c for c in out.columns if c.endswith(("_difference", "_low", "_high", "_support"))]
    for column in numbers:
        out[column] = pd.to_numeric(out[column], errors="coerce").round(decimals)
    if "overlap" in out:
        poor = (out["overlap"] == "limited").to_numpy()
        out.loc[poor, "note"] = [
            _note(True, t, u, UNWEIGHTED_NOTE in str(note))
            for t, u, note in zip(
                out.loc[poor, "treated_outside_support"],
                out.loc[poor, "untreated_outside_support"],
                out.loc[poor, "note"],
                strict=True,
            )
        ]
    return out
