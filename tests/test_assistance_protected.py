"""Protected adjusted associations do not give away the returnee two answers differ by.

Differencing attack on the adjusted gap: two answers whose records differ by one returnee. With
exact gaps, the difference is that returnee's influence (their residual over their group's
size); with protected gaps it is cell-key noise of the same size, a different draw for each set
of records.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reintegration.assistance import associations, perturbed_adjusted
from reintegration.disclosure import Protection
from tests.test_assistance_adjusted import confounded

PROTECTION = Protection()


def keyed(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    records, codes = confounded(n, seed)
    keys = np.random.default_rng(seed + 1).integers(0, 2**31, n)
    return records.assign(record_key=keys), codes


def protected_gap(records: pd.DataFrame, codes: pd.Series) -> float:
    table = associations(records, codes)
    noisy = perturbed_adjusted(table, records, codes, "composite", PROTECTION)
    return float(noisy.set_index("assistance").loc["business_grant", "adjusted_difference"])


def exact_gap(records: pd.DataFrame, codes: pd.Series) -> float:
    table = associations(records, codes).set_index("assistance")
    return float(table.loc["business_grant", "adjusted_difference"])


def test_the_noise_is_fixed_bounded_and_shifts_the_interval_with_the_gap():
    records, codes = keyed(400, seed=3)
    table = associations(records, codes).set_index("assistance")
    noisy = perturbed_adjusted(
        table.reset_index(), records, codes, "composite", PROTECTION
    ).set_index("assistance")
    again = perturbed_adjusted(table.reset_index(), records, codes, "composite", PROTECTION)
    assert again.set_index("assistance").equals(noisy)
    row, exact = noisy.loc["business_grant"], table.loc["business_grant"]
    n = min(exact["treated"], exact["untreated"])
    shift = row["adjusted_difference"] - exact["adjusted_difference"]
    assert 0 < abs(shift) <= PROTECTION.sum_noise / n
    assert row["adjusted_low"] - exact["adjusted_low"] == pytest.approx(shift)
    assert row["raw_difference"] == exact["raw_difference"]  # raw gaps come from published means


def test_differencing_two_answers_gives_noise_not_the_returnee_removed():
    records, codes = keyed(120, seed=5)
    treated = [i for i, c in enumerate(codes) if "business_grant" in c]
    influence, revealed = [], []
    for person in treated[:25]:
        kept = records.index != person
        without = (records[kept].reset_index(drop=True), codes[kept].reset_index(drop=True))
        influence.append(exact_gap(records, codes) - exact_gap(*without))
        revealed.append(protected_gap(records, codes) - protected_gap(*without))
    influence, revealed = np.array(influence), np.array(revealed)
    # The protected difference is far from the person's influence, as often above as below.
    error = np.abs(revealed - influence)
    assert np.median(error) > 2 * np.median(np.abs(influence))
    assert abs(np.corrcoef(influence, revealed)[0, 1]) < 0.5
