"""Each user's language: stored in the store, changed only to a language the platform speaks."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from reintegration.errors import UserError
from reintegration.policy import CLI
from reintegration.preferences import set_user_language, user_language
from reintegration.users import add_user, authenticate, revoke_user


def _user(engine: sa.Engine, name: str = "amina"):
    user = authenticate(engine, add_user(engine, name, "manager", ["SEN"], caller=CLI))
    assert user is not None
    return user


def test_a_user_without_a_choice_has_none(engine: sa.Engine) -> None:
    assert user_language(engine, _user(engine)) is None


def test_a_choice_is_remembered_and_can_change(engine: sa.Engine) -> None:
    user = _user(engine)

    assert set_user_language(engine, user, "ar") == "ar"
    assert user_language(engine, user) == "ar"
    assert set_user_language(engine, user, "fr-SN") == "fr"
    assert user_language(engine, user) == "fr"


def test_a_language_the_platform_does_not_speak_is_refused(engine: sa.Engine) -> None:
    user = _user(engine)

    with pytest.raises(UserError, match="'de' is not a language of the platform"):
        set_user_language(engine, user, "de")
    assert user_language(engine, user) is None


def test_each_user_has_their_own_choice(engine: sa.Engine) -> None:
    amina, omar = _user(engine, "amina"), _user(engine, "omar")

    set_user_language(engine, amina, "ar")

    assert user_language(engine, omar) is None


def test_a_revoked_users_choice_goes_with_them(engine: sa.Engine) -> None:
    user = _user(engine)
    set_user_language(engine, user, "fr")

    revoke_user(engine, "amina", caller=CLI)

    assert user_language(engine, user) is None
