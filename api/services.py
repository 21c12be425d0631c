"""What a running server holds once: the store, the analytics cache, the champions, uploads.

The API's routes and the dashboards reach everything through one :class:`Services` object, so
tests build it from stand-ins and a server builds it with :func:`build_services`. The model
lifecycle (registry, promotion, jobs) sits behind :class:`ModelLifecycle`, whose real
implementation calls ``models/``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from api.caches import LABEL_TTL_S, VERSION_TTL_S, AnswerCache, TimedValue, TokenCache
from api.champions import GuardedChampions
from api.uploads import ChampionSource, Uploads
from reintegration.analytics import Analytics
from reintegration.housekeeping import Sweeper, at_start, keep_private, verified_key
from reintegration.policy import User
from reintegration.questionnaire import Questionnaire, load_questionnaire
from reintegration.settings import Settings, get_settings, protection
from reintegration.store.engine import open_store

log = logging.getLogger(__name__)

# models.registry.RISK_MODEL, whose risk rows the worklist ranks (a test checks they agree);
# spelled here so that building Services does not import MLflow.
RISK_MODEL = "reintegration-risk"


class ModelLifecycle(Protocol):
    """The model registry, promotion and training jobs, as the API and the dashboards use
    them. Every call but ``resolve_name`` takes the caller, which ``models/`` checks."""

    def list_models(self, *, caller: User) -> list[dict[str, Any]]: ...

    def resolve_name(self, name: str) -> str: ...

    def list_versions(self, name: str, *, caller: User) -> list[dict[str, Any]]: ...

    def model_card(self, name: str, version: int, *, caller: User) -> str: ...

    def run_details(self, run_id: str, *, caller: User) -> dict[str, Any]: ...

    def promote(
        self, name: str, version: int, *, reason: str | None, force: bool, caller: User
    ) -> dict[str, Any]: ...

    def preview(self, name: str, version: int, *, caller: User) -> dict[str, Any]: ...

    def train(self, name: str, *, caller: User, params: dict[str, Any]) -> str: ...

    def get_job(self, job_id: str, *, caller: User) -> dict[str, Any] | None: ...

    def list_jobs(self, *, caller: User) -> list[dict[str, Any]]: ...


class RegistryLifecycle:
    """:class:`ModelLifecycle` through ``models/`` (MLflow loads on first use), on the registry
    of the server's own settings (not whatever the environment says)."""

    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def list_models(self, *, caller: User) -> list[dict[str, Any]]:
        from models.registry import list_models

        return list_models(self.settings, caller=caller)

    def resolve_name(self, name: str) -> str:
        from models.registry import resolve_name

        return resolve_name(name)

    def list_versions(self, name: str, *, caller: User) -> list[dict[str, Any]]:
        from models.registry import list_versions

        return list_versions(name, self.settings, caller=caller)

    def model_card(self, name: str, version: int, *, caller: User) -> str:
        from models.registry import model_card

        return model_card(name, version, self.settings, caller=caller)

    def run_details(self, run_id: str, *, caller: User) -> dict[str, Any]:
        from models.registry import run_details

        return run_details(run_id, self.settings, caller=caller)

    def promote(
        self, name: str, version: int, *, reason: str | None, force: bool, caller: User
    ) -> dict[str, Any]:
        from models.promotion import promote

        return promote(
            self.engine,
            name,
            version,
            reason=reason,
            force=force,
            caller=caller,
            settings=self.settings,
            background=True,  # an index version: a rescoring job, answered with its id (202)
        )

    def preview(self, name: str, version: int, *, caller: User) -> dict[str, Any]:
        from models.preview import preview_promotion

        return preview_promotion(self.engine, name, version, caller=caller, settings=self.settings)

    def train(self, name: str, *, caller: User, params: dict[str, Any]) -> str:
        from models.jobs import submit_job
        from models.registry import INDEX_MODEL

        kind = "train-index" if name == INDEX_MODEL else "train-risk"
        return submit_job(self.engine, kind, caller=caller, params=params)

    def get_job(self, job_id: str, *, caller: User) -> dict[str, Any] | None:
        from models.jobs import get_job

        return get_job(self.engine, job_id, caller=caller)

    def list_jobs(self, *, caller: User) -> list[dict[str, Any]]:
        from models.jobs import list_jobs

        return list_jobs(self.engine, caller=caller)


