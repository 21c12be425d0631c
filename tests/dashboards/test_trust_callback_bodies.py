"""Dashboard callbacks through the whole server: a body is read only up to the cap of whoever
sends it (issue 11, finding 5: three unauthenticated 60 MB callbacks took 1.35 GB).

Without a session a callback may carry 64 kB (the page router still answers the login page);
a session that may not upload, 1 MB; an uploader, the upload limit as the browser encodes it.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from dashboards.auth import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from reintegration.store.schema import batch
from tests.api.test_trust_bodies import BIG, CHUNK, PROBLEM, call, chunks
from tests.conftest import canonical_row, write_csv
from tests.dashboards.conftest import Client, Dashboard

CALLBACK = "/dashboard/_dash-update-component"


class _Answer:
    def __init__(self, response: Any) -> None:
        self.response = response
        self.status_code = response.status_code

    def get_json(self) -> Any:
        return self.response.json()


class _ThroughServer:
    """Stands for the test client's Flask client: its requests go through the whole server."""

    def __init__(self, http: TestClient) -> None:
        self.http = http

    def post(self, path: str, data: str, content_type: str) -> _Answer:
        return _Answer(self.http.post(path, content=data, headers={"content-type": content_type}))


@pytest.fixture
def server(own_dashboard: Dashboard) -> Iterator[TestClient]:
    """The API and the dashboards over ``own_dashboard``'s store, as ``reintegration serve``."""
    with TestClient(create_app(own_dashboard.services)) as http:
        yield http


def _session(dashboard: Dashboard, who: str) -> tuple[Client, str]:
    client = Client(dashboard)
    client.login(who)
    client.dependencies()
    cookie = client.http.get_cookie(SESSION_COOKIE, path="/dashboard")
    assert cookie is not None
    return client, cookie.value


def outputs(response: _Answer) -> dict[str, Any]:
    assert response.status_code == 200, response.response.text
    return {
        f"{element}.{prop}": value
        for element, props in response.get_json()["response"].items()
        for prop, value in props.items()
    }


def _batches(dashboard: Dashboard) -> int:
    with dashboard.services.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(batch)).scalar_one())


def test_a_callback_without_a_session_is_refused_before_its_body(own_dashboard, server):
    answer = call(
        server.app,
        "POST",
        CALLBACK,
        headers={"content-type": "application/json", "content-length": str(BIG)},
        body=chunks(BIG),
    )

    assert answer.status == 401
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["detail"] == (
        "your session has ended: log in again (a dashboard request larger than 64 kB needs a "
        "session)."
    )
    assert answer.pulled == 0


def test_a_streamed_callback_without_a_session_is_cut_at_64_kB(own_dashboard, server):
    answer = call(
        server.app,
        "POST",
        CALLBACK,
        headers={"content-type": "application/json", "transfer-encoding": "chunked"},
        body=chunks(BIG, 8 << 10),
    )

    # Flask reads no body without a length (the gate then refuses it) or the guard cuts it.
    assert answer.status == 401
    assert answer.pulled_bytes <= (64 << 10) + (8 << 10)


def test_the_page_router_still_answers_the_login_page_without_a_session(own_dashboard, server):
    client = Client(own_dashboard)
    client.dependencies()
    client.http = _ThroughServer(server)  # type: ignore[assignment]

    response = client.page("/login")

    assert response.status_code == 200
    assert "token" in json.dumps(response.get_json()).lower()


def test_the_login_form_still_opens_a_session_through_the_server(own_dashboard, server):
    server.get("/dashboard/login")
    csrf = server.cookies.get(LOGIN_CSRF_COOKIE)
    assert csrf

    response = server.post(
        "/dashboard/login",
        data={"token": own_dashboard.tokens["analyst"], "next": "", "csrf": csrf},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert SESSION_COOKIE in response.headers.get("set-cookie", "")


def test_a_session_that_may_not_upload_sends_callbacks_of_at_most_1_mb(own_dashboard, server):
    _, cookie = _session(own_dashboard, "manager")
    headers = {"content-type": "application/json", "cookie": f"{SESSION_COOKIE}={cookie}"}

    declared = call(
        server.app,
        "POST",
        CALLBACK,
        headers={**headers, "content-length": str(2 << 20)},
        body=chunks(2 << 20),
    )
    streamed = call(
        server.app,
        "POST",
        CALLBACK,
        headers={**headers, "transfer-encoding": "chunked"},
        body=chunks(BIG),
    )

    assert declared.status == 413 and declared.headers["content-type"] == PROBLEM
    assert declared.json()["detail"] == (
        "the request is larger than 1 MB, the limit of a dashboard request."
    )
    assert declared.pulled == 0
    assert streamed.pulled_bytes <= (1 << 20) + CHUNK


def test_an_uploaders_callback_over_the_upload_limit_is_413_unread(own_dashboard, server):
    _, cookie = _session(own_dashboard, "enumerator")
    limit = (own_dashboard.services.settings.max_upload_mb << 20) * 4 // 3 + (1 << 20)
    before = _batches(own_dashboard)

    answer = call(
        server.app,
        "POST",
        CALLBACK,
        headers={
            "content-type": "application/json",
            "cookie": f"{SESSION_COOKIE}={cookie}",
            "content-length": str(limit + 1),
        },
        body=chunks(limit + 1),
    )

    assert answer.status == 413 and answer.headers["content-type"] == PROBLEM
    assert answer.json()["detail"].startswith(
        f"the request is larger than {limit:,} bytes, the dashboard's limit (a file of at most "
        f"{own_dashboard.services.settings.max_upload_mb} MB, as the browser encodes it)"
    )
    assert answer.pulled == 0
    assert _batches(own_dashboard) == before


def test_an_uploader_still_uploads_a_file_over_1_mb_through_the_server(
    own_dashboard, server, questionnaire, tmp_path
):
    client, cookie = _session(own_dashboard, "enumerator")
    server.cookies.set(SESSION_COOKIE, cookie, path="/dashboard")
    client.http = _ThroughServer(server)  # type: ignore[assignment]
    rows = [canonical_row(questionnaire, 5000 + k) for k in range(4000)]
    path = write_csv(tmp_path / "big.csv", rows)
    assert path.stat().st_size > 1 << 20
    contents = "data:text/csv;base64," + base64.b64encode(path.read_bytes()).decode()

    sent = outputs(
        client.callback(
            "upload-batch.data",
            {"upload-file.contents": contents},
            {"upload-file.filename": "big.csv"},
        )
    )

    batch_id = sent["upload-batch.data"]
    assert batch_id, sent
    deadline = time.monotonic() + 120
    while own_dashboard.services.uploads.wait(batch_id, 1) is None:
        assert time.monotonic() < deadline, "the upload did not finish"
    with own_dashboard.services.engine.connect() as conn:
        accepted = conn.execute(sa.select(batch.c.accepted).where(batch.c.id == batch_id))
        assert accepted.scalar_one() == 4000
