"""Leases of running work (batches, jobs): renewed by their owner, so any server sees dead work.

A batch being stored or a job being run is leased by the process doing it: a row of
``work_lease`` says until when (``lease_until``, UTC). A :class:`LeaseKeeper` thread of that
process pushes it ``seconds`` ahead every third of ``seconds`` (``REINTEGRATION_LEASE_SECONDS``,
default 30). A process that dies, or stops renewing (a machine gone, a network cut, a process
paused), lets it pass, and then any server or command marks the work failed: at its start, and
every sixth of the lease time from the housekeeping thread of a server
(:mod:`reintegration.housekeeping`). Nothing here depends on host names or process ids, so two
servers whose containers share a host name never fail each other's live work, and a server on
another machine sees a dead one's work.

Where the leases live:

- **PostgreSQL**: in ``work_lease`` of the app's database, with times from the database
  server's clock (``now()``), so the machines' clocks need not agree.
- **SQLite**: in a small SQLite file of their own beside the store (``<store>.leases.db``, the
  same table). SQLite lets one writer at a time into a file, and a batch holds the store's
  write lock for as long as it is stored (minutes for a million rows): a renewal written into
  the store itself would wait behind it, the lease would pass, and the next writer to get the
  lock could fail a live batch that was only queueing. The side file is written in
  milliseconds and never waits long. (The store's own ``work_lease`` table stays empty.) An
  in-memory store is one process's: its leases are in the store, and never renewed by a thread.

Work that has no lease row (a batch or job from before migration 0007) counts as leased until
its ``created_at`` plus the lease time.
"""

from __future__ import annotations

import collections
import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from reintegration.store.engine import create_store_engine, for_reading
from reintegration.store.schema import work_lease

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 30.0
SIDE_FILES_KEPT = 16  # engines of lease files kept open (a test suite opens hundreds of stores)
_OWNER = f"{socket.gethostname()[:200]} pid {os.getpid()} {secrets.token_hex(4)}"
_side_engines: collections.OrderedDict[str, sa.Engine] = collections.OrderedDict()
_side_lock = threading.Lock()


def lease_seconds() -> float:
    """The lease time of this process: ``REINTEGRATION_LEASE_SECONDS`` (default 30)."""
    from reintegration.settings import get_settings

    return float(get_settings().lease_seconds)


def owner() -> str:
    """How this process names itself in the leases it takes (host, pid, a random tag)."""
    return _OWNER


