"""How often the promotion gate refuses a challenger as good as the champion (synthetic panel).

Pairs of equally good models: the same pipeline fitted to two bootstrap resamples of the
training returnees (small retrained models), both predicting the same held-out returnees; the
gate (:func:`models.gate.compare`, with the default tolerance and group sizes) compares each
pair. Prints the share refused with its Wilson 95% interval.

    .venv/bin/python benchmarks/gate_false_refusals.py --pairs 100 --model logistic
    .venv/bin/python benchmarks/gate_false_refusals.py --pairs 10 --model boosting   # slow

The fast, synthetic version of this measurement is ``tests/models/test_gate.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main() -> None:
    from models.gate import compare, groups_of
    from models.risk_training import build_baseline, build_model, one_thread, risk_data
    from reintegration.index import ReintegrationIndex
    from reintegration.ingest import ingest_file
    from reintegration.questionnaire import load_questionnaire
    from reintegration.risk_features import GROUPS
    from reintegration.settings import Settings
    from reintegration.store.engine import open_store
    from reintegration.synth import generate_panel, write_panel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--returnees", type=int, default=2500)
    parser.add_argument("--model", choices=("logistic", "boosting"), default="logistic")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    settings = Settings(home=Path(tempfile.mkdtemp()), database_url="", mlflow_tracking_uri="")
    folder = Path(tempfile.mkdtemp())
    frame, _ = generate_panel(args.returnees, 3, seed=args.seed)
    write_panel(frame, folder / "panel.csv", "csv")
    engine = open_store(f"sqlite:///{folder / 'store.db'}")
    index = ReintegrationIndex().fit()
    questionnaire = load_questionnaire()
    ingest_file(
        folder / "panel.csv",
        engine,
        scorer=index,
        questionnaire=questionnaire,
        secret=b"k" * 32,
        uploader="bench",
    )
    data = risk_data(engine, questionnaire, index)
    X_train, y_train = data.X[~data.test], data.y[~data.test]
    X_test, y_test = data.X[data.test], data.y[data.test]
    groups = data.frame.loc[data.test, list(GROUPS)]
    masks = groups_of(groups)
    build = build_baseline if args.model == "logistic" else build_model
    rng = np.random.default_rng(args.seed)
    started = time.monotonic()
    refused, compared = 0, []
    with one_thread():
        for k in range(args.pairs):
            scores = []
            for _ in range(2):
                pick = rng.integers(0, len(y_train), size=len(y_train))
                model = build(index).fit(X_train.iloc[pick], y_train[pick])
                scores.append(model.predict_proba(X_test)[:, 1])
            rows = compare(
                y_test,
                scores[0],
                scores[1],
                groups,
                tolerance=settings.promotion_tolerance,
                min_group=settings.min_group,
                seed=k,
                masks=masks,
            )
            compared.append(len(rows))
            refused += any(r["refused"] for r in rows)
    low, high = wilson(refused, args.pairs)
    print(
        f"{args.model}: {refused} of {args.pairs} pairs of equally good models refused "
        f"({refused / args.pairs:.1%}, Wilson 95% interval {low:.1%} to {high:.1%}); "
        f"{int(np.median(compared))} groups compared per pair on {len(y_test)} held-out "
        f"returnees; {time.monotonic() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
