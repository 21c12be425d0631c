"""Measure analytics engines on the same questions: today's NumPy path against DuckDB (issue 14).

    .venv/bin/python benchmarks/engine_bench.py [--home /tmp/reintegration-protection-bench] \
        [--questions 120] [--seed 0] [--repeats 2] [--threads 1,4,16]

Needs ``duckdb`` in the venv (``.venv/bin/pip install duckdb``; not a dependency of the
product). The store is only read (build one with ``benchmarks/protection_bench.py``).

1. **Questions**: ``--questions`` random questions from ``--seed`` with the filters of
   ``benchmarks/protection_bench.py`` (country subsets, date windows, rounds, sex, age group,
   return type): 80% aggregates (``by`` of 0 to 3 plain groupings), 20% overview totals.
2. **What each engine computes**: the per-cell summaries the disclosure step takes, the
   protected variant (:func:`reintegration.summaries.summarise` with ``keyed=True``): per cell
   and in total, the counts (returnees, unscored, sustainable, per level) with their record-key
   sums modulo ``2**31``; per figure the number of values, key sum, sum, sum of squares and
   largest absolute value; and the cluster terms of the linearised variance: per (cell,
   enumerator) sums, then per cell their number, sums of squares and cross-products
   (``_clusters``, ``_qyy``, ``_qyw``, ``_qww``). Overview questions add the number of surveys
   (with its key) and the composite histogram (counts and keys per bin).

   - *numpy*: :meth:`Analytics._records` (filter and each returnee's latest scored survey, per
     round when broken out by round) then :func:`summarise`, as the server does;
   - *duckdb-arrow*: one SQL statement over a zero-copy Arrow view of the same frame: the
     filter, the latest row per returnee (``max`` of ``scored << 32 | position``, the position
     being the frame's order, so the same row as NumPy's stable lexsort), then a two-level
     ``GROUPING SETS`` aggregate (per (cell, enumerator), then per cell), key sums in exact
     integers (``HUGEINT``) then ``% 2**31``;
   - *duckdb-table*: the same statement over a DuckDB in-memory table copied from the frame.

   Both DuckDB variants read the store's data version first, as the server's path does.
3. **Check**: every DuckDB answer has NumPy's cells, counts and key sums exactly, and its sums,
   sums of squares, maxima and cluster terms within a relative 1e-9.
4. **Timing**: single thread, each question asked of each variant ``--repeats`` times,
   interleaved (the variant order rotated per question), its fastest time kept; then the
   throughput of each variant with ``--threads`` threads sharing the questions (every thread
   its own DuckDB cursor), the variants run in turn, twice, and the better kept.
5. **Memory**: the process's RSS after the frame, the Arrow view and the DuckDB table, and the
   peak during each variant's threaded runs (``VmHWM``, reset through ``clear_refs``).

Every line says the load average; the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reintegration.analytics import Analytics, Filters, _day, _staged_within
from reintegration.panel_frame import FIGURES
from reintegration.store.engine import create_store_engine
from reintegration.summaries import KEY_MODULUS, LEVELS, TOTAL, group_codes, summarise

sys.path.insert(0, str(Path(__file__).parent))
from protection_bench import PLAIN_GROUPS, _draw_by, _draw_filters  # noqa: E402

HISTOGRAM_BINS = 10
EDGES = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
FLAGS = ("returnees", "unscored", "sustainable", *(f"level_{x}" for x in LEVELS))


@dataclass(frozen=True)
class Question:
    kind: str  # "aggregates" or "overview"
    by: tuple[str, ...]
    filters: Filters


def load_average() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def memory(field: str = "VmRSS") -> float:
    """This process's ``field`` from /proc/self/status, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def draw_questions(frame: pd.DataFrame, count: int, seed: int) -> list[Question]:
    rng = np.random.default_rng(seed)
    days = frame["interview_day"].to_numpy()
    first, last = int(days.min()), int(days.max())
    values = {
        name: sorted(str(v) for v in frame[name].dropna().unique())
        for name in ("country", "sex", "age_group", "return_type")
    }
    rounds = sorted(int(r) for r in frame["round"].unique())
    out = []
    for _ in range(count):
        overview = rng.random() < 0.2
        filters = _draw_filters(rng, values, rounds, first, last)
        by = () if overview else _draw_by(rng, PLAIN_GROUPS, int(rng.integers(0, 4)))
        out.append(Question("overview" if overview else "aggregates", by, filters))
    return out


