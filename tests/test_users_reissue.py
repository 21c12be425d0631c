"""Reissuing a token: a new one works at once, the old one and its sessions stop, role and
countries stay, the audit names who did it and never the token."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reintegration.errors import Forbidden, UserError
from reintegration.policy import CLI, User, cli_caller
from reintegration.roles import Role
from reintegration.sessions import open_session, session_user
from reintegration.store.schema import audit
from reintegration.users import add_user, authenticate, reissue_token, token_hash


def test_a_reissued_token_replaces_the_old_one(engine: sa.Engine) -> None:
    old = add_user(engine, "amina", "enumerator", ["SEN"], caller=CLI)

    new = reissue_token(engine, "amina", caller=CLI)

    assert new != old and len(new) >= 43
    assert authenticate(engine, old) is None
    user = authenticate(engine, new)
    assert user is not None and user.role is Role.ENUMERATOR and user.countries == {"SEN"}


def test_a_reissued_token_ends_the_old_tokens_sessions(engine: sa.Engine) -> None:
    old = add_user(engine, "omar", "analyst", caller=CLI)
    secret = open_session(engine, token_hash(old))
    assert session_user(engine, secret) is not None

    reissue_token(engine, "omar", caller=CLI)

    assert session_user(engine, secret) is None


def test_reissuing_is_audited_without_the_token(engine: sa.Engine) -> None:
    add_user(engine, "fatou", "manager", caller=CLI)
    token = reissue_token(engine, "fatou", caller=cli_caller("admin-1"))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit.c.actor, audit.c.action, audit.c.target)).all()
    assert rows[-1] == ("admin-1", "user_reissue", "fatou")
    assert token not in str(rows)


def test_reissuing_for_nobody_is_an_error(engine: sa.Engine) -> None:
    with pytest.raises(UserError, match="there is no user named 'ghost'"):
        reissue_token(engine, "ghost", caller=CLI)


def test_only_an_admin_for_every_country_may_reissue(engine: sa.Engine) -> None:
    token = add_user(engine, "awa", "enumerator", caller=CLI)
    scoped_admin = User(name="sen-admin", role=Role.ADMIN, countries=frozenset({"SEN"}))
    analyst = User(name="ana", role=Role.ANALYST, countries=None)
    for caller in (scoped_admin, analyst):
        with pytest.raises(Forbidden):
            reissue_token(engine, "awa", caller=caller)
    assert authenticate(engine, token) is not None
