"""Attack 4: the overview's histogram places a hidden single person.

Asked for a country of one returnee, the overview hides the count (and the means), but its
histogram shows every empty bin as a zero beside the one hidden bin: the person's composite is
in that bin, within half a bin's width of its middle.
"""

from __future__ import annotations

import logging
from typing import Any

from tests.attacks._attack import (
    Adversary,
    Target,
    fallback,
    judge,
    latest,
)

log = logging.getLogger(__name__)


def histogram_attack(overview: Any) -> float | None:
    """The middle of the one hidden bin, when every other bin says zero; None otherwise."""
    bins = overview["histogram"]
    hidden = [b for b in bins if b["count"] is None]
    shown = [b for b in bins if b["count"] is not None]
    if len(hidden) == 1 and shown and all(b["count"] == 0 for b in shown):
        return (hidden[0]["bin_low"] + hidden[0]["bin_high"]) / 2
    return None


def published_composite(overview: Any) -> Any:
    return overview["means"]["composite"]["mean"]


def test_histogram_places_no_one(attack_panel: Any, adversary: Adversary):
    """Every country of one scored returnee. The histogram is of the composite only, so the
    composite is judged; the guess is the country's published mean, or everyone's."""
    counted = latest(attack_panel.truth)
    sizes = counted["country"].value_counts()
    everyone = published_composite(adversary.overview())
    targets = []
    for country in sorted(sizes.index[sizes == 1]):
        person = float(counted[counted["country"] == country]["composite"].iloc[0])
        answer = adversary.overview(country=country)
        mine = published_composite(answer)
        guess = {"composite": everyone if mine is None else mine}
        found = fallback({"composite": histogram_attack(answer)}, guess)
        targets.append(Target(country, {"composite": person}, found, guess))
    log.info(judge("histogram zeros", targets, figures=("composite",)))
