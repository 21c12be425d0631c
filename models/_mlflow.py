"""MLflow configured from the settings: the one way this package reaches the tracking store.

The tracking and registry store is ``settings.mlflow_tracking_uri`` (SQLite under
``REINTEGRATION_HOME`` by default, or any URI from ``MLFLOW_TRACKING_URI``); artifacts go under
``settings.mlflow_artifacts``, never into the working directory. Telemetry is off (set by
``models/__init__``, before MLflow is imported). Readers ask :func:`store_exists` first, so
looking for a champion never creates a data folder or a database.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reintegration.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

log = logging.getLogger(__name__)

SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def tracking_uri(settings: Settings) -> str:
    """The tracking URI, with PostgreSQL sent through psycopg 3 (the driver installed)."""
    uri = settings.mlflow_tracking_uri
    if uri.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + uri.split("://", 1)[1]
    return uri


def _sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URI (None in memory).

    Parsed by hand so that asking whether a store exists imports no database library.

    Examples
    --------
    >>> _sqlite_path("sqlite:////srv/var/mlflow.db"), _sqlite_path("sqlite://")
    (PosixPath('/srv/var/mlflow.db'), None)
    """
    rest = uri.split("://", 1)[1] if "://" in uri else ""
    database = rest[1:].split("?", 1)[0] if rest.startswith("/") else ""
    return Path(database) if database and database != ":memory:" else None


def store_exists(settings: Settings) -> bool:
    """Whether the tracking store is there to read, found without creating anything.

    A SQLite store exists when its file does; a PostgreSQL or other SQL store when MLflow's
    tables are in it; a local folder store when the folder is there; anything else (an HTTP
    tracking server) is assumed to exist.
    """
    uri = tracking_uri(settings)
    scheme = uri.split(":", 1)[0].split("+", 1)[0]
    if scheme == "sqlite":
        path = _sqlite_path(uri)
        return path is not None and path.is_file() and path.stat().st_size > 0
    if scheme in SQL_SCHEMES:
        import sqlalchemy as sa

        engine = sa.create_engine(uri)
        try:
            with engine.connect() as conn:
                return sa.inspect(conn).has_table("registered_models")
        except sa.exc.OperationalError:
            return False
        finally:
            engine.dispose()
    if scheme == "file" or "://" not in uri:
        return Path(uri.removeprefix("file://")).exists()
    return True


def _quiet() -> None:
    # MLflow announces every registration and migration at INFO on stderr; our commands say
    # what happened themselves. Models without predict (the index) only lack a pyfunc flavour.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def client(settings: Settings) -> MlflowClient:
    """An MLflow client on the configured store, created (and migrated) on first use."""
    from mlflow import MlflowClient

    _quiet()
    uri = tracking_uri(settings)
    if uri.startswith("sqlite:"):
        path = _sqlite_path(uri)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextmanager
def fluent(settings: Settings) -> Iterator[None]:
    """Point MLflow's fluent API (``start_run``, ``log_model``) at the configured store.

    ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into the environment (for
    subprocesses); the settings read that variable, so it is put back as it was on the way
    out, and a later ``get_settings()`` still sees the operator's configuration.
    """
    import mlflow

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = {name: os.environ.get(name) for name in names}
    uri = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def experiment_id(mlflow_client: MlflowClient, settings: Settings, name: str) -> str:
    """The experiment of a registered model's runs, with its artifacts under the data folder."""
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = settings.mlflow_artifacts / name
    location.mkdir(parents=True, exist_ok=True)
    try:
        return str(mlflow_client.create_experiment(name, artifact_location=location.as_uri()))
    except Exception:
        # Another process created it in the meantime.
        again = mlflow_client.get_experiment_by_name(name)
        if again is None:
            raise
        return str(again.experiment_id)


def is_missing(exc: Exception) -> bool:
    """Whether an MLflow error means "no such model, version or alias"."""
    code = getattr(exc, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(exc).lower()


def params_of(mlflow_client: MlflowClient, run_id: str | None) -> dict[str, Any]:
    """The parameters of a run (empty when there is no run)."""
    if not run_id:
        return {}
    return dict(mlflow_client.get_run(run_id).data.params)