@dataclass
class Services:
    """Everything the routes and the dashboards need, built once per process."""

    settings: Settings
    engine: sa.Engine
    questionnaire: Questionnaire
    analytics: Analytics
    champions: ChampionSource
    uploads: Uploads
    lifecycle: ModelLifecycle
    risk_model_name: str = RISK_MODEL
    answers: AnswerCache = field(default_factory=AnswerCache)
    tokens: TokenCache = field(default_factory=TokenCache)
    warm: bool = False
    """Load the champion's analytics frame ahead of questions: at start and after a batch."""
    versions: TimedValue[int] = field(init=False)
    labels: TimedValue[str] = field(init=False)
    sweeper: Sweeper | None = None
    """Marks failed the batches and jobs whose lease passed, on any server (issue 14)."""
    _warming: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.versions = TimedValue(self.analytics.data_version, VERSION_TTL_S)
        self.labels = TimedValue(lambda: self.champions.index()[1], LABEL_TTL_S)
        # A batch stored through this process shows in the next answer, not a moment later;
        # the frame is reloaded once its after-batch hook is done (not competing with it).
        self.uploads.on_stored = self.versions.invalidate
        self.uploads.on_finished = self.start_warming

    def start_warming(self) -> None:
        """Load the champion's analytics frame in the background (seconds for a million
        interviews), so that the next question does not wait for all of it; one at a time."""
        if self.warm and self._warming.acquire(blocking=False):
            threading.Thread(target=self._warm, name="warm-analytics", daemon=True).start()

    def _warm(self) -> None:
        started = time.perf_counter()
        try:
            self.analytics.frame(self.champions.index()[1])
        except Exception:
            log.exception("could not load the analytics frame ahead of the questions")
        else:
            log.info("analytics frame loaded in %.1f s", time.perf_counter() - started)
        finally:
            self._warming.release()

    def close(self) -> None:
        """Wait for uploads in flight, then release the store's connections."""
        if self.sweeper is not None:
            self.sweeper.stop()
        self.uploads.close()
        self.engine.dispose()


def build_services(settings: Settings | None = None) -> Services:
    """The services of a server, from the settings (default: the environment).

    Opens (and migrates) the store, checks that the pseudonymisation key can be read (in
    production: that it is set), does the housekeeping of a start (files private, interrupted
    batches failed, uploads left behind removed: :mod:`reintegration.housekeeping`), creates
    the model registry with the built-in index as champion when it has none, and wires the
    champions and the after-batch hook of ``models/``.

    Raises
    ------
    ConfigurationError
        Invalid settings, a production server without a secret, an unknown database.
    """
    from models.hooks import after_batch
    from models.registry import RISK_MODEL as registered_risk
    from models.registry import ensure_builtin_index
    from models.serving import Champions

    settings = settings or get_settings()
    keep_private()  # before anything is created: the key, the store, MLflow's files
    settings.secret_key_bytes()
    engine = open_store(settings.database_url)
    # The key must be the one the database was first used with (its fingerprint is there).
    verified_key(settings, engine)
    at_start(settings.home, engine)  # private files, interrupted batches, uploads left behind
    # The registry is created (and migrated) here, once, before any request or training job
    # could race to create it; the built-in index v1 becomes champion when there is none.
    ensure_builtin_index(settings)
    questionnaire = load_questionnaire()
    champions = GuardedChampions(Champions(settings))
    return Services(
        settings=settings,
        engine=engine,
        questionnaire=questionnaire,
        analytics=Analytics(engine, min_cell=settings.min_cell, protection=protection(settings)),
        champions=champions,
        uploads=Uploads(
            engine,
            questionnaire,
            champions,
            secret=settings.secret_key_bytes,
            after_batch=after_batch,
            max_rows=settings.max_rows,
        ),
        lifecycle=RegistryLifecycle(engine, settings),
        risk_model_name=registered_risk,
        warm=True,
        sweeper=Sweeper(engine).start(),
    )
