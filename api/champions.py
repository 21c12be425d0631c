"""The champions as the server uses them: a champion that cannot be loaded is the server's
problem (503, logged with its cause), never a client's."""

from __future__ import annotations

import logging
from typing import Any

from reintegration.errors import ReintegrationError
from reintegration.index import ReintegrationIndex

log = logging.getLogger(__name__)


class ChampionUnavailable(ReintegrationError):
    """The champion model cannot be loaded from the registry; the server answers 503."""


class GuardedChampions:
    """Wraps a champion source (``models.serving.Champions``); its failures become
    :class:`ChampionUnavailable`. Other attributes pass through (``reference()`` for the
    after-batch hook)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def index(self) -> tuple[ReintegrationIndex, str, int | None]:
        try:
            found: tuple[ReintegrationIndex, str, int | None] = self.inner.index()
        except Exception as exc:
            raise _unavailable("index", exc) from exc
        return found

    def risk(self) -> tuple[Any, int] | None:
        try:
            found: tuple[Any, int] | None = self.inner.risk()
        except Exception as exc:
            raise _unavailable("risk model", exc) from exc
        return found

    def refresh(self) -> None:
        self.inner.refresh()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _unavailable(what: str, exc: Exception) -> ChampionUnavailable:
    log.error("the champion %s cannot be loaded", what, exc_info=exc)
    return ChampionUnavailable(
        f"the champion {what} cannot be loaded from the model registry; the server's log says "
        "why (an administrator can promote another version)"
    )
