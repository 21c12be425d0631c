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

KEY_MODULUS = 2**31
Z_95 = 1.959963984540054
LEVELS = ("low", "medium", "high")
OTHER_LABEL = "other groups: fewer than {min_cell} each"
COUNT_STREAM = "count"
# The summary columns of a cell, besides the group columns: counts (each with a ``_key``) and,
# per figure, the suffixes below.
COUNTS = ("returnees", "unscored", "sustainable", *(f"level_{level}" for level in LEVELS))
FIGURE_PARTS = ("_n", "_key", "_sum", "_sumsq", "_top", "_sd")
_PROBABILITY_DECIMALS = 4
SUM_DECIMALS = 9
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
    table = _ptable(protection.max_count_change, float(protection.count_variance))
    cdf = table.to_numpy().cumsum(axis=1)
    rows = np.minimum(counts, protection.max_count_change)
    u = uniforms(keys, COUNT_STREAM)
    # The change is the first column whose cumulative probability exceeds u.
    picked = (u[:, None] >= cdf[rows][:, :-1]).sum(axis=1)
    return counts + picked - protection.max_count_change


def sum_noise(keys: np.ndarray, top: np.ndarray, stream: str, protection: Protection) -> np.ndarray:
    """Noise for sums: uniform in ``±sum_noise × top``, drawn from each key and ``stream``."""
    spread = protection.sum_noise * np.nan_to_num(np.asarray(top, dtype=np.float64))
    return spread * (2.0 * uniforms(keys, stream) - 1.0)


# -- publishing ------------------------------------------------------------------------------------


def group_columns(cells: pd.DataFrame, figures: Sequence[str]) -> list[str]:
    """The columns of ``cells`` that are not summaries: the groups, in order."""
    summaries = {*COUNTS, *(f"{c}_key" for c in COUNTS)}
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
        Summaries from :func:`reintegration.aggregate.summarise`: the group columns, then
        ``returnees``, ``unscored``, ``sustainable`` (``level_low/_medium/_high`` when levels are
        known), each with a ``_key`` column of record-key sums when protection is asked, and per
        figure ``_n``, ``_key``, ``_sum``, ``_sumsq``, ``_top`` (largest absolute value) and
        ``_sd`` (exact sample sd, used by exact figures only).
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
    if protection is None:
        return _exact(cells, groups, figures, min_cell)
    missing = [c for c in ("returnees_key", "unscored_key") if c not in cells]
    if missing:
        raise ConfigurationError(
            "Protected figures need each record's key (column record_key), and these "
            "summaries have none."
        )
    return _protected(cells, groups, figures, min_cell, protection)


def _exact(
    cells: pd.DataFrame, groups: list[str], figures: Sequence[str], min_cell: int
) -> pd.DataFrame:
    n_rows = {f: cells[f"{f}_n"].astype("float64") for f in figures}
    means = {f: _ratio(cells[f"{f}_sum"], n_rows[f]) for f in figures}
    sds = {f: cells[f"{f}_sd"].where(n_rows[f] > 1) for f in figures}
    table = _statistics(cells, groups, figures, n_rows, means, sds)
    for column in ("sustainable", *(f"level_{level}" for level in LEVELS)):
        if column in cells:
            table[f"share_{column.removeprefix('level_')}"] = _ratio(
                cells[column], cells["returnees"].astype("float64")
            )
    table = table.astype({"returnees": "int64", "unscored": "int64"})
    return suppress(table, min_cell=min_cell)


def suppress(table: pd.DataFrame, *, min_cell: int) -> pd.DataFrame:
    """Suppress small cells and their complements; the last row is the total.

    A cell is small when it has between 1 and ``min_cell - 1`` returnees (zero is a true zero).
    When exactly one group cell is suppressed, the next smallest non-zero cell is suppressed
    too, since the total minus the others would reveal it. Unscored counts follow the same rule.
    """
    out = table.copy()
    cells = out.index[:-1]
    small = (out.loc[cells, "returnees"] > 0) & (out.loc[cells, "returnees"] < min_cell)
    total = out["returnees"].iloc[-1]
    if 0 < total < min_cell:  # a small total hides every cell and itself
        small[:] = out.loc[cells, "returnees"] > 0
    if small.sum() == 1:
        candidates = out.loc[cells][~small & (out.loc[cells, "returnees"] > 0)]
        if len(candidates):
            small.loc[candidates["returnees"].idxmin()] = True
    suppressed = pd.Series(False, index=out.index)
    suppressed.loc[cells] = small
    suppressed.iloc[-1] = bool(0 < total < min_cell)
    value_columns = [
        c
        for c in out.columns
        if c.endswith(("_mean", "_sd", "_low", "_high")) or c.startswith("share_")
    ] + ["returnees"]
    out["suppressed"] = suppressed
    out = out.astype({"returnees": "float64", "unscored": "float64"})
    out.loc[suppressed, value_columns] = np.nan
    small_unscored = (out["unscored"] > 0) & (out["unscored"] < min_cell)
    small_unscored_cells = small_unscored.loc[cells]
    if small_unscored_cells.sum() == 1:
        others = out.loc[cells][~small_unscored_cells & (out.loc[cells, "unscored"] > 0)]
        if len(others):
            small_unscored.loc[others["unscored"].idxmin()] = True
    out["unscored_suppressed"] = small_unscored | suppressed
    out.loc[out["unscored_suppressed"], "unscored"] = np.nan
    return out


