"""Shared fixtures and factories: small synthetic batches built from the questionnaire spec."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from reintegration.questionnaire import Questionnaire, load_questionnaire  # noqa: E402


@pytest.fixture(scope="session")
def questionnaire() -> Questionnaire:
    return load_questionnaire()


def best_answers(q: Questionnaire) -> dict[str, str]:
    """Every item at its best option (as a code)."""
    out = {}
    for item in q.items:
        if item.is_multiple:
            assert item.exclusive is not None
            out[item.id] = item.exclusive.code
        else:
            out[item.id] = max(item.options, key=lambda o: o.value or 0).code
    return out


def worst_answers(q: Questionnaire) -> dict[str, str]:
    """Every item at its worst option (as a code)."""
    out = {}
    for item in q.items:
        if item.is_multiple:
            out[item.id] = " ".join(o.code for o in item.options)
        else:
            out[item.id] = min(item.options, key=lambda o: o.value or 0).code
    return out


def canonical_row(q: Questionnaire, number: int = 1, **overrides: str) -> dict[str, str]:
    """A valid canonical row with every item at its best answer, then ``overrides``."""
    row = {
        "submission_id": f"sub-{number:04d}",
        "consent": "yes",
        "returnee_id": f"CASE-{number:04d}",
        "interview_date": "2025-06-01",
        "return_date": "2025-01-15",
        "sex": "female",
        "age_at_return": "29",
        "return_type": "forced",
        "country": "SEN",
        "admin1": "Dakar",
        "enumerator_id": "E01",
        "form_version": q.form_version,
        "interview_mode": "in_person",
        "assistance": "cash",
    }
    row.update(best_answers(q))
    row.update(overrides)
    return row


def write_csv(
    path: Path, rows: list[dict[str, str]], delimiter: str = ",", encoding: str = "utf-8"
) -> Path:
    header: list[str] = []
    for row in rows:
        header.extend(k for k in row if k not in header)
    with path.open("w", newline="", encoding=encoding) as fh:
        writer = csv.DictWriter(fh, fieldnames=header, delimiter=delimiter, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def batch_file(tmp_path: Path, questionnaire: Questionnaire) -> Callable[..., Path]:
    """Write rows (dicts of overrides on a valid row) to a canonical CSV and return its path."""

    def make(*overrides: dict[str, str], name: str = "batch.csv", **kwargs: str) -> Path:
        rows = [canonical_row(questionnaire, k + 1, **o) for k, o in enumerate(overrides or ({},))]
        return write_csv(tmp_path / name, rows, **kwargs)

    return make


# -- external services: skipped locally when absent, required in CI -------------------------------

REQUIRE_SERVICES = os.environ.get("REINTEGRATION_REQUIRE_SERVICES") == "1"
CHROMIUM = os.environ.get("REINTEGRATION_CHROMIUM", "/usr/bin/chromium")


def _absent(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason}, but .ci/run requires it (REINTEGRATION_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL database of the tests (REINTEGRATION_TEST_DATABASE_URL)."""
    url = os.environ.get("REINTEGRATION_TEST_DATABASE_URL")
    if not url:
        _absent("REINTEGRATION_TEST_DATABASE_URL is not set")
    return str(url)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium, for browser tests (REINTEGRATION_CHROMIUM, default /usr/bin/chromium)."""
    if not Path(CHROMIUM).exists():
        _absent(f"no browser at {CHROMIUM}")
    return CHROMIUM


# -- the app's store: SQLite always, PostgreSQL where configured -----------------------------------


def _sqlite_store(path: Path):
    from reintegration.store.engine import open_store

    return open_store(f"sqlite:///{path}")


def _postgres_store(url: str):
    import sqlalchemy as sa

    from reintegration.store.engine import open_store

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return open_store(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    """A migrated, empty store: SQLite in a temporary folder, and PostgreSQL when configured."""
    if request.param == "sqlite":
        store = _sqlite_store(tmp_path / "store.db")
    else:
        store = _postgres_store(request.getfixturevalue("postgres_url"))
    yield store
    store.dispose()


SECRET = b"k" * 32  # the key of the returnee HMAC in tests that ingest through `ingest`


@pytest.fixture
def ingest(engine, questionnaire):
    """Ingest a batch file with index v1: ``ingest(path, uploader, store=engine, **options)``.

    The store is the test's ``engine`` unless ``store`` names another (a SQLite store to
    compare with, say); ``options`` go to :func:`reintegration.ingest.ingest_file`. The
    uploader is a :class:`~reintegration.users.User` or a name (an admin for every country);
    ``countries`` limits a named uploader to those countries.
    """
    from reintegration.index import ReintegrationIndex
    from reintegration.ingest import ingest_file
    from reintegration.roles import Role
    from reintegration.users import User

    index = ReintegrationIndex().fit()

    def run(path, uploader="enumerator-1", *, store=None, countries=None, **options):
        if countries is not None:
            uploader = User(uploader, Role.ADMIN, frozenset(countries))
        return ingest_file(
            path,
            engine if store is None else store,
            scorer=index,
            questionnaire=questionnaire,
            secret=SECRET,
            uploader=uploader,
            **options,
        )

    return run


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A data folder of its own, and no REINTEGRATION_ setting from outside the test."""
    from reintegration.settings import get_settings

    for name in list(os.environ):
        if name.startswith("REINTEGRATION_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REINTEGRATION_HOME", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()
