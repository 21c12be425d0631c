"""The platform's settings, read once from the environment (DESIGN.md, "Stores and settings").

Constructing :class:`Settings` only reads environment variables: it never creates a folder or a
file, so ``reintegration score`` can read them and still write nothing but its output. The data
folder and the development secret appear when something first needs them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from reintegration.disclosure import Protection
from reintegration.errors import ConfigurationError
from reintegration.limits import DEFAULT_MAX_ROWS

MIN_SECRET_CHARS = 32
SECRET_FILE = "secret.key"
_HOW_TO_MAKE_A_SECRET = (
    "e.g. the output of `python -c 'import secrets; print(secrets.token_hex(32))'`"
)
# Words that only a placeholder or an example contains; a random key of 32+ characters never does.
_PLACEHOLDER_WORDS = ("change", "secret", "example", "placeholder", "default", "password", "xxxx")
_MIN_DISTINCT_CHARS = 10
DEFAULT_PROTECTION = Protection()


class Settings(BaseSettings):
    """Every setting of the platform, from ``REINTEGRATION_*`` and ``MLFLOW_TRACKING_URI``.

    Parameters
    ----------
    home : Path
        ``REINTEGRATION_HOME``: the data folder of the embedded stores (default ``./var``, made
        absolute against the working directory at construction).
    database_url : str
        ``REINTEGRATION_DATABASE_URL``: the app's database (default SQLite in ``home``).
    mlflow_tracking_uri : str
        ``MLFLOW_TRACKING_URI``: MLflow's tracking and registry store (default SQLite in
        ``home``).
    env : {"development", "production"}
        ``REINTEGRATION_ENV``; production refuses to run without ``REINTEGRATION_SECRET_KEY``.
    secret_key : SecretStr or None
        ``REINTEGRATION_SECRET_KEY``: the key of the HMAC that pseudonymises case numbers; read it
        through :meth:`secret_key_bytes`.
    min_cell : int
        ``REINTEGRATION_MIN_CELL``: smallest number of distinct returnees an aggregate cell shows.
    max_upload_mb : int
        ``REINTEGRATION_MAX_UPLOAD_MB``: size limit of an HTTP upload, in megabytes.
    max_score_mb : int
        ``REINTEGRATION_MAX_SCORE_MB``: size limit of the JSON body of ``POST /api/v1/score``, in
        megabytes (its 10,000 records of about 1.2 kB fit in 16).
    min_group : int
        ``REINTEGRATION_MIN_GROUP``: smallest subgroup whose model metrics count for promotion.
    promotion_tolerance : float
        ``REINTEGRATION_PROMOTION_TOLERANCE``: how much lower (absolute ROC AUC) a challenger
        may score than the champion, overall or per subgroup.
    risk_bands : str
        ``REINTEGRATION_RISK_BANDS``: two absolute risks, ``"low,high"`` (default ``"0.3,0.6"``),
        with 0 < low < high < 1: a risk below ``low`` is in the low band, from ``high`` in the
        high band, medium between (risk rows of a model trained afterwards, and the baseline
        rule's ranking); read them as numbers through :attr:`risk_band_limits`.
    max_rows : int
        ``REINTEGRATION_MAX_ROWS``: the most data rows a batch file may hold, in any format
        (``ingest``, uploads and ``score``); a longer file is refused while it is read.
    forwarded_allow_ips : str
        ``REINTEGRATION_FORWARDED_ALLOW_IPS``: the proxies (comma-separated addresses or
        networks, or ``*``) whose ``X-Forwarded-Proto`` and ``X-Forwarded-For`` the server
        believes, e.g. the TLS proxy in front of it, so that the session cookie is marked
        Secure; default none.
    perturb_max_count_change : int
        ``REINTEGRATION_PERTURB_MAX_COUNT_CHANGE``: protected figures (``docs/privacy.md``) move
        no count by more than this (default 4).
    perturb_count_variance : float
        ``REINTEGRATION_PERTURB_COUNT_VARIANCE``: the variance of the change of a count in
        protected figures (default 3.0); above 0 and below ``D(D+1)/3``, ``D`` the maximum change.
    perturb_sum_noise : float
        ``REINTEGRATION_PERTURB_SUM_NOISE``: protected figures move a sum by at most this many
        times the cell's largest contribution (default 0.75), so that the difference of two
        answers that differ by one person is not that person's score.
    artifact_location : str
        ``REINTEGRATION_ARTIFACT_LOCATION``: where MLflow keeps model files, for every server
        sharing one registry: an absolute path of shared storage (``/shared/mlartifacts``), a
        ``file://`` URI, or an object-store URI MLflow understands (``s3://bucket/prefix``,
        ``gs://``, ``wasbs://``, ``abfss://``, ``hdfs://``, ``sftp://``, ``ftp://``,
        ``mlflow-artifacts:/``). Default: ``<home>/mlartifacts``, or with an HTTP tracking server
        that server's own artifact root. Read it as a URI through
        :attr:`artifact_location_uri`.
    lease_seconds : float
        ``REINTEGRATION_LEASE_SECONDS``: how long a running batch or job stays leased to its
        process without a renewal (default 30; renewed every third of it); work whose lease
        passes is marked failed by any server (:mod:`reintegration.store.leases`).

    Examples
    --------
    >>> s = Settings(home=Path("/srv/reintegration"), database_url="", mlflow_tracking_uri="")
    >>> s.database_url
    'sqlite:////srv/reintegration/reintegration.db'
    >>> s.mlflow_artifacts
    PosixPath('/srv/reintegration/mlartifacts')
    """

    model_config = SettingsConfigDict(
        env_prefix="REINTEGRATION_",
        # An empty variable (``REINTEGRATION_DATABASE_URL=``) means "use the default".
        env_ignore_empty=True,
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
    )

    home: Path = Path("var")
    database_url: str = ""
    mlflow_tracking_uri: str = Field(default="", validation_alias="MLFLOW_TRACKING_URI")
    env: Literal["development", "production"] = "development"
    secret_key: SecretStr | None = None
    min_cell: int = Field(default=5, ge=1)
    max_upload_mb: int = Field(default=50, ge=1)
    max_score_mb: int = Field(default=16, ge=1)
    min_group: int = Field(default=30, ge=1)
    promotion_tolerance: float = Field(default=0.02, ge=0.0, le=1.0)
    risk_bands: str = "0.3,0.6"
    max_rows: int = Field(default=DEFAULT_MAX_ROWS, ge=1)
    forwarded_allow_ips: str = ""
    perturb_max_count_change: int = Field(default=DEFAULT_PROTECTION.max_count_change, ge=1, le=20)
    perturb_count_variance: float = Field(default=DEFAULT_PROTECTION.count_variance, gt=0.0)
    perturb_sum_noise: float = Field(default=DEFAULT_PROTECTION.sum_noise, gt=0.0, le=10.0)
    artifact_location: str = ""
    lease_seconds: float = Field(default=30.0, ge=1.0, le=3600.0)

    @field_validator("risk_bands")
    @classmethod
    def _check_risk_bands(cls, value: str) -> str:
        risk_band_limits(value)
        return value

    @field_validator("artifact_location")
    @classmethod
    def _check_artifact_location(cls, value: str) -> str:
        artifact_location_uri(value)
        return value.strip()

    @property
    def artifact_location_uri(self) -> str | None:
        """``REINTEGRATION_ARTIFACT_LOCATION`` as a URI (a path becomes ``file://``); None
        when unset."""
        return artifact_location_uri(self.artifact_location)

    @property
    def risk_band_limits(self) -> tuple[float, float]:
        """``REINTEGRATION_RISK_BANDS`` as numbers: (medium from, high from)."""
        return risk_band_limits(self.risk_bands)

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        # absolute() rather than resolve(): it does not touch the disk.
        self.home = self.home.expanduser().absolute()
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.home / 'reintegration.db').as_posix()}"
        if not self.mlflow_tracking_uri:
            self.mlflow_tracking_uri = f"sqlite:///{(self.home / 'mlflow.db').as_posix()}"
        return self

    @property
    def mlflow_artifacts(self) -> Path:
        """The folder of MLflow's artifacts in the embedded setup: ``<home>/mlartifacts``."""
        return self.home / "mlartifacts"

    @property
    def secret_file(self) -> Path:
        """Where the development secret lives: ``<home>/secret.key``."""
        return self.home / SECRET_FILE

    def secret_key_bytes(self) -> bytes:
        """Return the key of the HMAC that pseudonymises case numbers.

        The key is ``REINTEGRATION_SECRET_KEY`` when set. Without it, production refuses to run,
        and development reads ``<home>/secret.key``, creating it on first use (32 random bytes as
        64 hex characters, mode 0600). In both cases the key is the UTF-8 text itself, so the
        contents of a development ``secret.key`` can be moved into the environment variable and
        every stored returnee key stays valid.

        Returns
        -------
        bytes
            The key, as the UTF-8 bytes of its text.

        Raises
        ------
        ConfigurationError
            In production, when the variable is unset, too short or a placeholder; in
            development, when ``secret.key`` exists but does not hold a key.
        """
        if self.secret_key is not None:
            key = self.secret_key.get_secret_value().strip()
            if self.env == "production":
                _check_production_secret(key)
            return key.encode("utf-8")
        if self.env == "production":
            raise ConfigurationError(
                "REINTEGRATION_SECRET_KEY must be set when REINTEGRATION_ENV=production, to the "
                f"same random value of at least {MIN_SECRET_CHARS} characters on every server."
            )
        return _read_or_create_secret(self.secret_file).encode("utf-8")


def _check_production_secret(key: str) -> None:
    if len(key) < MIN_SECRET_CHARS:
        raise ConfigurationError(
            f"REINTEGRATION_SECRET_KEY is too short for production: use at least "
            f"{MIN_SECRET_CHARS} random characters, {_HOW_TO_MAKE_A_SECRET}."
        )
    lowered = key.lower()
    if len(set(lowered)) < _MIN_DISTINCT_CHARS or any(w in lowered for w in _PLACEHOLDER_WORDS):
        raise ConfigurationError(
            f"REINTEGRATION_SECRET_KEY looks like a placeholder: use at least "
            f"{MIN_SECRET_CHARS} random characters, {_HOW_TO_MAKE_A_SECRET}."
        )


def _read_or_create_secret(path: Path) -> str:
    """Read the development key, creating it first if absent; the first creator wins."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write the whole key under a private name, then link it into place: link() fails if the
        # file already exists, so processes starting together all end up reading one key, and
        # none ever reads a half-written file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask
            os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink()
    key = path.read_text(encoding="ascii", errors="replace").strip()
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise ConfigurationError(
            f"{path} does not hold a key (64 hex characters): restore it from a backup, or set "
            "REINTEGRATION_SECRET_KEY to the key the stored data was pseudonymised with."
        )
    return key


def protection(settings: Settings | None = None) -> Protection:
    """The parameters of protected figures, from ``REINTEGRATION_PERTURB_*``.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to :func:`get_settings`.

    Returns
    -------
    Protection

    Raises
    ------
    ConfigurationError
        The parameters do not make a perturbation table (e.g. a variance too wide for the
        maximum change); the message names the setting.
    """
    chosen = settings if settings is not None else get_settings()
    return Protection(
        max_count_change=chosen.perturb_max_count_change,
        count_variance=chosen.perturb_count_variance,
        sum_noise=chosen.perturb_sum_noise,
    )


@functools.cache
def get_settings() -> Settings:
    """Return the settings of this process, read from the environment on first call.

    Tests that change the environment call ``get_settings.cache_clear()`` to read it again.

    Returns
    -------
    Settings
        The same object on every call until the cache is cleared.

    Raises
    ------
    ConfigurationError
        When a variable holds a value of the wrong kind (``REINTEGRATION_MIN_CELL=five``).
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{_variable(str(e['loc'][0]) if e['loc'] else '')}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigurationError(f"The settings are invalid: {problems}.") from None


def risk_band_limits(text: str) -> tuple[float, float]:
    """Two absolute risks ``"low,high"`` with 0 < low < high < 1, as numbers.

    Raises
    ------
    ValueError
        Anything else, in a sentence naming the setting (pydantic and :func:`get_settings`
        turn it into a ConfigurationError).

    Examples
    --------
    >>> risk_band_limits(" 0.3, 0.6 ")
    (0.3, 0.6)
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        low = high = float("nan")
    if not (0.0 < low < high < 1.0):
        raise ValueError(
            f"REINTEGRATION_RISK_BANDS must be two risks between 0 and 1, the lower first, "
            f"separated by a comma (e.g. 0.3,0.6); got {text!r}"
        )
    return low, high


ARTIFACT_SCHEMES = (
    "file",
    "s3",
    "gs",
    "wasbs",
    "abfss",
    "hdfs",
    "viewfs",
    "sftp",
    "ftp",
    "mlflow-artifacts",
    "http",
    "https",
)
"""The schemes of ``REINTEGRATION_ARTIFACT_LOCATION``: those of MLflow's artifact stores."""


def artifact_location_uri(text: str) -> str | None:
    """``REINTEGRATION_ARTIFACT_LOCATION`` as a URI: an absolute path becomes a ``file://`` URI.

    Only the form is checked here (nothing is touched on disk or over the network); whether the
    location can be written is checked when a server starts (``models._mlflow.check_artifacts``).

    Raises
    ------
    ValueError
        A relative path, a URI of an unknown scheme or without a location, in a sentence
        naming the setting.

    Examples
    --------
    >>> artifact_location_uri("/shared/mlartifacts/"), artifact_location_uri("")
    ('file:///shared/mlartifacts', None)
    >>> artifact_location_uri("s3://models/reintegration")
    's3://models/reintegration'
    """
    text = str(text).strip()
    if not text:
        return None
    known = ", ".join(f"{s}://" if s != "mlflow-artifacts" else f"{s}:/" for s in ARTIFACT_SCHEMES)
    if "://" not in text and not text.startswith("mlflow-artifacts:"):
        path = Path(text).expanduser()
        if not path.is_absolute():
            raise ValueError(
                f"REINTEGRATION_ARTIFACT_LOCATION must be an absolute path (of storage every "
                f"server mounts at the same place) or a URI ({known}); got {text!r}"
            )
        return path.as_uri().rstrip("/")
    scheme, _, rest = text.partition(":")
    if scheme.lower() not in ARTIFACT_SCHEMES:
        raise ValueError(
            f"REINTEGRATION_ARTIFACT_LOCATION has a scheme MLflow cannot store artifacts in "
            f"({scheme!r}); use an absolute path or one of {known}"
        )
    if scheme.lower() == "file":
        path_part = rest.removeprefix("//")
        if not path_part.startswith("/"):
            raise ValueError(
                f"REINTEGRATION_ARTIFACT_LOCATION must name an absolute path after file:// "
                f"(file:///shared/mlartifacts); got {text!r}"
            )
    elif scheme.lower() != "mlflow-artifacts" and not rest.removeprefix("//").strip("/"):
        raise ValueError(
            f"REINTEGRATION_ARTIFACT_LOCATION must name a bucket or host after {scheme}://; "
            f"got {text!r}"
        )
    return text.rstrip("/") if text.rstrip("/") != f"{scheme}:" else text


def _variable(field: str) -> str:
    if field in ("mlflow_tracking_uri", "MLFLOW_TRACKING_URI"):
        return "MLFLOW_TRACKING_URI"
    return f"REINTEGRATION_{field.upper()}"
