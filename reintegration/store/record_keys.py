"""Record keys: a permanent random number per stored interview version (issue 12).

Cell-key perturbation (``docs/privacy.md``) derives a published cell's noise from the keys of
the records in it, so the same records always get the same noise and two answers that differ
by one person do not differ by that person's value. A key is drawn when its row is inserted
(every new version of an interview gets a new one), is never updated (rescoring and round
renumbering leave it alone) and leaves with its row when a returnee is erased. It never
depends on the row's content: two identical answers get independent keys.
"""

from __future__ import annotations

import secrets

import numpy as np

RECORD_KEY_BITS = 31
RECORD_KEY_LIMIT = 2**RECORD_KEY_BITS  # keys lie in [0, RECORD_KEY_LIMIT)


def new_record_keys(n: int) -> np.ndarray:
    """Draw ``n`` record keys, each uniform on ``[0, 2**31)``, from the operating system.

    The bits come from :func:`secrets.token_bytes` (the OS's cryptographic generator, as
    ``secrets.randbits(31)`` for a single key), 32 per key of which the top 31 are kept: every
    key is drawn afresh, with no seed that a later process could replay.

    Parameters
    ----------
    n : int
        How many keys (rows to insert).

    Returns
    -------
    numpy.ndarray
        int64 keys of length ``n``.

    Examples
    --------
    >>> keys = new_record_keys(1000)
    >>> keys.dtype, len(keys), bool(((keys >= 0) & (keys < RECORD_KEY_LIMIT)).all())
    (dtype('int64'), 1000, True)
    """
    words = np.frombuffer(secrets.token_bytes(4 * n), dtype="<u4")
    return (words >> (32 - RECORD_KEY_BITS)).astype(np.int64)
