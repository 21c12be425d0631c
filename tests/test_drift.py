"""Population stability index per item."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reintegration.drift import counts, item_psi, psi, reference


def test_identical_distributions_have_no_drift():
    assert psi({"0": 30, "1": 70}, {"0": 3, "1": 7}) == pytest.approx(0.0)


def test_a_shift_gives_the_textbook_value():
    # (0.5-0.9) ln(0.5/0.9) + (0.5-0.1) ln(0.5/0.1)
    expected = -0.4 * np.log(0.5 / 0.9) + 0.4 * np.log(5.0)
    assert psi({"0": 90, "1": 10}, {"0": 50, "1": 50}) == pytest.approx(expected)


def test_a_bin_empty_on_one_side_is_large_but_finite():
    value = psi({"0": 100}, {"0": 50, "1": 50})
    assert np.isfinite(value) and value > 1


def test_no_answers_on_either_side_has_no_psi():
    assert psi({}, {"1": 3}) is None
    assert psi({"1": 3}, {}) is None


def test_missing_answers_are_left_out_and_not_applicable_is_a_bin():
    assert counts(np.array([1.0, np.nan, -1.0, 1.0])) == {"-1": 1, "1": 2}


def test_item_psi_per_column_with_n():
    ref = reference(pd.DataFrame({"a": [0.0, 1.0] * 50, "b": [1.0] * 100}))
    now = pd.DataFrame({"a": [0.0, 1.0, np.nan, 1.0], "b": [0.0, 0.0, 0.0, 0.0]})
    table = item_psi(ref, now, min_rows=1).set_index("item")
    assert table.loc["a", "n"] == 3
    assert table.loc["b", "psi"] > table.loc["a", "psi"] > 0
    assert item_psi({}, now).set_index("item").loc["a", "psi"] is None
