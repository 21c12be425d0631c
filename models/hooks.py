"""What follows a stored batch: drift per item, and risks for new first surveys.

:func:`after_batch` runs after an ingest committed (the CLI and the API call it). It records
the population stability index of each item in the batch against the champion index's
training data, and, when a risk champion exists, a risk row (probability, band, weakest
dimension, lowest-scoring items) for every first survey that has none for that version. The
batch is already stored: a failure here is logged and reported, never undoes it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from models.serving import Champions
from reintegration import drift
from reintegration.index import ReintegrationIndex
from reintegration.questionnaire import Questionnaire, load_questionnaire
from reintegration.risk_features import features, first_surveys, reasons
from reintegration.store.batches import lock_for_ingest
from reintegration.store.bulk import insert_columns, timestamp
from reintegration.store.data_version import bump_data_version
from reintegration.store.engine import for_reading
from reintegration.store.risks import insert_risks, scored_submissions
from reintegration.store.schema import drift as drift_table
from reintegration.store.schema import submission
from reintegration.store.submissions import read_submissions

log = logging.getLogger(__name__)

REFERENCE_ROWS = 100_000
"""For the built-in index (no training data), the most recent stored interviews before the
batch serve as the reference, at most this many."""


def _stored_reference(
    engine: sa.Engine, questionnaire: Questionnaire, batch_id: str
) -> dict[str, dict[str, int]]:
    recent = (
        sa.select(submission.c.id)
        .where(submission.c.batch_id != batch_id, submission.c.current.is_(True))
        .order_by(submission.c.id.desc())
        .limit(REFERENCE_ROWS)
    )
    with for_reading(engine).connect() as conn:
        before = read_submissions(conn, questionnaire, extra=submission.c.id.in_(recent))
    return drift.reference(before[list(questionnaire.item_ids)])


def record_drift(
    engine: sa.Engine, batch_id: str, champions: Champions, questionnaire: Questionnaire
) -> int:
    """Store the PSI of each item of a batch against the champion index's training data.

    Returns
    -------
    int
        Drift rows stored (0 when no index version is registered, or the batch stored none).
    """
    _, _, version = champions.index()
    if version is None:
        return 0
    with for_reading(engine).connect() as conn:
        batch = read_submissions(conn, questionnaire, batch_id=batch_id, current=False)
    if batch.empty:
        return 0
    reference = champions.reference() or _stored_reference(engine, questionnaire, batch_id)
    table = drift.item_psi(reference, batch[list(questionnaire.item_ids)])
    from models.registry import INDEX_MODEL

    with engine.begin() as conn:
        now = timestamp(conn, datetime.now(UTC))
        conn.execute(
            drift_table.delete().where(
                drift_table.c.batch_id == batch_id,
                drift_table.c.model == INDEX_MODEL,
                drift_table.c.model_version == version,
            )
        )
        n = len(table)
        insert_columns(
            conn,
            "drift",
            ("batch_id", "model", "model_version", "item", "psi", "n", "created_at"),
            [
                [batch_id] * n,
                [INDEX_MODEL] * n,
                [version] * n,
                table["item"].tolist(),
                [None if p is None or pd.isna(p) else float(p) for p in table["psi"]],
                [int(v) for v in table["n"]],
                [now] * n,
            ],
        )
    return n


def score_risks(
    engine: sa.Engine,
    model: Any,
    version: int,
    index: ReintegrationIndex,
    questionnaire: Questionnaire,
    *,
    batch_id: str | None = None,
) -> int:
    """Add risk rows of one model version for first surveys that have none yet.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    model : RiskModel
        The risk model (``risk``, ``bands``).
    version : int
        Its registry version.
    index : ReintegrationIndex
        The index whose weakest dimension and weights explain each risk (the champion).
    questionnaire : Questionnaire
    batch_id : str, optional
        Only returnees with an interview in this batch (default: every returnee).

    Returns
    -------
    int
        Risk rows added (the data version is bumped when any are).
    """
    from models.registry import RISK_MODEL

    extra = None
    if batch_id is not None:
        extra = submission.c.returnee_key.in_(
            sa.select(submission.c.returnee_key).where(submission.c.batch_id == batch_id)
        )
    with for_reading(engine).connect() as conn:
        stored = read_submissions(conn, questionnaire, extra=extra)
        done = scored_submissions(conn, RISK_MODEL, version)
    first = first_surveys(stored)
    first = first[~first["pk"].isin(done)]
    if first.empty:
        return 0
    from models.risk_training import one_thread

    with one_thread():
        probabilities = model.risk(features(first, questionnaire))
    weakest, lowest = reasons(first[list(questionnaire.item_ids)], index)
    bands = model.bands(probabilities)
    with engine.begin() as conn:
        lock_for_ingest(conn)
        # Rows another process added meanwhile are left as they are.
        taken = scored_submissions(conn, RISK_MODEL, version)
        keep = [k for k, pk in enumerate(first["pk"].tolist()) if pk not in taken]
        added = insert_risks(
            conn,
            model=RISK_MODEL,
            version=version,
            submission_pks=first["pk"].to_numpy()[keep].tolist(),
            returnee_keys=first["returnee_key"].to_numpy()[keep].tolist(),
            probabilities=probabilities[keep],
            bands=[bands[k] for k in keep],
            weakest=[weakest[k] for k in keep],
            reasons=[lowest[k] for k in keep],
        )
        if added:
            bump_data_version(conn)
    return added


def after_batch(engine: sa.Engine, batch_id: str, champions: Champions) -> dict[str, Any]:
    """Drift rows for a stored batch, and risk rows for its new first surveys.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store.
    batch_id : str
        A batch that was stored (status done).
    champions : Champions
        The process's champions.

    Returns
    -------
    dict
        ``drift`` (rows stored), ``risks`` (rows added) and ``error`` (None, or what failed:
        the batch itself stays stored).
    """
    questionnaire = load_questionnaire()
    done: dict[str, Any] = {"drift": 0, "risks": 0, "error": None}
    try:
        done["drift"] = record_drift(engine, batch_id, champions, questionnaire)
        risk = champions.risk()
        if risk is not None:
            model, version = risk
            index, _, _ = champions.index()
            done["risks"] = score_risks(
                engine, model, version, index, questionnaire, batch_id=batch_id
            )
    except Exception as exc:  # the batch is stored; say what is missing, do not undo it
        log.exception("batch %s: drift or risks not recorded", batch_id)
        done["error"] = f"{type(exc).__name__}: {exc}"
    log.info("batch %s: %d drift rows, %d risk rows", batch_id, done["drift"], done["risks"])
    return done
