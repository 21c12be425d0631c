"""Fixtures of the API tests: a store holding a small synthetic panel, a token per role, and
the app built on services whose model parts are stand-ins (the registry's own tests are the
models issue's; here they only need to answer like it).

Two stores: ``panel`` (session-wide, read-only: aggregates, row level, authorization) and
``fresh`` (per test: uploads).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.services import Services
from api.uploads import Uploads
from reintegration.analytics import Analytics
from reintegration.errors import ReintegrationError
from reintegration.index import ReintegrationIndex
from reintegration.policy import User, cli_caller, require
from reintegration.questionnaire import Questionnaire
from reintegration.roles import Capability
from reintegration.settings import Settings
from reintegration.store.engine import open_store
from reintegration.users import add_user

SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
RISK_MODEL = "reintegration-risk"
INDEX_MODEL = "rss-index"
PANEL_RETURNEES = 240


class FakeChampions:
    """The built-in index as champion; a risk champion when a test sets one."""

    def __init__(self) -> None:
        self.index_ = ReintegrationIndex().fit()
        self.risk_: tuple[Any, int] | None = None
        self.refreshed = 0

    def index(self) -> tuple[ReintegrationIndex, str, int | None]:
        return self.index_, self.index_.label_, None

    def risk(self) -> tuple[Any, int] | None:
        return self.risk_

    def refresh(self) -> None:
        self.refreshed += 1


class ModelError(ReintegrationError):
    """Stand-in for reintegration.errors.ModelError until the models issue lands."""


def _models(caller: User) -> None:
    """The check models/ makes on every lifecycle call (models.registry.require_models)."""
    require(caller, Capability.MODELS, every_country=True)


@dataclass
class FakeLifecycle:
    """An in-memory registry answering like models/ does, its caller checks included."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    promoted: list[tuple[str, int, str | None, bool, str]] = field(default_factory=list)
    refuse: str | None = None

    def list_models(self, *, caller: User) -> list[dict[str, Any]]:
        _models(caller)
        return [
            {"name": INDEX_MODEL, "short_name": "index", "versions": 1, "champion": 1},
            {"name": RISK_MODEL, "short_name": "risk", "versions": 0, "champion": None},
        ]

    def resolve_name(self, name: str) -> str:
        names = {"index": INDEX_MODEL, "risk": RISK_MODEL, INDEX_MODEL: INDEX_MODEL}
        names[RISK_MODEL] = RISK_MODEL
        if name not in names:
            raise _model_error(f"there is no model named {name!r}: use index or risk")
        return names[name]

    def list_versions(self, name: str, *, caller: User) -> list[dict[str, Any]]:
        _models(caller)
        return [
            {
                "version": number,
                "label": f"rss-v{number}-derived" if number > 1 else "rss-v1-provisional",
                "aliases": aliases,
                "created_at": 1795000000000 + number,
                "metrics": {"roc_auc": 0.8} if number > 1 else {},
                "run_id": f"r{number}",
                "description": None,
            }
            for number, aliases in ((3, ["challenger"]), (2, []), (1, ["champion"]))
        ]

    def model_card(self, name: str, version: int, *, caller: User) -> str:
        _models(caller)
        return f"# {name} version {version}\n"

    def run_details(self, run_id: str, *, caller: User) -> dict[str, Any]:
        _models(caller)
        return {"params": {}, "evaluation": None}

    def promote(
        self, name: str, version: int, *, reason: str | None, force: bool, caller: User
    ) -> dict[str, Any]:
        _models(caller)
        if self.refuse and not force:
            raise _model_error(self.refuse, "PromotionRefused")
        self.promoted.append((name, version, reason, force, caller.name))
        return {"name": name, "version": version, "promoted": True}

    def train(self, name: str, *, caller: User, params: dict[str, Any]) -> str:
        _models(caller)
        actor = caller.name
        job_id = f"job-{len(self.jobs) + 1}"
        self.jobs[job_id] = {
            "id": job_id,
            "kind": "train-index" if name == INDEX_MODEL else "train-risk",
            "status": "queued",
            "progress": 0.0,
            "actor": actor,
        }
        return job_id

    def get_job(self, job_id: str, *, caller: User) -> dict[str, Any] | None:
        _models(caller)
        return self.jobs.get(job_id)

    def list_jobs(self, *, caller: User) -> list[dict[str, Any]]:
        _models(caller)
        return list(self.jobs.values())


