"""What must hold with or without protection: the same question gets the same figures from a
restarted server, the same cell gets the same figures whatever grouping asks for it, and an
analyst's default (exact) figures are the counts and means computed from the store.

These pass today and must keep passing once the figures are protected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.attacks._attack import FIGURES, MIN_CELL, Adversary, latest, matching

QUESTIONS: list[tuple[str, dict[str, Any]]] = [
    ("aggregates", {"by": ["country", "sex"], "to": "2025-06-03"}),
    ("aggregates", {"by": ["sex", "age_group", "return_type"], "country": ["SEN"]}),
    ("aggregates", {"by": ["assistance"]}),
    ("trajectories", {"by": ["sex"], "from": "2024-07-15"}),
    ("overview", {"country": ["GIN"], "to": "2025-03-17"}),
]
BIG = ["SEN", "GIN", "MLI", "NGA", "GMB", "CIV"]


def test_restart_gives_the_same_figures(adversary: Adversary, restarted: Any):
    """A second app on the same store (new services, caches and app) answers every question
    with the same body."""
    again = Adversary(restarted, adversary.who, adversary.always)
    for route, params in QUESTIONS:
        assert again.get(route, **params) == adversary.get(route, **params), route


def flat(raw: Mapping[str, Any]) -> dict[str, float | None]:
    """A cell's published numbers by name (count, unscored, every statistic, shares)."""
    out = {"returnees": raw["returnees"], "unscored": raw["unscored"]}
    for figure, stats in raw["figures"].items():
        out |= {f"{figure}_{k}": v for k, v in stats.items()}
    for share, bounds in raw.get("share_intervals", {}).items():
        out |= {f"share_{share}_{k}": v for k, v in bounds.items()}
    return out | {k: v for k, v in raw.items() if k.startswith("share_") and k != "share_intervals"}


def labelled(body: Mapping[str, Any]) -> dict[frozenset[Any], Mapping[str, Any]]:
    """The answer's cells that name a group (not the total nor "other groups"), by group."""
    return {
        frozenset(c["group"].items()): c
        for c in body["cells"]
        if not c["total"] and not c.get("other", False)
    }


def same_cell(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two answers' cells were compared (both published); fails if they differ."""
    if a is None or b is None or a["returnees"] is None or b["returnees"] is None:
        return False
    left, right = flat(a), flat(b)
    assert left.keys() == right.keys()
    for name, value in left.items():
        other = right[name]
        if value is not None and other is not None:
            assert math.isclose(value, other, rel_tol=1e-9, abs_tol=1e-12), (name, a, b)
    return True


def test_same_cell_through_two_groupings(adversary: Adversary):
    """A cell broken out by two groupings, and the same cell as the only group of a filtered
    question (or as its total), gets the same figures."""
    compared = 0
    by_country = labelled(adversary.get("aggregates", by=["country", "sex"]))
    margin = labelled(adversary.get("aggregates", by=["country"]))
    for country in BIG:
        alone = adversary.get("aggregates", country=[country])["cells"][-1]
        compared += same_cell(margin.get(frozenset({("country", country)})), alone)
        within = labelled(adversary.get("aggregates", by=["sex"], country=[country]))
        for key, cell in within.items():
            compared += same_cell(by_country.get(key | {("country", country)}), cell)
    three = labelled(adversary.get("aggregates", by=["sex", "age_group", "return_type"]))
    bands = labelled(adversary.get("trajectories", by=["sex"]))
    for sex in ("female", "male", "unknown"):
        two = labelled(adversary.get("aggregates", by=["age_group", "return_type"], sex=sex))
        for key, cell in two.items():
            compared += same_cell(three.get(key | {("sex", sex)}), cell)
        for key, cell in labelled(adversary.get("trajectories", sex=sex)).items():
            compared += same_cell(bands.get(key | {("sex", sex)}), cell)
    assert compared >= 40, f"only {compared} cells published through both groupings"


# -- exact figures, against the store ------------------------------------------------------


def counted(truth: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """Who an answer with these filters counts, from the ground truth."""
    rows = truth
    for name, column in (("country", "country"), ("sex", "sex")):
        if name in params:
            rows = rows[rows[column].isin(params[name])]
    return latest(rows, params.get("to"), params.get("from"))


def check_cell(cell: Mapping[str, Any], people: pd.DataFrame) -> None:
    """A published cell has the true count and means; a small one is hidden."""
    if 0 < len(people) < MIN_CELL:
        assert cell["returnees"] is None, (cell["group"], len(people))
    if cell["returnees"] is None:
        return
    assert cell["returnees"] == len(people), cell["group"]
    for figure in FIGURES:
        mean = cell["figures"][figure]["mean"]
        assert math.isclose(mean, people[figure].mean(), rel_tol=1e-9), (cell["group"], figure)


def assisted(people: pd.DataFrame) -> pd.DataFrame:
    """One row per returnee and type of assistance of their counted interview."""
    codes = people["assistance"].fillna("").str.split().map(lambda c: c or ["none"])
    return people.assign(code=codes).explode("code")


EXACT = [
    {"by": ["country", "sex"], "to": "2025-06-03"},
    {"by": ["sex", "age_group", "return_type"], "country": ["SEN"], "from": "2024-09-01"},
    {"by": ["return_type"], "sex": ["female"]},
]


@pytest.mark.parametrize("params", EXACT, ids=["country-sex", "three-in-SEN", "female"])
def test_analyst_default_figures_are_exact(attack_panel: Any, params: dict[str, Any]):
    """An analyst who does not ask for protection gets the counts and means of the store."""
    analyst = Adversary(attack_panel.stack, "analyst")
    body = analyst.get("aggregates", **params)
    assert body.get("figures", "exact") == "exact"
    people = counted(attack_panel.truth, params)
    for cell in body["cells"]:
        group = {} if cell["total"] else cell["group"]
        check_cell(cell, matching(people, group))


def test_analyst_default_assistance_is_exact(attack_panel: Any):
    analyst = Adversary(attack_panel.stack, "analyst")
    params = {"by": ["assistance"], "country": ["GIN", "MLI"]}
    body = analyst.get("aggregates", **params)
    people = counted(attack_panel.truth, params)
    by_code = assisted(people)
    for cell in body["cells"]:
        chosen = (
            people if cell["total"] else by_code[by_code["code"] == cell["group"]["assistance"]]
        )
        check_cell(cell, chosen)


def test_analyst_default_overview_is_exact(attack_panel: Any):
    analyst = Adversary(attack_panel.stack, "analyst")
    params = {"country": ["NGA"], "to": "2025-10-31"}
    body = analyst.get("overview", **params)
    people = counted(attack_panel.truth, params)
    assert body["returnees"] == len(people)
    for figure in FIGURES:
        assert math.isclose(body["means"][figure]["mean"], people[figure].mean(), rel_tol=1e-9)
    counts, _ = np.histogram(people["composite"], bins=10, range=(0.0, 1.0))
    shown = [b["count"] for b in body["histogram"]]
    assert len(shown) == 10
    for true, published in zip(counts, shown, strict=True):
        assert published == true or (published is None and true > 0), (true, published)
        assert published is None or not 0 < true < MIN_CELL, (true, published)
