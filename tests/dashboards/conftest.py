"""The dashboard over a real store: a synthetic panel ingested once per session, services as the
API builds them (with the built-in index as champion and no model registry), users of every
role, and a Flask client that logs in and calls callbacks the way the browser does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from reintegration.errors import ModelError
from reintegration.index import ReintegrationIndex
from reintegration.ingest import ingest_file
from reintegration.policy import CLI, User, require
from reintegration.questionnaire import load_questionnaire
from reintegration.roles import Capability, Role
from reintegration.settings import Settings
from reintegration.store.engine import open_store
from reintegration.store.schema import returnee, risk, submission
from reintegration.synth import generate_panel, write_panel
from reintegration.users import add_user

RETURNEES = 1500
LABEL = "rss-v1-provisional"
SCOPED_COUNTRY = "SEN"
RISK_MODEL = "reintegration-risk"


class FixedChampions:
    """The built-in index as champion; a risk champion only when a test says so."""

    def __init__(self) -> None:
        self._index = ReintegrationIndex().fit()
        self.risk_version: int | None = None

    def index(self) -> tuple[ReintegrationIndex, str, int | None]:
        return self._index, LABEL, None

    def risk(self) -> tuple[Any, int] | None:
        return None if self.risk_version is None else (object(), self.risk_version)

    def refresh(self) -> None:
        return None


def _models(caller: User) -> None:
    """The check models/ makes on every lifecycle call (models.registry.require_models)."""
    require(caller, Capability.MODELS, every_country=True)


@dataclass
class NoRegistry:
    """The model lifecycle of a server whose registry has nothing yet (or what a test puts in),
    with the caller checks of models/."""

    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    cards: dict[tuple[str, int], str] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def list_models(self, *, caller: User) -> list[dict[str, Any]]:
        _models(caller)
        return [{"name": name} for name in self.versions]

    def resolve_name(self, name: str) -> str:
        return name

    def list_versions(self, name: str, *, caller: User) -> list[dict[str, Any]]:
        _models(caller)
        return self.versions.get(name, [])

    def model_card(self, name: str, version: int, *, caller: User) -> str:
        _models(caller)
        return self.cards[(name, version)]

    def run_details(self, run_id: str, *, caller: User) -> dict[str, Any]:
        _models(caller)
        return self.runs.get(run_id, {"params": {}, "evaluation": None})

    def list_jobs(self, *, caller: User) -> list[dict[str, Any]]:
        _models(caller)
        return []

    def get_job(self, job_id: str, *, caller: User) -> dict[str, Any] | None:
        _models(caller)
        return None

    def train(self, name: str, *, caller: User, params: dict[str, Any]) -> str:
        _models(caller)
        raise ModelError("this stand-in registry trains nothing")

    def preview(self, name: str, version: int, *, caller: User) -> dict[str, Any]:
        _models(caller)
        raise ModelError("this stand-in registry previews nothing")

    def promote(
        self, name: str, version: int, *, reason: str | None, force: bool, caller: User
    ) -> dict[str, Any]:
        _models(caller)
        raise ModelError("this stand-in registry promotes nothing")


def registry_with_models(engine: sa.Engine) -> NoRegistry:
    """A registry holding risk versions 1 (champion) and 2 (challenger) with their evaluations,
    and the built-in index as version 1 (champion), with drift rows against it."""
    from reintegration.store.schema import batch, drift

    index = ReintegrationIndex().fit()
    params = {
        f"weight/{d}/{i}": f"{w:.6f}"
        for d, items in index.item_weights_.items()
        for i, w in items.items()
    } | {f"dimension_weight/{d}": f"{w:.6f}" for d, w in index.dimension_weights_.items()}
    calibration = [
        {
            "bin_low": k / 10,
            "bin_high": (k + 1) / 10,
            "n": 40,
            "mean_predicted": k / 10 + 0.05,
            "observed": min(1.0, k / 10 + 0.08),
        }
        for k in range(10)
    ]
    subgroups = [
        {"group": "sex=female", "n": 300, "positives": 120, "sufficient": True, "roc_auc": 0.74},
        {"group": "sex=male", "n": 600, "positives": 200, "sufficient": True, "roc_auc": 0.79},
        {"group": "sex=other", "n": 3, "positives": 1, "sufficient": False, "roc_auc": None},
        {
            "group": "sex=female & return_type=forced",
            "n": 90,
            "positives": 50,
            "sufficient": True,
            "roc_auc": 0.7,
        },
    ]
    evaluation = {
        "model": {
            "n": 903,
            "positives": 321,
            "roc_auc": 0.78,
            "average_precision": 0.66,
            "brier": 0.18,
        },
        "baseline": {"n": 903, "positives": 321, "roc_auc": 0.74},
        "subgroups": subgroups,
        "calibration": calibration,
    }
    registry = NoRegistry(
        versions={
            RISK_MODEL: [
                {
                    "version": 2,
                    "label": None,
                    "aliases": ["challenger"],
                    "created_at": 1_790_000_000_000,
                    "metrics": {"roc_auc": 0.77},
                    "run_id": "risk-2",
                    "description": "challenger",
                },
                {
                    "version": 1,
                    "label": None,
                    "aliases": ["champion"],
                    "created_at": 1_780_000_000_000,
                    "metrics": {
                        "roc_auc": 0.78,
                        "average_precision": 0.66,
                        "brier": 0.18,
                        "baseline_roc_auc": 0.74,
                    },
                    "run_id": "risk-1",
                    "description": "first",
                },
            ],
            "rss-index": [
                {
                    "version": 1,
                    "label": LABEL,
                    "aliases": ["champion"],
                    "created_at": 1_770_000_000_000,
                    "metrics": {},
                    "run_id": "index-1",
                    "description": "built-in",
                },
            ],
        },
        cards={
            (RISK_MODEL, 1): "# Risk model v1\n\nHeld-out ROC AUC 0.78.",
            ("rss-index", 1): "# Index v1",
        },
        runs={
            "risk-1": {"params": {}, "evaluation": evaluation},
            "risk-2": {"params": {}, "evaluation": {**evaluation, "calibration": calibration[:3]}},
            "index-1": {"params": params, "evaluation": None},
        },
    )
    with engine.begin() as conn:
        batch_id = conn.execute(sa.select(batch.c.id).limit(1)).scalar_one()
        conn.execute(
            drift.insert(),
            [
                {
                    "batch_id": batch_id,
                    "model": "rss-index",
                    "model_version": 1,
                    "item": item,
                    "psi": 0.3 if n == 0 else 0.01 * n,
                    "n": 500,
                    "created_at": datetime.now(UTC),
                }
                for n, item in enumerate(load_questionnaire().item_ids)
            ],
        )
    return registry


def build_services(home: Path, panel: Path | None) -> Any:
    """Services over a new store in ``home``, with ``panel`` ingested."""
    from api.services import Services
    from api.uploads import Uploads
    from reintegration.analytics import Analytics

    url = f"sqlite:///{home / 'reintegration.db'}"
    settings = Settings(home=home, database_url=url, mlflow_tracking_uri="")
    engine = open_store(url)
    questionnaire = load_questionnaire()
    champions = FixedChampions()
    if panel is not None:
        ingest_file(
            panel,
            engine,
            scorer=champions.index()[0],
            questionnaire=questionnaire,
            secret=settings.secret_key_bytes(),
            uploader="enumerator",
        )
    return Services(
        settings=settings,
        engine=engine,
        questionnaire=questionnaire,
        analytics=Analytics(engine, min_cell=settings.min_cell),
        champions=champions,
        uploads=Uploads(engine, questionnaire, champions, secret=settings.secret_key_bytes),
        lifecycle=NoRegistry(),
    )


@dataclass
class Dashboard:
    """A store, its services, the Dash app over them and one token per user."""

    services: Any
    app: Any
    tokens: dict[str, str]
    truth: dict[str, Any]


def make_users(services: Any) -> dict[str, str]:
    tokens = {role.value: add_user(services.engine, role.value, role, caller=CLI) for role in Role}
    tokens["scoped-manager"] = add_user(
        services.engine, "scoped-manager", Role.MANAGER, [SCOPED_COUNTRY], caller=CLI
    )
    tokens["scoped-analyst"] = add_user(
        services.engine, "scoped-analyst", Role.ANALYST, [SCOPED_COUNTRY], caller=CLI
    )
    return tokens


@pytest.fixture(scope="session")
def panel_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("dashboard-panel")
    frame, truth = generate_panel(RETURNEES, 3, seed=11)
    write_panel(frame, folder / "panel.csv")
    return folder / "panel.csv", truth


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory, panel_file) -> Iterator[Dashboard]:
    """One store for the session's read-only tests (do not change its data)."""
    from dashboards.app import create_dash_app

    services = build_services(tmp_path_factory.mktemp("dashboard-home"), panel_file[0])
    tokens = make_users(services)
    yield Dashboard(services, create_dash_app(services), tokens, panel_file[1])
    services.close()