# -- (a) NumPy: the server's path -------------------------------------------------------------


def numpy_answer(analytics: Analytics, label: str, q: Question) -> dict[str, Any]:
    if q.kind == "aggregates":
        within = [b for b in q.by if b in ("round", "months_band")]
        records = analytics._records(q.filters, label, within)
        return {"cells": summarise(records, list(q.by), FIGURES, keyed=True)}
    frame = analytics.frame(label)
    mask = analytics._selected(frame, q.filters)
    records = analytics._latest(frame, np.flatnonzero(mask), _staged_within(q.filters, ()))
    cells = summarise(records, [], FIGURES, keyed=True)
    scored = records[records["composite"].notna()]
    where = np.clip(
        np.searchsorted(EDGES, scored["composite"].to_numpy(), side="right") - 1,
        0,
        HISTOGRAM_BINS - 1,
    )
    keys = np.bincount(
        where, weights=scored["record_key"].to_numpy(np.float64), minlength=HISTOGRAM_BINS
    )
    return {
        "cells": cells,
        "surveys": int(mask.sum()),
        "surveys_key": int(frame["record_key"].to_numpy()[mask].sum() % KEY_MODULUS),
        "histogram": np.bincount(where, minlength=HISTOGRAM_BINS).tolist(),
        "histogram_key": [int(k) % KEY_MODULUS for k in keys],
    }


# -- (b) DuckDB ------------------------------------------------------------------------------


CODED = ("sex", "age_group", "return_type", "country")


@dataclass(frozen=True)
class Copy:
    """The frame's copy DuckDB reads, and what the statement needs to know of it."""

    table: Any  # a pyarrow.Table
    labels: dict[str, np.ndarray]  # per coded column, its labels by code
    complete: dict[str, bool]  # per figure: known wherever the composite is
    unscored_null: dict[str, bool]  # per figure: missing wherever the composite is


def arrow_copy(frame: pd.DataFrame) -> Copy:
    """The columns the questions need as an Arrow table: ``pos`` is the frame's order; the
    groups are category codes (``-1`` missing); ``cluster`` the enumerator's number (a record
    without one: a negative number of its own); ``scored``, ``sus`` (scored and sustainable)
    and ``lvl`` (level code) are precomputed flags."""
    import pyarrow as pa

    pos = np.arange(len(frame), dtype=np.int64)
    codes = frame["enumerator_id"].cat.codes.to_numpy().astype(np.int64)
    scored = frame["composite"].notna().to_numpy()
    data: dict[str, Any] = {
        "pos": pos,
        "rkey": frame["rkey"].to_numpy(np.int64),
        "interview_day": frame["interview_day"].to_numpy(np.int64),
        "round": frame["round"].to_numpy(np.int64),
        "record_key": frame["record_key"].to_numpy(np.int64),
        "cluster": np.where(codes >= 0, codes, -1 - pos),
        "scored": scored.astype(np.int8),
        "sus": (scored & (frame["sustainable"].to_numpy(np.float64) == 1.0)).astype(np.int8),
        "lvl": np.where(scored, frame["level"].cat.codes.to_numpy(), -1).astype(np.int8),
    }
    labels = {}
    for name in CODED:
        data[name] = frame[name].cat.codes.to_numpy().astype(np.int16)
        labels[name] = np.asarray(frame[name].cat.categories, dtype=object)
    for f in FIGURES:  # NaN as NULL, as SQL aggregates skip it
        data[f] = pa.array(frame[f].to_numpy(np.float64), from_pandas=True)
    known = {f: frame[f].notna().to_numpy() for f in FIGURES}
    complete = {f: bool(known[f][scored].all()) for f in FIGURES}
    unscored_null = {f: not known[f][~scored].any() for f in FIGURES}
    if list(frame["level"].cat.categories) != list(LEVELS):
        raise ValueError("levels out of order")
    return Copy(pa.table(data), labels, complete, unscored_null)


def _listed(values: frozenset[Any]) -> str:
    return ", ".join(str(int(v)) for v in sorted(values)) or "NULL"


