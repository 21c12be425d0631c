"""What a new question costs inside the server, by the path that answers it, and how many
answer at once (issue 14).

    .venv/bin/python benchmarks/question_cost_bench.py --home /tmp/api-bench [--questions 300]

The store is ``--home``'s (``benchmarks/api_bench.py`` fills one with about a million
interviews). In one process: the frame and every cube are built first (timed), then the
questions of ``api_bench.py --mixed`` (same seed, same draw) are asked of
:class:`reintegration.analytics.Analytics` as the API asks them (aggregates with their stages,
overview with its stages), each once, and its CPU time (``time.process_time``, so other
processes' load counts little) is reported per path: which cube answers it, or the records.
Then the same questions from fresh caches by 1, 2 and 16 threads at once: questions per second,
and the ratio to one thread (the baseline, measured in the same run).

Only the standard library, NumPy and the project are imported; nothing reaches the network.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import api_bench  # noqa: E402  (the question draw of the API bench)

from reintegration import cube as cubes  # noqa: E402
from reintegration.analytics import Analytics, Filters, _within, widened  # noqa: E402
from reintegration.store.engine import open_store  # noqa: E402

Question = tuple[str, list[str], Filters, bool]


def parse(request: bytes) -> Question:
    """A drawn HTTP request as (kind, by, filters, protected)."""
    target = request.split(b"\r\n")[0].decode().split(" ")[1]
    path, _, query = target.partition("?")
    params = dict(urllib.parse.parse_qsl(query))
    token = request.split(b"Bearer ")[1].split(b"\r\n")[0].decode()

    def values(name: str) -> frozenset[str] | None:
        return None if name not in params else frozenset(params[name].split(","))

    filters = Filters(
        countries=values("country"),
        sex=values("sex"),
        age_group=values("age_group"),
        return_type=values("return_type"),
        rounds=None if "round" not in params else frozenset(int(r) for r in values("round") or ()),
        date_from=date.fromisoformat(params["from"]) if "from" in params else None,
        date_to=date.fromisoformat(params["to"]) if "to" in params else None,
    )
    protected = token == "manager" or params.get("protected") == "true"
    by = params["by"].split(",") if "by" in params else []
    return path.rsplit("/", 1)[1], by, filters, protected


def path_of(
    analytics: Analytics, label: str, by: list[str], filters: Filters, protected: bool
) -> str:
    """Which cube answers the question (the one ``Analytics._cube_for`` picks), or
    ``records``."""
    filters = widened(filters) if protected else filters
    within = _within(by)
    found = analytics._cube_for(filters, label, within, by)
    if found is None:
        return "records"
    (_, built_within, kind), _ = next(
        (key, value) for key, value in analytics._cubes.items() if value[1] is found
    )
    if list(built_within) != within:
        return "one round (by-round cubes)"
    if kind == "months":
        return "month cube, edges" if cubes._cut(filters) else "month cube"
    return {"latest": "latest cube", "rounds": "round cube"}[kind]


def ask(analytics: Analytics, label: str, question: Question) -> None:
    kind, by, filters, protected = question
    with analytics.pinned():
        if kind == "aggregates":
            analytics.aggregates(by, filters, label, protected=protected)
        else:
            analytics.overview(filters, label, protected=protected)
        analytics.stages(by if kind == "aggregates" else [], filters, label, protected=protected)


def forget(analytics: Analytics) -> None:
    """Drop every kept answer and selection (the frame and cubes stay)."""
    analytics._answers.clear()
    analytics._selections.clear()
    for _, built in analytics._cubes.values():
        if built is not None:
            built._kept.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/api-bench"))
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    analytics = Analytics(open_store(f"sqlite:///{args.home / 'reintegration.db'}"))
    label = analytics.index_versions()[-1]
    started = time.perf_counter()
    frame = analytics.frame(label)
    print(f"frame of {len(frame):,} interviews in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    for within in ((), ("round",)):
        analytics.cube(label, within, wait=True)
        analytics.cube(label, within, months=True, wait=True)
    analytics.cube(label, (), rounds=True, wait=True)
    print(f"cubes in {time.perf_counter() - started:.1f} s; load {os.getloadavg()[0]:.2f}")
    tokens = {"analyst": "analyst", "manager": "manager"}
    drawn = api_bench.draw_mixed(
        api_bench._store_values(args.home), tokens, args.questions, args.seed
    )
    questions = [parse(request) for _, request in drawn]
    cost: dict[str, list[float]] = {}
    for question in questions:
        clock = time.process_time()
        ask(analytics, label, question)
        path = path_of(analytics, label, *question[1:])
        cost.setdefault(path, []).append((time.process_time() - clock) * 1000)
    everything = np.concatenate([np.array(v) for v in cost.values()])
    print(f"\nCPU per new question (ms), {len(everything)} questions, seed {args.seed}:")
    print(f"{'path':<28} {'share':>6} {'mean':>7} {'p50':>7} {'p95':>7} {'of CPU':>7}")
    for name, values in sorted(cost.items(), key=lambda item: -sum(item[1])):
        v = np.array(values)
        print(
            f"{name:<28} {len(v) / len(everything):6.0%} {v.mean():7.1f} {np.median(v):7.1f} "
            f"{np.percentile(v, 95):7.1f} {v.sum() / everything.sum():7.0%}"
        )
    print(f"{'all':<28} {1:6.0%} {everything.mean():7.1f} {np.median(everything):7.1f}")
    print("\nthe same questions from fresh caches, threads at once (ratio to 1 thread):")
    rates: dict[int, Any] = {}
    for threads in (1, 2, 16):
        forget(analytics)
        clock = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda q: ask(analytics, label, q), questions))
        rates[threads] = len(questions) / (time.perf_counter() - clock)
        print(
            f"  {threads:2d} threads: {rates[threads]:6.1f} questions/s "
            f"({rates[threads] / rates[1]:.2f}); load {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
