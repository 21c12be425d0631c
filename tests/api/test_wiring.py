"""The real wiring of ``build_services``: the registry's champion scores uploads, the models'
after-batch hook runs, the model routes read the MLflow registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.services import build_services
from reintegration.policy import CLI
from reintegration.settings import Settings
from reintegration.store.schema import drift, score
from reintegration.users import add_user
from tests.api.conftest import SECRET
from tests.api.test_batches import upload

pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:sqlalchemy.exc.SADeprecationWarning"
)


class Real:
    def __init__(self, home: Path) -> None:
        settings = Settings(
            home=home, database_url="", mlflow_tracking_uri="", secret_key=SecretStr(SECRET)
        )
        self.services = build_services(settings)
        self.app = create_app(self.services, dashboard=False)
        self.client = TestClient(self.app)
        self.tokens = {"analyst": add_user(self.services.engine, "analyst", "analyst", caller=CLI)}

    def auth(self, who, headers):
        return {**headers, "Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path, who, **kwargs):
        return self.client.get(path, headers=self.auth(who, {}), **kwargs)

    def post(self, path, who, **kwargs):
        return self.client.post(path, headers=self.auth(who, kwargs.pop("headers", {})), **kwargs)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Real]:
    stack = Real(tmp_path_factory.mktemp("real") / "home")
    with stack.client:
        yield stack
    stack.services.close()


def test_the_registry_holds_the_built_in_index_as_champion(real):
    models = {m["name"]: m for m in real.get("/api/v1/models", "analyst").json()}
    versions = real.get("/api/v1/models/index/versions", "analyst").json()

    assert models["rss-index"]["champion"] == 1
    assert models["reintegration-risk"]["champion"] is None
    assert versions[0]["label"] == "rss-v1-provisional" and "champion" in versions[0]["aliases"]
    assert real.get("/api/v1/index-versions", "analyst").json()["champion"] == "rss-v1-provisional"


def test_uploads_are_scored_by_the_champion_and_followed_by_the_hook(real, tmp_path):
    from reintegration.synth import generate_panel, write_panel

    frame, _ = generate_panel(60, 2, seed=5)
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    cut = sorted(frame["interview_date"])[len(frame) // 2]
    rounds = (frame["interview_date"] <= cut).to_numpy()
    write_panel(frame[rounds], first)
    write_panel(frame[~rounds], second)

    one = upload(real, "analyst", first, wait=60).json()
    two = upload(real, "analyst", second, wait=60).json()

    assert one["accepted"] + two["accepted"] == len(frame)
    with real.services.engine.connect() as conn:
        versions = set(conn.execute(sa.select(score.c.model_version).distinct()).scalars())
        drifted = conn.execute(
            sa.select(sa.func.count()).select_from(drift).where(drift.c.batch_id == two["batch_id"])
        ).scalar_one()
    assert versions == {1}  # the registered champion's version, not the built-in fallback
    assert drifted > 0  # the after-batch hook compared the second batch with the first


def test_the_worklist_says_when_no_risk_model_is_champion(real):
    body = real.get("/api/v1/worklist", "analyst").json()
    assert body["model_version"] is None
    assert body["note"] == (
        "ranked by the baseline rule (1 − first-survey composite): no promoted risk model"
    )


def test_an_unknown_model_is_404_from_the_registry(real):
    response = real.get("/api/v1/models/forest/versions", "analyst")

    assert response.status_code == 404
    assert response.json()["detail"].startswith("there is no model called 'forest'")
