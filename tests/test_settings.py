"""Settings: defaults, environment overrides, and the HMAC secret in development and production."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reintegration.errors import ConfigurationError
from reintegration.settings import Settings, get_settings

VARIABLES = (
    "REINTEGRATION_HOME",
    "REINTEGRATION_DATABASE_URL",
    "MLFLOW_TRACKING_URI",
    "REINTEGRATION_ENV",
    "REINTEGRATION_SECRET_KEY",
    "REINTEGRATION_MIN_CELL",
    "REINTEGRATION_MAX_UPLOAD_MB",
    "REINTEGRATION_MIN_GROUP",
    "REINTEGRATION_PROMOTION_TOLERANCE",
    "REINTEGRATION_RISK_BANDS",
    "REINTEGRATION_PERTURB_MAX_COUNT_CHANGE",
    "REINTEGRATION_PERTURB_COUNT_VARIANCE",
    "REINTEGRATION_PERTURB_SUM_NOISE",
    "REINTEGRATION_LEASE_SECONDS",
    "REINTEGRATION_ARTIFACT_LOCATION",
)
GOOD_SECRET = "3f1c9a7e5b2d4068a1e3c5b7d9f0a2c4e6b8d0f1a3c5e7b9"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No setting from the caller's environment, and ./var inside the test's folder."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_defaults(tmp_path: Path) -> None:
    s = Settings()

    assert s.model_dump(exclude={"secret_key"}) == {
        "home": tmp_path / "var",
        "database_url": f"sqlite:///{tmp_path}/var/reintegration.db",
        "mlflow_tracking_uri": f"sqlite:///{tmp_path}/var/mlflow.db",
        "env": "development",
        "min_cell": 5,
        "max_upload_mb": 50,
        "min_group": 30,
        "promotion_tolerance": 0.02,
        "risk_bands": "0.3,0.6",
        "max_rows": 2_000_000,
        "max_score_mb": 16,
        "forwarded_allow_ips": "",
        "perturb_max_count_change": 4,
        "perturb_count_variance": 3.0,
        "perturb_sum_noise": 0.75,
        "artifact_location": "",
        "lease_seconds": 30.0,
    }
    assert s.secret_key is None
    assert s.mlflow_artifacts == tmp_path / "var" / "mlartifacts"


def test_environment_overrides_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "REINTEGRATION_HOME": "/srv/reintegration",
        "REINTEGRATION_DATABASE_URL": "postgresql+psycopg://app@db/reintegration",
        "MLFLOW_TRACKING_URI": "postgresql+psycopg://app@db/mlflow",
        "REINTEGRATION_ENV": "production",
        "REINTEGRATION_SECRET_KEY": GOOD_SECRET,
        "REINTEGRATION_MIN_CELL": "10",
        "REINTEGRATION_MAX_UPLOAD_MB": "20",
        "REINTEGRATION_MIN_GROUP": "50",
        "REINTEGRATION_PROMOTION_TOLERANCE": "0.01",
        "REINTEGRATION_RISK_BANDS": "0.2,0.5",
        "REINTEGRATION_MAX_ROWS": "1000",
        "REINTEGRATION_MAX_SCORE_MB": "4",
        "REINTEGRATION_FORWARDED_ALLOW_IPS": "10.0.0.0/8",
        "REINTEGRATION_PERTURB_MAX_COUNT_CHANGE": "3",
        "REINTEGRATION_PERTURB_COUNT_VARIANCE": "1.5",
        "REINTEGRATION_PERTURB_SUM_NOISE": "0.5",
        "REINTEGRATION_ARTIFACT_LOCATION": "/shared/mlartifacts",
        "REINTEGRATION_LEASE_SECONDS": "12",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)

    s = Settings()

    assert s.model_dump(exclude={"secret_key"}) == {
        "home": Path("/srv/reintegration"),
        "database_url": "postgresql+psycopg://app@db/reintegration",
        "mlflow_tracking_uri": "postgresql+psycopg://app@db/mlflow",
        "env": "production",
        "min_cell": 10,
        "max_upload_mb": 20,
        "min_group": 50,
        "promotion_tolerance": 0.01,
        "risk_bands": "0.2,0.5",
        "max_rows": 1000,
        "max_score_mb": 4,
        "forwarded_allow_ips": "10.0.0.0/8",
        "perturb_max_count_change": 3,
        "perturb_count_variance": 1.5,
        "perturb_sum_noise": 0.5,
        "artifact_location": "/shared/mlartifacts",
        "lease_seconds": 12.0,
    }
    assert s.secret_key_bytes() == GOOD_SECRET.encode()


@pytest.mark.parametrize("value", ["0.6,0.3", "0.3", "0,0.5", "0.3,1", "low,high", "0.3,0.3"])
def test_risk_bands_must_be_two_rising_risks_between_0_and_1(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("REINTEGRATION_RISK_BANDS", value)

    with pytest.raises(ConfigurationError) as refused:
        get_settings()

    assert str(refused.value) == (
        "The settings are invalid: REINTEGRATION_RISK_BANDS: Value error, "
        "REINTEGRATION_RISK_BANDS must be two risks between 0 and 1, the lower first, separated "
        f"by a comma (e.g. 0.3,0.6); got {value!r}."
    )


def test_risk_bands_are_read_as_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REINTEGRATION_RISK_BANDS", " 0.25 , 0.7 ")
    assert get_settings().risk_band_limits == (0.25, 0.7)


def test_home_moves_the_default_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REINTEGRATION_HOME", "/data/rss")

    s = Settings()

    assert (s.database_url, s.mlflow_tracking_uri, s.mlflow_artifacts) == (
        "sqlite:////data/rss/reintegration.db",
        "sqlite:////data/rss/mlflow.db",
        Path("/data/rss/mlartifacts"),
    )


def test_an_empty_variable_means_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REINTEGRATION_DATABASE_URL", "")

    assert Settings().database_url == f"sqlite:///{tmp_path}/var/reintegration.db"


def test_construction_creates_nothing(tmp_path: Path) -> None:
    s = Settings()
    _ = (s.database_url, s.mlflow_tracking_uri, s.mlflow_artifacts, s.secret_file)

    assert list(tmp_path.iterdir()) == []


def test_development_secret_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = Settings().secret_key_bytes()

    path = tmp_path / "var" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 64 and bytes.fromhex(first.decode())
    assert Settings().secret_key_bytes() == first


def test_development_secret_is_one_key_when_threads_race(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    keys: list[bytes] = []

    def read() -> None:
        barrier.wait()
        keys.append(Settings().secret_key_bytes())

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(keys) == 8 and len(set(keys)) == 1
    assert [p.name for p in (tmp_path / "var").iterdir()] == ["secret.key"]


def test_development_uses_the_variable_when_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REINTEGRATION_SECRET_KEY", "dev")

    assert Settings().secret_key_bytes() == b"dev"
    assert not (tmp_path / "var").exists()


def test_a_damaged_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret.key").write_text("not a key\n")

    with pytest.raises(ConfigurationError) as error:
        Settings().secret_key_bytes()
    assert str(error.value) == (
        f"{tmp_path}/var/secret.key does not hold a key (64 hex characters): restore it from a "
        "backup, or set REINTEGRATION_SECRET_KEY to the key the stored data was pseudonymised with."
    )


def test_production_without_a_secret_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REINTEGRATION_ENV", "production")

    with pytest.raises(ConfigurationError) as error:
        Settings().secret_key_bytes()
    assert str(error.value) == (
        "REINTEGRATION_SECRET_KEY must be set when REINTEGRATION_ENV=production, to the same "
        "random value of at least 32 characters on every server."
    )
    assert not (tmp_path / "var").exists()


def test_production_with_a_short_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REINTEGRATION_ENV", "production")
    monkeypatch.setenv("REINTEGRATION_SECRET_KEY", GOOD_SECRET[:31])

    with pytest.raises(ConfigurationError) as error:
        Settings().secret_key_bytes()
    assert str(error.value) == (
        "REINTEGRATION_SECRET_KEY is too short for production: use at least 32 random "
        "characters, e.g. the output of `python -c 'import secrets; print(secrets.token_hex(32))'`."
    )


@pytest.mark.parametrize(
    "placeholder",
    [
        "change-me-change-me-change-me-change-me",
        "a" * 40,
        "my-super-secret-key-for-production-1234",
    ],
)
def test_production_with_a_placeholder_secret_is_refused(
    monkeypatch: pytest.MonkeyPatch, placeholder: str
) -> None:
    monkeypatch.setenv("REINTEGRATION_ENV", "production")
    monkeypatch.setenv("REINTEGRATION_SECRET_KEY", placeholder)

    with pytest.raises(
        ConfigurationError, match="REINTEGRATION_SECRET_KEY looks like a placeholder"
    ):
        Settings().secret_key_bytes()


def test_production_with_a_random_secret_creates_no_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REINTEGRATION_ENV", "production")
    monkeypatch.setenv("REINTEGRATION_SECRET_KEY", GOOD_SECRET)

    assert Settings().secret_key_bytes() == GOOD_SECRET.encode()
    assert list(tmp_path.iterdir()) == []


def test_get_settings_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    monkeypatch.setenv("REINTEGRATION_MIN_CELL", "11")

    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().min_cell == 11


def test_get_settings_names_the_variable_of_a_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REINTEGRATION_MIN_CELL", "five")
    monkeypatch.setenv("REINTEGRATION_ENV", "prod")

    with pytest.raises(ConfigurationError) as error:
        get_settings()
    assert str(error.value) == (
        "The settings are invalid: REINTEGRATION_ENV: Input should be 'development' or "
        "'production'; REINTEGRATION_MIN_CELL: Input should be a valid integer, unable to parse "
        "string as an integer."
    )


def test_secret_is_hidden_from_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REINTEGRATION_SECRET_KEY", GOOD_SECRET)

    assert GOOD_SECRET not in repr(Settings())
