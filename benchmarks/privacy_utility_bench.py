"""Measure what protected figures cost in accuracy, and what they give an attacker, by simulation.

    .venv/bin/python benchmarks/privacy_utility_bench.py [--cells 2000] [--seed 1]

On synthetic records (composite scores in [0, 1] with a mean near 0.5 and an sd near 0.17, a
random record key each), with the default parameters (``REINTEGRATION_PERTURB_*`` of the
environment, else the defaults), prints:

1. the mean absolute change of a count (cells of 5 to 1,000 records);
2. the mean absolute change of a mean composite in cells of 50 and of 500 records, of its sd,
   and of the share sustainable;
3. the differencing attack of issue 12: two cells that differ by one record (about 400 and
   401 records); the attacker's guess of that record's composite (the difference of the
   published sums, each sum being the published mean times the published count) against the
   published mean of the larger cell, as mean absolute errors over many targets.

Issue 12's ceilings: a count at most 2, a mean composite at most 0.03 at n = 50 and 0.005 at
n = 500; the attack's error no smaller than the guess's.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from reintegration.aggregate import breakdown
from reintegration.disclosure import Protection
from reintegration.settings import get_settings, protection

FIGURES = ("composite",)


def records(sizes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Cells of the given sizes, numbered by ``cell``: composites, sustainability, keys."""
    cell = np.repeat(np.arange(len(sizes)), sizes)
    composite = np.clip(rng.beta(4.0, 4.0, len(cell)), 0.0, 1.0)
    return pd.DataFrame(
        {
            "cell": cell,
            "composite": composite,
            "sustainable": (composite >= 0.6).astype(float),
            "record_key": rng.integers(0, 2**31, len(cell)),
        }
    )


def published(frame: pd.DataFrame, chosen: Protection | None) -> pd.DataFrame:
    """The figures of each cell (no suppression: min_cell 1), indexed by cell."""
    table = breakdown(frame, ["cell"], figures=FIGURES, min_cell=1, protection=chosen)
    table = table[~table["other"]] if "other" in table else table
    return table.iloc[:-1].astype({"cell": "int64"}).set_index("cell")


def costs(size: int, cells: int, chosen: Protection, rng: np.random.Generator) -> dict[str, float]:
    """Mean absolute changes of the figures of ``cells`` cells of ``size`` records."""
    frame = records(np.full(cells, size), rng)
    exact, noisy = published(frame, None), published(frame, chosen)
    numbers = ["returnees", "composite_mean", "composite_sd", "share_sustainable"]
    change = (noisy[numbers] - exact[numbers]).abs()
    return {
        "count": float(change["returnees"].mean()),
        "mean": float(change["composite_mean"].mean()),
        "sd": float(change["composite_sd"].mean()),
        "share": float(change["share_sustainable"].mean()),
    }


def differencing(cells: int, chosen: Protection, rng: np.random.Generator) -> tuple[float, float]:
    """MAE of the attack and of the guess over ``cells`` targets, each added to ~400 others."""
    sizes = rng.integers(380, 420, cells)
    base = records(sizes, rng)
    targets = records(np.ones(cells, dtype=np.int64), rng)
    both = pd.concat([base, targets], ignore_index=True)
    without, with_target = published(base, chosen), published(both, chosen)
    sums_with = with_target["composite_mean"] * with_target["returnees"]
    sums_without = without["composite_mean"] * without["returnees"]
    truth = targets.set_index("cell")["composite"]
    attack = (sums_with - sums_without - truth).abs().mean()
    guess = (with_target["composite_mean"] - truth).abs().mean()
    return float(attack), float(guess)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=2000, help="cells per measurement")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    chosen = protection(get_settings())
    print(
        f"parameters: max_count_change={chosen.max_count_change}, "
        f"count_variance={chosen.count_variance}, sum_noise={chosen.sum_noise}"
    )
    counts = records(rng.integers(5, 1001, args.cells), rng)
    count_change = (
        (published(counts, chosen)["returnees"] - published(counts, None)["returnees"]).abs().mean()
    )
    print("| figure | mean absolute change | ceiling |\n|---|---|---|")
    print(f"| count (5 to 1,000) | {count_change:.3f} | 2 |")
    for size, ceiling in ((50, "0.03"), (500, "0.005")):
        measured = costs(size, args.cells, chosen, rng)
        print(f"| mean composite, n = {size} | {measured['mean']:.4f} | {ceiling} |")
        print(f"| sd of the composite, n = {size} | {measured['sd']:.4f} | - |")
        print(f"| share sustainable, n = {size} | {measured['share']:.4f} | - |")
    attack, guess = differencing(args.cells, chosen, rng)
    print(
        f"\ndifferencing two cells of ~400 and ~401 records, {args.cells} targets: "
        f"attack MAE {attack:.4f}, guess MAE {guess:.4f} (ratio {attack / guess:.2f})"
    )


if __name__ == "__main__":
    main()
