"""Drift is computed only for items with enough answers on both sides (drift.MIN_ROWS); a
small batch says "too few rows" instead of raising "major shift"."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from reintegration.drift import MIN_ROWS, TOO_FEW, item_psi, reference, status

VALUES = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


def _items(rng: np.random.Generator, rows: int, items: int = 26) -> pd.DataFrame:
    """Coded answers drawn from one fixed distribution per item (no real shift)."""
    shares = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    return pd.DataFrame({f"item{k}": rng.choice(VALUES, size=rows, p=shares) for k in range(items)})


def test_a_four_row_batch_reads_too_few_rows_not_major_shift():
    rng = np.random.default_rng(4)
    ref = reference(_items(rng, 2000))
    batch = _items(rng, 4)

    before = item_psi(ref, batch, min_rows=1)  # what every batch got before MIN_ROWS
    table = item_psi(ref, batch)

    assert (before["status"] == "major shift").sum() >= 13  # noise read as shift
    assert set(table["status"]) == {TOO_FEW}
    assert table["psi"].isna().all() and (table["n"] == 4).all()


def test_a_batch_from_the_same_distribution_with_enough_rows_is_stable():
    rng = np.random.default_rng(5)
    ref = reference(_items(rng, 2000))
    table = item_psi(ref, _items(rng, 1000))

    assert (table["status"] == "stable").all()
    assert (table["psi"] < 0.1).all()


def test_the_minimum_applies_on_both_sides_at_exactly_min_rows():
    rng = np.random.default_rng(6)
    big = _items(rng, 500, items=1)
    just = _items(rng, MIN_ROWS, items=1)
    short = _items(rng, MIN_ROWS - 1, items=1)

    assert item_psi(reference(big), just)["psi"].notna().all()
    assert item_psi(reference(big), short)["status"].tolist() == [TOO_FEW]
    small_reference = item_psi(reference(short), big).iloc[0]
    assert small_reference["status"] == TOO_FEW and small_reference["n_reference"] == 29
    # Missing answers do not count as rows.
    gappy = just.astype(float)
    gappy.iloc[0, 0] = np.nan
    assert item_psi(reference(big), gappy)["status"].tolist() == [TOO_FEW]


def test_status_reads_psi_in_the_usual_bands():
    assert [status(v, 100) for v in (0.0, 0.099, 0.1, 0.249, 0.25)] == [
        "stable",
        "stable",
        "moderate shift",
        "moderate shift",
        "major shift",
    ]
    assert status(3.0, MIN_ROWS - 1) == TOO_FEW
    assert status(float("nan"), 500) == TOO_FEW


def test_stored_psi_of_a_small_batch_reads_too_few_rows(engine, questionnaire, tmp_path):
    from reintegration.index import ReintegrationIndex
    from reintegration.ingest import ingest_file
    from reintegration.quality import drift_by_item
    from reintegration.store.schema import drift
    from tests.conftest import canonical_row, write_csv

    batches = []
    for number in (1, 2):
        path = write_csv(tmp_path / f"b{number}.csv", [canonical_row(questionnaire, number)])
        report = ingest_file(
            path,
            engine,
            scorer=ReintegrationIndex().fit(),
            questionnaire=questionnaire,
            secret=b"s" * 32,
            uploader="tester",
        )
        batches.append(report.batch_id)
    a, b = questionnaire.item_ids[:2]
    now = datetime.now(UTC)
    rows = [
        # An older, large batch, then a 4-row batch stored before MIN_ROWS (PSI 0.9) and one
        # stored after it (no PSI).
        (batches[0], a, 0.02, 400),
        (batches[0], b, 0.30, 400),
        (batches[1], a, 0.90, 4),
        (batches[1], b, None, 4),
    ]
    with engine.begin() as conn:
        conn.execute(
            drift.insert(),
            [
                {
                    "batch_id": batch,
                    "model": "rss-index",
                    "model_version": 1,
                    "item": item,
                    "psi": psi,
                    "n": n,
                    "created_at": now,
                }
                for batch, item, psi, n in rows
            ],
        )
    table = drift_by_item(engine, model="rss-index", model_version=1).set_index("item")

    assert table.loc[a, "status"] == table.loc[b, "status"] == TOO_FEW
    assert table.loc[a, "n_latest"] == 4
    # Not the older batch's 0.30 in place of the latest batch's missing PSI.
    assert np.isnan(table.loc[a, "psi_latest"]) and np.isnan(table.loc[b, "psi_latest"])


def test_the_drift_chart_marks_items_with_too_few_rows():
    from dashboards.figures.models import drift_figure

    table = pd.DataFrame(
        {
            "item": ["a", "b"],
            "batches": [1, 1],
            "n": [4, 400],
            "n_latest": [4, 400],
            "psi_latest": [np.nan, 0.3],
            "psi_mean": [0.9, 0.3],
            "psi_max": [0.9, 0.3],
            "status": [TOO_FEW, "major shift"],
        }
    )
    fig = drift_figure(table, index_version="v", labels={"a": "Item A"})
    bars = [t for t in fig.data if t.type == "bar"][0]
    (marks,) = [t for t in fig.data if t.type == "scatter"]

    assert np.isnan(bars.x[0]) and bars.x[1] == pytest.approx(0.3)
    assert list(marks.y) == ["Item A"] and list(marks.text) == ["too few rows (n = 4)"]
    assert f"fewer than {MIN_ROWS} answers: too few rows" in fig.layout.title.subtitle.text
    # A table without status (older callers) is read from its PSI and n.
    legacy = drift_figure(table.drop(columns=["status", "n_latest"]), index_version="v", labels={})
    assert [t.text for t in legacy.data if t.type == "scatter"][0] == ("too few rows (n = 4)",)