def _in_memory(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")


def side_file(engine: sa.Engine) -> Path | None:
    """The file of a SQLite store's leases (None for PostgreSQL or an in-memory store).

    Examples
    --------
    >>> side_file(sa.create_engine("sqlite:////srv/var/reintegration.db"))
    PosixPath('/srv/var/reintegration.leases.db')
    """
    if engine.dialect.name != "sqlite" or _in_memory(engine):
        return None
    database = str(engine.url.database)
    if database.startswith("file:"):
        return None
    path = Path(database)
    return path.with_name(f"{path.stem}.leases{path.suffix or '.db'}")


def lease_engine(engine: sa.Engine) -> sa.Engine:
    """The engine the leases of ``engine``'s store are read and written through.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store.

    Returns
    -------
    sqlalchemy.Engine
        ``engine`` itself on PostgreSQL and in memory; on a SQLite file, the engine of its
        lease file (made, with its table, on first use; kept open for later calls).
    """
    path = side_file(engine)
    if path is None:
        return engine
    key = str(path)
    with _side_lock:
        found = _side_engines.get(key)
        if found is not None and path.exists():
            _side_engines.move_to_end(key)
            return found
        if found is not None:  # the folder was removed (a test's): start again
            found.dispose()
        side = create_store_engine(f"sqlite:///{path}")
        with side.begin() as conn:
            conn.execute(sa.schema.CreateTable(work_lease, if_not_exists=True))
        _side_engines[key] = side
        while len(_side_engines) > SIDE_FILES_KEPT:
            _side_engines.popitem(last=False)[1].dispose()
        return side


def _now(conn: sa.Connection) -> datetime:
    """The time leases are measured in: PostgreSQL's clock, or this machine's for SQLite."""
    if conn.dialect.name == "postgresql":
        return _aware(conn.execute(sa.select(sa.func.now())).scalar_one())
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    # SQLite gives back stored UTC times without their zone.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def take(engine: sa.Engine, kind: str, work_id: str, seconds: float | None = None) -> None:
    """Lease a batch or job to this process for ``seconds`` from now (replacing any lease).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store.
    kind : {"batch", "job"}
    work_id : str
        The batch's or job's id.
    seconds : float, optional
        Default :func:`lease_seconds`.
    """
    span = timedelta(seconds=lease_seconds() if seconds is None else seconds)
    with lease_engine(engine).begin() as conn:
        until = _now(conn) + span
        insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(work_lease)
        conn.execute(
            insert.values(
                kind=kind, work_id=work_id, owner=_OWNER, lease_until=until
            ).on_conflict_do_update(
                index_elements=[work_lease.c.kind, work_lease.c.work_id],
                set_={"owner": _OWNER, "lease_until": until},
            )
        )


def renew(engine: sa.Engine, kind: str, work_id: str, seconds: float | None = None) -> bool:
    """Push a lease ``seconds`` ahead; False when it is gone (the work was marked failed)."""
    span = timedelta(seconds=lease_seconds() if seconds is None else seconds)
    with lease_engine(engine).begin() as conn:
        renewed = conn.execute(
            work_lease.update()
            .where(work_lease.c.kind == kind, work_lease.c.work_id == work_id)
            .values(lease_until=_now(conn) + span, owner=_OWNER)
        ).rowcount
    return bool(renewed)


def release(engine: sa.Engine, kind: str, work_ids: Iterable[str]) -> None:
    """Forget the leases of work that ended (done, failed)."""
    ids = list(work_ids)
    if not ids:
        return
    with lease_engine(engine).begin() as conn:
        conn.execute(
            work_lease.delete().where(work_lease.c.kind == kind, work_lease.c.work_id.in_(ids))
        )


def expired(
    engine: sa.Engine,
    kind: str,
    work: Sequence[tuple[str, datetime]],
    seconds: float | None = None,
) -> list[str]:
    """Which of the running ``work`` has a lease that has passed.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store.
    kind : {"batch", "job"}
    work : sequence of (id, created_at)
        Work the store says is running (or queued).
    seconds : float, optional
        The lease time of work without a lease row (from before leases): it counts as leased
        until ``created_at`` plus this. Default :func:`lease_seconds`.

    Returns
    -------
    list of str
        The ids whose lease has passed, in the order given.
    """
    if not work:
        return []
    span = timedelta(seconds=lease_seconds() if seconds is None else seconds)
    ids = [work_id for work_id, _ in work]
    with for_reading(lease_engine(engine)).connect() as conn:
        now = _now(conn)
        leases = dict(
            conn.execute(
                sa.select(work_lease.c.work_id, work_lease.c.lease_until).where(
                    work_lease.c.kind == kind, work_lease.c.work_id.in_(ids)
                )
            ).all()
        )
    out = []
    for work_id, created_at in work:
        until = leases.get(work_id)
        until = _aware(until) if until is not None else _aware(created_at) + span
        if until < now:
            out.append(work_id)
    return out


class LeaseKeeper:
    """A daemon thread renewing one lease every third of the lease time until stopped.

    A renewal that fails (the database unreachable for a moment) is logged and tried again
    at the next tick; a lease found gone (another server marked the work failed) stops the
    thread, and :attr:`lost` says so.
    """

    def __init__(self, engine: sa.Engine, kind: str, work_id: str, seconds: float | None = None):
        self.engine = engine
        self.kind = kind
        self.work_id = work_id
        self.seconds = lease_seconds() if seconds is None else float(seconds)
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LeaseKeeper:
        """Start renewing (nothing on an in-memory store: no other process can see it)."""
        if _in_memory(self.engine):
            return self
        self._thread = threading.Thread(
            target=self._run, name=f"lease-{self.kind}-{self.work_id[:8]}", daemon=True
        )
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not renew(self.engine, self.kind, self.work_id, self.seconds):
                    self.lost = True
                    log.warning(
                        "%s %s: its lease is gone (another server marked it interrupted)",
                        self.kind,
                        self.work_id,
                    )
                    return
            except Exception as exc:  # the database unreachable for a moment: next tick
                log.warning("%s %s: lease not renewed (%s)", self.kind, self.work_id, exc)

    def stop(self) -> None:
        """Stop renewing (the lease row stays until :func:`release`)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.seconds)


@contextmanager
def holding(
    engine: sa.Engine, kind: str, work_id: str, seconds: float | None = None
) -> Iterator[LeaseKeeper]:
    """Keep a lease renewed while the ``with`` block runs, then forget it.

    The lease must have been taken (:func:`take`) before, in the same breath as the work's
    row, so that no other process sees the work without it.
    """
    keeper = LeaseKeeper(engine, kind, work_id, seconds).start()
    try:
        yield keeper
    finally:
        keeper.stop()
        try:
            release(engine, kind, [work_id])
        except Exception as exc:  # expired and swept later: nothing is lost
            log.warning("%s %s: lease not released (%s)", kind, work_id, exc)


_keepers: dict[tuple[str, str], LeaseKeeper] = {}
_keepers_lock = threading.Lock()


def keep(engine: sa.Engine, kind: str, work_id: str, seconds: float | None = None) -> None:
    """Take a lease and keep it renewed from a thread of this process until :func:`drop`."""
    take(engine, kind, work_id, seconds)
    keeper = LeaseKeeper(engine, kind, work_id, seconds).start()
    with _keepers_lock:
        old = _keepers.pop((kind, work_id), None)
        _keepers[(kind, work_id)] = keeper
    if old is not None:
        old.stop()


def drop(engine: sa.Engine, kind: str, work_id: str) -> None:
    """Stop renewing a lease this process keeps (if it does) and forget the lease."""
    with _keepers_lock:
        keeper = _keepers.pop((kind, work_id), None)
    if keeper is not None:
        keeper.stop()
    release(engine, kind, [work_id])
