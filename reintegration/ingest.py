"""Ingest a batch file: validate every row, store the good ones once, explain the bad ones.

One function, :func:`ingest_file`, serves the CLI and the API. A batch's accepted rows are
committed together or not at all: the batch record is committed first (status
``processing``, leased to this process, which renews the lease from a thread while it works:
:mod:`reintegration.store.leases`), the rows in one transaction that also marks the batch
done. A process killed in between leaves only the record; once its lease passes, the next
ingest or any server's housekeeping marks it failed ("interrupted").
Writers take the store's write lock for the whole transaction (SQLite ``BEGIN IMMEDIATE``,
a PostgreSQL advisory lock), so concurrent ingests of overlapping files queue and never store
an interview twice.

Idempotency (DESIGN.md, "Identity"): an interview whose content equals any stored version is
a duplicate and changes nothing; new content is an update, stored as the new current version
with the old ones kept. Inside one file, a later row with the same identity and new content
updates the earlier one.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reintegration.coding import RowIssue, check_consent, check_required
from reintegration.errors import ReintegrationError
from reintegration.index import ReintegrationIndex
from reintegration.prepare import prepare_chunk
from reintegration.questionnaire import Questionnaire
from reintegration.reading import BatchReader, FileNote
from reintegration.roles import Role
from reintegration.settings import get_settings
from reintegration.store import batches as store
from reintegration.store import leases
from reintegration.store.issues import IssueLog
from reintegration.store.writer import BatchWriter
from reintegration.users import User

log = logging.getLogger(__name__)

# Ingest holds several derived columns per row besides the text it reads, so it streams any
# CSV beyond this size in blocks; memory stays bounded whatever the size of the file.
STREAM_ABOVE_BYTES = 32 << 20
STREAM_BLOCK_BYTES = 16 << 20  # about 45,000 rows of the canonical format


REPORT_KEPT = 100
"""Errors, and warnings, a report holds (and the batch record keeps); all of them are in the
store's ``batch_issue`` table (:func:`reintegration.batch_views.batch_errors`)."""


@dataclass
class BatchReport:
    """What an ingest did, with the keys of DESIGN.md's ``--json`` output.

    ``errors`` and ``warnings`` hold the first :data:`REPORT_KEPT` of each (so a file of a
    million rejected rows is not held whole); ``errors_total`` and ``warnings_total`` count
    them all, and the store has every one.
    """

    batch_id: str
    status: str = "processing"
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicate: int = 0
    updated: int = 0
    errors: list[RowIssue] = field(default_factory=list)
    warnings: list[FileNote] = field(default_factory=list)
    errors_total: int = 0
    warnings_total: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    dropped_identifier_columns: list[str] = field(default_factory=list)

    def note_errors(self, found: Sequence[RowIssue]) -> None:
        """Count ``found`` and keep it while fewer than :data:`REPORT_KEPT` are kept."""
        self.errors.extend(found[: max(REPORT_KEPT - len(self.errors), 0)])
        self.errors_total += len(found)

    def note_warnings(self, found: Sequence[FileNote]) -> None:
        """Count ``found`` and keep it while fewer than :data:`REPORT_KEPT` are kept."""
        self.warnings.extend(found[: max(REPORT_KEPT - len(self.warnings), 0)])
        self.warnings_total += len(found)

    def to_json(self) -> dict[str, Any]:
        """The report as DESIGN.md's JSON: counts, the kept errors and warnings with their
        totals, and column findings."""
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "received": self.received,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicate": self.duplicate,
            "updated": self.updated,
            "errors": [
                {"row": e.row, "column": e.column, "value": e.value, "message": e.message}
                for e in self.errors
            ],
            "errors_total": self.errors_total,
            "warnings": [
                {"row": w.row, "column": w.column, "message": w.message} for w in self.warnings
            ],
            "warnings_total": self.warnings_total,
            "ignored_columns": list(self.ignored_columns),
            "missing_columns": list(self.missing_columns),
            "dropped_identifier_columns": list(self.dropped_identifier_columns),
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def ingest_file(
    path: Path | str,
    engine: sa.Engine,
    *,
    scorer: ReintegrationIndex,
    questionnaire: Questionnaire,
    secret: bytes,
    uploader: User | str,
    file_name: str | None = None,
    model_version: int | None = None,
    progress: Callable[[int], None] | None = None,
    timings: dict[str, float] | None = None,
    consent_recorded_elsewhere: bool = False,
    declare_with: str = "--consent-recorded-elsewhere",
    max_rows: int | None = None,
) -> BatchReport:
    """Validate, code, score and store a batch file; return its report.

    Parameters
    ----------
    path : path-like
        Canonical CSV/XLSX/JSON lines, or a Kobo or ODK export of the shipped form.
    engine : sqlalchemy.Engine
        The app's store, migrated.
    scorer : ReintegrationIndex
        The current index version; every stored score names its label.
    questionnaire : Questionnaire
    secret : bytes
        Key of the HMAC that pseudonymises case numbers.
    uploader : User or str
        Who uploads (audited). A user limited to some countries has rows of other countries
        rejected row by row, and rows whose returnee or interview is stored under another
        country too; the report names stored dates, sexes and return types only to a user
        with row-level access to every country. A name alone stands for a local process
        acting as an admin for every country, as the CLI does.
    file_name : str, optional
        The name to record (default: the file's own name).
    model_version : int, optional
        The registry version of ``scorer``, if it came from the registry.
    progress : callable, optional
        Called with the number of rows read so far.
    timings : dict, optional
        Filled with the seconds spent reading and preparing rows (``prepare``: parse, validate,
        code, score) and storing them (``store``), for benchmarks.
    consent_recorded_elsewhere : bool, default False
        The uploader declares that consent was recorded outside the form: a file without a
        consent column is then accepted, and the declaration is audited with the batch. A
        file with the column is checked row by row either way.
    declare_with : str, default "--consent-recorded-elsewhere"
        How this uploader makes that declaration, named in the refusal of a file without
        a consent column.
    max_rows : int, optional
        Most data rows the file may hold (default ``REINTEGRATION_MAX_ROWS``); a longer file
        is refused as soon as reading passes that row, and nothing of it is stored.

    Raises
    ------
    UnreadableFileError, MissingColumnsError
        Nothing was stored; the batch record says failed, with the reason
        (:class:`~reintegration.errors.ConsentColumnError` for a file without a consent
        column and no declaration).
    """
    path = Path(path)
    user = uploader if isinstance(uploader, User) else User(uploader, Role.ADMIN, None)
    store.recover_interrupted(engine)
    batch_id = str(uuid.uuid4())
    store.start_batch(
        engine,
        id=batch_id,
        uploader=user.name,
        file_name=file_name or path.name,
        sha256=file_sha256(path),
    )
    log.info("batch %s: started", batch_id)
    # Renewed until the batch ends; released once its status says how (mark_failed releases
    # it), so no other process ever sees the batch processing without a lease.
    keeper = leases.LeaseKeeper(engine, "batch", batch_id).start()
    try:
        report = _ingest(
            path,
            engine,
            batch_id,
            scorer,
            questionnaire,
            secret,
            user,
            model_version,
            progress,
            timings if timings is not None else {},
            consent_recorded_elsewhere,
            declare_with,
            max_rows if max_rows is not None else get_settings().max_rows,
        )
    except ReintegrationError as exc:
        keeper.stop()
        store.mark_failed(engine, batch_id, str(exc), user.name)
        log.info("batch %s: failed (%s)", batch_id, type(exc).__name__)
        raise
    except BaseException as exc:
        keeper.stop()
        store.mark_failed(engine, batch_id, f"internal error ({type(exc).__name__})", user.name)
        log.exception("batch %s: internal error", batch_id)
        raise
    finally:
        keeper.stop()
    leases.release(engine, "batch", [batch_id])
    log.info(
        "batch %s: done, %d received, %d accepted, %d rejected, %d duplicate, %d updated",
        batch_id,
        report.received,
        report.accepted,
        report.rejected,
        report.duplicate,
        report.updated,
    )
    return report


