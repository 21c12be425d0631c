"""Several servers on one registry: REINTEGRATION_ARTIFACT_LOCATION and an HTTP tracking server.

Each "server" here is a Settings with a data folder of its own (as on separate machines); they
share the tracking store and, when configured, the artifact location. A server's data folder
is deleted before the other one reads, so nothing can be read from it by accident.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models import _mlflow, registry
from models.index_training import train_index
from models.promotion import promote
from models.risk_training import train_risk
from models.serving import Champions
from reintegration.errors import ConfigurationError, ModelError
from reintegration.policy import CLI, cli_caller
from reintegration.settings import Settings, get_settings
from reintegration.store.engine import create_store_engine
from tests.conftest import _absent
from tests.models.conftest import copy_sqlite

SERVER_START_S = 60.0
"""How long an ``mlflow server`` may take to answer /health before the test is skipped."""


def server(home: Path, store: Path, tracking: str, location: str = "") -> Settings:
    return Settings(
        home=home,
        database_url=f"sqlite:///{store}",
        mlflow_tracking_uri=tracking,
        artifact_location=location,
    )


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def train_and_promote_risk(settings: Settings) -> int:
    engine = create_store_engine(settings.database_url)
    try:
        done = train_risk(engine, settings, actor="server A")
        promote(
            engine,
            "risk",
            done["version"],
            reason="a champion for server B to load",
            force=True,
            caller=cli_caller("server A"),
            settings=settings,
        )
    finally:
        engine.dispose()
    return int(done["version"])


# -- the setting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/shared/mlartifacts/", "file:///shared/mlartifacts"),
        ("file:///shared/mlartifacts", "file:///shared/mlartifacts"),
        ("s3://models/reintegration", "s3://models/reintegration"),
        ("mlflow-artifacts:/", "mlflow-artifacts:/"),
        ("", None),
    ],
)
def test_the_location_reads_as_a_uri(value, expected):
    assert Settings(artifact_location=value).artifact_location_uri == expected


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("shared/mlartifacts", "must be an absolute path"),
        ("file://shared", "absolute path after file://"),
        ("bogus://bucket", "scheme MLflow cannot store artifacts in ('bogus')"),
        ("s3://", "must name a bucket or host after s3://"),
    ],
)
def test_a_location_of_the_wrong_form_stops_the_settings(home, monkeypatch, value, says):
    monkeypatch.setenv("REINTEGRATION_ARTIFACT_LOCATION", value)
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError, match="REINTEGRATION_ARTIFACT_LOCATION") as caught:
        get_settings()
    assert says in str(caught.value)


def test_a_missing_or_unreachable_location_stops_the_start(tmp_path):
    missing = server(tmp_path / "a", tmp_path / "a.db", "", str(tmp_path / "not-mounted"))
    with pytest.raises(ConfigurationError, match="is not a folder on this server: mount"):
        _mlflow.check_artifacts(missing)
    assert not (tmp_path / "not-mounted").exists()  # never created where the mount failed
    proxied = server(tmp_path / "a", tmp_path / "a.db", "", "mlflow-artifacts:/")
    with pytest.raises(ConfigurationError, match="needs MLFLOW_TRACKING_URI to be an mlflow"):
        _mlflow.check_artifacts(proxied)
    s3 = server(tmp_path / "a", tmp_path / "a.db", "", "s3://bucket/models")
    if not _importable("boto3"):
        with pytest.raises(ConfigurationError, match="needs the Python package boto3"):
            _mlflow.check_artifacts(s3)
    (tmp_path / "shared").mkdir()
    fine = server(tmp_path / "a", tmp_path / "a.db", "", str(tmp_path / "shared"))
    assert _mlflow.check_artifacts(fine) == []


def test_a_shared_tracking_database_without_a_location_is_warned_about(tmp_path):
    settings = server(tmp_path, tmp_path / "a.db", "postgresql://db/mlflow")
    (warning,) = _mlflow.check_artifacts(settings)
    assert "set REINTEGRATION_ARTIFACT_LOCATION to shared storage" in warning
    assert _mlflow.check_artifacts(server(tmp_path, tmp_path / "a.db", "")) == []


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_one_server_keeps_its_files_in_its_data_folder_as_before(tmp_path):
    settings = server(tmp_path / "var", tmp_path / "a.db", "")
    assert _mlflow.artifact_root(settings) == (tmp_path / "var" / "mlartifacts").as_uri()
    http = settings.model_copy(update={"mlflow_tracking_uri": "http://127.0.0.1:5000"})
    assert _mlflow.artifact_root(http) is None  # the tracking server's own root


# -- two servers on one registry -----------------------------------------------------------------


def _postgres_mlflow() -> str:
    import sqlalchemy as sa

    uri = os.environ.get("REINTEGRATION_TEST_MLFLOW_URI")
    if not uri:
        _absent("REINTEGRATION_TEST_MLFLOW_URI is not set")
    engine = sa.create_engine(_mlflow.tracking_uri(Settings(mlflow_tracking_uri=str(uri))))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    # A URI of its own: MLflow (and models._mlflow) remember per URI, for the life of the
    # process, that a store's tables exist; another test of this session may have used the
    # plain URI before the schema was dropped here.
    separator = "&" if "?" in str(uri) else "?"
    return f"{uri}{separator}application_name=artifact-location-test"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_registry(request, tmp_path, mlflow_template) -> str:
    """One tracking database for both servers, outside either data folder."""
    if request.param == "postgres":
        return _postgres_mlflow()
    path = tmp_path / "registry" / "mlflow.db"
    copy_sqlite(mlflow_template, path)
    return f"sqlite:///{path}"


def test_a_second_server_loads_the_models_the_first_one_trained(
    shared_registry, panel_store, tmp_path
):
    shared = tmp_path / "shared-artifacts"
    shared.mkdir()
    stores = {name: tmp_path / f"{name}.db" for name in "ab"}
    for path in stores.values():
        copy_sqlite(panel_store, path)
    a = server(tmp_path / "a", stores["a"], shared_registry, str(shared))
    b = server(tmp_path / "b", stores["b"], shared_registry, str(shared))
    assert _mlflow.check_artifacts(a) == []
    assert registry.ensure_builtin_index(a) == 1
    version = train_and_promote_risk(a)
    assert not files_under(tmp_path / "a" / "mlartifacts")
    assert any(p.name == "MLmodel" for p in files_under(shared / registry.RISK_MODEL))
    shutil.rmtree(tmp_path / "a", ignore_errors=True)  # server A's machine is out of reach

    risk = Champions(b).risk()
    assert risk is not None and risk[1] == version
    assert registry.ensure_builtin_index(b) == 1  # the same registry: nothing new
    card = registry.model_card("risk", version, b, caller=CLI)
    assert card.startswith("#")
    assert not (tmp_path / "b" / "mlartifacts").exists()


def test_without_the_location_the_second_server_cannot_load_them(
    panel_store, tmp_path, mlflow_template
):
    """The failure the setting removes: model files in server A's own data folder."""
    tracking = tmp_path / "registry" / "mlflow.db"
    copy_sqlite(mlflow_template, tracking)
    store = tmp_path / "a.db"
    copy_sqlite(panel_store, store)
    a = server(tmp_path / "a", store, f"sqlite:///{tracking}")
    train_and_promote_risk(a)
    shutil.rmtree(tmp_path / "a", ignore_errors=True)
    b = server(tmp_path / "b", store, f"sqlite:///{tracking}")
    with pytest.raises(ModelError, match="is not on this server") as caught:
        Champions(b).risk()
    assert f"{tmp_path / 'a' / 'mlartifacts'}" in str(caught.value)
    assert "REINTEGRATION_ARTIFACT_LOCATION" in str(caught.value)


