"""Every page in French and in Arabic, as each role, over a store with data: its layout and the
callbacks the browser fires when it opens, then the upload report; none may show English text
(names and codes excepted). A failure lists the page, the role, the language and the strings.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from reintegration.roles import Role
from tests.conftest import canonical_row, write_csv
from tests.dashboards.conftest import (
    Client,
    Dashboard,
    add_risk_rows,
    build_services,
    components,
    make_users,
    registry_with_models,
)
from tests.dashboards.i18n_text import english_in, output_texts, visible_texts

LANGUAGES = ("fr", "ar")
ROLES = tuple(role.value for role in Role)
CALLBACK = "/dashboard/_dash-update-component"


@pytest.fixture(scope="module")
def full_dashboard(tmp_path_factory: pytest.TempPathFactory, panel_file) -> Iterator[Dashboard]:
    """A store with data, risk rows and model versions, so every page has something to say."""
    from dashboards.app import create_dash_app

    services = build_services(tmp_path_factory.mktemp("i18n-home"), panel_file[0])
    add_risk_rows(services.engine)
    services.champions.risk_version = 1
    services.lifecycle = registry_with_models(services.engine)
    tokens = make_users(services)
    yield Dashboard(services, create_dash_app(services), tokens, panel_file[1])
    services.close()


def _in_language(dashboard: Dashboard, role: str | None, language: str) -> Client:
    client = Client(dashboard)
    if role is not None:
        client.login(role)
    answer = client.http.post("/dashboard/login", data={"reintegration_language": language})
    assert answer.status_code == 303
    return client


def _props_of(layout: Any) -> dict[str, dict[str, Any]]:
    return {
        json.dumps(c["props"]["id"]) if isinstance(c["props"]["id"], dict) else c["props"]["id"]: c[
            "props"
        ]
        for c in components(layout)
    }


def _ids(spec: str) -> list[tuple[str, str]]:
    parts = spec[2:-2].split("...") if spec.startswith("..") else [spec]
    return [tuple(p.split("@")[0].rsplit(".", 1)) for p in parts]  # type: ignore[misc]


def _opening_callbacks(client: Client, props: dict[str, dict[str, Any]]) -> Iterator[Any]:
    """Fire, as the browser does when a page opens, every callback whose inputs are all on it,
    with the layout's values; then once more with the values those answers set."""
    dependencies = [
        d
        for d in client.dependencies()
        if not d.get("clientside_function")
        and all(i["id"] in props for i in d["inputs"])
        and all(cid in props for cid, _ in _ids(d["output"]))
        and not d["output"].startswith("_pages")
    ]
    for _ in range(2):
        for dependency in dependencies:
            outputs = [{"id": cid, "property": prop} for cid, prop in _ids(dependency["output"])]
            body = {
                "output": dependency["output"],
                "outputs": outputs if len(outputs) > 1 else outputs[0],
                "inputs": [
                    {**i, "value": props[i["id"]].get(i["property"])} for i in dependency["inputs"]
                ],
                "state": [
                    {**s, "value": props.get(s["id"], {}).get(s["property"])}
                    for s in dependency["state"]
                ],
                "changedPropIds": [],
            }
            answer = client.http.post(
                CALLBACK, data=json.dumps(body), content_type="application/json"
            )
            if answer.status_code != 200:
                continue
            payload = answer.get_json()
            for cid, changes in (payload.get("response") or {}).items():
                props.setdefault(cid, {}).update(changes)
            yield payload


def _page_texts(client: Client, path: str) -> list[str]:
    answer = client.page(path)
    assert answer.status_code == 200, f"{path}: {answer.status_code}"
    layout = answer.get_json()
    texts = visible_texts(layout)
    props = _props_of(layout)
    for payload in _opening_callbacks(client, props):
        texts += output_texts(payload, props)
    return texts


def _pages_of(client: Client) -> list[str]:
    shell = client.http.get("/dashboard/_dash-layout").get_json()
    return [
        c["props"]["href"].removeprefix("/dashboard")
        for c in components(shell)
        if str(c["props"]["id"]).startswith("nav-")
    ]


# Descriptions the test registry gives its model versions: text people typed, not the interface.
TYPED = ("first", "built-in")
# A version's description as its author typed it (the stand-in registry's version 2): shown
# whole as written, in any language. Matched whole, so the "challenger" alias stays checked.
DESCRIPTIONS = ("challenger",)


def _english(dashboard: Dashboard, client: Client, language: str, texts: list[str]) -> list[str]:
    texts = [t for t in texts if t not in DESCRIPTIONS]
    return english_in(texts, language, names=[*dashboard.tokens, *TYPED])


@pytest.mark.slow
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("role", ROLES)
def test_every_page_speaks_the_language_as_each_role(full_dashboard, role, language):
    client = _in_language(full_dashboard, role, language)
    found: dict[str, list[str]] = {}

    shell = visible_texts(client.http.get("/dashboard/_dash-layout").get_json())
    if english := _english(full_dashboard, client, language, shell):
        found["(the frame)"] = english
    pages = _pages_of(client)
    assert pages, f"{role} sees no page"
    for path in [*pages, "/no-such-page"]:
        if english := _english(full_dashboard, client, language, _page_texts(client, path)):
            found[path] = english

    report = "\n".join(
        f"  {path} ({role}, {language}):\n" + "\n".join(f"    {s}" for s in strings)
        for path, strings in found.items()
    )
    assert not found, f"English text on {len(found)} page(s):\n{report}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_login_page_speaks_the_language(full_dashboard, language):
    client = _in_language(full_dashboard, None, language)

    texts = []
    for search in ("", "?error=bad-token", "?error=form-expired"):
        answer = client.page("/login", search)
        assert answer.status_code == 200
        texts += visible_texts(answer.get_json())

    english = _english(full_dashboard, client, language, texts)
    assert not english, f"English on the login page ({language}):\n" + "\n".join(english)


@pytest.mark.slow
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_upload_report_speaks_the_language(full_dashboard, questionnaire, tmp_path, language):
    client = _in_language(full_dashboard, "enumerator", language)
    q = questionnaire
    path = write_csv(
        tmp_path / "field.csv",
        [
            canonical_row(q, 9001),
            canonical_row(q, 9002, sex="robot"),
            canonical_row(q, 9003, interview_date="2025-13-01"),
            canonical_row(q, 9004, country="XYZ"),
            canonical_row(q, 9005, age_at_return="400"),
            canonical_row(q, 9006, return_date="2025-07-01"),
            canonical_row(q, 9007, **{q.item_ids[0]: "maybe"}),
            canonical_row(q, 9008, returnee_id=""),
        ],
    )
    contents = "data:text/csv;base64," + base64.b64encode(path.read_bytes()).decode()
    sent = client.callback(
        "upload-batch.data", {"upload-file.contents": contents}, {"upload-file.filename": "f.csv"}
    )
    assert sent.status_code == 200, sent.data
    texts = output_texts(sent.get_json())
    batch_id = sent.get_json()["response"]["upload-batch"]["data"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        polled = client.callback(
            "upload-report.children",
            {"upload-poll.n_intervals": 1},
            {"upload-batch.data": batch_id},
        ).get_json()
        if polled["response"]["upload-poll"]["disabled"]:
            break
        time.sleep(0.2)
    texts += output_texts(polled)

    english = _english(full_dashboard, client, language, texts)
    assert not english, f"English in the upload report ({language}):\n" + "\n".join(english)
