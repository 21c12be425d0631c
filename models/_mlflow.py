"""MLflow configured from the settings: the one way this package reaches the tracking store.

The tracking and registry store is ``settings.mlflow_tracking_uri`` (SQLite under
``REINTEGRATION_HOME`` by default, or any URI from ``MLFLOW_TRACKING_URI``: a database or an
``mlflow server``); artifacts go where :func:`artifact_root` says
(``REINTEGRATION_ARTIFACT_LOCATION`` when set, so that every server sharing the registry reads
the same model files; else under ``settings.mlflow_artifacts``, or the tracking server's own
root), never into the working directory. Telemetry is off (set by ``models/__init__``, before
MLflow is imported). Readers ask :func:`store_exists` first, so looking for a champion never
creates a data folder or a database.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reintegration.errors import ConfigurationError
from reintegration.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
# With a tracking server MLflow prints each run's URL on stdout, where ``--json`` answers go.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

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


# PostgreSQL advisory locks of the MLflow database: creating its tables ("mlfl"), registering
# the built-in index ("mlfb").
_MLFLOW_INIT_LOCK = 0x6D6C666C
BUILTIN_LOCK = 0x6D6C6662
_ready: set[str] = set()
_ready_lock = threading.Lock()
_folder_lock = threading.RLock()  # this process's threads, one at a time, before the flock
_held = threading.local()


def create_store_once(uri: str) -> None:
    """Create (and migrate) MLflow's tables of a SQL store with other processes kept out.

    MLflow creates its tables when a process first opens an empty store, with nothing to stop
    two processes doing it at once: two servers started together on fresh databases both
    failed, each creating the same tables (issue 14). Here one process at a time does it: on
    PostgreSQL under an advisory lock of the MLflow database (any machine), on SQLite under an
    exclusive ``flock`` of the store's folder (any process of the machine); the others then
    find the tables there. Done once per process and store; other stores (an HTTP tracking
    server, which creates its own) are left alone.

    Parameters
    ----------
    uri : str
        The tracking URI, as :func:`tracking_uri` gives it.
    """
    scheme = uri.split(":", 1)[0].split("+", 1)[0]
    if scheme not in ("postgresql", "sqlite") or uri in _ready:
        return
    with _ready_lock:
        if uri in _ready:
            return
        try:
            from mlflow.store.db.utils import _all_tables_exist, _initialize_tables
        except ImportError:  # another MLflow: it creates its tables itself, unguarded
            _ready.add(uri)
            return
        import sqlalchemy as sa

        _quiet()
        engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)
        try:
            with _exclusive(engine, uri, _MLFLOW_INIT_LOCK):
                if not _all_tables_exist(engine):
                    log.info("creating MLflow's tables")
                    _initialize_tables(engine)
        finally:
            engine.dispose()
        _ready.add(uri)


@contextmanager
def one_at_a_time(settings: Settings, lock_id: int) -> Iterator[None]:
    """Run a block in one process at a time among all that share the tracking store.

    On PostgreSQL an advisory lock of the MLflow database (any machine); on SQLite a ``flock``
    of the store's folder (any process of the machine); with another store (an HTTP tracking
    server) no lock can be had from here and the block runs unguarded.

    Parameters
    ----------
    settings : Settings
        Names the tracking store.
    lock_id : int
        Which lock (e.g. :data:`BUILTIN_LOCK`).
    """
    uri = tracking_uri(settings)
    if uri.split(":", 1)[0].split("+", 1)[0] not in ("postgresql", "sqlite"):
        yield
        return
    import sqlalchemy as sa

    engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)
    try:
        with _exclusive(engine, uri, lock_id):
            yield
    finally:
        engine.dispose()


@contextmanager
def _exclusive(engine: Any, uri: str, lock_id: int) -> Iterator[None]:
    import sqlalchemy as sa

    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_lock(lock_id)))
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(lock_id)))
                conn.commit()
        return
    path = _sqlite_path(uri)
    if path is None:  # in memory: one process's
        yield
        return
    import fcntl

    # One flock per folder whatever the lock id; a thread of this process holding it already
    # (a lock taken inside another) goes on, where a second flock would wait for itself.
    with _folder_lock:
        if getattr(_held, "depth", 0):
            _held.depth += 1
            try:
                yield
            finally:
                _held.depth -= 1
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # The folder, not a file of its own: nothing new appears in the data folder, and
        # SQLite's locks on the database file are not disturbed by opening or closing this.
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _held.depth = 1
            yield
        finally:
            _held.depth = 0
            os.close(fd)  # releases the flock


def client(settings: Settings) -> MlflowClient:
    """An MLflow client on the configured store, created (and migrated) on first use."""
    from mlflow import MlflowClient

    _quiet()
    uri = tracking_uri(settings)
    if uri.startswith("sqlite:"):
        path = _sqlite_path(uri)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    create_store_once(uri)
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
    create_store_once(uri)
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


def is_http(uri: str) -> bool:
    """Whether a tracking URI names an ``mlflow server`` (``http://`` or ``https://``)."""
    return uri.split(":", 1)[0].lower() in ("http", "https")


def artifact_root(settings: Settings) -> str | None:
    """Where new experiments keep their artifacts, as a URI; None for the tracking server's own.

    ``REINTEGRATION_ARTIFACT_LOCATION`` when set. Else, with an ``mlflow server`` as tracking
    store, None: the server's ``--default-artifact-root`` (``mlflow-artifacts:/`` when it serves
    artifacts, which every client reads through it). Else ``<home>/mlartifacts``, as a single
    server always had it.

    Examples
    --------
    >>> from pathlib import Path
    >>> s = Settings(home=Path("/srv/var"), database_url="", mlflow_tracking_uri="")
    >>> artifact_root(s)
    'file:///srv/var/mlartifacts'
    >>> artifact_root(s.model_copy(update={"mlflow_tracking_uri": "http://registry:5000"}))
    >>> artifact_root(s.model_copy(update={"artifact_location": "s3://models/ri"}))
    's3://models/ri'
    """
    configured = settings.artifact_location_uri
    if configured:
        return configured
    if is_http(settings.mlflow_tracking_uri):
        return None
    return settings.mlflow_artifacts.as_uri()


def local_path(uri: str) -> Path | None:
    """The folder of a ``file://`` URI (None for any other scheme)."""
    if uri.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    return None


def _within(location: str, root: str) -> bool:
    """Whether an experiment's artifact location lies under ``root`` (both URIs or paths)."""

    def norm(uri: str) -> str:
        path = local_path(uri) if "://" in uri or uri.startswith("file:") else Path(uri)
        text = path.as_posix() if path is not None else uri
        return text.rstrip("/") + "/"

    return norm(location).startswith(norm(root))


def check_artifacts(settings: Settings) -> list[str]:
    """Check at start that the artifact location can be used; return warnings to log.

    A configured folder (``REINTEGRATION_ARTIFACT_LOCATION``) must exist and be writable: it is
    never created, since a folder made on this machine where shared storage failed to mount
    would hold model files no other server sees. An object store needs its client library, and
    ``mlflow-artifacts:/`` an HTTP tracking server. Nothing is sent over the network.

    Returns
    -------
    list of str
        Warnings: a shared tracking database whose model files would stay in this server's data
        folder (no location configured).

    Raises
    ------
    ConfigurationError
        A location this server cannot write to or reach, in a sentence naming the setting.
    """
    import importlib.util

    configured = settings.artifact_location_uri
    if configured is None:
        scheme = tracking_uri(settings).split(":", 1)[0].split("+", 1)[0]
        if scheme in SQL_SCHEMES and scheme != "sqlite":
            return [
                f"MLflow's registry is a shared database ({scheme}) but model files go to this "
                f"server's data folder ({settings.mlflow_artifacts}), which other servers cannot "
                "read: set REINTEGRATION_ARTIFACT_LOCATION to shared storage on every server "
                "(docs/deployment.md)."
            ]
        return []
    folder = local_path(configured)
    if folder is not None:
        if not folder.is_dir():
            raise ConfigurationError(
                f"REINTEGRATION_ARTIFACT_LOCATION {folder} is not a folder on this server: mount "
                "the shared storage there (or create the folder) before starting."
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigurationError(
                f"REINTEGRATION_ARTIFACT_LOCATION {folder} is not writable by this server's user."
            )
        return []
    scheme = configured.split(":", 1)[0].lower()
    if scheme == "mlflow-artifacts" and not is_http(settings.mlflow_tracking_uri):
        raise ConfigurationError(
            "REINTEGRATION_ARTIFACT_LOCATION mlflow-artifacts:/ needs MLFLOW_TRACKING_URI to be "
            "an mlflow server (http:// or https://) that serves artifacts."
        )
    needs = LIBRARIES.get(scheme)
    if needs and importlib.util.find_spec(needs[0].split(".")[0]) is None:
        raise ConfigurationError(
            f"REINTEGRATION_ARTIFACT_LOCATION {configured} needs the Python package {needs[1]}, "
            "which is not installed on this server."
        )
    return []


LIBRARIES = {
    "s3": ("boto3", "boto3"),
    "gs": ("google.cloud.storage", "google-cloud-storage"),
    "wasbs": ("azure.storage.blob", "azure-storage-blob"),
    "abfss": ("azure.storage.filedatalake", "azure-storage-file-datalake"),
    "sftp": ("pysftp", "pysftp"),
}
"""The client library each object store needs: (module, package)."""


def experiment_id(mlflow_client: MlflowClient, settings: Settings, name: str) -> str:
    """The experiment of a registered model's runs, its artifacts under :func:`artifact_root`.

    The experiment is named after the model. An experiment keeps the artifact location it was
    created with, so when ``REINTEGRATION_ARTIFACT_LOCATION`` is set and the model's experiment
    predates it (its files elsewhere), new runs go to an experiment of their own, named
    ``"<model> at <location>"``: models trained from then on are where every server reads them,
    and versions registered before keep their files where they were.
    """
    root = artifact_root(settings)
    found = mlflow_client.get_experiment_by_name(name)
    configured = settings.artifact_location_uri
    if found is not None and configured and not _within(found.artifact_location, configured):
        moved = f"{name} at {configured}"
        log.warning(
            "experiment %s keeps its files at %s, not under REINTEGRATION_ARTIFACT_LOCATION; "
            "new runs go to experiment %r",
            name,
            found.artifact_location,
            moved,
        )
        name, found = moved, mlflow_client.get_experiment_by_name(moved)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if root is not None:
        location = f"{root.rstrip('/')}/{name.split(' at ', 1)[0]}"
        folder = local_path(location)
        if folder is not None:
            if configured and not folder.parent.is_dir():
                raise ConfigurationError(
                    f"REINTEGRATION_ARTIFACT_LOCATION {folder.parent} is not a folder on this "
                    "server: mount the shared storage there before training."
                )
            folder.mkdir(parents=True, exist_ok=True)
            location = folder.as_uri()
    try:
        return str(mlflow_client.create_experiment(name, artifact_location=location))
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
