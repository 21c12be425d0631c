"""What a server remembers between requests so that a repeated question costs microseconds.

* :class:`AnswerCache`: serialised answers keyed on the data version and the question.
* :class:`TimedValue`: a value read at most every ``ttl`` seconds (and at once after this
  process changed it): the store's data version, the champion index's label.
* :class:`TokenCache`: who holds a token, for ``ttl`` seconds (and forgotten at once when a
  user is revoked through this process).

The short lifetimes are the price of answering a cached aggregate from the event loop, without
a database or registry read: an aggregate can lag a batch stored by another process by at most
:data:`VERSION_TTL_S` (a promotion made elsewhere by :data:`LABEL_TTL_S` plus the registry
check of ``models.serving``), and a token revoked from the command line (or another server
process) works for at most :data:`TOKEN_TTL_S` more.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from reintegration.users import User

T = TypeVar("T")

ANSWERS_KEPT = 1024
TOKENS_KEPT = 10_000
VERSION_TTL_S = 0.25
LABEL_TTL_S = 1.0
TOKEN_TTL_S = 1.0


class AnswerCache:
    """Serialised answers, least recently used out."""

    def __init__(self, size: int = ANSWERS_KEPT) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._answers: OrderedDict[Hashable, bytes] = OrderedDict()

    def peek(self, key: Hashable) -> bytes | None:
        """The answer if it is kept, else None (never computes)."""
        with self._lock:
            found = self._answers.get(key)
            if found is not None:
                self._answers.move_to_end(key)
            return found

    def get(self, key: Hashable, compute: Callable[[], bytes]) -> bytes:
        """The kept answer, or ``compute()``'s, kept."""
        found = self.peek(key)
        if found is not None:
            return found
        value = compute()
        with self._lock:
            self._answers[key] = value
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)
        return value


class TimedValue(Generic[T]):
    """A value read through ``read`` at most every ``ttl`` seconds."""

    def __init__(self, read: Callable[[], T], ttl: float) -> None:
        self._read = read
        self.ttl = ttl
        self._value: T | None = None
        self._checked = float("-inf")

    def fresh(self) -> T | None:
        """The value when it was read less than ``ttl`` ago, else None (never reads)."""
        if time.monotonic() - self._checked < self.ttl:
            return self._value
        return None

    def read(self) -> T:
        """Read the value now (it may block: call it off the event loop)."""
        checked = time.monotonic()
        value = self._read()
        self._value, self._checked = value, checked
        return value

    def current(self) -> T:
        """The fresh value, reading it when it is stale."""
        found = self.fresh()
        return found if found is not None else self.read()

    def invalidate(self) -> None:
        """Forget the value: this process has just changed it."""
        self._checked = float("-inf")


class TokenCache:
    """Users by the SHA-256 of their token, for ``ttl`` seconds; unknown tokens are not kept."""

    def __init__(self, ttl: float = TOKEN_TTL_S, size: int = TOKENS_KEPT) -> None:
        self.ttl = ttl
        self.size = size
        self._lock = threading.Lock()
        self._users: OrderedDict[str, tuple[float, User]] = OrderedDict()

    def get(self, digest: str) -> User | None:
        with self._lock:
            found = self._users.get(digest)
            if found is None:
                return None
            if time.monotonic() - found[0] >= self.ttl:
                del self._users[digest]
                return None
            return found[1]

    def put(self, digest: str, user: User) -> None:
        with self._lock:
            self._users[digest] = (time.monotonic(), user)
            self._users.move_to_end(digest)
            while len(self._users) > self.size:
                self._users.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._users.clear()
