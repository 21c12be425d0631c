"""The promotion gate: simultaneous paired bootstrap intervals of the AUC drop per subgroup.

The false-refusal rate is measured on pairs of equally good models: two rankings of the same
held-out returnees, each the same latent risk plus independent noise of the same size, with
subgroups shaped like the synthetic panel's held-out returnees (about 470, 3 in 4 not
sustainable).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.gate import MIN_EVENTS, comparable, compare, groups_of

PAIRS = 120
TOLERANCE = 0.02
MIN_GROUP = 30


def held_out(n=470, seed=5):
    rng = np.random.default_rng(seed)
    groups = pd.DataFrame(
        {
            "sex": rng.choice(["female", "male"], n, p=[0.35, 0.65]),
            "age_group": rng.choice(["adult", "child"], n, p=[0.85, 0.15]),
            "return_type": rng.choice(["forced", "voluntary", "assisted"], n, p=[0.3, 0.6, 0.1]),
        }
    )
    latent = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 + 2.2 * latent)))).astype(int)
    return rng, groups, latent, y


def wilson(refused: int, pairs: int, z: float = 1.959964) -> tuple[float, float]:
    share = refused / pairs
    centre = (share + z * z / (2 * pairs)) / (1 + z * z / pairs)
    half = (
        z * np.sqrt(share * (1 - share) / pairs + z * z / (4 * pairs * pairs)) / (1 + z * z / pairs)
    )
    return centre - half, centre + half


def test_equally_good_models_are_refused_at_most_5_percent_of_the_time(record_property):
    """Acceptance: the false-refusal rate over 120 pairs, with its Wilson 95% interval."""
    rng, groups, latent, y = held_out()
    masks = groups_of(groups)
    refused = 0
    compared = []
    for k in range(PAIRS):
        champion = latent + rng.normal(scale=0.6, size=len(y))
        challenger = latent + rng.normal(scale=0.6, size=len(y))
        rows = compare(
            y,
            challenger,
            champion,
            groups,
            tolerance=TOLERANCE,
            min_group=MIN_GROUP,
            seed=k,
            masks=masks,
        )
        compared.append(len(rows))
        refused += any(r["refused"] for r in rows)
    low, high = wilson(refused, PAIRS)
    record_property("false_refusals", f"{refused}/{PAIRS}, Wilson 95% [{low:.3f}, {high:.3f}]")
    assert min(compared) >= 15  # the gate looks at many groups, as on the synthetic panel
    assert refused / PAIRS <= 0.05


def test_a_clearly_worse_challenger_is_refused_overall_and_where_it_falls_short():
    rng, groups, latent, y = held_out()
    champion = latent + rng.normal(scale=0.4, size=len(y))
    challenger = rng.permutation(latent)

    rows = compare(y, challenger, champion, groups, tolerance=TOLERANCE, min_group=MIN_GROUP)

    overall = rows[0]
    assert overall["group"] == "overall" and overall["refused"]
    assert overall["drop_low"] > TOLERANCE and overall["change"] < -0.3
    assert overall["drop_low"] < -overall["change"] < overall["drop_high"]


def test_a_small_drop_within_its_interval_is_not_refused():
    """A challenger a little worse than the champion is not shown to be worse by more than the
    tolerance: refused only on the lower bound, not on the point estimate."""
    rng, groups, latent, y = held_out()
    champion = latent + rng.normal(scale=0.5, size=len(y))
    challenger = latent + rng.normal(scale=0.62, size=len(y))

    rows = compare(y, challenger, champion, groups, tolerance=TOLERANCE, min_group=MIN_GROUP)

    assert any(r["change"] < -TOLERANCE for r in rows)  # some point estimates fall short
    assert not any(r["refused"] for r in rows)


def test_groups_without_enough_events_and_non_events_are_not_compared():
    y = np.array([1] * 60 + [0] * 9 + [1] * 40 + [0] * 40)
    groups = pd.DataFrame(
        {
            "sex": ["female"] * 69 + ["male"] * 80,
            "age_group": "adult",
            "return_type": "forced",
        }
    )
    assert not comparable(y[:69], min_group=MIN_GROUP) and MIN_EVENTS == 10
    rng = np.random.default_rng(0)
    rows = compare(
        y, rng.random(len(y)), rng.random(len(y)), groups, tolerance=TOLERANCE, min_group=30
    )
    names = {r["group"] for r in rows}
    assert "sex=male" in names and "overall" in names
    assert not [g for g in names if "female" in g]


def test_the_gate_is_reproducible():
    rng, groups, latent, y = held_out()
    a = latent + rng.normal(size=len(y))
    b = latent + rng.normal(size=len(y))
    first = compare(y, a, b, groups, tolerance=TOLERANCE, min_group=MIN_GROUP)
    assert first == compare(y, a, b, groups, tolerance=TOLERANCE, min_group=MIN_GROUP)
    assert first[0]["drop_low"] < first[0]["drop_high"]


@pytest.mark.parametrize("scale", [0.0])
def test_identical_models_have_no_drop(scale):
    _, groups, latent, y = held_out()
    rows = compare(y, latent, latent + scale, groups, tolerance=TOLERANCE, min_group=MIN_GROUP)
    assert all(r["change"] == 0 and not r["refused"] for r in rows)


def test_the_refusal_names_the_baseline_and_the_groups_with_their_intervals():
    from models.promotion import refusal_message

    comparison = {
        "baseline": {
            "measured": True,
            "beats": False,
            "model_auc": 0.9031,
            "baseline_auc": 0.9052,
            "low": -0.016,
            "high": 0.013,
        },
        "refused_by_gate": True,
        "refusals": [
            {
                "group": "sex=male",
                "champion": 0.9,
                "challenger": 0.8,
                "change": -0.1,
                "drop_low": 0.05,
                "drop_high": 0.15,
            },
            {
                "group": "overall",
                "champion": 0.9,
                "challenger": 0.85,
                "change": -0.05,
                "drop_low": 0.03,
                "drop_high": 0.07,
            },
        ],
        "tolerance": 0.02,
    }
    assert refusal_message("reintegration-risk", 4, 2, comparison) == (
        "reintegration-risk version 4 is refused: it does not beat the baseline rule (1 - "
        "first-survey composite): ROC AUC 0.903 against 0.905, paired bootstrap 95% interval of "
        "the difference -0.016 to +0.013, not above 0; and its ROC AUC is lower than the "
        "champion's (version 2) by more than the tolerance of 0.02, the whole 95% paired "
        "bootstrap interval of the drop above it, in overall: 0.850 against 0.900 (drop 0.030 "
        "to 0.070); sex=male: 0.800 against 0.900 (drop 0.050 to 0.150). To promote it anyway, "
        "use --force with --reason saying why"
    )


def test_a_version_from_before_the_baseline_rule_is_told_to_retrain():
    from models.promotion import refusal_message

    comparison = {
        "baseline": {
            "measured": False,
            "beats": False,
            "model_auc": 0.91,
            "baseline_auc": None,
            "low": None,
            "high": None,
        },
        "refused_by_gate": False,
        "refusals": [],
        "tolerance": 0.02,
    }
    assert refusal_message("reintegration-risk", 3, None, comparison) == (
        "reintegration-risk version 3 is refused: it was trained before versions were measured "
        "against the baseline rule (1 - first-survey composite), so it is not shown to beat it: "
        "retrain it. To promote it anyway, use --force with --reason saying why"
    )
