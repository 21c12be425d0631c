"""What the counts of an aggregate count: distinct returnees, or returnee-rounds.

An aggregate counts each returnee once (their latest scored survey in the window) unless it
is broken out by survey round or months band: then a returnee counts once in every round or
band they were surveyed in, and the total, the sum of its cells, counts returnee-rounds (a
returnee surveyed in rounds 1 and 2 counts twice). Charts, CSVs and the API say which.
"""

from __future__ import annotations

from collections.abc import Iterable

PER_SURVEY_GROUPS = ("round", "months_band")
"""Groupings under which a returnee counts once per survey round or months band."""
RETURNEES = "returnees"
RETURNEE_ROUNDS = "returnee-rounds"


def counted(by: Iterable[str]) -> str:
    """What the counts of a breakdown by ``by`` are: ``returnees`` or ``returnee-rounds``.

    Parameters
    ----------
    by : iterable of str
        The groupings of the breakdown (trajectories: with their axis, ``months_band``).

    Returns
    -------
    str
        ``"returnee-rounds"`` when round or months band is among the groupings, else
        ``"returnees"`` (distinct returnees).

    Examples
    --------
    >>> counted(["sex"]), counted(["sex", "round"]), counted(["months_band"])
    ('returnees', 'returnee-rounds', 'returnee-rounds')
    """
    return RETURNEE_ROUNDS if any(b in PER_SURVEY_GROUPS for b in by) else RETURNEES
