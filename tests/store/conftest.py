"""Databases for the store's tests: a fresh SQLite file, and the PostgreSQL test database emptied."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from reintegration.store import create_store_engine


def drop_everything(url: str) -> None:
    """Drop every table of the database, alembic_version included."""
    engine = create_store_engine(url)
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        tables.drop_all(engine)
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database in a folder that does not exist yet."""
    return f"sqlite:///{tmp_path / 'home' / 'reintegration.db'}"


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    """The PostgreSQL test database, empty before and after the test."""
    drop_everything(postgres_url)
    yield postgres_url
    drop_everything(postgres_url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: the embedded SQLite file, then PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))
