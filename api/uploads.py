"""Uploads processed in the background: the API and the dashboard's upload page share them.

:meth:`Uploads.submit` starts the ingest of a received file in a worker thread and answers
with the batch id as soon as the batch record exists; :meth:`Uploads.progress` and
:meth:`Uploads.wait` follow it. After a successful ingest the models' ``after_batch`` hook
runs (drift and risk rows), then the upload counts as finished.

``ingest_file`` makes the batch id itself and stores the record before it reads a row. To
learn the id, each upload's ingest runs on an engine view carrying a ticket, and a listener
on the engine notes the id of the batch record inserted under that ticket. On SQLite the
record waits for the write lock like every write, so an upload that arrives while another
batch is being stored gets its id when that batch is done.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import event

from api.champions import ChampionUnavailable
from reintegration.errors import ReintegrationError
from reintegration.index import ReintegrationIndex
from reintegration.ingest import BatchReport, ingest_file
from reintegration.questionnaire import Questionnaire
from reintegration.reading import detect_format
from reintegration.store.schema import batch as batch_table
from reintegration.users import User

log = logging.getLogger(__name__)

TICKET = "reintegration_upload_ticket"
FINISHED_KEPT = 1000  # finished uploads remembered for progress and wait()
DECLARE_WITH_FIELD = "send the form field consent_recorded_elsewhere=true with the file"


class ChampionSource(Protocol):
    """Where the current index comes from (``models.serving.Champions`` or a stand-in)."""

    def index(self) -> tuple[ReintegrationIndex, str, int | None]: ...

    def risk(self) -> tuple[Any, int] | None: ...

    def refresh(self) -> None: ...


AfterBatch = Callable[[sa.Engine, str, Any], Any]


@dataclass
class Upload:
    """One upload in flight: its ticket, then its batch id, progress and outcome."""

    ticket: str
    path: Path
    file_name: str
    user: User
    total_rows: int | None
    consent_recorded_elsewhere: bool = False
    declare_with: str = ""
    rows_read: int = 0
    batch_id: str | None = None
    report: BatchReport | None = None
    error: str | None = None
    internal: bool = False
    known: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def advance(self, rows: int) -> None:
        self.rows_read = rows


class UploadError(ReintegrationError):
    """An upload ended before its batch record existed (nothing was stored).

    ``internal`` says the cause was the server's (the store failed), not the file's.
    """

    def __init__(self, message: str, *, internal: bool = False) -> None:
        super().__init__(message)
        self.internal = internal


class Uploads:
    """Ingests received files in background threads.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store.
    questionnaire : Questionnaire
    champions : ChampionSource
        ``.index()`` gives the scorer of each batch and its registry version.
    secret : callable
        Returns the key of the HMAC that pseudonymises case numbers.
    after_batch : callable, optional
        ``after_batch(engine, batch_id, champions)``, run after every successful ingest;
        its failure is logged and leaves the batch done.
    max_rows : int, optional
        Most data rows an uploaded file may hold (default ``REINTEGRATION_MAX_ROWS`` of the
        environment; the server passes its own settings').
    """

    def __init__(
        self,
        engine: sa.Engine,
        questionnaire: Questionnaire,
        champions: ChampionSource,
        *,
        secret: Callable[[], bytes],
        after_batch: AfterBatch | None = None,
        max_rows: int | None = None,
    ) -> None:
        self.engine = engine
        self.max_rows = max_rows
        self.questionnaire = questionnaire
        self.champions = champions
        self.secret = secret
        self.after_batch = after_batch
        self.on_stored: Callable[[], None] | None = None  # told when a batch is stored
        self.on_finished: Callable[[], None] | None = None  # ... and when its hook has run
        self._lock = threading.Lock()
        self._by_ticket: dict[str, Upload] = {}
        self._by_batch: OrderedDict[str, Upload] = OrderedDict()
        self._threads: set[threading.Thread] = set()
        event.listen(engine, "after_execute", self._note_batch_record)

    def close(self, timeout: float | None = None) -> None:
        """Stop listening, and wait for the uploads in flight (at most ``timeout`` each)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        if event.contains(self.engine, "after_execute", self._note_batch_record):
            event.remove(self.engine, "after_execute", self._note_batch_record)

    def _note_batch_record(
        self,
        conn: sa.Connection,
        clause: Any,
        multiparams: Any,
        params: Any,
        execution_options: dict[str, Any],
        result: Any,
    ) -> None:
        ticket = execution_options.get(TICKET)
        if ticket is None or not isinstance(clause, sa.Insert) or clause.table is not batch_table:
            return
        with self._lock:
            upload = self._by_ticket.get(ticket)
            if upload is None or upload.batch_id is not None:
                return
            upload.batch_id = str(clause.compile().params["id"])
            self._by_batch[upload.batch_id] = upload

        # The record is visible to others once its transaction commits, right after this.
        def committed(_conn: sa.Connection) -> None:
            upload.known.set()

        event.listen(conn, "commit", committed, once=True)

    def submit(
        self,
        path: Path,
        file_name: str,
        user: User,
        *,
        consent_recorded_elsewhere: bool = False,
        declare_with: str = DECLARE_WITH_FIELD,
    ) -> str:
        """Start ingesting ``path`` (which the upload now owns and removes when done).

        Parameters
        ----------
        path : Path
            The received file, alone in a folder of its own (the folder is removed too).
        file_name : str
            The name the client gave it (recorded with the batch).
        user : User
            The uploader; a token limited to some countries has other countries' rows, sent
            or stored, rejected row by row.
        consent_recorded_elsewhere : bool, default False
            The uploader declares that consent was recorded outside the form (a file
            without a consent column is refused otherwise); audited with the batch.
        declare_with : str, optional
            How this uploader declares it, named in the refusal of a file without a consent
            column (default: the API's form field).

        Returns
        -------
        str
            The batch id.

        Raises
        ------
        UploadError
            When the ingest stopped before its batch record existed.
        """
        upload = Upload(
            ticket=uuid.uuid4().hex,
            path=path,
            file_name=file_name,
            user=user,
            total_rows=_estimate_rows(path),
            consent_recorded_elsewhere=consent_recorded_elsewhere,
            declare_with=declare_with,
        )
        with self._lock:
            self._by_ticket[upload.ticket] = upload
        thread = threading.Thread(
            target=self._run, args=(upload,), name=f"upload-{upload.ticket[:8]}", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._by_ticket.pop(upload.ticket, None)
                self._threads.discard(thread)
            shutil.rmtree(path.parent, ignore_errors=True)  # no batch will end to remove it
            raise
        # Set when the batch record is committed, or when the ingest ended without one.
        upload.known.wait()
        if upload.batch_id is None:
            raise UploadError(
                upload.error or "the upload stopped before it was recorded",
                internal=upload.internal,
            )
        return upload.batch_id

    def _run(self, upload: Upload) -> None:
        try:
            index, _label, version = self.champions.index()
            upload.report = ingest_file(
                upload.path,
                self.engine.execution_options(**{TICKET: upload.ticket}),
                scorer=index,
                questionnaire=self.questionnaire,
                secret=self.secret(),
                uploader=upload.user,
                file_name=upload.file_name,
                model_version=version,
                progress=upload.advance,
                consent_recorded_elsewhere=upload.consent_recorded_elsewhere,
                declare_with=upload.declare_with,
                max_rows=self.max_rows,
            )
            # The batch has ended: its raw file (case numbers included) goes before the hook.
            shutil.rmtree(upload.path.parent, ignore_errors=True)
            self._stored()
            self._after(upload.report.batch_id)
            self._stored()  # the hook's risk rows count too
            if self.on_finished is not None:
                self.on_finished()
        except ChampionUnavailable as exc:  # nothing was recorded: the server's problem
            upload.error = str(exc)
            upload.internal = True
        except ReintegrationError as exc:
            upload.error = str(exc)  # the batch record says failed, with this reason
        except Exception as exc:  # the ingest logged it; the batch record says failed
            upload.error = f"internal error ({type(exc).__name__})"
            upload.internal = True
            log.error("upload %s: %s", upload.batch_id or upload.ticket, upload.error)
        finally:
            shutil.rmtree(upload.path.parent, ignore_errors=True)  # whatever the outcome
            with self._lock:
                self._by_ticket.pop(upload.ticket, None)
                while len(self._by_batch) > FINISHED_KEPT:
                    self._by_batch.popitem(last=False)
                self._threads.discard(threading.current_thread())
            upload.known.set()
            upload.done.set()

    def _stored(self) -> None:
        if self.on_stored is not None:
            self.on_stored()

    def _after(self, batch_id: str) -> None:
        if self.after_batch is None:
            return
        try:
            self.after_batch(self.engine, batch_id, self.champions)
        except Exception:
            log.exception("batch %s: the after-batch hook failed; the batch is stored", batch_id)

    def get(self, batch_id: str) -> Upload | None:
        """The upload of a batch submitted through this object, while it is remembered."""
        with self._lock:
            return self._by_batch.get(batch_id)

    def progress(self, batch_id: str) -> float | None:
        """Share of the batch's rows read (1.0 when finished); None for a batch not known here."""
        upload = self.get(batch_id)
        if upload is None:
            return None
        if upload.done.is_set():
            return 1.0
        if not upload.total_rows:
            return 0.0
        return min(0.99, upload.rows_read / upload.total_rows)

    def wait(self, batch_id: str, timeout: float) -> Upload | None:
        """Wait up to ``timeout`` seconds for the upload to finish; None if it has not."""
        upload = self.get(batch_id)
        if upload is None:
            return None
        return upload if upload.done.wait(timeout) else None


def _estimate_rows(path: Path) -> int | None:
    """Rows of a text file (its line count less the header); None for workbooks and zips."""
    try:
        fmt = detect_format(path)
        if fmt not in ("csv", "jsonl"):
            return None
        lines = 0
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                lines += block.count(b"\n")
    except (ReintegrationError, OSError):
        return None  # the ingest will say what is wrong with the file
    return max(lines - (1 if fmt == "csv" else 0), 1)
