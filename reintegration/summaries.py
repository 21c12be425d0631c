"""Per-cell summaries of records: the seam between the analytics engine and disclosure control.

:func:`summarise` turns records (one row per returnee) into the per-cell summaries that
:func:`reintegration.disclosure.publish` takes: per group, counts (with the sum of the counted
records' keys when protected figures are asked) and per figure the number of values, their sum
and sum of squares, and either the exact sample sd (exact figures) or the largest absolute value
(protected figures, which scale a sum's noise by it).

Every column is one pass of :func:`numpy.bincount` (or ``maximum.at``) over group codes computed
once, so a question costs a few passes over its records whatever it asks, and protected figures
cost only the passes they need beyond exact ones (the key sums and largest values).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

KEY_MODULUS = 2**31
LEVELS = ("low", "medium", "high")
TOTAL = "all"
# A float64 sum of at most this many keys below 2**31 is exact (below 2**53).
_EXACT_KEY_ROWS = 2**22
_MAX_PRODUCT = 50_000_000
CLUSTER = "enumerator_id"
WEIGHT = "weight"


def summarise(
    records: pd.DataFrame,
    by: Sequence[str],
    figures: Sequence[str],
    *,
    keyed: bool = True,
    cluster: str = CLUSTER,
    weight: str = WEIGHT,
) -> pd.DataFrame:
    """Per group of ``by``, then in total, the summaries :func:`publish` takes; vectorised.

    A record counts as a returnee when its ``composite`` is known, else as unscored; its
    figures, ``sustainable`` and ``level`` count only when it is scored.

    Parameters
    ----------
    records : DataFrame
        One row per returnee, with the ``by`` columns, the figures, ``composite`` and
        ``sustainable`` (1/0 or booleans), optionally ``level``, ``record_key`` (integers in
        ``[0, 2**31)``), the ``cluster`` column and the ``weight`` column.
    by : sequence of str
    figures : sequence of str
    keyed : bool, default True
        True: the summaries of protected figures (each count's and figure's ``_key``, the sum
        of its records' keys modulo ``2**31``, and each figure's ``_top``, its largest absolute
        weighted value, with ``_wtop``, the largest weight, when weighted). False: those of
        exact figures (each figure's exact sample sd, ``_sd``).
    cluster : str, default "enumerator_id"
        The column naming each record's primary sampling unit (the enumerator); a record
        without one, or records without the column, are each their own cluster.
    weight : str, default "weight"
        The column of design or retention weights; used when every scored record has one.

    Returns
    -------
    DataFrame
        One row per observed group (sorted: categories in their order, other values ascending,
        missing values last, as their own group), then the total row, its ``by`` values
        ``"all"``. Columns: the ``by`` columns; ``returnees``, ``unscored``, ``sustainable``,
        ``level_low/_medium/_high`` (when ``records`` has ``level``) and their ``_key`` columns
        (keyed); ``returnees_clusters`` and ``returnees_qww`` (see
        :mod:`reintegration.intervals`), ``returnees_wsum`` (weighted); per share count
        ``_qyy``, ``_qyw`` (and ``_wsum``, its weighted count, when weighted); per figure
        ``_n``, ``_key`` (keyed), ``_wsum`` (weighted), ``_sum`` and ``_sumsq`` (weighted sums
        of values and squares), ``_clusters``, ``_qyy``, ``_qyw``, ``_qww``, then ``_top`` and
        ``_wtop`` (keyed, weighted) or ``_sd`` (missing below two values).

    Examples
    --------
    >>> frame = pd.DataFrame({"sex": ["f", "f", "m"], "composite": [0.2, 0.4, np.nan],
    ...                       "sustainable": [1, 0, np.nan], "record_key": [5, 7, 11]})
    >>> cells = summarise(frame, ["sex"], ["composite"])
    >>> cells[["sex", "returnees", "returnees_key", "unscored", "composite_sum"]].to_dict("list")
    {'sex': ['f', 'm', 'all'], 'returnees': [2, 0, 2], 'returnees_key': [12, 0, 12], \
'unscored': [0, 1, 1], 'composite_sum': [0.6000000000000001, 0.0, 0.6000000000000001]}
    """
    keys = list(by)
    codes, groups = group_codes(records, keys)
    record_key = None
    if keyed and "record_key" in records:
        record_key = records["record_key"].to_numpy(np.int64)
    clusters = _cluster_codes(records, cluster)
    cells = _Cells(codes, len(groups[keys[0]]) if keys else 1, record_key, clusters)
    weights = _weights(records, weight)
    scored = records["composite"].notna().to_numpy()
    flags = {
        "returnees": scored,
        "unscored": ~scored,
        "sustainable": scored & (records["sustainable"].astype("float64").to_numpy() == 1.0),
    }
    if "level" in records:
        level = records["level"]
        for name in LEVELS:
            flags[f"level_{name}"] = scored & (level == name).to_numpy()
    table: dict[str, np.ndarray] = {
        name: np.append(values, TOTAL).astype(object) for name, values in groups.items()
    }
    for name, flag in flags.items():
        table[name], key = cells.count(flag)
        if key is not None:
            table[f"{name}_key"] = key
    base = _Base(cells, scored, weights, table["returnees"], table.get("returnees_key"))
    table.update(base.columns("returnees", keyed=keyed))
    for name in list(flags)[2:]:
        table.update(base.share(name, flags[name]))
    for figure in figures:
        table.update(base.figure(figure, records[figure].to_numpy(np.float64), keyed=keyed))
    out = pd.DataFrame(table)
    return out if keys else out.iloc[-1:].reset_index(drop=True)


def _cluster_codes(records: pd.DataFrame, cluster: str) -> np.ndarray | None:
    """Each record's cluster number (-1 without one), or None when no record has one.

    Numbers follow the clusters' order (their categories', else their sorted values), never the
    records': sums over a cell's clusters then run in one order whatever else a question asks,
    so the same cell gets the same figures to the last bit through any grouping."""
    if cluster not in records:
        return None
    column = records[cluster]
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
    else:
        codes, _ = pd.factorize(column, sort=True, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    return codes if (codes >= 0).any() else None


def _weights(records: pd.DataFrame, weight: str) -> np.ndarray | None:
    """Each record's weight when every scored record has one, else None (unweighted): weights
    of a design are not mixed with interviews that have none (``docs/methods.md``)."""
    if weight not in records:
        return None
    values = pd.to_numeric(records[weight], errors="coerce").to_numpy(np.float64)
    known = np.isfinite(values) & (values > 0)
    scored = records["composite"].notna().to_numpy()
    if not scored.any() or not known[scored].all():
        return None
    return np.where(known, values, 1.0)


class _Base:
    """The summaries of one set of records: those shared by every figure counted over the
    scored records (their clusters and weight totals) are computed once."""

    def __init__(
        self,
        cells: _Cells,
        scored: np.ndarray,
        weights: np.ndarray | None,
        n: np.ndarray,
        key: np.ndarray | None,
    ) -> None:
        self.cells, self.scored, self.weights = cells, scored, weights
        self.n, self.key = n, key
        self.weighted = weights is not None
        self.w = np.where(scored, weights, 0.0) if weights is not None else scored.astype(float)
        self.design = cells.design(self.w, scored)

    def columns(self, name: str, *, keyed: bool) -> dict[str, np.ndarray]:
        """The counted records' clusters and weights (the shares' denominators)."""
        clusters, _, _, q_ww = self.design.terms(self.w)
        out = {f"{name}_clusters": clusters, f"{name}_qww": q_ww}
        if self.weighted:
            out[f"{name}_wsum"] = self.cells.total(self.w)
            if keyed:
                out[f"{name}_wtop"] = self.cells.largest(self.w, self.n)
        return out

    def share(self, name: str, flag: np.ndarray) -> dict[str, np.ndarray]:
        """A share's cluster terms (its indicator over the scored records)."""
        values = np.where(flag, self.w, 0.0)
        _, q_yy, q_yw, _ = self.design.terms(values)
        out = {f"{name}_qyy": q_yy, f"{name}_qyw": q_yw}
        if self.weighted:
            out[f"{name}_wsum"] = self.cells.total(values)
        return out

    def figure(self, name: str, value: np.ndarray, *, keyed: bool) -> dict[str, np.ndarray]:
        """A figure's summaries (see :func:`summarise`)."""
        cells = self.cells
        counted = self.scored & ~np.isnan(value)
        if np.array_equal(counted, self.scored):  # the usual case: no pass for what is known
            n, key, w, design = self.n, self.key, self.w, self.design
        else:
            n, key = cells.count(counted)
            weights = self.weights if self.weights is not None else 1.0
            w = np.where(counted, weights, 0.0)
            design = cells.design(w, counted)
        y = np.where(counted, value, 0.0)
        wy = w * y if self.weighted else y
        out = {f"{name}_n": n}
        if key is not None:
            out[f"{name}_key"] = key
        weight_total = cells.total(w) if self.weighted else n.astype(np.float64)
        if self.weighted:
            out[f"{name}_wsum"] = weight_total
        out[f"{name}_sum"] = cells.total(wy)
        out[f"{name}_sumsq"] = cells.total(wy * y)
        clusters, q_yy, q_yw, q_ww = design.terms(wy)
        out.update(
            {
                f"{name}_clusters": clusters,
                f"{name}_qyy": q_yy,
                f"{name}_qyw": q_yw,
                f"{name}_qww": q_ww,
            }
        )
        if keyed:
            out[f"{name}_top"] = cells.largest(np.abs(wy), n)
            if self.weighted:
                out[f"{name}_wtop"] = cells.largest(w, n)
        else:
            out[f"{name}_sd"] = cells.sd(y, w, counted, n, weight_total, out[f"{name}_sum"])
        return out