def where_clause(filters: Filters, labels: dict[str, np.ndarray]) -> str:
    parts = ["TRUE"]
    if filters.date_from is not None:
        parts.append(f"interview_day >= {_day(filters.date_from)}")
    if filters.date_to is not None:
        parts.append(f"interview_day <= {_day(filters.date_to)}")
    if filters.rounds is not None:
        parts.append(f'"round" IN ({_listed(filters.rounds)})')
    for field, column in (
        ("countries", "country"),
        ("sex", "sex"),
        ("age_group", "age_group"),
        ("return_type", "return_type"),
    ):
        wanted = getattr(filters, field)
        if wanted is not None:
            codes = frozenset(i for i, v in enumerate(labels[column]) if v in wanted)
            parts.append(f"{column} IN ({_listed(codes)})")
    if filters.exclude_flagged_enumerators or filters.at_round or filters.at_band:
        raise NotImplementedError("the bench draws none of these")
    return " AND ".join(parts)


def _bin_case() -> str:
    # np.histogram's bins as the NumPy path draws them: searchsorted(edges, v, "right") - 1,
    # clipped to [0, 9]; the edges written with repr so the comparisons are the same floats.
    whens = " ".join(f"WHEN composite < {float(EDGES[i])!r} THEN {i - 1}" for i in range(1, 10))
    return f"CASE WHEN composite IS NULL THEN NULL {whens} ELSE 9 END"


def duckdb_sql(q: Question, table: str, copy: Copy) -> str:
    """One statement: filter, latest row per returnee (per round when broken out by it), sums
    per (cell, enumerator), then per cell and, from the per-enumerator sums, in total."""
    by = [f'"{b}"' for b in q.by]
    overview = q.kind == "overview"
    # 1. Each returnee's latest scored row in the filter (else latest row): the largest
    # scored << 32 | position, position being the frame's (returnee, date) order.
    counted = ", count(*) AS rows, sum(record_key) AS keys" if overview else ""
    within = ', "round"' if "round" in q.by else ""
    # 2. Per (cell, enumerator): counts and key sums of each flag, sums, squares, maxima.
    pair = [
        "count(*) AS n_all",
        "sum(record_key) AS k_all",
        "sum(scored) AS n_returnees",
        "sum(record_key) FILTER (WHERE scored = 1) AS k_returnees",
        "sum(sus) AS n_sustainable",
        "sum(record_key) FILTER (WHERE sus = 1) AS k_sustainable",
    ]
    for i, level in enumerate(LEVELS):
        pair.append(f"count(*) FILTER (WHERE lvl = {i}) AS n_level_{level}")
        pair.append(f"sum(record_key) FILTER (WHERE lvl = {i}) AS k_level_{level}")
    counts = {}
    for f in FIGURES:  # a FILTER only where the copy has values outside what it counts
        only = "" if copy.unscored_null[f] else " FILTER (WHERE scored = 1)"
        pair += [
            f"sum({f}){only} AS s_{f}",
            f"sum({f} * {f}){only} AS q_{f}",
            f"max(abs({f})){only} AS t_{f}",
        ]
        counts[f] = "returnees"
        if not copy.complete[f]:
            counts[f] = f
            pair.append(f"count({f}) FILTER (WHERE scored = 1) AS n_{f}")
            pair.append(f"sum(record_key) FILTER (WHERE scored = 1 AND {f} IS NOT NULL) AS k_{f}")
    if overview:
        for i in range(HISTOGRAM_BINS):
            pair.append(f"count(*) FILTER (WHERE bin = {i}) AS h_{i}")
            pair.append(f"sum(record_key) FILTER (WHERE bin = {i}) AS hk_{i}")
    names = [p.rsplit(" AS ", 1)[1] for p in pair]
    maxima = {n for n in names if n.startswith("t_")}
    # 3. Per cell (g = 0) and in total (g = 1, from the per-enumerator sums).
    regroup = ", ".join(f"{'max' if n in maxima else 'sum'}({n}) AS {n}" for n in names)
    nulls = "".join(f"NULL AS {b}, " for b in by)
    mod = KEY_MODULUS
    cell = []
    for name in FLAGS:
        n = "n_all - n_returnees" if name == "unscored" else f"n_{name}"
        k = "k_all - coalesce(k_returnees, 0)" if name == "unscored" else f"k_{name}"
        cell.append(f"sum({n})::BIGINT AS {name}")
        cell.append(f"(coalesce(sum({k}), 0) % {mod})::BIGINT AS {name}_key")
    cell.append("count(*) FILTER (WHERE n_returnees > 0)::BIGINT AS returnees_clusters")
    cell.append("sum((n_returnees * n_returnees)::DOUBLE) AS returnees_qww")
    for name in FLAGS[2:]:
        cell.append(f"sum((n_{name} * n_{name})::DOUBLE) AS {name}_qyy")
        cell.append(f"sum((n_{name} * n_returnees)::DOUBLE) AS {name}_qyw")
    for f in FIGURES:
        c = counts[f]
        cell += [
            f"sum(n_{c})::BIGINT AS {f}_n",
            f"(coalesce(sum(k_{c}), 0) % {mod})::BIGINT AS {f}_key",
            f"coalesce(sum(s_{f}), 0.0) AS {f}_sum",
            f"coalesce(sum(q_{f}), 0.0) AS {f}_sumsq",
            f"count(*) FILTER (WHERE n_{c} > 0)::BIGINT AS {f}_clusters",
            f"coalesce(sum(s_{f} * s_{f}), 0.0) AS {f}_qyy",
            f"coalesce(sum(s_{f} * n_{c}), 0.0) AS {f}_qyw",
            f"sum((n_{c} * n_{c})::DOUBLE) AS {f}_qww",
            f"max(t_{f}) AS {f}_top",
        ]
    if overview:
        for i in range(HISTOGRAM_BINS):
            cell.append(f"sum(h_{i})::BIGINT AS h_{i}")
            cell.append(f"(coalesce(sum(hk_{i}), 0) % {mod})::BIGINT AS hk_{i}")
        cell.append("(SELECT sum(rows) FROM latest)::BIGINT AS surveys")
        cell.append(f"((SELECT sum(keys) FROM latest) % {mod})::BIGINT AS surveys_key")
    columns = ", ".join(names)
    both = (
        f"SELECT 0 AS g, {', '.join(by)}, cluster, {columns} FROM pairs UNION ALL "
        f"SELECT 1, {nulls}cluster, {regroup} FROM pairs GROUP BY cluster"
        if by
        else f"SELECT 0 AS g, cluster, {columns} FROM pairs"
    )
    outer = ", ".join(["g", *by])
    extra = f", {_bin_case()} AS bin" if overview else ""
    return f"""
WITH latest AS MATERIALIZED (
    SELECT max(scored::BIGINT * 4294967296 + pos) % 4294967296 AS pos{counted}
    FROM {table} WHERE {where_clause(q.filters, copy.labels)}
    GROUP BY rkey{within}
), records AS (SELECT t.*{extra} FROM {table} t SEMI JOIN latest USING (pos)
), pairs AS MATERIALIZED (
    SELECT {", ".join(by)}{", " if by else ""}cluster, {", ".join(pair)}
    FROM records GROUP BY {", ".join([*by, "cluster"])}
), both_levels AS ({both})
SELECT {outer}, {", ".join(cell)} FROM both_levels GROUP BY {outer} ORDER BY {outer}
"""


