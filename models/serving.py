"""The champions a process serves with: each loaded once, reloaded when its alias moves.

A server (or a command) holds one :class:`Champions`. Asking it for the index or the risk
model costs nothing most of the time; at most every ``check_every`` seconds it asks the
registry which version the ``champion`` alias points to (one query) and loads a version only
when that changed. Where there is no tracking store at all, the index is the built-in v1 and
nothing is created or imported to find that out, so ``reintegration score`` stays quick and
writes nothing but its output.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any

from models import _mlflow
from reintegration.index import ReintegrationIndex
from reintegration.settings import Settings

log = logging.getLogger(__name__)

CHECK_EVERY_S = 5.0


class Champions:
    """The champion index and risk model of the registry, loaded once per version.

    Parameters
    ----------
    settings : Settings
        Where the registry is.
    check_every : float, default CHECK_EVERY_S
        Seconds between two looks at the registry's aliases.

    Examples
    --------
    >>> from pathlib import Path
    >>> settings = Settings(home=Path("/nonexistent"), database_url="", mlflow_tracking_uri="")
    >>> index, label, version = Champions(settings).index()
    >>> label, version
    ('rss-v1-provisional', None)
    """

    def __init__(self, settings: Settings, *, check_every: float = CHECK_EVERY_S) -> None:
        self.settings = settings
        self.check_every = check_every
        # One lock per model: loading the risk model never holds up a request for the index.
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._checked: dict[str, float] = {}
        self._current: dict[str, Any] = {}
        self._loaded: dict[str, tuple[int, Any, Any]] = {}

    def refresh(self) -> None:
        """Look at the registry again on the next request (e.g. right after a promotion)."""
        with self._guard:
            self._checked.clear()

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def _version(self, name: str) -> Any:
        """The champion's ModelVersion of ``name`` (looked up at most every few seconds)."""
        now = time.monotonic()
        if now - self._checked.get(name, -float("inf")) < self.check_every:
            return self._current.get(name)
        found = None
        if _mlflow.store_exists(self.settings):
            from models import registry

            client = _mlflow.client(self.settings)
            found = registry.version_by_alias(client, name, registry.CHAMPION)
        self._current[name] = found
        self._checked[name] = now
        return found

    def _load(self, name: str, loader: Any) -> tuple[int, Any, Any] | None:
        found = self._version(name)
        if found is None:
            return None
        version = int(found.version)
        loaded = self._loaded.get(name)
        if loaded is None or loaded[0] != version:
            client = _mlflow.client(self.settings)
            model, extra = loader(client, found)
            loaded = (version, model, extra)
            self._loaded[name] = loaded
            log.info("loaded %s version %d", name, version)
        return loaded

    def index(self) -> tuple[ReintegrationIndex, str, int | None]:
        """The champion index, its label and registry version (v1 built in, version None)."""
        from models.registry import INDEX_MODEL

        with self._lock(INDEX_MODEL):
            loaded = self._load(INDEX_MODEL, _load_index)
        if loaded is None:
            builtin = _builtin()
            return builtin, builtin.label_, None
        version, index, _ = loaded
        return index, index.label_, version

    def reference(self) -> dict[str, dict[str, int]] | None:
        """Item distributions of the champion index's training data (None for the built-in)."""
        from models.registry import INDEX_MODEL

        with self._lock(INDEX_MODEL):
            loaded = self._load(INDEX_MODEL, _load_index)
        return None if loaded is None else loaded[2]

    def risk(self) -> tuple[Any, int] | None:
        """The champion risk model (a ``RiskModel``) and its version, or None."""
        from models.registry import RISK_MODEL

        with self._lock(RISK_MODEL):
            loaded = self._load(RISK_MODEL, _load_risk)
        return None if loaded is None else (loaded[1], loaded[0])


@functools.cache
def _builtin() -> ReintegrationIndex:
    return ReintegrationIndex().fit()


def _load_index(client: Any, version: Any) -> tuple[ReintegrationIndex, Any]:
    from models import registry

    index = registry.load_index(client, version)
    reference = None
    if version.run_id:
        reference = registry.read_json_artifact(client, version.run_id, registry.REFERENCE)
    return index, reference


def _load_risk(client: Any, version: Any) -> tuple[Any, None]:
    from models import registry

    return registry.load_model(client, version), None


_SHARED: dict[str, Champions] = {}


def shared_champions(settings: Settings) -> Champions:
    """One :class:`Champions` per tracking store in this process (the CLI's commands share it)."""
    uri = settings.mlflow_tracking_uri
    if uri not in _SHARED:
        _SHARED[uri] = Champions(settings)
    return _SHARED[uri]
