"""A process that starts a batch and keeps its lease renewed until it is killed (spawned)."""

from __future__ import annotations

import os
import time
from typing import Any


def hold_batch(url: str, batch_id: str, lease: float, ready: Any) -> None:
    """Start batch ``batch_id`` on the store at ``url``, leased for ``lease`` seconds and
    renewed every third of it; say so on ``ready``; then wait to be killed."""
    os.environ["REINTEGRATION_LEASE_SECONDS"] = str(lease)
    from reintegration.settings import get_settings

    get_settings.cache_clear()
    from reintegration.store import batches, leases
    from reintegration.store.engine import create_store_engine

    engine = create_store_engine(url)
    batches.start_batch(
        engine, id=batch_id, uploader="enumerator-1", file_name="b.csv", sha256="0" * 64
    )
    leases.LeaseKeeper(engine, "batch", batch_id).start()
    ready.put(batch_id)
    time.sleep(600)


def hold_job(url: str, lease: float, ready: Any) -> None:
    """Create and start a job on the store at ``url`` (its lease renewed every third of
    ``lease`` seconds by a thread of this process); put its id on ``ready``; wait to be
    killed."""
    os.environ["REINTEGRATION_LEASE_SECONDS"] = str(lease)
    from reintegration.settings import get_settings

    get_settings.cache_clear()
    from reintegration.store import jobs
    from reintegration.store.engine import create_store_engine

    engine = create_store_engine(url)
    job_id = jobs.create_job(engine, "train-risk", actor="officer", params={})
    jobs.start_job(engine, job_id)
    ready.put(job_id)
    time.sleep(600)
