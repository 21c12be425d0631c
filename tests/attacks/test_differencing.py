"""Differencing attacks: two answers that differ by one person give that person's scores.

Attacks 1, 2 and 5 of issue 12: date windows one day and one month apart (``to=d-1`` against
``to=d``, one returnee more), all countries against all but one, and two windows holding the
same returnees where one person's latest interview differs (which gives that person's change).
Targets are chosen from the ground truth (the store read back with SQL); the attacks only use
the answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from tests.attacks._attack import (
    FIGURES,
    MIN_CELL,
    Adversary,
    Answer,
    Cell,
    Target,
    clip,
    fallback,
    judge,
    latest,
    matching,
    scores,
)

log = logging.getLogger(__name__)
TARGETS = 24
# Groupings whose cells the window attacks difference: by day, a country and sex; by month,
# all four dimensions (the cells are smaller, so one month often adds a single returnee).
GROUPINGS = {"D": ["country", "sex"], "M": ["country", "sex", "age_group", "return_type"]}


@dataclass(frozen=True)
class Lone:
    """A cell into which one interview, and nothing else, enters between two windows
    ``to=before`` and ``to=after``."""

    before: pd.Timestamp
    after: pd.Timestamp
    cell: dict[str, str]
    new: dict[str, float]
    prior: dict[str, float] | None  # the returnee's latest scored interview up to ``before``


def lone_interviews(truth: pd.DataFrame, period: str, *, changed: bool) -> list[Lone]:
    """Cells of :data:`GROUPINGS` where a period (a day or a month) holds one interview only,
    scored, of a returnee new to the window (``changed`` false) or of one with an earlier scored
    interview (``changed`` true); periods with the most such cells first, :data:`TARGETS` of
    them, each cell holding more than ``MIN_CELL`` returnees before."""
    by = GROUPINGS[period]
    rows = truth.assign(period=truth["day"].dt.to_period(period))
    alone = rows.groupby(["period", *by], observed=True)["id"].transform("size") == 1
    first = rows.groupby("returnee").cumcount() == 0
    scored_before = rows.groupby("returnee")["scored"].cumsum() - rows["scored"] > 0
    wanted = (scored_before & ~first) if changed else first
    lone = rows[alone & rows["scored"] & wanted]
    found: list[Lone] = []
    for period_value, group in sorted(lone.groupby("period"), key=lambda g: -len(g[1])):
        before = period_value.start_time.normalize() - pd.Timedelta(days=1)
        after = period_value.end_time.normalize()
        counted = latest(truth, before)
        for _, row in group.iterrows():
            cell = {name: row[name] for name in by}
            mine = counted[counted["returnee"] == row["returnee"]]
            if len(matching(counted, cell)) <= MIN_CELL:
                continue
            prior = scores(mine.iloc[0]) if len(mine) else None
            found.append(Lone(before, after, cell, scores(row), prior))
            if len(found) == TARGETS:
                return found
    return found


def _windows(adversary: Adversary, lone: Lone, by: list[str]) -> tuple[Cell | None, Cell | None]:
    def ask(to: pd.Timestamp) -> Answer:
        return adversary.aggregates(by=by, to=to.date().isoformat())

    return ask(lone.before).find(**lone.cell), ask(lone.after).find(**lone.cell)


def _differs(a: Cell | None, b: Cell | None) -> bool:
    """Both cells published, and not identical (identical answers give nothing away)."""
    return bool(
        a and b and a.published and b.published and (a.count, a.means) != (b.count, b.means)
    )


def window_attack(adversary: Adversary, lone: Lone, by: list[str]) -> Target:
    """One returnee more between ``to=before`` and ``to=after``: the difference of the cell's
    sums (count times mean) is the newcomer's score. Guess: the cell's published mean."""
    a, b = _windows(adversary, lone, by)
    after = adversary.aggregates(by=by, to=lone.after.date().isoformat())
    group = b if b is not None and b.published else after.total
    guess = {f: float(group.means[f]) for f in FIGURES}  # type: ignore[arg-type]
    found: dict[str, float | None] = dict.fromkeys(FIGURES)
    if _differs(a, b):
        assert a is not None and b is not None
        found = {f: clip(b.sum(f) - a.sum(f)) for f in FIGURES}
    label = f"{lone.cell} to={lone.after.date()}"
    return Target(label, lone.new, fallback(found, guess), guess)


def changed_attack(adversary: Adversary, lone: Lone, by: list[str]) -> Target:
    """The same returnees in both windows, one of them with a newer interview in the second:
    the difference of the cell's sums is that person's change. Guess: the change of the cell's
    published mean."""
    a, b = _windows(adversary, lone, by)
    assert lone.prior is not None
    truth = {f: lone.new[f] - lone.prior[f] for f in FIGURES}
    guess = dict.fromkeys(FIGURES, 0.0)
    found: dict[str, float | None] = dict.fromkeys(FIGURES)
    if _differs(a, b):
        assert a is not None and b is not None
        guess = {f: float(b.means[f]) - float(a.means[f]) for f in FIGURES}  # type: ignore[arg-type]
        found = {f: clip(b.sum(f) - a.sum(f), -1.0, 1.0) for f in FIGURES}
    label = f"{lone.cell} to={lone.after.date()}"
    return Target(label, truth, fallback(found, guess), guess)


@pytest.mark.parametrize("period", ["D", "M"], ids=["one-day", "one-month"])
def test_windows_apart_give_no_newcomer(attack_panel: Any, adversary: Adversary, period: str):
    """Attack 1: ``to=d-1`` against ``to=d`` (and month ends a month apart), one returnee
    more in a cell."""
    lones = lone_interviews(attack_panel.truth, period, changed=False)
    targets = [window_attack(adversary, lone, GROUPINGS[period]) for lone in lones]
    log.info(judge(f"windows one {period} apart", targets))


@pytest.mark.parametrize("period", ["D", "M"], ids=["one-day", "one-month"])
def test_same_returnees_give_no_change(attack_panel: Any, adversary: Adversary, period: str):
    """Attack 5: two windows holding the same returnees, one person's latest interview
    differing between them."""
    lones = lone_interviews(attack_panel.truth, period, changed=True)
    targets = [changed_attack(adversary, lone, GROUPINGS[period]) for lone in lones]
    log.info(judge(f"latest interview changed within one {period}", targets))


def all_but_one(adversary: Adversary, countries: list[str], alone: str) -> dict[str, float | None]:
    """Attack 2: the total of every country minus the total of every country but ``alone``
    (the sums, count times mean) is the one returnee of ``alone``."""
    everyone = adversary.aggregates().total
    others = adversary.aggregates(country=[c for c in countries if c != alone]).total
    if not (everyone.published and others.published) or everyone == others:
        return dict.fromkeys(FIGURES)
    return {f: clip(everyone.sum(f) - others.sum(f)) for f in FIGURES}


def test_all_but_one_country_gives_no_one(attack_panel: Any, adversary: Adversary):
    """Attack 2 over every country holding one scored returnee. Guess: the mean of all."""
    counted = latest(attack_panel.truth)
    sizes = counted["country"].value_counts()
    everyone = adversary.aggregates().total
    guess = {f: float(everyone.means[f]) for f in FIGURES}  # type: ignore[arg-type]
    targets = []
    for country in sorted(sizes.index[sizes == 1]):
        person = scores(counted[counted["country"] == country].iloc[0])
        found = all_but_one(adversary, attack_panel.countries, country)
        targets.append(Target(country, person, fallback(found, guess), guess))
    log.info(judge("all countries but one", targets))