def duckdb_answer(
    cursor: Any, analytics: Analytics, table: str, copy: Copy, q: Question, columns: list[str]
) -> dict[str, Any]:
    analytics.data_version()  # as the server's path: an answer is keyed on the data version
    out = cursor.execute(duckdb_sql(q, table, copy)).df()
    if not (out["g"] == (1 if q.by else 0)).any():  # nothing selected: summarise's zero total
        zero = {c: np.nan if c.endswith("_top") else 0 for c in out.columns}
        out = pd.DataFrame([{**zero, "g": 1 if q.by else 0}])
    answer: dict[str, Any] = {}
    if q.kind == "overview":
        row = out.iloc[-1]
        answer["surveys"] = int(row["surveys"])
        answer["surveys_key"] = int(row["surveys_key"])
        answer["histogram"] = [int(row[f"h_{i}"]) for i in range(HISTOGRAM_BINS)]
        answer["histogram_key"] = [int(row[f"hk_{i}"]) for i in range(HISTOGRAM_BINS)]
    # Codes back to labels; the total row last, its groups "all", as summarise gives it.
    total = (out["g"] == 1).to_numpy()
    for b in q.by:
        values = out[b].to_numpy()
        if b in copy.labels:
            names = np.append(copy.labels[b], np.nan).astype(object)
            codes = np.where(total, -1, values).astype(np.int64)
            values = names[np.where(codes < 0, len(names) - 1, codes)]
        out[b] = np.where(total, TOTAL, values.astype(object))
    answer["cells"] = out[[*q.by, *[c for c in columns if c not in q.by]]]
    return answer


# -- (c) precomputed summaries: a cube of per-(groups, enumerator) sums -------------------------

CUBE_DIMS = ("sex", "age_group", "return_type", "country")


