"""The worker of one job: ``python -m models.worker JOB_ID``.

It claims the queued job, runs the training with progress written to the job row, and marks the
job done with the registered version, or failed with the reason. Registration is the training's
last step, so a failure at any point before it leaves no registered version. A ``rescore`` job
(promoting an index version) rescores the stored interviews and moves the champion alias last
(:func:`models.promotion.complete_index_promotion`).
"""

from __future__ import annotations

import logging
import sys
from datetime import date
from typing import Any

from reintegration.errors import ReintegrationError
from reintegration.settings import get_settings
from reintegration.store import jobs as store
from reintegration.store.engine import open_store

log = logging.getLogger("models.worker")


def _promote(engine: Any, job: dict[str, Any]) -> dict[str, Any]:
    from models.jobs import forget_rows
    from models.promotion import complete_index_promotion, job_result

    try:
        return job_result(complete_index_promotion(engine, job, settings=get_settings()))
    finally:
        forget_rows(engine, job["id"])


def _train(engine: Any, job: dict[str, Any]) -> dict[str, Any]:
    settings = get_settings()
    if job["kind"] == "rescore":
        return _promote(engine, job)
    params = job["params"] or {}

    def progress(fraction: float, message: str) -> None:
        store.report_progress(engine, job["id"], fraction, message)

    if job["kind"] == "train-index":
        from models.index_training import train_index

        dates = {k: date.fromisoformat(params[k]) for k in ("date_from", "date_to") if k in params}
        done = train_index(
            engine,
            settings,
            dimension_weights=params.get("dimension_weights"),
            actor=job["actor"],
            progress=progress,
            **dates,
        )
        return {
            "model": "rss-index",
            "version": done["version"],
            "label": done["label"],
            "n": done["n"],
            "correlation": done["correlation"],
        }
    from models.risk_training import train_risk

    done = train_risk(engine, settings, actor=job["actor"], progress=progress)
    return {
        "model": "reintegration-risk",
        "version": done["version"],
        "roc_auc": done["model"]["roc_auc"],
        "baseline_roc_auc": done["baseline"]["roc_auc"],
        "beats_baseline": done["beats_baseline"],
        "n": done["n"],
    }


def run(job_id: str) -> int:
    """Run one queued job to its end; returns the exit status (0 done, 1 failed, 2 no job)."""
    engine = open_store(get_settings().database_url)
    try:
        job = store.start_job(engine, job_id)
    except LookupError as exc:
        log.error("%s", exc)
        return 2
    try:
        result = _train(engine, job)
    except ReintegrationError as exc:
        store.fail_job(engine, job_id, str(exc))
        return 1
    except Exception as exc:
        log.exception("job %s failed", job_id)
        store.fail_job(engine, job_id, f"internal error ({type(exc).__name__}: {exc})")
        return 1
    store.finish_job(engine, job_id, result)
    return 0


def main() -> None:
    """Entry point: ``python -m models.worker JOB_ID``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if len(sys.argv) != 2:
        sys.stderr.write("usage: python -m models.worker JOB_ID\n")
        raise SystemExit(2)
    raise SystemExit(run(sys.argv[1]))


if __name__ == "__main__":
    main()
