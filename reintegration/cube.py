"""Per-cell summaries precomputed per data version: answers without a pass over the records.

Every column :func:`reintegration.summaries.summarise` gives the disclosure step is a sum
(counts, record-key sums modulo ``2**31``, sums, sums of squares, the per-(cell, enumerator)
sums the cluster terms square) or a maximum. So the summaries of each returnee's latest record,
summed per (sex, age group, return type, country, round, months band, enumerator) once per
frame, give any cell of those columns by adding a few thousand rows. Sex, age group, return
type and country are the returnee's own, so filtering on them keeps or drops whole returnees
and never changes which record is a returnee's latest: questions with no date window, no round
or stage filter and no enumerator left out are answered exactly from the cube
(:meth:`Cube.answers`). The others come from the records (:mod:`reintegration.selection`).

What differs from :func:`summarise` on the same records is the order of floating-point
additions (sums of partial sums), and the exact figures' sd, here in one pass,
``√((Σy² − (Σy)²/n)/(n − 1))``, there in two: both within about 1e-12 relative for scores in
``[0, 1]``. Counts, key sums, maxima and the cells are the same exactly
(``tests/test_cube.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from reintegration.summaries import KEY_MODULUS, LEVELS, TOTAL, group_codes

FIGURES = ("economic", "social", "psychosocial", "composite")
RETURNEE = ("sex", "age_group", "return_type", "country")
DIMENSIONS = (*RETURNEE, "round", "months_band", "enumerator_id")
GROUPINGS = (*RETURNEE, "round")
FLAGS = ("returnees", "unscored", "sustainable", *(f"level_{x}" for x in LEVELS))
HISTOGRAM_BINS = 10
EDGES = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)


def answers(filters: Any, within: Sequence[str]) -> bool:
    """Whether a cube answers a question with ``filters`` counting records per ``within``:
    only returnee filters (countries, sex, age group, return type), latest per returnee or
    per round.

    Examples
    --------
    >>> from reintegration.analytics import Filters
    >>> answers(Filters(sex=frozenset({"f"})), ["round"]), answers(Filters(rounds={1}), [])
    (True, False)
    """
    return (
        filters.date_from is None
        and filters.date_to is None
        and filters.rounds is None
        and filters.at_round is None
        and filters.at_band is None
        and not filters.exclude_flagged_enumerators
        and list(within) in ([], ["round"])
    )


def usable(frame: pd.DataFrame) -> bool:
    """Whether a cube can stand for ``frame``'s records: record keys and enumerators known as
    columns, and no weights (weighted summaries depend on whether every selected record has
    one, which is not a sum)."""
    if "record_key" not in frame or "enumerator_id" not in frame or "level" not in frame:
        return False
    if not all(isinstance(frame[d].dtype, pd.CategoricalDtype) for d in (*RETURNEE, "level")):
        return False
    if list(frame["level"].cat.categories) != list(LEVELS):
        return False
    if "weight" in frame:
        weights = frame["weight"].to_numpy(np.float64)
        if (np.isfinite(weights) & (weights > 0)).any():
            return False
    return True


class Cube:
    """The summed summaries of a frame's latest records per returnee (``within=()``) or per
    returnee and round (``within=("round",)``).

    Parameters
    ----------
    frame : DataFrame
        The analytics frame (``Analytics.frame``).
    latest : ndarray of int
        The positions of the records counted with no filter (``selection.latest_rows``).
    surveys : bool, default False
        Also sum every row (not only the latest) per returnee attributes, for the overview's
        number of surveys.
    """

    def __init__(self, frame: pd.DataFrame, latest: np.ndarray, *, surveys: bool = False) -> None:
        self.frame = frame
        take = {d: frame[d].array.take(latest) for d in DIMENSIONS}
        scored = ~np.isnan(frame["composite"].to_numpy(np.float64)[latest])
        key = frame["record_key"].to_numpy(np.int64)[latest]
        level = frame["level"].cat.codes.to_numpy()[latest]
        flags = {
            "returnees": scored,
            "unscored": ~scored,
            "sustainable": scored & (frame["sustainable"].to_numpy(np.float64)[latest] == 1.0),
            **{f"level_{x}": scored & (level == i) for i, x in enumerate(LEVELS)},
        }
        columns: dict[str, Any] = {}
        for name, flag in flags.items():
            columns[f"n_{name}"] = flag.astype(np.int64)
            columns[f"k_{name}"] = np.where(flag, key, 0)
        composite = frame["composite"].to_numpy(np.float64)[latest]
        self.in_range = bool(((composite[scored] >= 0) & (composite[scored] <= 1)).all())
        for f in FIGURES:
            value = frame[f].to_numpy(np.float64)[latest]
            counted = scored & ~np.isnan(value)
            y = np.where(counted, value, 0.0)
            columns[f"n_{f}"] = counted.astype(np.int64)
            columns[f"k_{f}"] = np.where(counted, key, 0)
            columns[f"s_{f}"], columns[f"q_{f}"], columns[f"t_{f}"] = y, y * y, np.abs(y)
        where = np.clip(np.searchsorted(EDGES, composite, side="right") - 1, 0, HISTOGRAM_BINS - 1)
        for i in range(HISTOGRAM_BINS):
            hit = scored & (where == i)
            columns[f"h_{i}"] = hit.astype(np.int64)
            columns[f"hk_{i}"] = np.where(hit, key, 0)
        self.rows = _summed(pd.DataFrame({**take, **columns}), list(DIMENSIONS))
        self.surveys: pd.DataFrame | None = None
        if surveys:
            every = pd.DataFrame(
                {
                    **{d: frame[d] for d in RETURNEE},
                    "n_rows": np.ones(len(frame), dtype=np.int64),
                    "k_rows": frame["record_key"].to_numpy(np.int64),
                }
            )
            self.surveys = _summed(every, list(RETURNEE))

    def cells(
        self,
        by: Sequence[str],
        filters: Any,
        *,
        keyed: bool,
        figures: Sequence[str] = FIGURES,
        scored_only: bool = False,
    ) -> pd.DataFrame:
        """:func:`reintegration.summaries.summarise` of the records ``filters`` keeps, per group
        of ``by`` (names of :data:`GROUPINGS`, or ``months_band``), from the cube.
        ``scored_only``: of the scored records alone (groups without one left out)."""
        by = list(by)
        rows = self.rows[_kept(self.rows, filters)]
        if scored_only:
            rows = rows[rows["n_returnees"].to_numpy() > 0]
        codes, groups = group_codes(rows, by)
        count = len(groups[by[0]]) if by else 1
        sums = _Sums(rows, codes, count)
        table: dict[str, Any] = {k: np.append(v, TOTAL).astype(object) for k, v in groups.items()}
        for name in FLAGS:
            if scored_only and name == "unscored":
                table[name] = np.zeros(count + 1, dtype=np.int64)
                if keyed:
                    table[f"{name}_key"] = np.zeros(count + 1, dtype=np.int64)
                continue
            table[name] = sums.count(f"n_{name}")
            if keyed:
                table[f"{name}_key"] = sums.key(f"k_{name}")
        n = sums.pairs("n_returnees")
        table["returnees_clusters"] = sums.clusters(n, "n_returnees")
        table["returnees_qww"] = sums.cross(n, n, "n_returnees")
        for name in FLAGS[2:]:
            s = sums.pairs(f"n_{name}")
            table[f"{name}_qyy"] = sums.cross(s, s, f"n_{name}")
            table[f"{name}_qyw"] = sums.cross(s, n, f"n_{name}")
        for f in figures:
            fn, fs = sums.pairs(f"n_{f}"), sums.pairs(f"s_{f}")
            table[f"{f}_n"] = sums.count(f"n_{f}")
            if keyed:
                table[f"{f}_key"] = sums.key(f"k_{f}")
            table[f"{f}_sum"] = sums.total(f"s_{f}")
            table[f"{f}_sumsq"] = sums.total(f"q_{f}")
            table[f"{f}_clusters"] = sums.clusters(fn, f"n_{f}")
            table[f"{f}_qyy"] = sums.cross(fs, fs, f"q_{f}")
            table[f"{f}_qyw"] = sums.cross(fs, fn, f"s_{f}")
            table[f"{f}_qww"] = sums.cross(fn, fn, f"n_{f}")
            if keyed:
                table[f"{f}_top"] = sums.largest(f"t_{f}", table[f"{f}_n"])
            else:
                table[f"{f}_sd"] = _sd(table[f"{f}_n"], table[f"{f}_sum"], table[f"{f}_sumsq"])
        out = pd.DataFrame(table)
        return out if by else out.iloc[-1:].reset_index(drop=True)

    def histogram(self, filters: Any) -> tuple[np.ndarray, np.ndarray]:
        """The scored latest composites per histogram bin (``np.histogram``'s ten bins over
        ``[0, 1]``) of the records ``filters`` keeps, and each bin's key sum modulo ``2**31``."""
        rows = self.rows[_kept(self.rows, filters)]
        counts = np.array([int(rows[f"h_{i}"].sum()) for i in range(HISTOGRAM_BINS)])
        keys = np.array([int(rows[f"hk_{i}"].sum()) % KEY_MODULUS for i in range(HISTOGRAM_BINS)])
        return counts, keys

    def survey_count(self, filters: Any) -> tuple[int, int]:
        """Every row (survey) ``filters`` keeps, and their key sum modulo ``2**31``."""
        if self.surveys is None:
            raise ValueError("this cube was built without the surveys")
        rows = self.surveys[_kept(self.surveys, filters)]
        return int(rows["n_rows"].sum()), int(rows["k_rows"].sum()) % KEY_MODULUS


