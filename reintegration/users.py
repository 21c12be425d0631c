"""Users and their tokens: 32 random bytes shown once, stored as SHA-256.

A lookup hashes the presented token and reads one row by its unique hash, so authenticating
costs one indexed query and the store never holds a usable token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa

from reintegration.coding import country_codes
from reintegration.errors import UserError
from reintegration.policy import User, require
from reintegration.roles import Capability, Role
from reintegration.store.engine import for_reading
from reintegration.store.schema import app_user, audit

TOKEN_BYTES = 32
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
NAME_RULE = (
    "a user name has 1 to 64 characters: letters, digits, dot, underscore, @ or hyphen, "
    "starting with a letter or digit"
)

__all__ = [
    "NAME_PATTERN",
    "TOKEN_BYTES",
    "User",
    "add_user",
    "authenticate",
    "check_name",
    "list_users",
    "reissue_token",
    "revoke_user",
    "token_hash",
    "user_by_token_hash",
]


def token_hash(token: str) -> str:
    """SHA-256 of a token, as stored (hex).

    Examples
    --------
    >>> token_hash("abc")[:16]
    'ba7816bf8f01cfea'
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _countries(countries: Iterable[str] | None) -> list[str] | None:
    if countries is None:
        return None
    codes = sorted({c.strip().upper() for c in countries})
    if not codes:
        # An empty list used to mean every country: a form left blank made an unlimited user.
        raise UserError(
            "the list of countries is empty: give at least one country code, or none at all "
            "for every country"
        )
    for code in codes:
        if code not in country_codes():
            raise UserError(f"{code!r} is not a country code; use the three-letter ISO code")
    return codes


def check_name(name: str) -> str:
    """``name`` without surrounding blanks, when it is a safe user name.

    Names appear in URLs (``DELETE /users/{name}``), the audit trail and log lines, so they
    are kept to :data:`NAME_PATTERN`.

    Raises
    ------
    UserError
        A name outside the pattern, with the rule.

    Examples
    --------
    >>> check_name(" amina.d@sen ")
    'amina.d@sen'
    """
    name = name.strip()
    if not NAME_PATTERN.fullmatch(name):
        shown = name if len(name) <= 64 else name[:64] + "…"
        raise UserError(f"{shown!r} cannot be a user name: {NAME_RULE}")
    return name


def add_user(
    engine: sa.Engine,
    name: str,
    role: Role | str,
    countries: Iterable[str] | None = None,
    *,
    caller: User,
) -> str:
    """Create a user and return their token (shown once; only its hash is stored).

    Parameters
    ----------
    engine : sqlalchemy.Engine
    name : str
        A unique name matching :data:`NAME_PATTERN` (1 to 64 letters, digits, ``._@-``).
    role : Role or str
    countries : iterable of str, optional
        ISO 3166-1 alpha-3 codes the token is limited to; None: every country. An empty
        collection is refused (it used to mean every country).
    caller : User
        Who adds the user: an administrator without a country limit (audited as the actor).

    Returns
    -------
    str
        The token, URL-safe text of 32 random bytes.

    Raises
    ------
    Forbidden
        The caller is not an administrator for every country.
    UserError
        A bad or taken name, an unknown role, an empty list or an unknown country code.
    """
    require(caller, Capability.ADMIN, every_country=True)
    name = check_name(name)
    try:
        role = Role(role)
    except ValueError:
        raise UserError(
            f"{role!r} is not a role: use one of {', '.join(r.value for r in Role)}"
        ) from None
    codes = _countries(countries)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        taken = conn.execute(sa.select(app_user.c.name).where(app_user.c.name == name)).first()
        if taken:
            raise UserError(f"a user named {name!r} already exists: revoke it first")
        conn.execute(
            app_user.insert().values(
                name=name,
                role=role.value,
                countries=codes,
                token_sha256=token_hash(token),
                created_at=now,
            )
        )
        conn.execute(
            audit.insert().values(
                at=now,
                actor=caller.name,
                action="user_add",
                target=name,
                detail={"role": role.value, "countries": codes},
            )
        )
    return token


def revoke_user(engine: sa.Engine, name: str, *, caller: User) -> None:
    """Remove a user; their token stops working at once.

    Any stored name can be revoked, including one made before names were restricted.

    Raises
    ------
    Forbidden
        The caller is not an administrator for every country.
    UserError
        No such user.
    """
    require(caller, Capability.ADMIN, every_country=True)
    with engine.begin() as conn:
        removed = conn.execute(app_user.delete().where(app_user.c.name == name)).rowcount
        if not removed:
            raise UserError(f"there is no user named {name!r}")
        conn.execute(
            audit.insert().values(
                at=datetime.now(UTC), actor=caller.name, action="user_revoke", target=name
            )
        )


def reissue_token(engine: sa.Engine, name: str, *, caller: User) -> str:
    """Give a user a new token: the old one stops working at once; role and countries stay.

    For a token that was lost or may have been seen by someone else. Audited as
    ``user_reissue`` (never the token).

    Parameters
    ----------
    engine : sqlalchemy.Engine
    name : str
        The user, as stored.
    caller : User
        An administrator without a country limit.

    Returns
    -------
    str
        The new token, shown once (only its hash is stored).

    Raises
    ------
    Forbidden
        The caller is not an administrator for every country.
    UserError
        No such user.
    """
    require(caller, Capability.ADMIN, every_country=True)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        changed = conn.execute(
            app_user.update().where(app_user.c.name == name).values(token_sha256=token_hash(token))
        ).rowcount
        if not changed:
            raise UserError(f"there is no user named {name!r}")
        conn.execute(
            audit.insert().values(at=now, actor=caller.name, action="user_reissue", target=name)
        )
    return token


def _user(row: sa.Row | None) -> User | None:
    if row is None:
        return None
    countries = frozenset(row.countries) if row.countries else None
    return User(name=row.name, role=Role(row.role), countries=countries)


def user_by_token_hash(engine: sa.Engine, digest: str) -> User | None:
    """The user whose token has this SHA-256 (hex), or None."""
    with for_reading(engine).connect() as conn:
        row = conn.execute(
            sa.select(app_user.c.name, app_user.c.role, app_user.c.countries).where(
                app_user.c.token_sha256 == digest
            )
        ).first()
    return _user(row)


def authenticate(engine: sa.Engine, token: str) -> User | None:
    """The user holding ``token``, or None for an unknown or revoked token."""
    if not token or len(token) > 200:
        return None
    return user_by_token_hash(engine, token_hash(token))


def list_users(engine: sa.Engine, *, caller: User) -> list[User]:
    """Every user, by name (tokens are never returned: they are not stored).

    Raises
    ------
    Forbidden
        The caller is not an administrator for every country.
    """
    require(caller, Capability.ADMIN, every_country=True)
    with for_reading(engine).connect() as conn:
        rows = conn.execute(
            sa.select(app_user.c.name, app_user.c.role, app_user.c.countries).order_by(
                app_user.c.name
            )
        ).all()
    return [u for u in map(_user, rows) if u is not None]
