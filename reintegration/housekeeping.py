"""Housekeeping when a server or a command starts: private files, interrupted batches, uploads.

- **Private files.** The process's umask becomes 077, so whatever it creates (the store and its
  ``-wal``/``-shm``, MLflow's database and artifacts, uploads, the secret key, jobs' logs) is
  readable by its owner only; what the data folder already holds (made by an older version, or
  by a process with a wider umask) loses its group and other permissions.
- **Interrupted work.** A batch left ``processing``, or a job left queued or running, whose
  lease has passed (its process, on this machine or another, stopped renewing it) is marked
  failed (:func:`reintegration.store.batches.recover_interrupted`,
  :func:`reintegration.store.jobs.recover_jobs`): at start, and in a server every sixth of
  the lease time from a thread (:class:`Sweeper`), so dead work is failed at most the lease
  time and a sixth after its last renewal.
- **One key per database.** A server or command that pseudonymises with the key checks it
  against the fingerprint in the database (:func:`verified_key`).
- **Uploads left behind.** An upload is received into a folder of its own under
  ``<home>/uploads``, named after the process receiving it (:func:`new_upload_folder`); the
  upload removes it when its batch ends, whatever the outcome. A process that died (a crash,
  SIGKILL) cannot, so at start a folder whose process is gone is removed. A folder of another
  host, or not named so, is removed once nothing has been written to it for
  ``ORPHAN_AGE_S``: no upload of this host can vouch that it is still in use. A live upload
  (another server, or a command started while a server receives a file) is never removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from reintegration.settings import Settings
from reintegration.store.batches import process_alive, recover_interrupted
from reintegration.store.identity import check_secret_key
from reintegration.store.jobs import recover_jobs
from reintegration.store.leases import lease_seconds

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
UPLOADS = "uploads"
# Far longer than an upload stays idle: a file arriving is written to as it comes, then it
# waits at most the store's busy timeout (ten minutes) for the write lock and is stored in
# minutes; a folder nothing has been written to for this long belongs to nobody.
ORPHAN_AGE_S = 3600.0
_NOT_PRIVATE = 0o077
_FOLDER = re.compile(r"upload\.(?P<pid>\d+)\.(?P<host>[0-9a-f]{12})\.")


@dataclass(frozen=True)
class Housekeeping:
    """What :func:`at_start` did: paths made private, batches and jobs marked failed, uploads
    removed."""

    made_private: int
    interrupted: int
    uploads_removed: int
    jobs_interrupted: int = 0


def keep_private() -> None:
    """From now on, files and folders this process creates are its owner's only (umask 077).

    The umask is the process's: call it where a process starts (the command line, a server).
    """
    os.umask(PRIVATE_UMASK)


def make_private(home: Path) -> int:
    """Take group and other permissions off ``home`` and everything in it.

    Parameters
    ----------
    home : Path
        The data folder (``REINTEGRATION_HOME``); nothing happens when it does not exist (a
        command on PostgreSQL may never need it). Symbolic links are not followed.

    Returns
    -------
    int
        How many files and folders had to change.
    """
    if not home.is_dir():
        return 0
    changed = 0
    for folder, folders, files in os.walk(home):
        for name in (".", *folders, *files):
            path = Path(folder, name)
            try:
                mode = path.lstat().st_mode
                if stat.S_ISLNK(mode) or not mode & _NOT_PRIVATE:
                    continue
                path.chmod(stat.S_IMODE(mode) & ~_NOT_PRIVATE)
            except OSError as exc:  # gone meanwhile, or not ours: say so and go on
                if not isinstance(exc, FileNotFoundError):
                    log.warning("could not make %s private (%s)", path, exc.strerror or exc)
                continue
            changed += 1
    return changed


def new_upload_folder(uploads: Path) -> Path:
    """A new folder for one received upload, named after this process.

    Parameters
    ----------
    uploads : Path
        The uploads folder (``<home>/uploads``), created if needed.

    Returns
    -------
    Path
        ``uploads/upload.<pid>.<host tag>.<random>``, mode 0700.
    """
    uploads.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"upload.{os.getpid()}.{_host_tag()}.", dir=uploads))


def remove_orphan_uploads(uploads: Path, *, now: float | None = None) -> int:
    """Remove what is left in the uploads folder by processes that are gone.

    Parameters
    ----------
    uploads : Path
        The uploads folder (``<home>/uploads``); nothing happens when it does not exist.
    now : float, optional
        The time to measure ages from (seconds since the epoch; default: now).

    Returns
    -------
    int
        How many folders and files were removed.
    """
    if not uploads.is_dir():
        return 0
    now = time.time() if now is None else now
    removed = 0
    for entry in uploads.iterdir():
        try:
            if _in_use(entry, now):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:
            continue  # its upload ended meanwhile and removed it
        except OSError as exc:
            log.warning("could not remove an upload left behind (%s)", exc.strerror or exc)
            continue
        removed += 1
    return removed


def at_start(home: Path, engine: sa.Engine) -> Housekeeping:
    """The housekeeping of a server or a command that opens the store.

    Parameters
    ----------
    home : Path
        The data folder (``REINTEGRATION_HOME``).
    engine : sqlalchemy.Engine
        The app's store, migrated.

    Returns
    -------
    Housekeeping
        Counts of what was done (logged too; never a name or a path's contents).
    """
    keep_private()
    done = Housekeeping(
        made_private=make_private(home),
        interrupted=recover_interrupted(engine),
        uploads_removed=remove_orphan_uploads(home / UPLOADS),
        jobs_interrupted=recover_jobs(engine),
    )
    if done.made_private or done.interrupted or done.uploads_removed or done.jobs_interrupted:
        log.info(
            "housekeeping: %d paths made private, %d interrupted batches and %d jobs marked "
            "failed, %d uploads left behind removed",
            done.made_private,
            done.interrupted,
            done.jobs_interrupted,
            done.uploads_removed,
        )
    return done


def verified_key(settings: Settings, engine: sa.Engine) -> bytes:
    """The pseudonymisation key, checked against the database's fingerprint of it.

    Parameters
    ----------
    settings : Settings
        This process's settings.
    engine : sqlalchemy.Engine
        The app's store, migrated.

    Returns
    -------
    bytes
        The key (:meth:`Settings.secret_key_bytes`); its fingerprint is recorded when the
        database has none.

    Raises
    ------
    ConfigurationError
        No usable key (production without one), or a key other than the one the database
        was first used with (every server sharing a database needs the same
        ``REINTEGRATION_SECRET_KEY``).
    """
    key = settings.secret_key_bytes()
    source = (
        ""
        if settings.secret_key is not None
        else f"the development key file {settings.secret_file}"
    )
    check_secret_key(engine, key, source=source)
    return key


class Sweeper:
    """A server's housekeeping thread: marks failed the batches and jobs whose lease passed.

    It runs every sixth of the lease time (``REINTEGRATION_LEASE_SECONDS``): one read of the
    unfinished batches and jobs each time, a write only when some lease passed.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store.
    every : float, optional
        Seconds between two sweeps (default a sixth of the lease time, at least one second).
    """

    def __init__(self, engine: sa.Engine, every: float | None = None) -> None:
        self.engine = engine
        self.every = max(lease_seconds() / 6, 1.0) if every is None else float(every)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="housekeeping", daemon=True)

    def start(self) -> Sweeper:
        """Start sweeping in a daemon thread."""
        self._thread.start()
        return self

    def sweep(self) -> tuple[int, int]:
        """One sweep now: (batches, jobs) marked failed."""
        batches = recover_interrupted(self.engine)
        jobs = recover_jobs(self.engine)
        if batches or jobs:
            log.info(
                "housekeeping: %d interrupted batches and %d jobs marked failed", batches, jobs
            )
        return batches, jobs

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.sweep()
            except Exception as exc:  # the database unreachable for a moment: next time
                log.warning("housekeeping: interrupted work not checked (%s)", exc)

    def stop(self) -> None:
        """Stop sweeping (waits for a sweep under way)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)


def _host_tag() -> str:
    # A hash: host names may hold characters a folder name should not, and it has one length.
    return hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:12]


def _in_use(entry: Path, now: float) -> bool:
    """Whether an entry of the uploads folder may belong to an upload still running."""
    written = _last_written(entry)
    named = _FOLDER.match(entry.name)
    if named and named["host"] == _host_tag():
        # Made by that process, so it started before the folder was last written to (mtime:
        # unlike ctime, a chmod by make_private does not move it).
        return process_alive(int(named["pid"]), since=entry.lstat().st_mtime)
    return now - written < ORPHAN_AGE_S


def _last_written(entry: Path) -> float:
    latest = entry.lstat().st_mtime
    if entry.is_dir() and not entry.is_symlink():
        for inner in entry.iterdir():
            with contextlib.suppress(FileNotFoundError):
                latest = max(latest, inner.lstat().st_mtime)
    return latest