def _model_error(message: str, kind: str = "ModelError") -> Exception:
    import reintegration.errors as errors

    return getattr(errors, kind, ModelError)(message)


@dataclass
class Stack:
    """An app, its services and a token per kind of caller."""

    app: Any
    services: Services
    client: TestClient
    tokens: dict[str, str]
    after: list[str]

    def get(self, path: str, who: str | None, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.auth(who, kwargs.pop("headers", {})), **kwargs)

    def post(self, path: str, who: str | None, **kwargs: Any) -> Any:
        return self.client.post(path, headers=self.auth(who, kwargs.pop("headers", {})), **kwargs)

    def delete(self, path: str, who: str | None, **kwargs: Any) -> Any:
        return self.client.delete(path, headers=self.auth(who, kwargs.pop("headers", {})), **kwargs)

    def auth(self, who: str | None, headers: dict[str, str]) -> dict[str, str]:
        if who is None:
            return headers
        return {**headers, "Authorization": f"Bearer {self.tokens[who]}"}


# Callers: each role with every country, and country-limited ones.
CALLERS = {
    "enumerator": ("enumerator", None),
    "enumerator2": ("enumerator", None),
    "manager": ("manager", None),
    "analyst": ("analyst", None),
    "admin": ("admin", None),
    "analyst_sen": ("analyst", ["SEN"]),
    "enumerator_sen": ("enumerator", ["SEN"]),
    "manager_sen": ("manager", ["SEN"]),
}


def build_stack(
    home: Path, questionnaire: Questionnaire, *, min_cell: int = 5, database_url: str = ""
) -> Stack:
    settings = Settings(
        home=home,
        database_url=database_url or f"sqlite:///{home / 'store.db'}",
        mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}",
        secret_key=SecretStr(SECRET),
        min_cell=min_cell,
        max_upload_mb=1,
    )
    engine = open_store(settings.database_url)
    champions = FakeChampions()
    after: list[str] = []
    services = Services(
        settings=settings,
        engine=engine,
        questionnaire=questionnaire,
        analytics=Analytics(engine, min_cell=min_cell),
        champions=champions,
        uploads=Uploads(
            engine,
            questionnaire,
            champions,
            secret=settings.secret_key_bytes,
            after_batch=lambda _engine, batch_id, _champions: after.append(batch_id),
        ),
        lifecycle=FakeLifecycle(),
        risk_model_name=RISK_MODEL,
    )
    tokens = {
        who: add_user(engine, who, role, countries, caller=cli_caller("tests"))
        for who, (role, countries) in CALLERS.items()
    }
    app = create_app(services, dashboard=False)
    client = TestClient(app)
    return Stack(app, services, client, tokens, after)


def ingest_panel(stack: Stack, path: Path, uploader: str = "admin") -> Any:
    """Store a file directly (not through the API), as the CLI would."""
    from reintegration.ingest import ingest_file

    services = stack.services
    return ingest_file(
        path,
        services.engine,
        scorer=ReintegrationIndex().fit(),
        questionnaire=services.questionnaire,
        secret=services.settings.secret_key_bytes(),
        uploader=uploader,
    )


@pytest.fixture(scope="session")
def panel_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reintegration.synth import generate_panel, write_panel

    frame, _ = generate_panel(PANEL_RETURNEES, 3, seed=7)
    path = tmp_path_factory.mktemp("panel") / "panel.csv"
    write_panel(frame, path, "csv")
    return path


@pytest.fixture(scope="session")
def panel(
    tmp_path_factory: pytest.TempPathFactory, questionnaire: Questionnaire, panel_file: Path
) -> Iterator[Stack]:
    """The app on a store holding the synthetic panel (read-only: do not upload to it)."""
    stack = build_stack(tmp_path_factory.mktemp("panel-home"), questionnaire)
    ingest_panel(stack, panel_file)
    with stack.client:
        yield stack
    stack.services.close()


@pytest.fixture
def fresh(tmp_path: Path, questionnaire: Questionnaire) -> Iterator[Stack]:
    """The app on an empty store of its own (uploads welcome)."""
    stack = build_stack(tmp_path / "home", questionnaire)
    with stack.client:
        yield stack
    stack.services.close()


@pytest.fixture
def fresh_pg(tmp_path: Path, questionnaire: Questionnaire, postgres_url: str) -> Iterator[Stack]:
    """The app on the PostgreSQL test database, emptied first."""
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    stack = build_stack(tmp_path / "home", questionnaire, database_url=postgres_url)
    with stack.client:
        yield stack
    stack.services.close()