def group_codes(records: Any, by: Sequence[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each record's group number among the observed groups of ``by``, and the groups' values.
    ``records``: a DataFrame, or columns by name (arrays, categoricals).

    Groups are ordered as a sorted pandas group-by orders them (categories in their order,
    other values ascending, missing values last); only groups with a record are kept.

    Returns
    -------
    codes : ndarray of int64
        A number in ``[0, groups)`` per record (zeros when ``by`` is empty).
    groups : dict of str to ndarray
        Per ``by`` column, the value of each group (objects; missing as NaN).
    """
    if not by:
        return np.zeros(len(records), dtype=np.int64), {}
    codes = np.zeros(len(records[by[0]]), dtype=np.int64)
    levels: list[np.ndarray] = []
    for name in by:
        level_codes, values = _factorised(records[name])
        codes = codes * len(values) + level_codes
        levels.append(values)
    sizes = [len(values) for values in levels]
    product = int(np.prod(sizes, dtype=np.float64))
    if product <= _MAX_PRODUCT:
        observed = np.flatnonzero(np.bincount(codes, minlength=product))
        renumber = np.zeros(product, dtype=np.int64)
        renumber[observed] = np.arange(len(observed))
        codes = renumber[codes]
    else:
        observed, codes = np.unique(codes, return_inverse=True)
    positions = np.unravel_index(observed, sizes) if len(observed) else [[] for _ in sizes]
    groups = {
        name: values[np.asarray(where, dtype=np.int64)]
        for name, values, where in zip(by, levels, positions, strict=True)
    }
    return codes, groups


def _factorised(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """Codes in the sorted order of values (missing last), and the values as objects."""
    if isinstance(column, pd.Series) and isinstance(column.dtype, pd.CategoricalDtype):
        column = column.array
    if isinstance(column, pd.Categorical):
        codes = np.asarray(column.codes, dtype=np.int64)
        values = np.asarray(column.categories, dtype=object)
        if (codes < 0).any():
            codes = np.where(codes < 0, len(values), codes)
            values = np.append(values, np.nan).astype(object)
        return codes, values
    if not isinstance(column, pd.Series):
        column = pd.Series(column)
    codes, uniques = pd.factorize(column, sort=True, use_na_sentinel=False)
    values = np.asarray(uniques, dtype=object)
    values[pd.isna(values)] = np.nan
    return codes.astype(np.int64), values


class _Cells:
    """Per-group passes over records: each returns the groups' values then the total."""

    def __init__(
        self,
        codes: np.ndarray,
        groups: int,
        record_key: np.ndarray | None,
        clusters: np.ndarray | None = None,
    ) -> None:
        self.codes = codes
        self.groups = groups
        self.record_key = record_key
        self._keys_as_float = None if record_key is None else record_key.astype(np.float64)
        self.clusters = clusters

    def _bins(self, weights: np.ndarray) -> np.ndarray:
        return np.bincount(self.codes, weights=weights, minlength=self.groups)

    def count(self, flag: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The flagged records per group, and the sum of their keys (None without keys)."""
        per_group = self._bins(flag).astype(np.int64)
        counts = np.append(per_group, per_group.sum())
        if self.record_key is None:
            return counts, None
        if len(self.codes) <= _EXACT_KEY_ROWS:
            sums = self._bins(self._keys_as_float * flag).astype(np.int64)  # type: ignore[operator]
        else:  # in two halves, each sum exact in float64
            high = self._bins((self.record_key >> 16) * flag).astype(np.int64)
            low = self._bins((self.record_key & 0xFFFF) * flag).astype(np.int64)
            sums = high % KEY_MODULUS * 65536 + low
        keys = np.append(sums % KEY_MODULUS, int(sums.sum() % KEY_MODULUS))
        return counts, keys.astype(np.int64)

    def total(self, values: np.ndarray) -> np.ndarray:
        """The sum of ``values`` per group (zero where none)."""
        per_group = self._bins(values)
        return np.append(per_group, values.sum())

    def largest(self, values: np.ndarray, n: np.ndarray) -> np.ndarray:
        """The largest of ``values`` (not negative, zero where not counted) per group; missing
        where ``n`` counts none."""
        per_group = np.zeros(self.groups)
        np.maximum.at(per_group, self.codes, values)
        out = np.append(per_group, per_group.max(initial=0.0))
        return np.where(n > 0, out, np.nan)

    def sd(
        self,
        y: np.ndarray,
        w: np.ndarray,
        counted: np.ndarray,
        n: np.ndarray,
        weight_total: np.ndarray,
        sums: np.ndarray,
    ) -> np.ndarray:
        """The (weighted) sample sd of the counted ``y`` per group, in two passes:
        ``√(n / (n − 1) · Σ w (y − ȳ)² / Σ w)``, missing below two values."""
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / weight_total
            deviation = np.where(counted, y - means[:-1][self.codes], 0.0)
            squares = self._bins(w * deviation * deviation)
            overall = np.where(counted, y - means[-1], 0.0)
            squares = np.append(squares, (w * overall * overall).sum())
            variance = n / (n - 1) * squares / weight_total
            return np.where(n > 1, np.sqrt(variance), np.nan)

    def design(self, w: np.ndarray, counted: np.ndarray) -> _Design:
        """The cluster structure of the ``counted`` records with weights ``w``."""
        return _Design(self, w, counted)


class _Design:
    """Per group, the sums over clusters that the linearised variance needs
    (:func:`reintegration.intervals.linearised_variance`): for values ``v`` (weighted values,
    zero where not counted) ``Q_yy = Σ_c S_c²``, ``Q_yw = Σ_c S_c W_c``, ``Q_ww = Σ_c W_c²`` and
    the number of clusters, with ``S_c``, ``W_c`` the sums of ``v`` and of the weights in
    cluster ``c``. A record without a cluster is a cluster of its own."""

    def __init__(self, cells: _Cells, w: np.ndarray, counted: np.ndarray) -> None:
        self.cells, self.w = cells, w
        clusters = cells.clusters
        self.alone = counted if clusters is None else counted & (clusters < 0)
        self.any_alone = bool(self.alone.any())
        if clusters is None:
            self.pairs = 0
            return
        # A (group, cluster) pair per record, numbered among observed pairs; records without
        # a cluster or not counted go to a last bin that is dropped.
        size = int(clusters.max()) + 1
        product = cells.groups * size
        joint = np.where(counted & (clusters >= 0), cells.codes * size + clusters, product)
        if product <= _MAX_PRODUCT:
            present = np.bincount(joint, minlength=product + 1)[:product]
            observed = np.flatnonzero(present)
            renumber = np.full(product + 1, len(observed), dtype=np.int64)
            renumber[observed] = np.arange(len(observed))
            pair = renumber[joint]
        else:
            observed, pair = np.unique(joint, return_inverse=True)
            if len(observed) and observed[-1] == product:
                observed = observed[:-1]
        self.pairs = len(observed)
        self.pair = pair
        self.pair_group = observed // size
        self.pair_cluster = observed % size
        self.cluster_count = size
        self.pair_w = self._pair_sums(w)

    def _pair_sums(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.pair, weights=values, minlength=self.pairs + 1)[: self.pairs]

    def terms(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Number of clusters, ``Q_yy``, ``Q_yw``, ``Q_ww`` per group then in total."""
        cells = self.cells
        groups = cells.groups
        zero = np.zeros(groups)
        count, q_yy, q_yw, q_ww = zero.copy(), zero.copy(), zero.copy(), zero.copy()
        totals = [0.0, 0.0, 0.0, 0.0]
        if self.pairs:
            # The weights' own pair sums were taken once, at construction.
            s = self.pair_w if values is self.w else self._pair_sums(values)
            w = self.pair_w
            at = self.pair_group
            count += np.bincount(at, minlength=groups)
            q_yy += np.bincount(at, weights=s * s, minlength=groups)
            q_yw += np.bincount(at, weights=s * w, minlength=groups)
            q_ww += np.bincount(at, weights=w * w, minlength=groups)
            by_cluster = self.pair_cluster
            size = self.cluster_count
            s_c = np.bincount(by_cluster, weights=s, minlength=size)
            w_c = np.bincount(by_cluster, weights=w, minlength=size)
            totals = [
                float((w_c > 0).sum()),
                float((s_c * s_c).sum()),
                float((s_c * w_c).sum()),
                float((w_c * w_c).sum()),
            ]
        if self.any_alone:
            alone = self.alone
            v, w = np.where(alone, values, 0.0), np.where(alone, self.w, 0.0)
            parts = [alone.astype(np.float64), v * v, v * w, w * w]
            for i, (target, part) in enumerate(zip((count, q_yy, q_yw, q_ww), parts, strict=True)):
                target += cells._bins(part)
                totals[i] += float(part.sum())
        return (
            np.append(count, totals[0]).astype(np.int64),
            np.append(q_yy, totals[1]),
            np.append(q_yw, totals[2]),
            np.append(q_ww, totals[3]),
        )
