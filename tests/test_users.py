"""Users and tokens: shown once, stored hashed, scoped, revocable; roles as DESIGN.md says."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reintegration.errors import UserError
from reintegration.policy import CLI, cli_caller
from reintegration.roles import GRANTS, Capability, Role, allowed
from reintegration.store.schema import app_user, audit
from reintegration.users import add_user, authenticate, list_users, revoke_user, token_hash


def test_a_token_authenticates_its_user_and_is_stored_only_as_a_hash(engine: sa.Engine) -> None:
    token = add_user(engine, "amina", "enumerator", ["sen", "GMB"], caller=CLI)

    user = authenticate(engine, token)

    assert user is not None and user.role is Role.ENUMERATOR
    assert user.countries == frozenset({"SEN", "GMB"})
    with engine.connect() as conn:
        stored = conn.execute(sa.select(app_user.c.token_sha256)).scalar_one()
    assert stored == token_hash(token) and token not in stored
    assert len(token) >= 43  # 32 random bytes, URL-safe base64


def test_unknown_empty_and_revoked_tokens_authenticate_nobody(engine: sa.Engine) -> None:
    token = add_user(engine, "omar", "analyst", caller=CLI)
    assert authenticate(engine, "not-a-token") is None
    assert authenticate(engine, "") is None

    revoke_user(engine, "omar", caller=CLI)

    assert authenticate(engine, token) is None
    assert list_users(engine, caller=CLI) == []


def test_an_unscoped_user_sees_every_country(engine: sa.Engine) -> None:
    user = authenticate(engine, add_user(engine, "fatou", "manager", None, caller=CLI))
    assert user is not None and user.countries is None and user.sees_country("SEN")


def test_a_scoped_user_sees_only_their_countries(engine: sa.Engine) -> None:
    user = authenticate(engine, add_user(engine, "ali", "analyst", ["SEN"], caller=CLI))
    assert user is not None and user.sees_country("SEN") and not user.sees_country("MLI")


@pytest.mark.parametrize(
    ("name", "role", "countries", "message"),
    [
        (
            "",
            "admin",
            None,
            "'' cannot be a user name: a user name has 1 to 64 characters: letters, digits, "
            "dot, underscore, @ or hyphen, starting with a letter or digit",
        ),
        ("x", "boss", None, "'boss' is not a role: use one of enumerator, manager, analyst, admin"),
        (
            "x",
            "admin",
            ["SENEGAL"],
            "'SENEGAL' is not a country code; use the three-letter ISO code",
        ),
    ],
)
def test_bad_users_are_refused_with_a_sentence(
    engine: sa.Engine, name: str, role: str, countries: list[str] | None, message: str
) -> None:
    with pytest.raises(UserError) as caught:
        add_user(engine, name, role, countries, caller=CLI)
    assert str(caught.value) == message
    assert list_users(engine, caller=CLI) == []


def test_a_taken_name_is_refused_and_the_first_token_still_works(engine: sa.Engine) -> None:
    token = add_user(engine, "amina", "enumerator", caller=CLI)
    with pytest.raises(UserError, match="a user named 'amina' already exists: revoke it first"):
        add_user(engine, "amina", "admin", caller=CLI)
    assert authenticate(engine, token) == authenticate(engine, token)
    assert authenticate(engine, token).role is Role.ENUMERATOR  # type: ignore[union-attr]


def test_revoking_nobody_is_an_error(engine: sa.Engine) -> None:
    with pytest.raises(UserError, match="there is no user named 'ghost'"):
        revoke_user(engine, "ghost", caller=CLI)


def test_adding_and_revoking_are_audited_without_tokens(engine: sa.Engine) -> None:
    token = add_user(engine, "amina", "enumerator", caller=cli_caller("admin-1"))
    revoke_user(engine, "amina", caller=cli_caller("admin-1"))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit.c.actor, audit.c.action, audit.c.detail)).all()
    assert [(r.actor, r.action) for r in rows] == [
        ("admin-1", "user_add"),
        ("admin-1", "user_revoke"),
    ]
    assert token not in str(rows)


def test_the_role_matrix_is_designs() -> None:
    expected = {
        Capability.UPLOAD: {"enumerator", "analyst", "admin"},
        Capability.AGGREGATES: {"manager", "analyst", "admin"},
        Capability.ROW_LEVEL: {"analyst", "admin"},
        Capability.MODELS: {"analyst", "admin"},
        Capability.ADMIN: {"admin"},
    }
    assert {c: {r.value for r in roles} for c, roles in GRANTS.items()} == expected
    assert all(allowed("admin", c) for c in Capability)
