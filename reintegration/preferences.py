"""What each user chose for themselves: the language the dashboards speak to them.

Kept in the store, not in a cookie alone, so the choice follows the user across browsers,
sessions and servers. A user without a stored choice gets their browser's language.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from reintegration.errors import UserError
from reintegration.i18n import supported
from reintegration.policy import User
from reintegration.store.engine import for_reading
from reintegration.store.schema import user_preference

__all__ = ["set_user_language", "user_language"]


def user_language(engine: sa.Engine, user: User) -> str | None:
    """The language ``user`` chose (``en``, ``fr`` or ``ar``), or None if they never chose.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    user : User
        The user whose choice is read.

    Returns
    -------
    str or None
        A supported language code.
    """
    with for_reading(engine).connect() as conn:
        stored = conn.execute(
            sa.select(user_preference.c.language).where(user_preference.c.name == user.name)
        ).scalar()
    return supported(stored)


def set_user_language(engine: sa.Engine, user: User, language: str) -> str:
    """Remember ``language`` as ``user``'s choice (a user changes only their own).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    user : User
        The user choosing.
    language : str
        ``en``, ``fr`` or ``ar`` (a regional form such as ``fr-SN`` counts as ``fr``).

    Returns
    -------
    str
        The stored code.

    Raises
    ------
    UserError
        When the platform does not speak ``language``.
    """
    chosen = supported(language)
    if chosen is None:
        raise UserError(f"{language!r} is not a language of the platform (en, fr or ar)")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        updated = conn.execute(
            sa.update(user_preference)
            .where(user_preference.c.name == user.name)
            .values(language=chosen, updated_at=now)
        ).rowcount
        if not updated:
            conn.execute(
                sa.insert(user_preference).values(name=user.name, language=chosen, updated_at=now)
            )
    return chosen
