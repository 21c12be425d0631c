"""The fingerprint of the pseudonymisation key in the database: one key per database.

Every server and command that pseudonymises case numbers or signs sessions on one database
must use the same ``REINTEGRATION_SECRET_KEY``: with two keys, one returnee becomes two
pseudonymous keys (wrong rounds, wrong counts) and a dashboard login on one server bounces on
the other. The first process that uses its key on a database records the key's fingerprint in
``server_identity``; every later one compares its own and refuses to start when they differ.

The fingerprint is HMAC-SHA256 of a fixed label under the key, never the key itself. Someone
who reads the database could only test guesses of the key against it, one HMAC per guess: a
key of 32 random characters (what production requires) or the development key (64 random hex
characters) cannot be found that way.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import sqlalchemy as sa

from reintegration.errors import ConfigurationError
from reintegration.store.engine import for_reading
from reintegration.store.schema import server_identity

SECRET_KEY = "secret_key"
LABEL = b"reintegration/server-identity/secret-key/v1"


def key_fingerprint(key: bytes) -> str:
    """The fingerprint of a key: HMAC-SHA256 of :data:`LABEL` under it, 64 hex characters.

    Parameters
    ----------
    key : bytes
        The key, as :meth:`reintegration.settings.Settings.secret_key_bytes` gives it.

    Returns
    -------
    str
        Lower-case hex.

    Examples
    --------
    >>> len(key_fingerprint(b"k")), key_fingerprint(b"k") == key_fingerprint(b"k ")
    (64, False)
    """
    return hmac.new(key, LABEL, hashlib.sha256).hexdigest()


def stored_fingerprint(engine: sa.Engine) -> str | None:
    """The fingerprint recorded in the database, or None when none is yet."""
    with for_reading(engine).connect() as conn:
        return conn.execute(
            sa.select(server_identity.c.fingerprint).where(server_identity.c.name == SECRET_KEY)
        ).scalar()


def check_secret_key(engine: sa.Engine, key: bytes, *, source: str = "") -> bool:
    """Refuse a key other than the one this database's data was pseudonymised with.

    The first call on a database (a new store, or one from before fingerprints) records the
    key's fingerprint. Two processes doing so at once on an empty table: one row wins (the
    primary key), the other process then compares against it.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store, migrated.
    key : bytes
        This process's key.
    source : str, optional
        Where the key came from, named in the refusal (e.g. the development key file).

    Returns
    -------
    bool
        True when this call recorded the fingerprint, False when it matched the recorded one.

    Raises
    ------
    ConfigurationError
        The key's fingerprint differs from the recorded one; the message names
        ``REINTEGRATION_SECRET_KEY`` and says that every server sharing a database needs the
        same key.
    """
    mine = key_fingerprint(key)
    recorded = stored_fingerprint(engine)
    if recorded is None:
        try:
            with engine.begin() as conn:
                conn.execute(
                    server_identity.insert().values(
                        name=SECRET_KEY, fingerprint=mine, created_at=datetime.now(UTC)
                    )
                )
            return True
        except sa.exc.IntegrityError:  # another process recorded one first
            recorded = stored_fingerprint(engine)
    if recorded is not None and hmac.compare_digest(recorded, mine):
        return False
    origin = f" (this process read it from {source})" if source else ""
    raise ConfigurationError(
        f"REINTEGRATION_SECRET_KEY differs from the key this database was first used with"
        f"{origin}: every server and command sharing a database must use the same "
        "REINTEGRATION_SECRET_KEY, or returnees get two pseudonymous keys and logins bounce "
        "between servers. Set it to the key of the other servers (in development, the "
        "contents of the first server's secret.key)."
    )