def test_an_experiment_older_than_the_setting_hands_new_runs_to_one_under_it(
    panel_store, tmp_path, mlflow_template
):
    tracking = tmp_path / "registry" / "mlflow.db"
    copy_sqlite(mlflow_template, tracking)
    store = tmp_path / "a.db"
    copy_sqlite(panel_store, store)
    before = server(tmp_path / "a", store, f"sqlite:///{tracking}")
    assert registry.ensure_builtin_index(before) == 1
    shared = tmp_path / "shared"
    shared.mkdir()
    after = server(tmp_path / "a", store, f"sqlite:///{tracking}", str(shared))
    engine = create_store_engine(after.database_url)
    done = train_index(engine, after, actor="test")
    engine.dispose()
    client = _mlflow.client(after)
    moved = client.get_experiment_by_name(f"{registry.INDEX_MODEL} at {shared.as_uri()}")
    assert moved is not None and moved.artifact_location.startswith(shared.as_uri())
    found = registry.get_version(client, registry.INDEX_MODEL, done["version"])
    location = client.get_model_version_download_uri(found.name, found.version)
    assert location.startswith(shared.as_uri())
    # The built-in version's files stay where they were.
    builtin = registry.get_version(client, registry.INDEX_MODEL, 1)
    assert "a/mlartifacts" in client.get_model_version_download_uri(builtin.name, "1")


