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
