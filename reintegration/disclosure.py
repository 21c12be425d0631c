"""Disclosure control: what may be published of per-cell summaries (DESIGN.md, "Privacy rules").

Every published aggregate passes :func:`publish`. It takes per-cell *summaries* (see
:func:`reintegration.aggregate.summarise`): counts with the sum of their records' keys, and per
figure the number of values, their sum, sum of squares, largest absolute value and sample sd.
Without a :class:`Protection` it gives the exact figures with small-cell and complementary
suppression. With one it gives protected figures, by the cell-key method (``docs/privacy.md``):

- every stored interview carries a permanent random key in ``[0, 2**31)``; a count's key is the
  sum of the keys of the records it counts, modulo ``2**31``, so the same set of records always
  gets the same key, and any other set almost surely another;
- a count moves by a change drawn from the published perturbation table (:func:`ptable`), the
  draw being a fixed function of the count's key: a true zero stays zero, no count goes negative;
- a sum moves by a uniform amount of at most ``sum_noise`` times the cell's largest contribution,
  drawn from the key and a stream named after the figure, so each figure has its own noise;
- means, sds, intervals and shares are derived from the perturbed summaries only;
- a group whose perturbed count is under ``min_cell`` is not listed: such groups are gathered
  into one "other groups" cell, perturbed as a cell of its own.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reintegration.errors import ConfigurationError
from reintegration.intervals import (
    design_effect,
    linearised_variance,
    mean_interval,
    share_sample_size,
    wilson_interval,
)
from reintegration.summaries import KEY_MODULUS, LEVELS

Z_95 = 1.959963984540054
OTHER_LABEL = "other groups: fewer than {min_cell} each"
COUNT_STREAM = "count"
# The summary columns of a cell, besides the group columns: counts (each with a ``_key``) and,
# per figure, the suffixes below.
COUNTS = ("returnees", "unscored", "sustainable", *(f"level_{level}" for level in LEVELS))
FIGURE_PARTS = (
    "_n",
    "_key",
    "_wsum",
    "_sum",
    "_sumsq",
    "_clusters",
    "_qyy",
    "_qyw",
    "_qww",
    "_top",
    "_wtop",
    "_sd",
)
COUNT_PARTS = ("_key", "_wsum", "_clusters", "_qyy", "_qyw", "_qww", "_wtop")
SHARES = COUNTS[2:]
DEFF_DECIMALS = 1
_PROBABILITY_DECIMALS = 4
# Exact sums are rounded to a multiple of 2**-30 before their noise is added: the same records
# summed in another order differ in the last bits, and a binary grid holds every sum of scores
# with short binary fractions exactly (a decimal grid splits some of them on a half).
SUM_GRID = 2.0**30
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class Protection:
    """The parameters of protected figures (settings ``REINTEGRATION_PERTURB_*``).

    Parameters
    ----------
    max_count_change : int
        ``D``: no count moves by more than this.
    count_variance : float
        Variance of the change of a count of at least ``D`` (below ``D``, the change is
        narrower, never taking the count below zero); between 0 and ``D(D+1)/3`` excluded.
    sum_noise : float
        A sum moves by at most this many times the cell's largest contribution (uniformly).

    Raises
    ------
    ConfigurationError
        A parameter out of its range, naming its setting.

    Examples
    --------
    >>> Protection(max_count_change=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    reintegration.errors.ConfigurationError: max_count_change (...) must be a whole number ...
    """

    max_count_change: int = 4
    count_variance: float = 3.0
    sum_noise: float = 0.75

    def __post_init__(self) -> None:
        change = self.max_count_change
        if not isinstance(change, int | np.integer) or isinstance(change, bool):
            change = -1
        if not 1 <= change <= 20:
            raise ConfigurationError(
                "max_count_change (REINTEGRATION_PERTURB_MAX_COUNT_CHANGE) must be a whole "
                f"number from 1 to 20, not {self.max_count_change!r}."
            )
        widest = change * (change + 1) / 3
        if not 0 < _float(self.count_variance) < widest:
            raise ConfigurationError(
                "count_variance (REINTEGRATION_PERTURB_COUNT_VARIANCE) must be above 0 and below "
                f"{widest:g} (that of a change spread evenly over -{change}..{change}), "
                f"not {self.count_variance!r}."
            )
        if not 0 < _float(self.sum_noise) <= 10:
            raise ConfigurationError(
                "sum_noise (REINTEGRATION_PERTURB_SUM_NOISE) must be above 0 and at most 10 "
                f"(times a cell's largest contribution), not {self.sum_noise!r}."
            )


def _float(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
    return number if np.isfinite(number) else float("nan")


# -- the perturbation table ------------------------------------------------------------------------


def ptable(protection: Protection) -> pd.DataFrame:
    """The published count perturbation table.

    Row ``c`` (a true count; the last row holds for every count of at least ``D``) gives the
    probability of each change from ``-D`` to ``D``. Rows sum to 1 and have mean zero: the last
    row is a normal curve over ``-D..D`` scaled to the asked variance, row ``c < D`` the same
    curve cut to ``-c..c``; so a true zero stays zero and no count goes below zero. The
    probabilities are rounded to four decimals (the zero change takes the rounding), so the
    published table is exactly the one used.

    Returns
    -------
    DataFrame
        Index: the true counts ``0..D``; columns: the changes ``-D..D``.

    Examples
    --------
    >>> table = ptable(Protection(max_count_change=2, count_variance=1.0))
    >>> table.loc[0].tolist()
    [0.0, 0.0, 1.0, 0.0, 0.0]
    >>> bool((table.sum(axis=1).round(10) == 1).all())
    True
    """
    return _ptable(protection.max_count_change, float(protection.count_variance)).copy()


@functools.lru_cache(maxsize=16)
def _ptable(width: int, variance: float) -> pd.DataFrame:
    changes = np.arange(-width, width + 1)
    sigma = _sigma_for(width, variance)
    curve = np.exp(-(changes.astype(float) ** 2) / (2 * sigma**2))
    rows = []
    for count in range(width + 1):
        row = np.where(np.abs(changes) <= count, curve, 0.0)
        row = np.round(row / row.sum(), _PROBABILITY_DECIMALS)
        row[width] = 0.0
        row[width] = round(1.0 - row.sum(), _PROBABILITY_DECIMALS)
        rows.append(row)
    return pd.DataFrame(rows, index=pd.Index(range(width + 1), name="count"), columns=list(changes))


def _sigma_for(width: int, variance: float) -> float:
    """The spread of the normal curve whose cut to ``-width..width`` has ``variance``."""
    changes = np.arange(-width, width + 1, dtype=float)

    def variance_of(sigma: float) -> float:
        weights = np.exp(-(changes**2) / (2 * sigma**2))
        return float((weights * changes**2).sum() / weights.sum())

    low, high = 1e-3, 1e4
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if variance_of(middle) < variance else (low, middle)
    return (low + high) / 2


# -- draws from keys -------------------------------------------------------------------------------


def uniforms(keys: np.ndarray, stream: str) -> np.ndarray:
    """A fixed uniform number in ``[0, 1)`` per key for the named ``stream``.

    The splitmix64 finaliser of ``key * 2**32 + crc32(stream)``: the same key and stream give
    the same number in every process, and different streams of one key unrelated numbers.
    """
    salt = np.uint64(zlib.crc32(stream.encode("utf-8")))
    z = (np.asarray(keys, dtype=np.int64).astype(np.uint64) << np.uint64(32)) | salt
    with np.errstate(over="ignore"):
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX_1
        z = (z ^ (z >> np.uint64(27))) * _MIX_2
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def perturb_counts(counts: np.ndarray, keys: np.ndarray, protection: Protection) -> np.ndarray:
    """Counts moved by the change :func:`ptable` draws for their keys (never below zero)."""
    counts = np.asarray(counts, dtype=np.int64)
    cdf = _cdf(protection.max_count_change, float(protection.count_variance))
    rows = np.minimum(counts, protection.max_count_change)
    u = uniforms(keys, COUNT_STREAM)
    # The change is the first column whose cumulative probability exceeds u.
    picked = (u[:, None] >= cdf[rows][:, :-1]).sum(axis=1)
    return counts + picked - protection.max_count_change


@functools.lru_cache(maxsize=16)
def _cdf(width: int, variance: float) -> np.ndarray:
    cdf = _ptable(width, variance).to_numpy().cumsum(axis=1)
    cdf.flags.writeable = False
    return cdf


def sum_noise(keys: np.ndarray, top: np.ndarray, stream: str, protection: Protection) -> np.ndarray:
    """Noise for sums: uniform in ``±sum_noise × top``, drawn from each key and ``stream``."""
    spread = protection.sum_noise * np.nan_to_num(np.asarray(top, dtype=np.float64))
    return spread * (2.0 * uniforms(keys, stream) - 1.0)


# -- publishing ------------------------------------------------------------------------------------

# Columns as arrays: publishing works on a handful of cells, where numpy costs microseconds and
# each pandas operation tens of them.
Columns = dict[str, np.ndarray]


def group_columns(cells: pd.DataFrame, figures: Sequence[str]) -> list[str]:
    """The columns of ``cells`` that are not summaries: the groups, in order."""
    summaries = {*COUNTS, *(f"{c}{part}" for c in COUNTS for part in COUNT_PARTS)}
    summaries |= {f"{f}{part}" for f in figures for part in FIGURE_PARTS}
    return [c for c in cells.columns if c not in summaries]


def publish(
    cells: pd.DataFrame,
    *,
    figures: Sequence[str],
    min_cell: int,
    protection: Protection | None,
) -> pd.DataFrame:
    """What may be published of per-cell summaries; the last row of ``cells`` is the total.

    Parameters
    ----------
    cells : DataFrame
        Summaries from :func:`reintegration.summaries.summarise`: the group columns, then
        ``returnees``, ``unscored``, ``sustainable`` (``level_low/_medium/_high`` when levels are
        known), each with a ``_key`` column of record-key sums when protection is asked, and per
        figure ``_n``, ``_sum``, ``_sumsq``, then for protected figures ``_key`` and ``_top``
        (largest absolute value), for exact ones ``_sd`` (exact sample sd).
    figures : sequence of str
    min_cell : int
        Smallest number of returnees a cell may show.
    protection : Protection or None
        None: exact figures, small cells and a complement suppressed. Otherwise protected
        figures (see the module docstring).

    Returns
    -------
    DataFrame
        The group columns, ``returnees``, ``unscored``, ``{figure}_mean/_sd/_low/_high``,
        ``share_sustainable`` (``share_low/_medium/_high``), ``suppressed`` and
        ``unscored_suppressed``; protected figures add ``other`` (True on the row gathering the
        unlisted groups, its group values missing). The last row is the total.

    Raises
    ------
    ConfigurationError
        Protection asked of summaries without record keys.
    """
    groups = group_columns(cells, figures)
    columns = {c: cells[c].to_numpy() for c in cells.columns}
    return publish_columns(
        columns, groups=groups, figures=figures, min_cell=min_cell, protection=protection
    )


def publish_columns(
    cells: Columns,
    *,
    groups: Sequence[str],
    figures: Sequence[str],
    min_cell: int,
    protection: Protection | None,
) -> pd.DataFrame:
    """:func:`publish` of summaries given as columns (arrays by name, ``groups`` naming the
    group columns): for summaries made as arrays (``reintegration.cube``), without a
    DataFrame of them."""
    return pd.DataFrame(
        publish_table(
            cells, groups=groups, figures=figures, min_cell=min_cell, protection=protection
        )
    )


def publish_table(
    cells: Columns,
    *,
    groups: Sequence[str],
    figures: Sequence[str],
    min_cell: int,
    protection: Protection | None,
) -> Columns:
    """:func:`publish_columns` as columns (arrays by name): for a caller that reads a few of
    them (the stages, the overview's total), without a DataFrame."""
    groups = list(groups)
    if protection is None:
        return _exact(cells, groups, figures, min_cell)
    missing = [c for c in ("returnees_key", "unscored_key") if c not in cells]
    if missing:
        raise ConfigurationError(
            "Protected figures need each record's key (column record_key), and these "
            "summaries have none."
        )
    return _protected(cells, groups, figures, min_cell, protection)


def _exact(cells: Columns, groups: list[str], figures: Sequence[str], min_cell: int) -> Columns:
    n_rows = {f: cells[f"{f}_n"].astype(np.float64) for f in figures}
    weights = {f: _weight_total(cells, f) for f in figures}
    means = {f: _ratio(cells[f"{f}_sum"], weights[f]) for f in figures}
    sds = {f: np.where(n_rows[f] > 1, cells[f"{f}_sd"].astype(np.float64), np.nan) for f in figures}
    deffs = {f: _design_effect(cells, f, means[f], sds[f], n_rows[f]) for f in figures}
    table = _statistics(cells, groups, figures, n_rows, means, sds, deffs)
    returnees = cells["returnees"].astype(np.float64)
    for column in SHARES:
        if column in cells:
            share = _ratio(_share_numerator(cells, column), _weight_total(cells, "returnees"))
            deff = _share_design_effect(cells, column, share, returnees)
            _add_share(table, cells, column, share, returnees, deff)
    table["returnees"] = table["returnees"].astype(np.int64)
    table["unscored"] = table["unscored"].astype(np.int64)
    return _suppressed(table, min_cell)


def _clusters(cells: Columns, name: str, n: np.ndarray) -> np.ndarray:
    """The number of clusters of a figure or count (``n`` when the summaries have none:
    each record is its own)."""
    column = f"{name}_clusters"
    return cells[column].astype(np.float64) if column in cells else np.asarray(n, np.float64)


def _weight_total(cells: Columns, name: str) -> np.ndarray:
    """The weight total of a figure or count (its count when unweighted)."""
    column = (
        f"{name}_wsum"
        if f"{name}_wsum" in cells
        else ("returnees" if name == "returnees" else f"{name}_n")
    )
    return cells[column].astype(np.float64)


def _share_numerator(cells: Columns, column: str) -> np.ndarray:
    return cells[f"{column}_wsum" if f"{column}_wsum" in cells else column].astype(np.float64)


def _design_effect(
    cells: Columns, figure: str, mean: np.ndarray, sd: np.ndarray, n: np.ndarray
) -> np.ndarray:
    """A figure's design effect from its exact cluster summaries (1 without them: summaries
    that carry no clusters treat each record as its own)."""
    if f"{figure}_clusters" not in cells:
        return np.where(np.isnan(sd), np.nan, 1.0)
    variance = linearised_variance(
        mean,
        _weight_total(cells, figure),
        cells[f"{figure}_clusters"],
        cells[f"{figure}_qyy"].astype(np.float64),
        cells[f"{figure}_qyw"].astype(np.float64),
        cells[f"{figure}_qww"].astype(np.float64),
    )
    return design_effect(variance, sd, n)


def _share_design_effect(
    cells: Columns, column: str, share: np.ndarray, n: np.ndarray
) -> np.ndarray:
    """A share's design effect: its linearised variance over that of a simple random sample,
    ``p (1 − p) / (n − 1)``; 1 without cluster summaries."""
    if "returnees_clusters" not in cells:
        return np.ones(len(share))
    variance = linearised_variance(
        share,
        _weight_total(cells, "returnees"),
        cells["returnees_clusters"],
        cells[f"{column}_qyy"].astype(np.float64),
        cells[f"{column}_qyw"].astype(np.float64),
        cells["returnees_qww"].astype(np.float64),
    )
    with np.errstate(invalid="ignore"):
        sd = np.sqrt(share * (1 - share) * n / np.where(n > 1, n - 1, np.nan))
    return design_effect(variance, sd, n)


def _add_share(
    table: Columns,
    cells: Columns,
    column: str,
    share: np.ndarray,
    n: np.ndarray,
    deff: np.ndarray,
) -> None:
    """The share and its Wilson interval on the effective n (at most n), adjusted for the
    degrees of freedom (:func:`reintegration.intervals.share_sample_size`)."""
    name = f"share_{column.removeprefix('level_')}"
    effective = share_sample_size(n, deff, _clusters(cells, "returnees", n))
    low, high = wilson_interval(share, effective)
    table[name] = share
    table[f"{name}_ci_low"] = low
    table[f"{name}_ci_high"] = high


def suppress(table: pd.DataFrame, *, min_cell: int) -> pd.DataFrame:
    """Suppress small cells and their complements; the last row is the total.

    A cell is small when it has between 1 and ``min_cell - 1`` returnees (zero is a true zero).
    When exactly one group cell is suppressed, the next smallest non-zero cell is suppressed
    too, since the total minus the others would reveal it. Unscored counts follow the same rule.
    """
    columns = {c: table[c].to_numpy() for c in table.columns}
    return pd.DataFrame(_suppressed(columns, min_cell), index=table.index)


def _suppressed(table: Columns, min_cell: int) -> Columns:
    out = dict(table)
    returnees = out["returnees"].astype(np.float64)
    unscored = out["unscored"].astype(np.float64)
    total = returnees[-1]
    small = np.zeros(len(returnees), dtype=bool)
    small[:-1] = _small_with_complement(returnees[:-1], min_cell)
    if 0 < total < min_cell:  # a small total hides every cell and itself
        small[:-1] = returnees[:-1] > 0
        small[-1] = True
    for column in _value_columns(out):
        out[column] = np.where(small, np.nan, out[column].astype(np.float64))
    out["returnees"] = np.where(small, np.nan, returnees)
    out["suppressed"] = small
    small_unscored = (unscored > 0) & (unscored < min_cell)
    small_unscored[:-1] = _small_with_complement(unscored[:-1], min_cell)
    hidden = small_unscored | small
    out["unscored"] = np.where(hidden, np.nan, unscored)
    out["unscored_suppressed"] = hidden
    return out


def _small_with_complement(counts: np.ndarray, min_cell: int) -> np.ndarray:
    """Counts from 1 to ``min_cell - 1``, and when there is one such, the smallest other
    positive count too (else the total minus the others would give it)."""
    small = (counts > 0) & (counts < min_cell)
    if small.sum() == 1:
        candidates = np.flatnonzero(~small & (counts > 0))
        if len(candidates):
            small[candidates[np.argmin(counts[candidates])]] = True
    return small


def _value_columns(table: Columns) -> list[str]:
    return [
        c for c in table if c.endswith(("_mean", "_sd", "_low", "_high")) or c.startswith("share_")
    ]


def _statistics(
    cells: Columns,
    groups: list[str],
    figures: Sequence[str],
    n_rows: dict[str, np.ndarray],
    means: dict[str, np.ndarray],
    sds: dict[str, np.ndarray],
    deffs: dict[str, np.ndarray],
) -> Columns:
    """Group columns, the two counts, and each figure's mean, sd, 95% interval (Student-t on
    the design-based variance ``deff · sd² / n``, ``C − 1`` degrees of freedom), design
    effect and effective n."""
    table = {g: cells[g] for g in groups}
    table["returnees"] = cells["returnees"]
    table["unscored"] = cells["unscored"]
    with np.errstate(invalid="ignore", divide="ignore"):
        for figure in figures:
            n = n_rows[figure]
            deff = deffs[figure]
            variance = deff * sds[figure] ** 2 / np.where(n > 1, n, np.nan)
            clusters = _clusters(cells, figure, n)
            low, high = mean_interval(means[figure], variance, clusters - 1)
            table[f"{figure}_mean"] = means[figure]
            table[f"{figure}_sd"] = sds[figure]
            table[f"{figure}_low"] = low
            table[f"{figure}_high"] = high
            table[f"{figure}_deff"] = deff
            table[f"{figure}_n_effective"] = n / np.where(deff > 0, deff, np.nan)
    return table


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, missing where the denominator is not positive."""
    den = np.asarray(denominator, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(numerator, dtype=np.float64) / np.where(den > 0, den, np.nan)


def _protected(
    cells: Columns,
    groups: list[str],
    figures: Sequence[str],
    min_cell: int,
    protection: Protection,
) -> Columns:
    body = len(cells["returnees"]) - 1
    shown = perturb_counts(cells["returnees"][:body], cells["returnees_key"][:body], protection)
    shown = shown >= min_cell
    hidden = ~shown
    rows: Columns = {}
    for column, values in cells.items():
        parts = [values[:body][shown]]
        if hidden.any():
            gathered = _gathered(column, values[:body][hidden], column in groups)
            parts.append(np.array([gathered], dtype=values.dtype))
        parts.append(values[body:])
        rows[column] = np.concatenate(parts)
    table = _perturbed_statistics(rows, groups, figures, protection)
    other = np.zeros(len(table["returnees"]), dtype=bool)
    if hidden.any():
        other[-2] = True
    table["other"] = other
    return _suppress_perturbed(table, min_cell)


def gather(cells: pd.DataFrame, groups: Sequence[str]) -> pd.DataFrame:
    """One cell holding every record of ``cells``: counts, sums and sums of squares added, keys
    added modulo ``2**31``, the largest contribution the largest of all; group values missing.

    Returns
    -------
    DataFrame
        One row; its exact sds (``_sd``) are missing, since they are never published.
    """
    row = {
        column: _gathered(column, cells[column].to_numpy(), column in groups)
        for column in cells.columns
    }
    return pd.DataFrame([row], columns=cells.columns)


def _gathered(column: str, values: np.ndarray, is_group: bool) -> object:
    """The value of ``column`` for the cell gathering cells with these ``values``."""
    if is_group:
        return None
    if column.endswith("_key"):
        return int(values.astype(np.int64).sum() % KEY_MODULUS)
    if column.endswith("_top"):
        return np.max(values) if len(values) else np.nan
    if column.endswith("_sd"):
        return np.nan
    return values.sum()


def _perturbed_statistics(
    rows: Columns, groups: list[str], figures: Sequence[str], protection: Protection
) -> Columns:
    """Every statistic of each row from its perturbed counts and sums only, but for the design
    effects (from the exact cluster summaries, rounded to one decimal; ``docs/privacy.md``)."""
    counted = {
        c: perturb_counts(rows[c], rows[f"{c}_key"], protection) for c in COUNTS if c in rows
    }
    n_rows, means, sds, deffs = {}, {}, {}, {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for figure in figures:
            keys, top = rows[f"{figure}_key"], rows[f"{figure}_top"].astype(np.float64)
            n = perturb_counts(rows[f"{figure}_n"], keys, protection).astype(np.float64)
            weighted = f"{figure}_wsum" in rows
            total = _noisy(rows, f"{figure}_sum", keys, top, protection)
            # A weighted square w·y² is at most w·y (scores lie in [0, 1]).
            square_top = top if weighted else top**2
            squares = _noisy(rows, f"{figure}_sumsq", keys, square_top, protection)
            if weighted:
                wtop = rows[f"{figure}_wtop"].astype(np.float64)
                weight = np.clip(_noisy(rows, f"{figure}_wsum", keys, wtop, protection), 0, None)
            else:
                weight = n
            n_rows[figure] = n
            means[figure] = np.clip(_ratio(total, weight), 0.0, 1.0)
            spread = np.clip(squares - total**2 / np.where(weight > 0, weight, np.nan), 0.0, None)
            sds[figure] = np.sqrt(spread / weight * n / np.where(n > 1, n - 1, np.nan))
            deffs[figure] = _rounded_design_effect(_exact_design_effect(rows, figure))
    # The number of clusters (interviews, without enumerators) sets the degrees of freedom, so
    # it is perturbed as a count of its own; its change is n's when both are at least D.
    clusters = {
        f"{name}_clusters": perturb_counts(rows[f"{name}_clusters"], rows[f"{key}_key"], protection)
        for name, key in [("returnees", "returnees"), *((f, f) for f in figures)]
        if f"{name}_clusters" in rows
    }
    perturbed = {**rows, **counted, **clusters}
    table = _statistics(perturbed, groups, figures, n_rows, means, sds, deffs)
    returnees = counted["returnees"].astype(np.float64)
    weighted = "returnees_wsum" in rows
    if weighted:
        wtop, keys = rows["returnees_wtop"].astype(np.float64), rows["returnees_key"]
        weight = _noisy(rows, "returnees_wsum", keys, wtop, protection)
    for column in SHARES:
        if column in counted:
            if weighted:
                part = _noisy(rows, f"{column}_wsum", rows[f"{column}_key"], wtop, protection)
                share = _ratio(np.clip(part, 0, None), np.clip(weight, 0, None))
            else:
                share = _ratio(counted[column], returnees)
            share = np.clip(share, 0.0, 1.0)
            exact = _ratio(_share_numerator(rows, column), _weight_total(rows, "returnees"))
            exact_n = rows["returnees"].astype(np.float64)
            deff = _rounded_design_effect(_share_design_effect(rows, column, exact, exact_n))
            _add_share(table, perturbed, column, share, returnees, deff)
    return table


def _rounded_design_effect(deff: np.ndarray) -> np.ndarray:
    """A design effect as protected figures publish it: to one decimal, at least 0.1 (a
    smaller one would make the interval vanish)."""
    return np.clip(np.round(deff, DEFF_DECIMALS), 10.0**-DEFF_DECIMALS, None)


def _noisy(
    rows: Columns, column: str, keys: np.ndarray, top: np.ndarray, protection: Protection
) -> np.ndarray:
    """A sum with its cell-key noise, from the stream named ``part:name`` (``sum:composite``
    for ``composite_sum``). Rounded first (:data:`SUM_GRID`)."""
    name, part = column.rsplit("_", 1)
    exact = np.round(rows[column].astype(np.float64) * SUM_GRID) / SUM_GRID
    return exact + sum_noise(keys, top, f"{part}:{name}", protection)


def _exact_design_effect(rows: Columns, figure: str) -> np.ndarray:
    """A figure's design effect from its exact summaries (sd from its sums of squares)."""
    n = rows[f"{figure}_n"].astype(np.float64)
    weight = _weight_total(rows, figure)
    total, squares = rows[f"{figure}_sum"], rows[f"{figure}_sumsq"]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / weight
        spread = np.clip(squares - total**2 / weight, 0.0, None)
        sd = np.sqrt(spread / weight * n / np.where(n > 1, n - 1, np.nan))
    return _design_effect(rows, figure, mean, sd, n)


def _suppress_perturbed(table: Columns, min_cell: int) -> Columns:
    """Hide the figures of a row whose perturbed count is under ``min_cell`` (the total and
    the gathered row only: listed groups reach it) and every unscored count from 1 to
    ``min_cell - 1``; a true zero stays zero."""
    out = {c: v for c, v in table.items() if c != "other"}
    returnees = out["returnees"].astype(np.float64)
    small = (returnees > 0) & (returnees < min_cell)
    small |= table["other"] & (returnees < min_cell)
    for column in _value_columns(out):
        out[column] = np.where(small, np.nan, out[column].astype(np.float64))
    out["returnees"] = np.where(small, np.nan, returnees)
    out["suppressed"] = small
    unscored = out["unscored"].astype(np.float64)
    hidden = ((unscored > 0) & (unscored < min_cell)) | small
    out["unscored"] = np.where(hidden, np.nan, unscored)
    out["unscored_suppressed"] = hidden
    out["other"] = table["other"]
    return out


def merge_bins(
    counts: Sequence[int],
    keys: Sequence[int],
    edges: Sequence[float],
    *,
    min_cell: int,
    protection: Protection,
) -> list[tuple[float, float, int | None]]:
    """A protected histogram: adjacent bins merged until each has a perturbed count of at
    least ``min_cell``.

    From the left, bins join the current run until its perturbed count (its records' count and
    key) reaches ``min_cell``; a short last run joins the run before it (again, until the
    merged run is large enough). So no bin is hidden beside a zero: the only bin that can be
    hidden is a histogram reduced to one run, shown as ``None`` (a true zero as 0).

    Parameters
    ----------
    counts, keys : sequences of int
        Each bin's number of records and the sum of their record keys.
    edges : sequence of float
        ``len(counts) + 1`` bin edges.
    min_cell : int
    protection : Protection

    Returns
    -------
    list of (low, high, count)
        The merged bins, left to right, with their perturbed counts.

    Examples
    --------
    >>> merge_bins([0, 0, 0], [0, 0, 0], [0.0, 0.5, 0.8, 1.0], min_cell=5,
    ...            protection=Protection())
    [(0.0, 1.0, 0)]
    """
    runs: list[tuple[int, int, int, int]] = []  # first bin, last bin, count, key
    start, count, key = 0, 0, 0
    for i, (n, k) in enumerate(zip(counts, keys, strict=True)):
        count, key = count + int(n), (key + int(k)) % KEY_MODULUS
        if _perturbed(count, key, protection) >= min_cell:
            runs.append((start, i, count, key))
            start, count, key = i + 1, 0, 0
    if start < len(counts) or not runs:
        runs.append((start, len(counts) - 1, count, key))
        while len(runs) > 1 and _perturbed(runs[-1][2], runs[-1][3], protection) < min_cell:
            end, before = runs.pop(), runs.pop()
            merged_key = (before[3] + end[3]) % KEY_MODULUS
            runs.append((before[0], end[1], before[2] + end[2], merged_key))
    out: list[tuple[float, float, int | None]] = []
    for first, last, n, k in runs:
        shown = _perturbed(n, k, protection)
        out.append(
            (float(edges[first]), float(edges[last + 1]), None if 0 < shown < min_cell else shown)
        )
    return out


def _perturbed(count: int, key: int, protection: Protection) -> int:
    return int(perturb_counts(np.array([count]), np.array([key]), protection)[0])
