"""Functions the store's tests run in separate processes (spawned, so importable by name)."""

from __future__ import annotations

from typing import Any


def record_key(url: str, key: bytes, barrier: Any, results: Any) -> None:
    """Check ``key`` against the store once every process is ready; put the outcome.

    ``"recorded <fingerprint>"``, ``"matched"``, or ``"<error class>: <message>"``.
    """
    from reintegration.store import create_store_engine
    from reintegration.store.identity import check_secret_key, key_fingerprint

    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:  # connected before the race, so only the writes race
            conn.exec_driver_sql("SELECT 1")
        barrier.wait()
        recorded = check_secret_key(engine, key)
        results.put(f"recorded {key_fingerprint(key)}" if recorded else "matched")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")
    finally:
        engine.dispose()