def _statistics(
    cells: pd.DataFrame,
    groups: list[str],
    figures: Sequence[str],
    n_rows: dict[str, pd.Series],
    means: dict[str, pd.Series],
    sds: dict[str, pd.Series],
) -> pd.DataFrame:
    """Group columns, the two counts, and each figure's mean, sd and 95% interval."""
    table = cells[groups].copy()
    table["returnees"] = cells["returnees"]
    table["unscored"] = cells["unscored"]
    for figure in figures:
        n = n_rows[figure]
        half = Z_95 * sds[figure] / np.sqrt(n.where(n > 1))
        table[f"{figure}_mean"] = means[figure]
        table[f"{figure}_sd"] = sds[figure]
        table[f"{figure}_low"] = (means[figure] - half).clip(lower=0.0)
        table[f"{figure}_high"] = (means[figure] + half).clip(upper=1.0)
    return table


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator, missing where the denominator is not positive."""
    den = denominator.astype("float64")
    return numerator.astype("float64").div(den.where(den > 0))


def _protected(
    cells: pd.DataFrame,
    groups: list[str],
    figures: Sequence[str],
    min_cell: int,
    protection: Protection,
) -> pd.DataFrame:
    body, total = cells.iloc[:-1], cells.iloc[-1:]
    shown = perturb_counts(body["returnees"], body["returnees_key"], protection) >= min_cell
    parts = [body[shown]]
    if (~shown).any():
        parts.append(gather(body[~shown], groups))
    parts.append(total)
    rows = pd.concat(parts, ignore_index=True)
    table = _perturbed_statistics(rows, groups, figures, protection)
    table["other"] = False
    if (~shown).any():
        table.loc[len(table) - 2, "other"] = True
    return _suppress_perturbed(table, min_cell)


def gather(cells: pd.DataFrame, groups: Sequence[str]) -> pd.DataFrame:
    """One cell holding every record of ``cells``: counts, sums and sums of squares added, keys
    added modulo ``2**31``, the largest contribution the largest of all; group values missing.

    Returns
    -------
    DataFrame
        One row; its exact sds (``_sd``) are missing, since they are never published.
    """
    row: dict[str, object] = dict.fromkeys(groups)
    for column in cells.columns:
        if column in row:
            continue
        if column.endswith("_key"):
            row[column] = int(cells[column].astype("int64").sum() % KEY_MODULUS)
        elif column.endswith("_top"):
            row[column] = cells[column].max()
        elif column.endswith("_sd"):
            row[column] = np.nan
        else:
            row[column] = cells[column].sum()
    return pd.DataFrame([row], columns=cells.columns)


def _perturbed_statistics(
    rows: pd.DataFrame, groups: list[str], figures: Sequence[str], protection: Protection
) -> pd.DataFrame:
    """Every statistic of each row from its perturbed counts and sums only."""
    counted = {
        c: pd.Series(perturb_counts(rows[c], rows[f"{c}_key"], protection), index=rows.index)
        for c in COUNTS
        if c in rows
    }
    n_rows, means, sds = {}, {}, {}
    for figure in figures:
        keys, top = rows[f"{figure}_key"], rows[f"{figure}_top"].to_numpy(np.float64)
        n = pd.Series(
            perturb_counts(rows[f"{figure}_n"], keys, protection), index=rows.index
        ).astype("float64")
        # Rounded first: the same records summed in another order differ in the last bits.
        total = rows[f"{figure}_sum"].round(SUM_DECIMALS)
        total += sum_noise(keys, top, f"sum:{figure}", protection)
        squares = rows[f"{figure}_sumsq"].round(SUM_DECIMALS)
        squares += sum_noise(keys, top**2, f"sumsq:{figure}", protection)
        n_rows[figure] = n
        means[figure] = _ratio(total, n).clip(0.0, 1.0)
        variance = (squares - total**2 / n.where(n > 0)).clip(lower=0.0) / (n - 1).where(n > 1)
        sds[figure] = np.sqrt(variance)
    perturbed = rows.assign(**counted)
    table = _statistics(perturbed, groups, figures, n_rows, means, sds)
    for column in COUNTS[2:]:
        if column in counted:
            share = _ratio(counted[column], counted["returnees"].astype("float64"))
            table[f"share_{column.removeprefix('level_')}"] = share.clip(0.0, 1.0)
    return table


def _suppress_perturbed(table: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """Hide the figures of a row whose perturbed count is under ``min_cell`` (the total and
    the gathered row only: listed groups reach it) and every unscored count from 1 to
    ``min_cell - 1``; a true zero stays zero."""
    out = table.copy()
    returnees = out["returnees"].astype("float64")
    small = (returnees > 0) & (returnees < min_cell)
    small |= out["other"] & (returnees < min_cell)
    values = [
        c
        for c in out.columns
        if c.endswith(("_mean", "_sd", "_low", "_high")) or c.startswith("share_")
    ]
    out = out.astype({"returnees": "float64", "unscored": "float64"})
    out["suppressed"] = small.to_numpy()
    out.loc[small, [*values, "returnees"]] = np.nan
    unscored = out["unscored"]
    out["unscored_suppressed"] = (((unscored > 0) & (unscored < min_cell)) | small).to_numpy()
    out.loc[out["unscored_suppressed"], "unscored"] = np.nan
    return out[[c for c in out.columns if c != "other"] + ["other"]]


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