def answerable(q: Question) -> bool:
    """Whether the cube answers ``q``: no date window and no round filter (the sex, age group,
    return type and country of a returnee do not change, so they select whole returnees and
    never change which of a returnee's surveys is the latest)."""
    f = q.filters
    return f.date_from is None and f.date_to is None and f.rounds is None


class Cube:
    """Per data version, the additive summaries of each returnee's latest scored survey (and,
    for answers by round, of each round's) per (sex, age group, return type, country, [round],
    enumerator): counts and key sums of each flag, and per figure its sum, sum of squares and
    largest absolute value; the overview's surveys and histogram bins too. A question with no
    date window and no round filter is then a few passes over a few thousand rows."""

    def __init__(self, analytics: Analytics, label: str) -> None:
        frame = analytics.frame(label)
        self.overall = self._pairs(analytics._records(Filters(), label, []), [], frame)
        self.by_round = self._pairs(analytics._records(Filters(), label, ["round"]), ["round"])

    def _pairs(
        self, records: pd.DataFrame, extra: list[str], frame: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        dims = [*CUBE_DIMS, *extra, "enumerator_id"]
        scored = records["composite"].notna().to_numpy()
        key = records["record_key"].to_numpy(np.int64)
        level = records["level"].cat.codes.to_numpy()
        flags = {
            "all": np.ones(len(records), bool),
            "returnees": scored,
            "sustainable": scored & (records["sustainable"].to_numpy(np.float64) == 1.0),
            **{f"level_{x}": scored & (level == i) for i, x in enumerate(LEVELS)},
        }
        columns: dict[str, Any] = {}
        for name, flag in flags.items():
            columns[f"n_{name}"] = flag.astype(np.int64)
            columns[f"k_{name}"] = np.where(flag, key, 0)
        for f in FIGURES:
            value = records[f].to_numpy(np.float64)
            counted = scored & ~np.isnan(value)
            columns[f"n_{f}"] = counted.astype(np.int64)
            columns[f"k_{f}"] = np.where(counted, key, 0)
            y = np.where(counted, value, 0.0)
            columns[f"s_{f}"], columns[f"q_{f}"], columns[f"t_{f}"] = y, y * y, np.abs(y)
        if frame is not None:  # the overview's histogram of the latest composites
            where = np.clip(
                np.searchsorted(EDGES, records["composite"].to_numpy(), side="right") - 1,
                0,
                HISTOGRAM_BINS - 1,
            )
            for i in range(HISTOGRAM_BINS):
                hit = scored & (where == i)
                columns[f"h_{i}"] = hit.astype(np.int64)
                columns[f"hk_{i}"] = np.where(hit, key, 0)
        table = pd.DataFrame(columns).assign(**{d: records[d].to_numpy() for d in dims})
        grouped = table.groupby(dims, observed=True, sort=True, dropna=False)
        maxima = [c for c in columns if c.startswith("t_")]
        out = grouped[[c for c in columns if c not in maxima]].sum()
        out[maxima] = grouped[maxima].max()
        out = out.reset_index()
        for d in dims:  # the groups' categories as the records have them (their order)
            if isinstance(records[d].dtype, pd.CategoricalDtype):
                out[d] = pd.Categorical(out[d], categories=records[d].cat.categories)
        if frame is not None:  # the overview's surveys: every row of the filter, per groups
            rows = frame.groupby(list(CUBE_DIMS), observed=True, dropna=False)["record_key"]
            surveys = pd.DataFrame({"surveys": rows.size(), "surveys_k": rows.sum()})
            self.surveys = surveys.reset_index()
        return out

    def answer(self, q: Question) -> dict[str, Any]:
        cube = self.by_round if "round" in q.by else self.overall
        keep = _cube_mask(cube, q.filters)
        rows = _Rows(cube, keep)
        codes, groups = group_codes(cube.iloc[np.flatnonzero(keep)][list(q.by)], list(q.by))
        cells = len(groups[q.by[0]]) if q.by else 1
        clusters = cube["enumerator_id"].cat.codes.to_numpy()[keep].astype(np.int64)
        if (clusters < 0).any():
            raise NotImplementedError("records without an enumerator: clusters of their own")
        size = int(clusters.max()) + 1 if len(clusters) else 1
        pair, pair_index = np.unique(codes * size + clusters, return_inverse=True)
        pair_cell = pair // size
        pair_cluster = pair % size

        def per_pair(column: str) -> np.ndarray:
            return np.bincount(pair_index, rows[column].astype(np.float64), len(pair))

        def per_cell(values: np.ndarray, total: float) -> np.ndarray:
            return np.append(np.bincount(pair_cell, values, cells), total)

        def per_cluster_total(values: np.ndarray, squared: np.ndarray | None = None) -> float:
            by_cluster = np.bincount(pair_cluster, values, size)
            other = by_cluster if squared is None else np.bincount(pair_cluster, squared, size)
            return float((by_cluster * other).sum())

        def keys(column: str) -> np.ndarray:
            k = rows[column].astype(np.int64)
            sums = np.zeros(cells, dtype=np.int64)
            np.add.at(sums, codes, k % KEY_MODULUS)
            return np.append(sums % KEY_MODULUS, int(k.sum() % KEY_MODULUS))

        def count(column: str) -> np.ndarray:
            n = rows[column].astype(np.int64)
            return np.append(np.bincount(codes, n, cells).astype(np.int64), int(n.sum()))

        table: dict[str, Any] = {b: np.append(v, TOTAL).astype(object) for b, v in groups.items()}
        n_ret = per_pair("n_returnees")
        for name in FLAGS:
            if name == "unscored":
                table[name] = count("n_all") - count("n_returnees")
                table[f"{name}_key"] = (keys("k_all") - keys("k_returnees")) % KEY_MODULUS
            else:
                table[name], table[f"{name}_key"] = count(f"n_{name}"), keys(f"k_{name}")
        present = (n_ret > 0).astype(np.float64)
        by_cluster_n = np.bincount(pair_cluster, n_ret, size)
        table["returnees_clusters"] = per_cell(present, float((by_cluster_n > 0).sum()))
        table["returnees_qww"] = per_cell(n_ret * n_ret, per_cluster_total(n_ret))
        for name in FLAGS[2:]:
            s = per_pair(f"n_{name}")
            table[f"{name}_qyy"] = per_cell(s * s, per_cluster_total(s))
            table[f"{name}_qyw"] = per_cell(s * n_ret, per_cluster_total(s, n_ret))
        for f in FIGURES:
            n, s, q2 = per_pair(f"n_{f}"), per_pair(f"s_{f}"), per_pair(f"q_{f}")
            table[f"{f}_n"], table[f"{f}_key"] = count(f"n_{f}"), keys(f"k_{f}")
            table[f"{f}_sum"] = per_cell(s, float(s.sum()))
            table[f"{f}_sumsq"] = per_cell(q2, float(q2.sum()))
            by_cluster = np.bincount(pair_cluster, n, size)
            table[f"{f}_clusters"] = per_cell((n > 0).astype(float), float((by_cluster > 0).sum()))
            table[f"{f}_qyy"] = per_cell(s * s, per_cluster_total(s))
            table[f"{f}_qyw"] = per_cell(s * n, per_cluster_total(s, n))
            table[f"{f}_qww"] = per_cell(n * n, per_cluster_total(n))
            top = np.zeros(cells)
            np.maximum.at(top, codes, rows[f"t_{f}"].astype(np.float64))
            top = np.append(top, top.max(initial=0.0))
            table[f"{f}_top"] = np.where(table[f"{f}_n"] > 0, top, np.nan)
        cells_table = pd.DataFrame(table)
        answer: dict[str, Any] = {"cells": cells_table if q.by else cells_table.iloc[-1:]}
        if q.kind == "overview":
            answer["histogram"] = [int(rows[f"h_{i}"].sum()) for i in range(HISTOGRAM_BINS)]
            answer["histogram_key"] = [
                int(rows[f"hk_{i}"].sum() % KEY_MODULUS) for i in range(HISTOGRAM_BINS)
            ]
            surveys = self.surveys[_cube_mask(self.surveys, q.filters)]
            answer["surveys"] = int(surveys["surveys"].sum())
            answer["surveys_key"] = int(surveys["surveys_k"].sum() % KEY_MODULUS)
        return answer


class _Rows:
    """The kept rows' columns as arrays, each taken once."""

    def __init__(self, cube: pd.DataFrame, keep: np.ndarray) -> None:
        self.cube, self.keep = cube, keep
        self.taken: dict[str, np.ndarray] = {}

    def __getitem__(self, column: str) -> np.ndarray:
        if column not in self.taken:
            self.taken[column] = self.cube[column].to_numpy()[self.keep]
        return self.taken[column]


def _cube_mask(cube: pd.DataFrame, filters: Filters) -> np.ndarray:
    keep = np.ones(len(cube), bool)
    for field, column in (
        ("countries", "country"),
        ("sex", "sex"),
        ("age_group", "age_group"),
        ("return_type", "return_type"),
    ):
        wanted = getattr(filters, field)
        if wanted is not None:
            keep &= cube[column].isin(wanted).to_numpy()
    return keep


# -- the check ---------------------------------------------------------------------------------


def differences(a: dict[str, Any], b: dict[str, Any], by: tuple[str, ...]) -> str | None:
    """Why answer ``b`` differs from ``a`` (the NumPy one), or None."""
    for name in ("surveys", "surveys_key", "histogram", "histogram_key"):
        if name in a and a[name] != b[name]:
            return f"{name}: {a[name]} != {b[name]}"
    x, y = a["cells"], b["cells"]
    keys = [list(map(_text, row)) for row in x[list(by)].itertuples(index=False)]
    other = [list(map(_text, row)) for row in y[list(by)].itertuples(index=False)]
    if sorted(keys) != sorted(other):
        return f"cells differ: {len(x)} and {len(y)}"
    order = {tuple(k): i for i, k in enumerate(other)}
    y = y.iloc[[order[tuple(k)] for k in keys]]
    for column in x.columns:
        if column in by:
            continue
        if column not in y:
            return f"column {column} missing"
        u = x[column].to_numpy(np.float64)
        v = y[column].to_numpy(np.float64)
        exact = column in FLAGS or column.endswith(("_key", "_n", "_clusters"))
        same = np.array_equal(u, v, equal_nan=True) if exact else _close(u, v)
        if not same:
            return f"{column}: {u[:4]} != {v[:4]}"
    return None


def _text(value: Any) -> str:
    """A group value as text: a round read back as a float (a column with NULLs) as its int."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _close(u: np.ndarray, v: np.ndarray) -> bool:
    return bool(np.allclose(u, v, rtol=1e-9, atol=1e-9, equal_nan=True))


# -- the run -----------------------------------------------------------------------------------


def single(
    variants: dict[str, Callable[[Question], dict[str, Any]]],
    questions: list[Question],
    repeats: int,
) -> tuple[dict[str, np.ndarray], list[str]]:
    names = list(variants)
    times = {n: np.zeros(len(questions)) for n in names}
    failures = []
    for i, q in enumerate(questions):
        answers = {}
        for r in range(repeats):
            shift = (i + r) % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                answers[name] = variants[name](q)
                seconds = time.perf_counter() - started
                times[name][i] = seconds if r == 0 else min(times[name][i], seconds)
        for name in names[1:]:
            if why := differences(answers[names[0]], answers[name], q.by):
                failures.append(f"{name}, question {i} ({q}): {why}")
    return times, failures


def throughput(
    call: Callable[[Question], Any], questions: list[Question], threads: int
) -> tuple[float, float]:
    """Questions per second with ``threads`` threads sharing ``questions``, and the peak RSS."""
    reset_peak()
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(call, questions))
    return len(questions) / (time.perf_counter() - started), memory("VmHWM")


def main() -> None:
    import duckdb

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/reintegration-protection-bench"))
    parser.add_argument("--questions", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", default="1,4,16")
    args = parser.parse_args()
    engine = create_store_engine(f"sqlite:///{args.home / 'reintegration.db'}")
    analytics = Analytics(engine)
    label = analytics.index_versions()[-1]
    rss0 = memory()
    started = time.perf_counter()
    frame = analytics.frame(label)
    rss_frame = memory()
    print(
        f"frame of {len(frame):,} rows loaded in {time.perf_counter() - started:.1f} s; RSS "
        f"{rss0:.0f} -> {rss_frame:.0f} MB; {load_average()} on {os.cpu_count()} CPUs",
        flush=True,
    )
    copy = arrow_copy(frame)
    arrow = copy.table
    rss_arrow = memory()
    con = duckdb.connect()
    con.register("frame_arrow", arrow)
    con.execute("CREATE TABLE frame_table AS SELECT * FROM frame_arrow")
    rss_table = memory()
    threads_setting = con.execute("SELECT current_setting('threads')").fetchone()[0]
    print(
        f"Arrow copy {arrow.nbytes / 2**20:.0f} MB (RSS -> {rss_arrow:.0f} MB); DuckDB table "
        f"(RSS -> {rss_table:.0f} MB); DuckDB {duckdb.__version__}, {threads_setting} threads",
        flush=True,
    )
    questions = draw_questions(frame, args.questions, args.seed)
    local = threading.local()

    def cursor() -> Any:
        if not hasattr(local, "cursor"):
            local.cursor = con.cursor()
            local.cursor.register("frame_arrow", arrow)  # a registered view is per cursor
        return local.cursor

    def ask(cursor: Any, table: str, q: Question) -> dict[str, Any]:
        return duckdb_answer(cursor, analytics, table, copy, q, columns)

    columns = list(summarise(frame.iloc[:50], [], FIGURES, keyed=True).columns)
    variants: dict[str, Callable[[Question], dict[str, Any]]] = {
        "numpy": lambda q: numpy_answer(analytics, label, q),
        "duckdb-arrow": lambda q: ask(cursor(), "frame_arrow", q),
        "duckdb-table": lambda q: ask(cursor(), "frame_table", q),
    }
    kinds = np.array([q.kind for q in questions])
    print(
        f"{len(questions)} questions (seed {args.seed}: {int((kinds == 'aggregates').sum())} "
        f"aggregates, {int((kinds == 'overview').sum())} overviews), fastest of {args.repeats}, "
        f"interleaved; {load_average()}",
        flush=True,
    )
    times, failures = single(variants, questions, args.repeats)
    base = times["numpy"]
    print(
        f"\n{'single thread':<14} {'median ms':>10} {'p95 ms':>8} {'ratio':>7}  ({load_average()})"
    )
    for name, values in times.items():
        print(
            f"{name:<14} {np.median(values) * 1000:10.1f} {np.percentile(values, 95) * 1000:8.1f}"
            f" {np.median(values / base):7.3f}"
        )
    compared = len(questions) * (len(variants) - 1)
    print(f"check: {compared - len(failures)}/{compared} DuckDB answers equal NumPy's summaries")
    for failure in failures[:10]:
        print(f"  {failure}")
    print(f"\n{'throughput':<14} {'threads':>7} {'q/s':>8} {'ratio':>7} {'peak RSS MB':>12}")
    for count in [int(t) for t in args.threads.split(",")]:
        best: dict[str, tuple[float, float]] = {}
        for _ in range(2):  # the variants in turn, twice: noise falls on each
            for name, call in variants.items():
                rate, peak = throughput(call, questions, count)
                if name not in best or rate > best[name][0]:
                    best[name] = (rate, peak)
        for name, (rate, peak) in best.items():
            print(
                f"{name:<14} {count:7d} {rate:8.1f} {rate / best['numpy'][0]:7.2f} {peak:12.0f}"
                f"  ({load_average()})",
                flush=True,
            )
    bench_cube(analytics, label, questions, args.repeats, variants["numpy"])
    print(f"\nRSS at the end {memory():.0f} MB; {load_average()}")


def bench_cube(
    analytics: Analytics,
    label: str,
    questions: list[Question],
    repeats: int,
    numpy_call: Callable[[Question], dict[str, Any]],
) -> None:
    """(c): the questions the cube answers, against NumPy on the same questions."""
    before = memory()
    started = time.perf_counter()
    cube = Cube(analytics, label)
    built = time.perf_counter() - started
    rows = len(cube.overall) + len(cube.by_round) + len(cube.surveys)
    subset = [q for q in questions if answerable(q)]
    print(
        f"\ncube (c): built in {built:.1f} s, {rows:,} rows ({len(cube.overall):,} latest, "
        f"{len(cube.by_round):,} by round), RSS {before:.0f} -> {memory():.0f} MB; answers "
        f"{len(subset)}/{len(questions)} questions (no date window, no round filter); "
        f"{load_average()}",
        flush=True,
    )
    if not subset:
        return
    variants = {"numpy": numpy_call, "cube": cube.answer}
    times, failures = single(variants, subset, repeats)
    base = times["numpy"]
    for name, values in times.items():
        print(
            f"{name:<14} {np.median(values) * 1000:10.2f} {np.percentile(values, 95) * 1000:8.2f}"
            f" {np.median(values / base):7.4f}"
        )
    print(f"check: {len(subset) - len(failures)}/{len(subset)} cube answers equal NumPy's")
    for failure in failures[:5]:
        print(f"  {failure}")
    for count in (1, 16):
        rate, peak = throughput(cube.answer, subset * 20, count)
        print(f"cube throughput, {count} threads: {rate:.0f} q/s; {load_average()}")


if __name__ == "__main__":
    main()
