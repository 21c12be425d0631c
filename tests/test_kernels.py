"""The compiled sums (reintegration.kernels) against a plain NumPy reading of their
definition, on random rows: enumerators in runs, rows without one anywhere, several cells."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from reintegration import kernels
from reintegration.cube import FIGURES, FLAGS, SUMS, VALUE, VALUES


def _reference(values, rows, cells, clusters_of, count, summed, paired, terms, counted):
    """Per cell and in total, by their definition: sums, the rows alone, and over the
    enumerators of each cell Σ S_a S_b and the number with a positive sum."""
    v = values[rows]
    sums = np.zeros((count, len(summed)))
    alone = np.zeros((count, len(summed)))
    np.add.at(sums, cells, v[:, summed])
    lone = clusters_of < 0
    np.add.at(alone, cells[lone], v[lone][:, summed])
    enumerators = np.unique(clusters_of[~lone])
    cross = np.zeros((count, len(terms)))
    clusters = np.zeros((count, len(counted)), dtype=np.int64)
    total_cross = np.zeros(len(terms))
    total_clusters = np.zeros(len(counted), dtype=np.int64)
    for c in enumerators:
        mine = clusters_of == c
        per_cell = np.zeros((count, len(paired)))
        np.add.at(per_cell, cells[mine], v[mine][:, paired])
        overall = per_cell.sum(axis=0)
        for t, (a, b) in enumerate(terms):
            cross[:, t] += per_cell[:, a] * per_cell[:, b]
            total_cross[t] += overall[a] * overall[b]
        for k, column in enumerate(counted):
            clusters[:, k] += per_cell[:, column] > 0
            total_clusters[k] += overall[column] > 0
    return sums, alone, cross, clusters, total_cross, total_clusters


@pytest.mark.parametrize("seed", range(5))
def test_cell_sums_follow_their_definition(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 4, (300, kernels.COLUMNS)).astype(np.float64)
    values[:, 10:22] = rng.random((300, 12))  # the figures' sums, squares and maxima
    rows = np.sort(rng.choice(300, 200, replace=False))
    clusters_of = np.sort(rng.integers(-1, 12, 200))  # each enumerator in one run
    clusters_of[rng.random(200) < 0.1] = -1  # rows without one, anywhere
    cells = rng.integers(0, 4, 200)
    sums_of = np.arange(SUMS)
    paired = np.array([0, 10, 2])
    terms, counted = np.array([[0, 0], [1, 0], [1, 1], [2, 1]]), np.array([0, 2])
    found = kernels.cell_sums(values, rows, cells, clusters_of, 4, paired, terms, counted)
    sums, keys, alone, cross, clusters, top, total_cross, total_clusters = found
    expected = _reference(values, rows, cells, clusters_of, 4, sums_of, paired, terms, counted)
    for got, want in zip(
        (sums, alone, cross, clusters, total_cross, total_clusters), expected, strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    for cell in range(4):
        mine = values[rows[cells == cell]]
        assert keys[cell].tolist() == mine[:, SUMS:].sum(axis=0).astype(np.int64).tolist()
        tops = [VALUE[f"t_{f}"] for f in FIGURES]
        assert top[cell].tolist() == (
            mine[:, tops].max(axis=0).tolist() if len(mine) else [0.0] * 4
        )


@pytest.mark.parametrize("slots", [2**24, 0])
def test_records_sum_as_cube_rows_of_their_own(monkeypatch, slots):
    """record_sums (pairs indexed, or with no room for them the records sorted by
    enumerator) against cell_sums on the records laid out as cube rows by hand."""
    monkeypatch.setattr(kernels, "SLOTS", slots)
    rng = np.random.default_rng(1)
    n = 500
    composite = np.where(rng.random(n) < 0.2, np.nan, rng.random(n))
    figures = [rng.random(n), rng.random(n), rng.random(n), composite]
    sustainable = (rng.random(n) < 0.5).astype(np.float64)
    level = rng.integers(-1, 3, n).astype(np.int8)
    record_key = rng.integers(0, 2**31, n)
    columns = (*figures, sustainable, level, record_key)
    rows = rng.choice(n, 300, replace=False)  # any order
    clusters_of = rng.integers(-1, 7, 300)  # not in runs
    cells = rng.integers(0, 3, 300)
    scored = ~np.isnan(composite)
    # The records as cube rows of their own, in the layout of reintegration.cube.VALUES.
    table = {
        "n_returnees": scored,
        "n_unscored": ~scored,
        "n_sustainable": scored & (sustainable == 1),
        **{f"n_level_{x}": scored & (level == i) for i, x in enumerate(("low", "medium", "high"))},
    }
    for f, y in zip(FIGURES, figures, strict=True):
        counted = scored & ~np.isnan(y)
        table[f"n_{f}"] = counted
        table[f"s_{f}"] = np.where(counted, y, 0.0)
        table[f"q_{f}"] = np.where(counted, y * y, 0.0)
        table[f"t_{f}"] = np.where(counted, np.abs(y), 0.0)
    for name in (*FLAGS, *FIGURES):
        table[f"k_{name}"] = np.where(table[f"n_{name}"], record_key, 0)
    values = np.column_stack([np.asarray(table[name], dtype=np.float64) for name in VALUES])
    order = np.argsort(clusters_of, kind="stable")
    arrays = (np.array([0, 2, 6, 13, 25]), np.array([[0, 0], [1, 0], [2, 3], [3, 4]]), [0, 2])
    want = kernels.cell_sums(values, rows[order], cells[order], clusters_of[order], 3, *arrays)
    got = kernels.record_sums(columns, rows, cells, clusters_of, 3, *arrays)
    for a, b in zip(got, want, strict=True):
        if a.dtype == np.int64:
            np.testing.assert_array_equal(a, b)
        else:  # summed in another order
            np.testing.assert_allclose(a, b, rtol=1e-12)


def test_rows_cells_and_clusters_must_match_in_length():
    one = np.zeros(1, dtype=np.int64)
    with pytest.raises(ValueError, match="rows, cells and clusters_of differ in length"):
        kernels.cell_sums(np.zeros((2, kernels.COLUMNS)), np.arange(2), one, one, 1, one,
                          np.zeros((1, 2), dtype=np.int64), one)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rows": np.array([5])}, "row 5 is outside the 2 rows"),
        ({"cells": np.array([3])}, "cell 3 is outside the 1 cells"),
        ({"paired": np.array([99])}, "paired columns must lie in 0..31"),
        ({"values": np.zeros((2, 3))}, "cube rows have 32 columns"),
    ],
)
def test_what_is_out_of_range_is_refused(change, message):
    one = np.zeros(1, dtype=np.int64)
    arguments = {
        "values": np.zeros((2, kernels.COLUMNS)),
        "rows": one,
        "cells": one,
        "clusters_of": one,
        "count": 1,
        "paired": one,
        "terms": np.zeros((1, 2), dtype=np.int64),
        "counted": one,
    }
    with pytest.raises(ValueError, match=message):
        kernels.cell_sums(**{**arguments, **change})


def test_the_layout_is_the_cube_s():
    assert kernels.COLUMNS == len(VALUES) and SUMS == VALUES.index("k_returnees")


def test_the_compiled_examples_hold():
    """pytest's --doctest-modules reads .py files only: the compiled module's examples here."""
    failed, attempted = doctest.testmod(kernels)
    assert attempted > 0 and failed == 0


def test_records_of_unequal_columns_or_out_of_range_rows_are_refused():
    one = np.zeros(1, dtype=np.int64)
    columns = (*(np.zeros(3) for _ in range(5)), np.zeros(3, dtype=np.int8), np.zeros(3, "i8"))
    pairs = (one, np.zeros((1, 2), dtype=np.int64), one)
    short = (*columns[:6], np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="the record columns differ in length"):
        kernels.record_sums(short, one, one, one, 1, *pairs)
    with pytest.raises(ValueError, match="row 3 is outside the 3 rows"):
        kernels.record_sums(columns, np.array([3]), one, one, 1, *pairs)
    with pytest.raises(ValueError, match="cell 1 is outside the 1 cells"):
        kernels.record_sums(columns, one, np.array([1]), one, 1, *pairs)
