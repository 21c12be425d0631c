"""The app's database: tables (``schema``), engines and migrations (``engine``)."""

from reintegration.store.engine import (
    create_store_engine,
    current_revision,
    downgrade,
    for_reading,
    open_store,
    upgrade,
)

__all__ = [
    "create_store_engine",
    "current_revision",
    "downgrade",
    "for_reading",
    "open_store",
    "upgrade",
]
