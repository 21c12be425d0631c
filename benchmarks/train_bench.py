"""Benchmark ``reintegration train index`` and ``train risk`` on 50,000 returnees.

    .venv/bin/python benchmarks/train_bench.py [--returnees 50000] [--work /tmp/train_bench]

Makes (once, kept under ``--work``, outside the repository) a store of a synthetic panel of
``--returnees`` returnees in three rounds with ``reintegration synth`` and ``reintegration
ingest``, and an MLflow store holding the built-in index. Then, in this process and on the same
machine load:

1. *index baseline*: reading the stored interviews and keeping each returnee's latest (the
   floor of any derivation); *index*: ``train_index`` (read, derive, compare with the champion,
   log and register the version in MLflow).
2. *risk baseline*: reading the first surveys and outcomes and fitting the logistic-regression
   baseline alone; *risk*: ``train_risk`` (read, fit the calibrated gradient boosting and the
   baseline, evaluate by subgroup, permutation importance, card, log and register).

Each is run in a fresh process too, as ``reintegration train index|risk`` (imports and all).

Targets (issue 4): risk under 2 minutes, index under 10 s, on this 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

COMMAND = Path(sys.executable).with_name("reintegration")
TARGETS = {"index": 10.0, "risk": 120.0}


def prepare(returnees: int, work: Path) -> dict[str, str]:
    home = work / f"home-{returnees}"
    env = {**os.environ, "REINTEGRATION_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("REINTEGRATION_DATABASE_URL", None)
    if not (home / "reintegration.db").exists():
        panel = work / f"panel-{returnees}.csv"
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
        subprocess.run(
            [str(COMMAND), "ingest", str(panel), "--json"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        panel.unlink()
    return env


def timed(label: str, work: object) -> tuple[float, object]:
    started = time.perf_counter()
    result = work()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    print(f"  {label:<58} {seconds:7.1f} s")
    return seconds, result


def cold(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(COMMAND), *args],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--returnees", type=int, default=50_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/train_bench"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    env = prepare(args.returnees, args.work)
    os.environ.update({k: env[k] for k in ("REINTEGRATION_HOME",)})
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("REINTEGRATION_DATABASE_URL", None)

    from models import registry
    from models.index_training import index_records, train_index
    from models.risk_training import (
        build_baseline,
        one_thread,
        outcome_index,
        risk_data,
        train_risk,
    )
    from reintegration.questionnaire import load_questionnaire
    from reintegration.settings import get_settings
    from reintegration.store.engine import open_store

    settings = get_settings()
    engine = open_store(settings.database_url)
    registry.ensure_builtin_index(settings)  # the MLflow store exists before anything is timed
    questionnaire = load_questionnaire()
    print(
        f"{args.returnees:,} returnees, load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores"
    )

    base_index, _ = timed(
        "index baseline: read interviews, latest per returnee",
        lambda: index_records(engine, questionnaire),
    )
    t_index, done = timed(
        "index: train_index (derive, compare, log, register)",
        lambda: train_index(engine, settings, actor="bench"),
    )
    print(f"    registered {done['label']} from {done['n']:,} returnees")

    def baseline_risk() -> object:
        index = outcome_index(settings)
        data = risk_data(engine, questionnaire, index)
        with one_thread():
            build_baseline(index).fit(data.X[~data.test], data.y[~data.test])
        return data

    base_risk, data = timed("risk baseline: read, fit the logistic regression alone", baseline_risk)
    t_risk, risk = timed(
        "risk: train_risk (fit, calibrate, evaluate, card, register)",
        lambda: train_risk(engine, settings, actor="bench"),
    )
    print(
        f"    {risk['n']:,} returnees with an outcome, {risk['n_test']:,} held out; ROC AUC "
        f"{risk['model']['roc_auc']:.3f} (baseline {risk['baseline']['roc_auc']:.3f})"
    )
    cold_index = cold(env, "train", "index")
    cold_risk = cold(env, "train", "risk")
    print(f"  {'reintegration train index (fresh process)':<58} {cold_index:7.1f} s")
    print(f"  {'reintegration train risk (fresh process)':<58} {cold_risk:7.1f} s")
    print(
        f"index / its baseline: {t_index / base_index:.1f}; "
        f"risk / its baseline: {t_risk / base_risk:.1f}"
    )
    for name, seconds in (("index", max(t_index, cold_index)), ("risk", max(t_risk, cold_risk))):
        verdict = "met" if seconds < TARGETS[name] else "NOT met"
        print(f"target {name} < {TARGETS[name]:.0f} s: {verdict} ({seconds:.1f} s)")
    del data


if __name__ == "__main__":
    main()