def _summed(table: pd.DataFrame, dims: list[str]) -> pd.DataFrame:
    grouped = table.groupby(dims, observed=True, sort=True, dropna=False)
    values = [c for c in table.columns if c not in dims]
    maxima = [c for c in values if c.startswith("t_")]
    out = grouped[[c for c in values if c not in maxima]].sum()
    if maxima:
        out[maxima] = grouped[maxima].max()
    out = out.reset_index()
    for d in dims:  # the dimensions as the frame has them (categories and their order)
        if isinstance(table[d].dtype, pd.CategoricalDtype):
            out[d] = pd.Categorical(out[d], categories=table[d].cat.categories)
    return out


def _kept(rows: pd.DataFrame, filters: Any) -> np.ndarray:
    keep = np.ones(len(rows), dtype=bool)
    for field, column in (
        ("countries", "country"),
        ("sex", "sex"),
        ("age_group", "age_group"),
        ("return_type", "return_type"),
    ):
        wanted = getattr(filters, field)
        if wanted is not None:
            keep &= rows[column].isin(list(wanted)).to_numpy()
    return keep


class _Sums:
    """Per cell (then in total) sums of cube rows, and the per-(cell, enumerator) sums the
    cluster terms need (a row without an enumerator holds records that are each a cluster of
    their own: their terms are sums too)."""

    def __init__(self, rows: pd.DataFrame, codes: np.ndarray, cells: int) -> None:
        self.rows, self.codes, self.cells = rows, codes, cells
        clusters = rows["enumerator_id"].cat.codes.to_numpy().astype(np.int64)
        self.alone = clusters < 0
        size = int(clusters.max()) + 1 if len(clusters) and clusters.max() >= 0 else 1
        joint = np.where(self.alone, cells * size, codes * size + clusters)
        observed, self.pair = np.unique(joint, return_inverse=True)
        self.pair = self.pair.reshape(-1)
        self.pair_count = len(observed)
        real = observed < cells * size
        self.pair_cell = np.where(real, observed // size, -1)
        self.pair_cluster = np.where(real, observed % size, -1)
        self.size = size

    def column(self, name: str) -> np.ndarray:
        return self.rows[name].to_numpy()

    def count(self, name: str) -> np.ndarray:
        values = self.column(name).astype(np.int64)
        per_cell = np.zeros(self.cells, dtype=np.int64)
        np.add.at(per_cell, self.codes, values)
        return np.append(per_cell, per_cell.sum())

    def key(self, name: str) -> np.ndarray:
        sums = self.count(name)[:-1]
        return np.append(sums % KEY_MODULUS, int(sums.sum() % KEY_MODULUS)).astype(np.int64)

    def total(self, name: str) -> np.ndarray:
        values = self.column(name).astype(np.float64)
        return np.append(np.bincount(self.codes, values, self.cells), values.sum())

    def pairs(self, name: str) -> np.ndarray:
        """Per (cell, enumerator) pair, the sum of ``name`` (the last pair, of the rows without
        an enumerator, is not one and is never read as one)."""
        values = self.column(name).astype(np.float64)
        return np.bincount(self.pair, np.where(self.alone, 0.0, values), self.pair_count)

    def _alone(self, name: str) -> tuple[np.ndarray, float]:
        values = np.where(self.alone, self.column(name).astype(np.float64), 0.0)
        return np.bincount(self.codes, values, self.cells), float(values.sum())

    def _per_cell(self, per_pair: np.ndarray) -> np.ndarray:
        real = self.pair_cell >= 0
        return np.bincount(self.pair_cell[real], per_pair[real], self.cells)

    def _per_cluster(self, per_pair: np.ndarray) -> np.ndarray:
        real = self.pair_cluster >= 0
        return np.bincount(self.pair_cluster[real], per_pair[real], self.size)

    def clusters(self, n: np.ndarray, alone: str) -> np.ndarray:
        """The clusters with a counted record: pairs with ``n`` > 0, and each record alone."""
        cells, total = self._alone(alone)
        cells = cells + self._per_cell((n > 0).astype(np.float64))
        total += float((self._per_cluster(n) > 0).sum())
        return np.append(cells, total).astype(np.int64)

    def cross(self, s: np.ndarray, w: np.ndarray, alone: str) -> np.ndarray:
        """``Σ_c S_c W_c`` per cell and in total, the records alone adding ``alone``'s sum
        (their own ``y·w``: ``y²``, ``y`` or ``1`` as the caller names it)."""
        cells, total = self._alone(alone)
        cells = cells + self._per_cell(s * w)
        total += float((self._per_cluster(s) * self._per_cluster(w)).sum())
        return np.append(cells, total)

    def largest(self, name: str, n: np.ndarray) -> np.ndarray:
        per_cell = np.zeros(self.cells)
        np.maximum.at(per_cell, self.codes, self.column(name).astype(np.float64))
        out = np.append(per_cell, per_cell.max(initial=0.0))
        return np.where(n > 0, out, np.nan)


def _sd(n: np.ndarray, sums: np.ndarray, squares: np.ndarray) -> np.ndarray:
    """The sample sd from n, Σy and Σy² (one pass), missing below two values."""
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.maximum(squares - sums * sums / n, 0.0)
        return np.where(n > 1, np.sqrt(spread / (n - 1)), np.nan)
