"""Aggregates of scored records, with the privacy rules of DESIGN.md.

Aggregates count distinct returnees: by default each returnee's latest scored submission.
:func:`~reintegration.summaries.summarise` computes per-cell summaries (counts with their
record-key sums, and per figure n, sum, sum of squares, largest value or sd); what may be
published of them is decided by :func:`reintegration.disclosure.publish`. Exact figures: a
cell with fewer than ``min_cell`` returnees is suppressed, and so is the next smallest cell
when one suppressed cell could otherwise be recovered from the total; suppression is flagged,
never a silent zero, and a true zero stays zero. Protected figures: see
:mod:`reintegration.disclosure`. Means come with n and a 95% interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reintegration.disclosure import (
    LEVELS,
    Z_95,
    Protection,
    publish,
    suppress,
)
from reintegration.questionnaire import Questionnaire
from reintegration.summaries import TOTAL, summarise

__all__ = [
    "LEVELS",
    "TOTAL",
    "Z_95",
    "add_groups",
    "breakdown",
    "latest_per_returnee",
    "summarise",
    "suppress",
]


def add_groups(frame: pd.DataFrame, questionnaire: Questionnaire) -> pd.DataFrame:
    """Add ``age_group`` (child below the spec's age, else adult) without mutating ``frame``."""
    age = pd.to_numeric(frame["age_at_return"], errors="coerce")
    group = np.where(age < questionnaire.child_age_below, "child", "adult")
    return frame.assign(age_group=pd.Series(group, index=frame.index).where(age.notna()))


def latest_per_returnee(
    frame: pd.DataFrame, *, key: str = "returnee_key", order: str = "interview_date"
) -> pd.DataFrame:
    """Each returnee's latest scored submission, or their latest one when none is scored.

    Returns
    -------
    DataFrame
        One row per returnee; ``composite`` is missing for returnees with no scored record.
    """
    ranked = frame.assign(_scored=frame["composite"].notna())
    ranked = ranked.sort_values(["_scored", order], kind="stable")
    return ranked.groupby(key, sort=False).tail(1).drop(columns="_scored")


def breakdown(
    records: pd.DataFrame,
    by: Sequence[str],
    *,
    figures: Sequence[str],
    min_cell: int = 5,
    protection: Protection | None = None,
) -> pd.DataFrame:
    """Per group of ``by``: returnees, unscored, mean, sd and 95% interval of each figure, share
    sustainable (and per level when ``records`` has ``level``); then a total row.

    ``publish(summarise(records, by, figures), ...)``: exact figures by default (cells below
    ``min_cell`` suppressed, values NaN and ``suppressed`` True, with complementary
    suppression so no cell can be recovered), protected ones when ``protection`` is given.
    Vectorised: one group-by per call, whatever the number of records.

    Parameters
    ----------
    records : DataFrame
        One row per returnee (see :func:`latest_per_returnee`), with the ``by`` columns, the
        figures, ``composite`` and ``sustainable`` (and ``record_key`` for protected figures).
    by : sequence of str
    figures : sequence of str
        Score columns to summarise.
    min_cell : int
        Smallest number of returnees a cell may show.
    protection : Protection, optional
        The parameters of protected figures; None for exact ones.

    Returns
    -------
    DataFrame
        See :func:`reintegration.disclosure.publish`; the last row is the total, its ``by``
        values ``"all"``.

    Raises
    ------
    ConfigurationError
        Protection asked of records without ``record_key``.
    """
    if protection is not None and "record_key" not in records:
        from reintegration.errors import ConfigurationError

        raise ConfigurationError(
            "Protected figures need each record's key (column record_key), and these records "
            "have none."
        )
    cells = summarise(records, by, figures, keyed=protection is not None)
    return publish(cells, figures=figures, min_cell=min_cell, protection=protection)
