"""Pseudonymous returnee keys: HMAC-SHA256 of the case number, never the case number itself."""

from __future__ import annotations

import hmac

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

KEY_PREFIX = "key:"


def returnee_key(case_number: str, secret: bytes) -> str:
    """The key of a case number: trimmed, upper-cased, HMAC-SHA256 with ``secret``, in hex.

    A value that already is ``key:<hash>`` (as in a fixable file) is taken as the key.

    Examples
    --------
    >>> k = returnee_key(" sen-2024-000001 ", b"s" * 32)
    >>> k == returnee_key("SEN-2024-000001", b"s" * 32), len(k)
    (True, 64)
    >>> returnee_key("key:" + k, b"other secret") == k
    True
    """
    text = case_number.strip()
    if text.lower().startswith(KEY_PREFIX):
        return text[len(KEY_PREFIX) :].strip().lower()
    return hmac.digest(secret, text.upper().encode("utf-8"), "sha256").hex()


def returnee_keys(
    case_numbers: pa.Array, secret: bytes, cache: dict[str, str] | None = None
) -> np.ndarray:
    """Keys of a column of case numbers, computed once per distinct case number.

    ``cache`` (case number -> key) carries keys over from earlier chunks of the same batch,
    where a returnee's other rounds were.
    """
    encoded = pc.dictionary_encode(case_numbers)
    memo = cache if cache is not None else {}
    distinct = encoded.dictionary.to_pylist()
    for case in distinct:
        if case not in memo:
            memo[case] = returnee_key(case or "", secret)
    keys = np.array([memo[c] for c in distinct], dtype=object)
    indices = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)
    return keys[indices] if len(keys) else np.array([], dtype=object)


def is_key(text: str) -> bool:
    """Whether a case-number cell already holds a key (``key:`` and 64 hex digits)."""
    value = text.strip().lower()
    if not value.startswith(KEY_PREFIX):
        return False
    digest = value[len(KEY_PREFIX) :].strip()
    return len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)
