"""Benchmark `reintegration score` against the parse floor and a row-wise scorer, in one run.

    .venv/bin/python benchmarks/score_bench.py --rows 1000000 [--repeats 3]

1. Generates a canonical CSV of ``--rows`` interviews with the synthetic generator.
2. Alternates, ``--repeats`` times, two fresh processes: the *parse floor* (Python that reads
   the file with ``pyarrow.csv.read_csv`` and nothing else) and the whole ``reintegration score``
   command (start-up, read, validate, code, score, write). Prints the ratio of the medians and
   each process's peak memory (``ru_maxrss`` of that child, from ``os.wait4``).
3. Scores the first 100,000 rows with a row-wise ``DataFrame.apply`` scorer (the baseline a
   spreadsheet-minded implementation would write) and compares rows per second.

Targets (issue "The spine"): ratio <= 2.5, peak memory < 1.5 GB at 1M rows, and at least
100x the rows per second of the row-wise scorer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from reintegration.questionnaire import load_questionnaire
from reintegration.synth import generate_panel, write_panel

ROOT = Path(__file__).resolve().parents[1]
COMMAND = Path(sys.executable).with_name("reintegration")
ATTRITION_ROWS_PER_RETURNEE = 2.5  # three rounds with attrition give about this many rows


def run_child(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited with {proc.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def make_batch(rows: int, folder: Path) -> Path:
    returnees = int(rows / ATTRITION_ROWS_PER_RETURNEE) + 1000
    frame, _ = generate_panel(returnees, 3, seed=7)
    while len(frame) < rows:  # attrition is random: top up rather than guess
        returnees = int(returnees * 1.1)
        frame, _ = generate_panel(returnees, 3, seed=7)
    path = folder / "batch.csv"
    write_panel(frame.iloc[:rows], path, "csv")
    return path


def rowwise_scorer():
    """A straightforward scorer: code and score one row at a time with ``DataFrame.apply``."""
    q = load_questionnaire()
    tables = {}
    for item in q.items:
        table = {}
        for option in item.options:
            for text in (option.code, *option.labels.values()):
                table[text.strip().lower()] = option.value
        for option in item.not_applicable:
            table[option.code] = "na"
        tables[item.id] = table
    dims = q.index.dimensions
    items_by_dim = {d: q.items_of(d) for d in dims}

    def score(row: pd.Series) -> pd.Series:
        out = {}
        for dim in dims:
            total = observed = applicable = 0.0
            for item in items_by_dim[dim]:
                cell = row.get(item.id)
                cell = "" if cell is None or cell != cell else str(cell).strip().lower()
                if item.is_multiple:
                    codes = set(cell.split())
                    value = None if not codes else 1.0 - len(codes - {"none"}) / len(item.options)
                else:
                    value = tables[item.id].get(cell)
                if value == "na":
                    continue
                applicable += 1
                if value is not None:
                    total += value
                    observed += 1
            coverage = observed / applicable if applicable else np.nan
            out[dim] = total / observed if observed and coverage >= 0.6 else np.nan
        out["composite"] = sum(out[d] for d in dims) / len(dims)
        return pd.Series(out)

    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rowwise-rows", type=int, default=100_000)
    parser.add_argument("--generate-into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_into:
        make_batch(args.rows, args.generate_into)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"generating {args.rows:,} rows …", flush=True)
        # In a child process: a forked child's ru_maxrss starts from its parent's resident
        # size, so this process stays small for the memory figures to be the commands' own.
        subprocess.run(
            [sys.executable, __file__, "--rows", str(args.rows), "--generate-into", str(folder)],
            check=True,
        )
        batch = folder / "batch.csv"
        size_mb = batch.stat().st_size / 2**20
        print(f"batch: {batch.stat().st_size / 2**20:.0f} MB, {args.rows:,} rows")
        floor_code = f"import pyarrow.csv; pyarrow.csv.read_csv({str(batch)!r})"
        floors, commands, floor_mem, command_mem = [], [], [], []
        for k in range(args.repeats):
            t, m = run_child([sys.executable, "-c", floor_code])
            floors.append(t)
            floor_mem.append(m)
            t, m = run_child([str(COMMAND), "score", str(batch), "--out", str(folder / "out.csv")])
            commands.append(t)
            command_mem.append(m)
            print(
                f"  run {k + 1}: floor {floors[-1]:.2f} s ({floor_mem[-1]:.0f} MB), "
                f"score {commands[-1]:.2f} s ({command_mem[-1]:.0f} MB)",
                flush=True,
            )
        floor, command = statistics.median(floors), statistics.median(commands)
        command_rate = args.rows / command

        sample = pd.read_csv(batch, nrows=args.rowwise_rows, dtype=str, keep_default_na=False)
        scorer = rowwise_scorer()
        start = time.perf_counter()
        sample.apply(scorer, axis=1)
        rowwise_rate = len(sample) / (time.perf_counter() - start)

    print()
    print(
        f"parse floor (pyarrow.csv.read_csv, fresh process): median {floor:.2f} s, "
        f"peak {max(floor_mem):.0f} MB"
    )
    print(
        f"reintegration score (whole command):              median {command:.2f} s, "
        f"peak {max(command_mem):.0f} MB, {command_rate:,.0f} rows/s, {size_mb / command:.0f} MB/s"
    )
    print(f"ratio score / floor: {command / floor:.2f}x   (target <= 2.5x)")
    print(f"peak memory of score: {max(command_mem):.0f} MB   (target < 1536 MB)")
    print(
        f"row-wise DataFrame.apply scorer on {args.rowwise_rows:,} rows: {rowwise_rate:,.0f} rows/s"
    )
    print(f"speed-up over row-wise: {command_rate / rowwise_rate:,.0f}x   (target >= 100x)")


if __name__ == "__main__":
    main()
