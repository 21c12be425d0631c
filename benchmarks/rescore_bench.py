"""Benchmark rescoring stored submissions with a new index version, against plain inserts.

    .venv/bin/python benchmarks/rescore_bench.py --store /tmp/bench/home/reintegration.db
    .venv/bin/python benchmarks/rescore_bench.py --rows 200000 [--work /tmp/rescore_bench]

With ``--rows`` a store is made first, outside the repository: ``reintegration synth`` (three
rounds, about 2.57 interviews per returnee) then ``reintegration ingest`` into a fresh
``REINTEGRATION_HOME`` under ``--work``. 1M rows take about 90 s to ingest; the store is kept
and reused on the next run with the same ``--rows``.

Two measurements, each on a fresh copy of the store, in the same run (so both see the same
machine load):

1. *baseline*: plain inserts of as many ``score`` rows as there are current submissions, every
   value bound on every row with ``executemany`` in one transaction (``BEGIN IMMEDIATE`` ...
   ``COMMIT``), the rows built before the clock starts. This is the floor of any write path
   that stores one row per submission.
2. *rescore*: ``reintegration.store.rescore.rescore`` with a derived index version (other
   weights, another label): read every current submission's answers, decode and code them,
   score, insert, bump the data version, commit.

Target (issue 4): rescoring runs at 50,000 rows/s or more on SQLite for 1M submissions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reintegration.index import ReintegrationIndex  # noqa: E402
from reintegration.questionnaire import load_questionnaire  # noqa: E402
from reintegration.store.engine import create_store_engine  # noqa: E402
from reintegration.store.rescore import rescore  # noqa: E402

COMMAND = Path(sys.executable).with_name("reintegration")
ROWS_PER_RETURNEE = 2.57
TARGET = 50_000


def make_store(rows: int, work: Path) -> Path:
    home = work / f"home-{rows}"
    store = home / "reintegration.db"
    if store.exists():
        return store
    panel = work / f"panel-{rows}.csv"
    env = {**os.environ, "REINTEGRATION_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true"}
    returnees = max(1, round(rows / ROWS_PER_RETURNEE))
    subprocess.run(
        [
            str(COMMAND),
            "synth",
            "--returnees",
            str(returnees),
            "--rounds",
            "3",
            "--out",
            str(panel),
        ],
        check=True,
        env=env,
    )
    started = time.perf_counter()
    subprocess.run(
        [str(COMMAND), "ingest", str(panel), "--json"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    print(f"made the store: {time.perf_counter() - started:.1f} s to ingest {panel.name}")
    panel.unlink()
    return store


def fresh_copy(store: Path, work: Path) -> Path:
    copy = work / "copy.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    # Checkpoint first, so the copy holds every committed page.
    with sqlite3.connect(store) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(store, copy)
    return copy


def baseline(path: Path) -> tuple[int, float, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -262144")
    ids = [r[0] for r in conn.execute("SELECT id FROM submission WHERE current ORDER BY id")]
    n = len(ids)
    rng = np.random.default_rng(0)
    figures = [np.round(rng.random(n), 4).tolist() for _ in range(7)]
    levels = rng.choice(["low", "medium", "high"], n).tolist()
    weakest = rng.choice(["economic", "social", "psychosocial"], n).tolist()
    sustainable = (rng.random(n) > 0.5).tolist()
    rows = list(
        zip(
            ids,
            ["rss-index"] * n,
            ["rss-plain"] * n,
            [2] * n,
            *figures,
            levels,
            weakest,
            sustainable,
            ["2026-01-01 00:00:00.000000"] * n,
            strict=True,
        )
    )
    marks = ", ".join("?" * 15)
    started, cpu = time.perf_counter(), time.process_time()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO score (submission_pk, model, index_version, model_version, economic, "
        "social, psychosocial, composite, coverage_economic, coverage_social, "
        "coverage_psychosocial, level, weakest_dimension, sustainable, created_at) "
        f"VALUES ({marks})",
        rows,
    )
    conn.execute("COMMIT")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    conn.close()
    return n, seconds, cpu


def derived_index() -> ReintegrationIndex:
    weights = load_questionnaire().item_weights()
    derived = {
        dim: {item: 1.0 + k for k, item in enumerate(items)} for dim, items in weights.items()
    }
    return ReintegrationIndex(item_weights=derived, label="rss-v2-derived").fit()


def rescoring(path: Path) -> tuple[int, float, float]:
    engine = create_store_engine(f"sqlite:///{path}")
    index = derived_index()
    started, cpu = time.perf_counter(), time.process_time()
    n = rescore(engine, index, load_questionnaire(), model="rss-index", model_version=2)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    return n, seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="an existing store (SQLite file)")
    parser.add_argument("--rows", type=int, help="make a store of about this many interviews")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rescore_bench"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.store is None and args.rows is None:
        parser.error("give --store or --rows")
    store = args.store or make_store(args.rows, args.work)
    load = os.getloadavg()[0]
    n_base, t_base, cpu_base = baseline(fresh_copy(store, args.work))
    n, t, cpu = rescoring(fresh_copy(store, args.work))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{args.work / 'copy.db'}{suffix}").unlink(missing_ok=True)
    base_rate, rate = n_base / t_base, n / t
    cores = os.cpu_count()
    print(f"current submissions: {n:,}; load average at the start: {load:.1f} on {cores} cores")
    print(
        f"baseline (plain inserts, values bound per row): {t_base:6.1f} s  {base_rate:9,.0f} "
        f"rows/s  (CPU {cpu_base:.1f} s)"
    )
    print(
        f"rescore (read, decode, score, insert, commit):  {t:6.1f} s  {rate:9,.0f} rows/s  "
        f"(CPU {cpu:.1f} s, both threads)"
    )
    print(f"rescore / baseline: {rate / base_rate:.2f}")
    print(f"target {TARGET:,} rows/s: {'met' if rate >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
