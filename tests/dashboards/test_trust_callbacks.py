"""Every dashboard callback × every role × a scoped (SEN) and an unscoped login, against the role
matrix (``reintegration.roles.GRANTS``) and the every-country rule of ``api/access.py`` — the
table the API's route walker uses — fired through ``POST /dashboard/_dash-update-component``
with crafted state, mutating callbacks included (add a user, revoke one, upload a file).

A refused call answers nothing (204) and leaves the store as it was: users, audit entries,
batches and interviews are counted before and after. A scoped login that is let in sees only
its country's figures.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import dash
import pytest
import sqlalchemy as sa

from api import access
from dashboards.access import (
    DASH_ROUTER,
    GUARD,
    MissingGuardError,
    capabilities,
    check_callbacks,
    guard_of,
)
from reintegration.policy import CLI
from reintegration.roles import GRANTS, Capability, Role
from reintegration.store.schema import app_user, audit, batch, submission
from reintegration.users import add_user
from tests.conftest import canonical_row, write_csv
from tests.dashboards.conftest import (
    SCOPED_COUNTRY,
    Client,
    add_risk_rows,
    registry_with_models,
    response_text,
)

# The every-country rule of api/access.py, by capability (MODELS and ADMIN need an unscoped
# token there; the dashboard must agree).
EVERY_COUNTRY = {
    rule.capability: rule.every_country
    for rule in access.RULES.values()
    if rule.capability is not None
}
OTHER_COUNTRIES = ("GIN", "MLI", "NGA", "GMB", "CIV")
PAGES = ("overview", "breakdowns", "trajectories", "assistance", "worklist", "models", "quality")
PAGES += ("upload", "admin", "returnee")


def expected(page_capabilities: tuple[Capability, ...], role: Role, scoped: bool) -> bool:
    """Whether a login of ``role`` (limited to SEN when ``scoped``) may run a callback of a page
    needing any of ``page_capabilities``: from GRANTS and api/access.py alone."""
    return any(role in GRANTS[c] and not (scoped and EVERY_COUNTRY[c]) for c in page_capabilities)


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for name, table in (
                ("users", app_user),
                ("audit", audit),
                ("batches", batch),
                ("submissions", submission),
            )
        }


def _page_of(outputs: str) -> str:
    first = outputs.strip(".").split("...")[0]
    return first.split("-", 1)[0]


def _crafted(prop: dict[str, Any], *, upload: str, victim: str, run: int) -> Any:
    """A value for an input or state: what an attacker would send to make the call do most."""
    cid, name = prop["id"], prop["property"]
    if name in ("n_clicks", "submit_n_clicks", "n_intervals"):
        return 1
    if cid == "admin-name-input":
        return f"escalated{run}"
    if cid == "admin-role-input":
        return "admin"
    if cid == "admin-countries-input":
        return ""  # empty: every country
    if cid == "admin-revoke-input":
        return victim
    if (cid, name) == ("upload-file", "contents"):
        return upload
    if (cid, name) == ("upload-file", "filename"):
        return "walk.csv"
    if cid == "upload-consent-elsewhere":
        return []
    if cid == "models-model-control":
        return "risk"
    if cid == "models-version-control":
        return 1
    if cid.endswith("-country-filter") and name == "value":
        return list(OTHER_COUNTRIES)  # a scoped login asking for other countries' rows
    if name == "selected_rows":
        return []
    return None


def _body(outputs: str, entry: dict[str, Any], **craft: Any) -> dict[str, Any]:
    parts = outputs[2:-2].split("...") if outputs.startswith("..") else [outputs]
    out = [
        {"id": p.split("@")[0].rsplit(".", 1)[0], "property": p.split("@")[0].rsplit(".", 1)[1]}
        for p in parts
    ]
    inputs = [{**i, "value": _crafted(i, **craft)} for i in entry["inputs"]]
    return {
        "output": outputs,
        "outputs": out if len(out) > 1 else out[0],
        "inputs": inputs,
        "state": [{**s, "value": _crafted(s, **craft)} for s in entry["state"]],
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in entry["inputs"][:1]],
    }


@pytest.fixture
def walked(own_dashboard, questionnaire, tmp_path):
    """The writable dashboard with a registry, and a scoped (SEN) and unscoped user per role."""
    services = own_dashboard.services
    services.lifecycle = registry_with_models(services.engine)
    add_risk_rows(services.engine)
    services.champions.risk_version = 1
    tokens = dict(own_dashboard.tokens)
    for role in Role:
        tokens[f"{role.value}@{SCOPED_COUNTRY}"] = add_user(
            services.engine, f"{role.value}.sen", role, [SCOPED_COUNTRY], caller=CLI
        )
    own_dashboard.tokens = tokens
    row = canonical_row(questionnaire, 9001, country=SCOPED_COUNTRY)
    path = write_csv(tmp_path / "walk.csv", [row])
    upload = "data:text/csv;base64," + base64.b64encode(path.read_bytes()).decode()
    return own_dashboard, upload


def test_every_callback_answers_every_role_and_scope_as_the_role_matrix_says(walked):
    dashboard, upload = walked
    app, engine = dashboard.app, dashboard.services.engine
    # Dash's own page router joins the map at the first request; it renders layouts, which
    # page_layout gates (the Admin and Models tests below ask for them).
    callbacks = {
        k: v
        for k, v in app.callback_map.items()
        if v.get("callback") is not None and not k.startswith(DASH_ROUTER)
    }
    assert len(callbacks) >= 25  # every page's callbacks, not an empty walk
    seen_pages = set()
    refusals = admissions = 0
    mutations = 0
    unscoped_mentions = 0  # other countries an unscoped login sees: the scope check is not idle
    run = 0
    for outputs, entry in callbacks.items():
        page = _page_of(outputs)
        assert page in PAGES, f"callback {outputs} belongs to no page"
        seen_pages.add(page)
        guard = guard_of(entry["callback"])
        assert guard is not None, outputs
        # The callback's rule is one of its page's, and scoped like the API's rule for it.
        needed = guard.needed
        assert set(needed) <= set(capabilities(dash.page_registry[f"dashboards.pages.{page}"]))
        assert guard.every_country == any(EVERY_COUNTRY[c] for c in needed), outputs
        for role in Role:
            for scoped in (False, True):
                who = f"{role.value}@{SCOPED_COUNTRY}" if scoped else role.value
                client = Client(dashboard)
                assert client.login(who).status_code in (302, 303)
                run += 1
                victim = f"victim{run}"
                add_user(engine, victim, Role.MANAGER, ["GIN"], caller=CLI)
                before = counts(engine)
                answer = client.http.post(
                    "/dashboard/_dash-update-component",
                    data=json.dumps(_body(outputs, entry, upload=upload, victim=victim, run=run)),
                    content_type="application/json",
                )
                label = f"{outputs[:60]} as {who}"
                if not expected(needed, role, scoped):
                    refusals += 1
                    assert answer.status_code == 204, label
                    assert answer.get_data() == b"", label
                    assert counts(engine) == before, label
                    continue
                admissions += 1
                assert answer.status_code in (200, 204), label
                if answer.status_code != 200:
                    continue
                text = answer.get_data(as_text=True)
                leaked = [c for c in OTHER_COUNTRIES if f'"{c}"' in text]
                if scoped:
                    assert not leaked, f"{label} shows {leaked}"
                else:
                    unscoped_mentions += len(leaked)
                batch_id = (answer.get_json()["response"].get("upload-batch") or {}).get("data")
                if batch_id:
                    dashboard.services.uploads.wait(batch_id, 60)
                # The crafted state does change the store when the caller may: the refusals
                # above are the rule's, not a request that could do nothing anyway.
                after = counts(engine)
                if outputs.startswith("..admin-add-result."):
                    assert after["users"] == before["users"] + 1, label
                    mutations += 1
                elif outputs.startswith("..admin-revoke-result."):
                    assert after["users"] == before["users"] - 1, label
                    mutations += 1
                elif outputs.startswith("..upload-batch."):
                    assert after["batches"] == before["batches"] + 1, label
                    mutations += 1
    assert seen_pages == set(PAGES)
    assert refusals > 50 and admissions > 50
    assert unscoped_mentions > 0
    assert mutations == 1 + 1 + 6  # add, revoke: the unscoped admin; upload: 3 roles x 2 scopes


def test_a_sen_limited_admin_cannot_add_an_admin_for_every_country(walked):
    """Finding 1: the add-user callback with role admin and countries empty, from a SEN admin."""
    dashboard, _ = walked
    engine = dashboard.services.engine
    client = Client(dashboard)
    client.login(f"admin@{SCOPED_COUNTRY}")
    before = counts(engine)

    answer = client.callback(
        "admin-add-result.children",
        {"admin-add-button.n_clicks": 1},
        {
            "admin-name-input.value": "escalated",
            "admin-role-input.value": "admin",
            "admin-countries-input.value": "",
        },
    )

    assert answer.status_code == 204 and answer.get_data() == b""
    assert counts(engine) == before
    with engine.connect() as conn:
        names = set(conn.execute(sa.select(app_user.c.name)).scalars())
    assert "escalated" not in names


def test_a_sen_limited_admin_cannot_revoke_or_read_users_or_the_audit(walked):
    dashboard, _ = walked
    engine = dashboard.services.engine
    client = Client(dashboard)
    client.login(f"admin@{SCOPED_COUNTRY}")
    before = counts(engine)

    revoked = client.callback(
        "admin-revoke-result.children",
        {"admin-revoke-confirm.submit_n_clicks": 1},
        {"admin-revoke-input.value": "analyst"},
    )
    page = client.page("/admin")

    assert revoked.status_code == 204
    assert counts(engine) == before
    text = page.get_data(as_text=True)
    assert "admin-users-table" not in text and "admin-audit-table" not in text
    assert "your access is limited to SEN" in text
    nav = client.http.get("/dashboard/_dash-layout").get_data(as_text=True)
    assert "nav-admin" not in nav and "nav-models" not in nav


def test_an_unscoped_admin_still_adds_a_user_from_the_dashboard(walked):
    dashboard, _ = walked
    engine = dashboard.services.engine
    client = Client(dashboard)
    client.login("admin")
    before = counts(engine)

    answer = client.callback(
        "admin-add-result.children",
        {"admin-add-button.n_clicks": 1},
        {
            "admin-name-input.value": "newcomer",
            "admin-role-input.value": "analyst",
            "admin-countries-input.value": "sen",
        },
    )

    assert answer.status_code == 200
    assert "can log in with this token" in answer.get_data(as_text=True)
    after = counts(engine)
    assert after["users"] == before["users"] + 1 and after["audit"] == before["audit"] + 1


def test_a_bad_user_name_from_the_dashboard_is_refused_with_the_rule(walked):
    dashboard, _ = walked
    engine = dashboard.services.engine
    client = Client(dashboard)
    client.login("admin")
    before = counts(engine)

    answer = client.callback(
        "admin-add-result.children",
        {"admin-add-button.n_clicks": 1},
        {"admin-name-input.value": "../../x", "admin-role-input.value": "analyst"},
    )

    assert answer.status_code == 200
    assert "Not added: '../../x' cannot be a user name: a user name has 1 to 64 characters" in (
        response_text(answer)
    )
    assert counts(engine) == before


def test_a_sen_analyst_gets_nothing_from_the_models_page(walked):
    """Finding 2: versions, card, subgroup metrics with n, drift and their CSVs."""
    dashboard, _ = walked
    client = Client(dashboard)
    client.login("scoped-analyst")
    models = [k for k in dashboard.app.callback_map if _page_of(k) == "models"]
    # the five of finding 2, index promotions in progress, and the analysts' actions (train
    # and its progress, compare and its versions, preview or cancel, confirm, and the table
    # refreshed when a promotion's job has ended)
    assert len(models) == 13

    for outputs in models:
        entry = dashboard.app.callback_map[outputs]
        answer = client.http.post(
            "/dashboard/_dash-update-component",
            data=json.dumps(_body(outputs, entry, upload="", victim="", run=0)),
            content_type="application/json",
        )
        assert answer.status_code == 204 and answer.get_data() == b"", outputs

    page = client.page("/models").get_data(as_text=True)
    assert "models-versions-table" not in page and "reintegration-risk" not in page

    # the unscoped analyst still sees them
    other = Client(dashboard)
    other.login("analyst")
    shown = other.callback(
        "models-versions-table.data",
        {"models-model-control.value": "risk"},
        {"models-version-control.value": None},
    )
    assert shown.status_code == 200
    assert "v2 · challenger" in response_text(shown)


def test_a_callback_without_a_rule_stops_the_app(own_dashboard, monkeypatch):
    from dash import Input, Output

    from dashboards.app import create_dash_app
    from dashboards.pages import upload

    registered = upload.register_callbacks

    def with_a_stray(app: dash.Dash) -> None:
        registered(app)

        @app.callback(Output("upload-stray", "children"), Input("upload-stray-button", "n_clicks"))
        def stray(clicks: int) -> str:
            return "every country's rows"

    monkeypatch.setattr(upload, "register_callbacks", with_a_stray)

    with pytest.raises(MissingGuardError, match=r"the dashboard callback stray .* has no rule"):
        create_dash_app(own_dashboard.services)


def test_every_callback_of_the_app_carries_its_rule(dashboard):
    Client(dashboard).login("admin")  # a first request: Dash adds its page router
    check_callbacks(dashboard.app.callback_map)
    marked = [
        entry
        for outputs, entry in dashboard.app.callback_map.items()
        if entry.get("callback") is not None and not outputs.startswith(DASH_ROUTER)
    ]
    assert len(marked) >= 25
    assert marked and all(getattr(e["callback"], GUARD, None) is not None for e in marked)
