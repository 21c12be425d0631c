"""Housekeeping when a server or a command starts: private files, interrupted batches, uploads.

- **Private files.** The process's umask becomes 077, so whatever it creates (the store and its
  ``-wal``/``-shm``, MLflow's database and artifacts, uploads, the secret key, jobs' logs) is
  readable by its owner only; what the data folder already holds (made by an older version, or
  by a process with a wider umask) loses its group and other permissions.
- **Interrupted batches.** A batch left ``processing`` by a process of this host that is gone
  is marked failed (:func:`reintegration.store.batches.recover_interrupted`).
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
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from reintegration.store.batches import process_alive, recover_interrupted

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
    """What :func:`at_start` did: paths made private, batches marked failed, uploads removed."""

    made_private: int
    interrupted: int
    uploads_removed: int


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
    )
    if done.made_private or done.interrupted or done.uploads_removed:
        log.info(
            "housekeeping: %d paths made private, %d interrupted batches marked failed, "
            "%d uploads left behind removed",
            done.made_private,
            done.interrupted,
            done.uploads_removed,
        )
    return done


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