def _ingest(
    path: Path,
    engine: sa.Engine,
    batch_id: str,
    scorer: ReintegrationIndex,
    questionnaire: Questionnaire,
    secret: bytes,
    uploader: User,
    model_version: int | None,
    progress: Callable[[int], None] | None,
    timings: dict[str, float],
    consent_recorded_elsewhere: bool,
    declare_with: str,
    max_rows: int,
) -> BatchReport:
    timings.update(prepare=0.0, store=0.0)
    clock = time.perf_counter()
    reader = BatchReader(
        path,
        questionnaire,
        stream_above=STREAM_ABOVE_BYTES,
        block_bytes=STREAM_BLOCK_BYTES,
        max_rows=max_rows,
    )
    layout = reader.layout
    check_required(layout, questionnaire, "ingest")
    check_consent(layout, questionnaire, consent_recorded_elsewhere, declare_with)
    report = BatchReport(
        batch_id=batch_id,
        ignored_columns=list(layout.ignored),
        missing_columns=list(layout.missing_columns),
        dropped_identifier_columns=list(layout.dropped_identifier_columns),
    )
    with engine.begin() as conn:
        store.lock_for_ingest(conn)
        writer = BatchWriter(conn, batch_id, scorer, questionnaire, model_version, uploader)
        issues = IssueLog(conn, batch_id)
        try:
            keys: dict[str, str] = {}  # case number -> returnee key, for this batch only
            issues.add("warning", layout.notes)
            report.note_warnings(layout.notes)
            for chunk in reader.chunks():
                prepared = prepare_chunk(
                    chunk,
                    layout,
                    questionnaire,
                    scorer,
                    secret,
                    countries=uploader.countries,
                    key_cache=keys,
                )
                timings["prepare"] += time.perf_counter() - clock
                clock = time.perf_counter()
                counts = writer.write(prepared)
                report.received += chunk.num_rows
                report.accepted += counts.accepted
                report.rejected += counts.rejected
                report.duplicate += counts.duplicate
                report.updated += counts.updated
                # Written as found and only the first kept: a chunk's issues go with it.
                issues.add("error", prepared.issues)
                issues.add("warning", prepared.notes)
                report.note_errors(prepared.issues)
                report.note_warnings(prepared.notes)
                if progress is not None:
                    progress(report.received)
                timings["store"] += time.perf_counter() - clock
                clock = time.perf_counter()
            last = writer.finish()
            issues.add("warning", last)
            report.note_warnings(last)
        finally:
            writer.close()
        report.status = "done"
        store.complete_batch(
            conn,
            batch_id,
            report.to_json(),
            uploader.name,
            layout.fmt,
            writer.form_version,
            consent_recorded_elsewhere=consent_recorded_elsewhere,
        )
    timings["store"] += time.perf_counter() - clock
    return report