@pytest.fixture
def own_dashboard(tmp_path: Path, panel_file) -> Iterator[Dashboard]:
    """A store of its own, for tests that write (uploads, users, risk rows)."""
    from dashboards.app import create_dash_app

    services = build_services(tmp_path / "home", panel_file[0])
    tokens = make_users(services)
    yield Dashboard(services, create_dash_app(services), tokens, panel_file[1])
    services.close()


# -- in a real browser ----------------------------------------------------------------------------

BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT_MS = 20_000


# Per module: Playwright's sync API runs one instance at a time, and each browser test module
# starts its own.
@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=BROWSER_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def whole_server(
    tmp_path_factory: pytest.TempPathFactory, panel_file
) -> Iterator[tuple[str, Dashboard]]:
    """The application as ``reintegration serve`` builds it (API, /docs and the dashboards
    mounted), served by uvicorn in a thread on a free port of 127.0.0.1, with risk rows and
    model versions so every page has something to draw: its base URL and its dashboard."""
    import socket
    import threading
    import time

    import uvicorn

    from api.app import create_app

    services = build_services(tmp_path_factory.mktemp("whole") / "home", panel_file[0])
    add_risk_rows(services.engine)
    services.champions.risk_version = 1
    services.lifecycle = registry_with_models(services.engine)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(
        create_app(services), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not running.started:
        assert time.monotonic() < deadline, "the server did not start within 60 s"
        assert thread.is_alive(), "the server stopped at start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", Dashboard(services, None, make_users(services), panel_file[1])
    running.should_exit = True
    thread.join(30)
    services.close()


def _outputs(spec: str) -> list[str]:
    """The ``id.prop`` outputs of a callback as ``_dash-dependencies`` spells them."""
    parts = spec[2:-2].split("...") if spec.startswith("..") else [spec]
    return [part.split("@")[0] for part in parts]


class Client:
    """A browser stand-in: logs in through the login form, then calls pages and callbacks."""

    def __init__(self, dashboard: Dashboard) -> None:
        from werkzeug.test import Client as WerkzeugClient

        from dashboards.standalone import wsgi_app

        self.dashboard = dashboard
        self.http = WerkzeugClient(wsgi_app(dashboard.app))
        self._dependencies: list[dict[str, Any]] | None = None

    def login(self, who: str) -> Any:
        return self.post_login(self.dashboard.tokens[who], "/dashboard/overview")

    def post_login(self, token: str, next: str = "") -> Any:  # noqa: A002
        """Post the login form as the browser does: with the CSRF token the page set."""
        return self.http.post(
            "/dashboard/login",
            data={"token": token, "next": next, "csrf": self.login_csrf()},
        )

    def login_csrf(self) -> str:
        """The login form's CSRF token: the cookie the login page sets (and its form repeats)."""
        from dashboards.auth import LOGIN_CSRF_COOKIE

        self.http.get("/dashboard/login")
        cookie = self.http.get_cookie(LOGIN_CSRF_COOKIE, path="/dashboard")
        assert cookie is not None, "the login page set no CSRF cookie"
        return cookie.value

    def logout_csrf(self) -> str:
        """The CSRF token of the logout form in the page's frame."""
        layout = self.http.get("/dashboard/_dash-layout").get_json()
        found = [c for c in components(layout) if c["props"]["id"] == "shell-logout-csrf"]
        assert found, "the page has no logout form"
        return str(found[0]["props"]["value"])

    def logout(self) -> Any:
        """Press the "Log out" button."""
        return self.http.post("/dashboard/logout", data={"csrf": self.logout_csrf()})

    def dependencies(self) -> list[dict[str, Any]]:
        if self._dependencies is None:
            self._dependencies = self.http.get("/dashboard/_dash-dependencies").get_json()
        return self._dependencies

    def callback(
        self,
        output: str,
        inputs: dict[str, Any],
        states: dict[str, Any] | None = None,
        *,
        changed: list[str] | None = None,
    ) -> Any:
        """Call the callback whose outputs include ``output`` (``id.prop``), with values of
        its inputs and states by ``id.prop`` (missing ones are None)."""
        states = states or {}
        given = {*inputs, *states}
        candidates = [
            d
            for d in self.dependencies()
            if not d.get("clientside_function")
            and output in _outputs(d["output"])
            and given <= {f"{i['id']}.{i['property']}" for i in d["inputs"] + d["state"]}
        ]
        assert candidates, f"no callback outputs {output} with inputs {sorted(given)}"
        dependency = candidates[0]

        def values(items: list[dict[str, Any]], given: dict[str, Any]) -> list[dict[str, Any]]:
            return [
                {
                    "id": i["id"],
                    "property": i["property"],
                    "value": given.get(f"{i['id']}.{i['property']}"),
                }
                for i in items
            ]

        outputs = [
            {"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1]}
            for part in _outputs(dependency["output"])
        ]
        body = {
            "output": dependency["output"],
            "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": values(dependency["inputs"], inputs),
            "state": values(dependency["state"], states),
            "changedPropIds": changed or [next(iter(inputs), "")],
        }
        return self.http.post(
            "/dashboard/_dash-update-component",
            data=json.dumps(body),
            content_type="application/json",
        )

    def page(self, path: str, search: str = "") -> Any:
        """The page router's answer for ``path``: the layout the browser would render."""
        return self.callback(
            "_pages_content.children",
            {"_pages_location.pathname": f"/dashboard{path}", "_pages_location.search": search},
        )


def response_text(response: Any) -> str:
    """Every string in a callback's JSON answer, joined: what the page would read."""
    strings: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            strings.append(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(response.get_json())
    return " ".join(strings)


@pytest.fixture
def client(dashboard: Dashboard) -> Client:
    return Client(dashboard)


def array(value: Any) -> list[Any]:
    """A figure's array as the browser gets it: a list, or Plotly's typed array
    (``{"dtype", "bdata"}``, base64 of the raw values)."""
    import base64

    import numpy as np

    if isinstance(value, dict) and "bdata" in value:
        data = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        if "shape" in value:
            data = data.reshape([int(n) for n in str(value["shape"]).split(",")])
        return data.tolist()
    return list(value)


def add_risk_rows(engine: sa.Engine, version: int = 1) -> pd.DataFrame:
    """Risk rows for every returnee's first survey: probability rising with the row number."""
    with engine.begin() as conn:
        firsts = conn.execute(
            sa.select(submission.c.id, submission.c.returnee_key, returnee.c.country)
            .join(returnee, returnee.c.key == submission.c.returnee_key)
            .where(submission.c.survey_round == 1, submission.c.current.is_(True))
            .order_by(submission.c.id)
        ).all()
        rows = [
            {
                "submission_pk": pk,
                "model": RISK_MODEL,
                "model_version": version,
                "returnee_key": key,
                "probability": (n + 1) / (len(firsts) + 1),
                "band": "high" if n > 0.8 * len(firsts) else "low",
                "weakest_dimension": "economic",
                "reasons": ["=cmd|' /C calc'!A0"] if n == len(firsts) - 1 else [],
                "created_at": datetime.now(UTC),
            }
            for n, (pk, key, _) in enumerate(firsts)
        ]
        conn.execute(risk.insert(), rows)
    return pd.DataFrame(
        [
            (r["returnee_key"], c, r["probability"])
            for r, (_, _, c) in zip(rows, firsts, strict=True)
        ],
        columns=["key", "country", "probability"],
    )


def components(node: Any) -> Iterator[dict[str, Any]]:
    """Every component with an ``id`` in a layout or callback answer (JSON), depth first."""
    if isinstance(node, dict):
        if isinstance(node.get("props"), dict) and "id" in node["props"]:
            yield node
        for value in node.values():
            yield from components(value)
    elif isinstance(node, list):
        for value in node:
            yield from components(value)


def response_text_of(node: Any) -> str:
    """:func:`response_text` of one output's JSON rather than a whole response."""

    class Wrapped:
        def get_json(self) -> Any:
            return node

    return response_text(Wrapped())
