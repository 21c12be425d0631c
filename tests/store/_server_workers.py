"""Servers' start in separate processes (spawned, so importable by name)."""

from __future__ import annotations

import os
from typing import Any


def start_server(env: dict[str, str], guarded: bool, barrier: Any, results: Any) -> None:
    """Build a server's services (store, key, registry, champions) with ``env`` once every
    process is ready, then close them; put "ok" or the error. ``guarded=False`` leaves out the
    lock around the creation of MLflow's tables (to show the race it prevents)."""
    for name in [n for n in os.environ if n.startswith(("REINTEGRATION_", "MLFLOW_"))]:
        del os.environ[name]
    os.environ.update(env)
    try:
        import models._mlflow
        from api.services import build_services

        if not guarded:
            models._mlflow.create_store_once = lambda uri: None
    except Exception as exc:
        barrier.wait()
        results.put(f"{type(exc).__name__}: {exc}")
        return
    barrier.wait()
    try:
        services = build_services()
        services.close()
        results.put("ok")
    except BaseException as exc:
        results.put(f"{type(exc).__name__}: {str(exc)[:300]}")