# -- an HTTP tracking server ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (localhost)
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory) -> str:
    """An ``mlflow server`` on localhost: SQLite store, artifacts served by it (proxied)."""
    folder = tmp_path_factory.mktemp("tracking-server")
    port = _free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    if not mlflow.exists():
        pytest.skip("no mlflow command beside this interpreter")
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no job consumer processes
        "NO_PROXY": "*",
    }
    command = [
        str(mlflow),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(folder / "artifacts"),
    ]
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 (our own interpreter's mlflow)
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_S
    try:
        while not _answers(f"{url}/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (folder / "server.log").read_text(errors="replace")[-600:]
                pytest.skip(f"mlflow server did not start within {SERVER_START_S:.0f} s: {tail}")
            time.sleep(0.5)
        yield url
    finally:
        # The server runs uvicorn in a child process: stop the whole session it leads.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


def test_serving_and_training_work_with_a_tracking_server(tracking_server, panel_store, tmp_path):
    stores = {name: tmp_path / f"{name}.db" for name in "ab"}
    for path in stores.values():
        copy_sqlite(panel_store, path)
    a = server(tmp_path / "a", stores["a"], tracking_server)
    b = server(tmp_path / "b", stores["b"], tracking_server)
    assert _mlflow.artifact_root(a) is None
    # What failed at start with "Invalid model version source".
    assert registry.ensure_builtin_index(a) == 1
    engine = create_store_engine(a.database_url)
    derived = train_index(engine, a, actor="server A")
    engine.dispose()
    version = train_and_promote_risk(a)
    shutil.rmtree(tmp_path / "a", ignore_errors=True)

    assert registry.ensure_builtin_index(b) == 1
    risk = Champions(b).risk()
    assert risk is not None and risk[1] == version
    versions = registry.list_versions("index", b, caller=CLI)
    assert derived["version"] in {v["version"] for v in versions}
    assert registry.model_card("risk", version, b, caller=CLI).startswith("#")
    details = registry.run_details(versions[0]["run_id"], b, caller=CLI)
    assert details["params"]
    assert not (tmp_path / "b").exists()  # nothing written on server B's disk


@pytest.mark.parametrize(
    ("location", "root", "within"),
    [
        ("file:///shared/ml/rss-index", "file:///shared/ml", True),
        ("/shared/ml/rss-index", "file:///shared/ml", True),
        ("file:///shared/mlother/rss-index", "file:///shared/ml", False),
        ("s3://bucket/p/rss-index", "s3://bucket/p", True),
        ("s3://bucket/q/rss-index", "s3://bucket/p", False),
        ("mlflow-artifacts:/1", "mlflow-artifacts:/", True),
        ("file:///srv/a/var/mlartifacts/rss-index", "s3://bucket/p", False),
    ],
)
def test_an_experiment_is_under_the_location_only_when_its_path_is(location, root, within):
    assert _mlflow._within(location, root) is within
