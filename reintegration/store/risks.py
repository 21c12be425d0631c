"""Risk rows: one per first survey and risk model version, with its reasons.

Each row names the registered model and its version, so the worklist of any version can be
reproduced; a new version adds rows and never overwrites another's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa

from reintegration.store.bulk import insert_columns, timestamp
from reintegration.store.schema import risk

COLUMNS = (
    "submission_pk",
    "model",
    "model_version",
    "returnee_key",
    "probability",
    "band",
    "weakest_dimension",
    "reasons",
    "created_at",
)


def scored_submissions(conn: sa.Connection, model: str, version: int) -> set[int]:
    """The submissions that already have a risk row of this model version."""
    return set(
        conn.execute(
            sa.select(risk.c.submission_pk).where(
                risk.c.model == model, risk.c.model_version == version
            )
        ).scalars()
    )


def insert_risks(
    conn: sa.Connection,
    *,
    model: str,
    version: int,
    submission_pks: Sequence[int],
    returnee_keys: Sequence[str],
    probabilities: np.ndarray,
    bands: Sequence[str],
    weakest: Sequence[str | None],
    reasons: Sequence[Sequence[str]],
) -> int:
    """Insert risk rows inside the caller's transaction; returns how many.

    Parameters
    ----------
    conn : sqlalchemy.Connection
    model, version : str, int
        Registered model name and version that produced the rows.
    submission_pks, returnee_keys : sequences
        The first surveys scored and their returnees.
    probabilities : ndarray
        Probability of not being sustainable at the follow-up.
    bands : sequence of str
        low, medium or high.
    weakest : sequence of str or None
        Weakest dimension of each first survey.
    reasons : sequence of sequence of str
        Lowest-scoring item ids of each first survey.
    """
    n = len(submission_pks)
    if n == 0:
        return 0
    now = timestamp(conn, datetime.now(UTC))
    insert_columns(
        conn,
        "risk",
        COLUMNS,
        [
            [int(p) for p in submission_pks],
            [model] * n,
            [int(version)] * n,
            list(returnee_keys),
            [float(p) for p in probabilities],
            list(bands),
            list(weakest),
            [json.dumps(list(r)) for r in reasons],
            [now] * n,
        ],
    )
    return n
