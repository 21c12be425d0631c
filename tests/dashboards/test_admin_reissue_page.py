"""The admin page reissues a user's token (the new one shown once beside a copy button, the old
one refused at once) and puts a copy button beside a new user's token."""

from __future__ import annotations

from reintegration.users import authenticate
from tests.dashboards.conftest import Client, components, response_text_of
from tests.dashboards.test_aggregate_pages import outputs


def _by_id(node, element_id):
    return next(c for c in components(node) if c["props"].get("id") == element_id)


def test_an_admin_reissues_a_token_shown_once_with_a_copy_button(own_dashboard):
    client = Client(own_dashboard)
    client.login("admin")
    engine = own_dashboard.services.engine
    old = own_dashboard.tokens["analyst"]

    answer = outputs(
        client.callback(
            "admin-reissue-result.children",
            {"admin-reissue-confirm.submit_n_clicks": 1},
            {"admin-reissue-input.value": "analyst"},
        )
    )

    result = answer["admin-reissue-result.children"]
    assert "analyst has a new token; the old one no longer works." in response_text_of(result)
    token = _by_id(result, "admin-new-token")["props"]["children"]
    copy = _by_id(result, "admin-copy-token")
    assert copy["type"] == "Clipboard" and copy["props"]["target_id"] == "admin-new-token"
    assert authenticate(engine, old) is None
    user = authenticate(engine, token)
    assert user is not None and user.name == "analyst" and user.role.value == "analyst"
    assert answer["admin-audit-table.data"][0]["action"] == "token reissued"
    assert token not in str(answer["admin-audit-table.data"])


def test_reissuing_for_a_user_gone_meanwhile_says_so(own_dashboard):
    client = Client(own_dashboard)
    client.login("admin")
    answer = outputs(
        client.callback(
            "admin-reissue-result.children",
            {"admin-reissue-confirm.submit_n_clicks": 1},
            {"admin-reissue-input.value": "ghost"},
        )
    )
    assert "Not reissued: there is no user named 'ghost'." in response_text_of(
        answer["admin-reissue-result.children"]
    )


def test_a_new_users_token_has_a_copy_button(own_dashboard):
    client = Client(own_dashboard)
    client.login("admin")
    answer = outputs(
        client.callback(
            "admin-add-result.children",
            {"admin-add-button.n_clicks": 1},
            {
                "admin-name-input.value": "field-2",
                "admin-role-input.value": "enumerator",
                "admin-countries-input.value": "SEN",
            },
        )
    )
    result = answer["admin-add-result.children"]
    assert _by_id(result, "admin-copy-token")["props"]["target_id"] == "admin-new-token"
    assert {o["value"] for o in answer["admin-reissue-input.options"]} >= {"field-2", "admin"}


def test_a_manager_cannot_reissue(own_dashboard):
    client = Client(own_dashboard)
    client.login("manager")
    response = client.callback(
        "admin-reissue-result.children",
        {"admin-reissue-confirm.submit_n_clicks": 1},
        {"admin-reissue-input.value": "analyst"},
    )
    assert response.status_code in (204, 401, 403)  # refused callbacks change nothing
    assert authenticate(own_dashboard.services.engine, own_dashboard.tokens["analyst"]) is not None
