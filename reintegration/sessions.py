"""Dashboard sessions, held in the store so that every worker and server sharing it agrees.

A login opens a session: 32 random bytes (the session secret) go to the browser, and the store
keeps only their SHA-256, the hash of the token the user logged in with, and when the session
was opened, ends and was closed. Each request reads the session by the hash of the secret it
presents, then the user by that token hash, so a logout (on any server) or a revoked user ends
the session at once, and nothing the store holds can be replayed as a session or a token.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from reintegration.store.engine import for_reading
from reintegration.store.schema import dashboard_session
from reintegration.users import User, token_hash, user_by_token_hash

SESSION_SECONDS = 10 * 60 * 60  # a working day
SECRET_BYTES = 32
# Longer secrets are no session of ours: refused before they are hashed.
MAX_SECRET_CHARS = 100


def session_id(secret: str) -> str:
    """The stored id of a session: the SHA-256 (hex) of its secret.

    Examples
    --------
    >>> session_id("abc")[:16]
    'ba7816bf8f01cfea'
    """
    return token_hash(secret)  # stored the way tokens are: only their SHA-256


def open_session(
    engine: sa.Engine,
    token_sha256: str,
    *,
    seconds: int = SESSION_SECONDS,
    now: datetime | None = None,
) -> str:
    """Open a session for the holder of a token and return its secret (for the cookie only).

    Sessions that have expired are deleted on the way, so the table holds at most the
    sessions of the last working day.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    token_sha256 : str
        The SHA-256 of the token the user logged in with (``reintegration.users.token_hash``).
    seconds : int, default SESSION_SECONDS
        How long the session lasts, whatever the user does.
    now : datetime, optional
        The time of the login (default: now, UTC).

    Returns
    -------
    str
        The session secret, URL-safe text of 32 random bytes; only its hash is stored.
    """
    now = now or datetime.now(UTC)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    with engine.begin() as conn:
        conn.execute(dashboard_session.delete().where(dashboard_session.c.expires_at <= now))
        conn.execute(
            dashboard_session.insert().values(
                id=session_id(secret),
                token_sha256=token_sha256,
                created_at=now,
                expires_at=now + timedelta(seconds=seconds),
            )
        )
    return secret


def session_user(engine: sa.Engine, secret: str, *, now: datetime | None = None) -> User | None:
    """The user of a live session, or None.

    None when the secret is unknown, the session has expired or was closed, or its user has
    been revoked since the login.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    secret : str
        The secret :func:`open_session` returned.
    now : datetime, optional
        The time to check expiry against (default: now, UTC).

    Returns
    -------
    User or None
    """
    if not secret or len(secret) > MAX_SECRET_CHARS:
        return None
    now = now or datetime.now(UTC)
    with for_reading(engine).connect() as conn:
        digest = conn.execute(
            sa.select(dashboard_session.c.token_sha256).where(
                dashboard_session.c.id == session_id(secret),
                dashboard_session.c.revoked_at.is_(None),
                dashboard_session.c.expires_at > now,
            )
        ).scalar()
    return user_by_token_hash(engine, digest) if digest is not None else None


def close_session(engine: sa.Engine, secret: str) -> bool:
    """Close a session (logout): it stops working on every server at once.

    Returns
    -------
    bool
        Whether a live session was closed (False: unknown, or already closed).
    """
    if not secret or len(secret) > MAX_SECRET_CHARS:
        return False
    with engine.begin() as conn:
        closed = conn.execute(
            dashboard_session.update()
            .where(
                dashboard_session.c.id == session_id(secret),
                dashboard_session.c.revoked_at.is_(None),
            )
            .values(revoked_at=datetime.now(UTC))
        ).rowcount
    return bool(closed)
