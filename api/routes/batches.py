"""Batches: upload (processed in the background), list, status and report, errors, fixable file.

An enumerator sees their own batches; a role with row-level access and a token for every
country sees all of them. A batch the caller may not see answers 404, as if it did not exist.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from api.deps import CurrentUser, ServicesDep, sees_every_batch
from api.problems import ApiProblem, problem_responses
from api.receive import receive_file
from api.schemas.batches import (
    BatchDetail,
    BatchSummary,
    FileWarning,
    Report,
    RowError,
    UploadAccepted,
    UploadReport,
)
from api.services import Services
from api.uploads import UploadError
from reintegration import batch_views
from reintegration.errors import UnreadableFileError
from reintegration.fixable import fixable_csv
from reintegration.i18n import _, current, use_language
from reintegration.people_csv import csv_lines
from reintegration.reading import SNIFF_BYTES, detect_format
from reintegration.upload_report import outcome, translate
from reintegration.users import User

router = APIRouter(prefix="/batches", tags=["batches"])

PREFIX = "/api/v1/batches"
ERRORS_SHOWN = 100  # rejected cells listed in a batch's report; all of them at /errors
BatchId = Annotated[
    str,
    PathParam(
        description="The batch's id (a UUID).",
        min_length=1,
        max_length=36,
        pattern=r"^[0-9A-Za-z-]+$",
    ),
]
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "A canonical CSV, XLSX or JSON lines batch, or a "
                            "Kobo or ODK Central export of the shipped form.",
                        },
                        "consent_recorded_elsewhere": {
                            "type": "string",
                            "enum": ["true", "false"],
                            "default": "false",
                            "description": "true: consent was recorded outside the form, so "
                            "a file without a consent column is accepted (the declaration is "
                            "audited with the batch). Without it such a file is refused.",
                        },
                    },
                }
            }
        },
    }
}


def _status_url(batch_id: str) -> str:
    return f"{PREFIX}/{batch_id}"


def _visible(services: Services, user: User, batch_id: str) -> dict[str, Any]:
    found = batch_views.get_batch(services.engine, batch_id)
    if found is None:
        upload = services.uploads.get(batch_id)
        if upload is not None and upload.user.name == user.name:
            raise ApiProblem(
                404, _("batch {batch} is being recorded; ask again in a moment", batch=batch_id)
            )
    if found is None or not (found["uploader"] == user.name or sees_every_batch(user)):
        raise ApiProblem(
            404, _("there is no batch {batch} that this token may see", batch=batch_id)
        )
    return found


def _in_language(issue: dict[str, Any]) -> dict[str, Any]:
    """A stored row issue or warning with its message in the request's language (row,
    column and value stay as the file wrote them)."""
    return {**issue, "message": translate(issue["message"])}


def _report(stored: dict[str, Any]) -> Report:
    return Report(
        errors=[RowError(**_in_language(e)) for e in stored["errors"][:ERRORS_SHOWN]],
        errors_total=stored["errors_total"],
        warnings=[FileWarning(**_in_language(w)) for w in stored["warnings"][:ERRORS_SHOWN]],
        warnings_total=stored["warnings_total"],
        ignored_columns=stored["ignored_columns"],
        missing_columns=stored["missing_columns"],
        dropped_identifier_columns=stored["dropped_identifier_columns"],
    )


@router.post(
    "",
    status_code=202,
    response_model=UploadAccepted,
    summary="Upload a batch",
    openapi_extra=UPLOAD_BODY,
    responses={
        201: {"model": UploadReport, "description": "Done within ?wait: the report."},
        **problem_responses(413, 415, 422, 503),
    },
)
async def upload_batch(
    request: Request,
    services: ServicesDep,
    user: CurrentUser,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=600,
            description="Seconds to wait for the batch to finish; done in time: 201 and the "
            "report.",
        ),
    ] = 0,
) -> Any:
    """Upload a batch file in the multipart field ``file``: 202 and a status URL at once, or
    201 with the report when it is done within ``?wait`` seconds. Rows of countries outside
    the token's are rejected row by row, and so are rows whose consent is not ``yes``. A file
    without a consent column fails unless the field ``consent_recorded_elsewhere`` is
    ``true``."""
    limit = services.settings.max_upload_mb
    received = await receive_file(
        request, limit_mb=limit, folder=services.settings.home / "uploads"
    )
    try:
        declared = _declared(received.fields.get("consent_recorded_elsewhere"))
    except ValueError as exc:
        received.discard()
        raise ApiProblem(422, str(exc)) from None
    with received.path.open("rb") as fh:
        empty = not fh.read(SNIFF_BYTES).strip()
    if empty:
        received.discard()
        raise ApiProblem(
            422, _("{file} is empty; send the batch's rows in it", file=received.file_name)
        )
    try:
        detect_format(received.path)
    except UnreadableFileError as exc:
        received.discard()
        raise ApiProblem(
            415, _("{reason}; send a CSV, XLSX or JSON lines file", reason=translate(str(exc)))
        ) from None
    try:
        batch_id = await anyio.to_thread.run_sync(
            partial(services.uploads.submit, consent_recorded_elsewhere=declared),
            received.path,
            received.file_name,
            user,
        )
    except UploadError as exc:
        received.discard()
        if exc.internal:
            raise ApiProblem(
                503,
                _("the upload could not be recorded because of a server problem; send it again"),
            ) from None
        raise ApiProblem(422, translate(str(exc))) from None
    accepted = UploadAccepted(
        batch_id=batch_id, status="processing", status_url=_status_url(batch_id)
    )
    headers = {"Location": accepted.status_url}
    if wait <= 0:
        return JSONResponse(accepted.model_dump(), status_code=202, headers=headers)
    upload = await anyio.to_thread.run_sync(services.uploads.wait, batch_id, wait)
    if upload is None:
        return JSONResponse(accepted.model_dump(), status_code=202, headers=headers)
    if upload.report is None:
        raise ApiProblem(
            503 if upload.internal else 422,
            _(
                "batch {batch} failed, nothing was stored: {reason}",
                batch=batch_id,
                reason=translate(upload.error or ""),
            ),
            batch_id=batch_id,
            status_url=accepted.status_url,
        )
    report = upload.report.to_json()
    body = UploadReport(
        **{k: report[k] for k in ("received", "accepted", "rejected", "duplicate", "updated")},
        batch_id=batch_id,
        status="done",
        status_url=accepted.status_url,
        summary=outcome({**report, "status": "done"}),
        **_report(report).model_dump(),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=201, headers=headers)


@router.get("", response_model=list[BatchSummary], summary="List batches")
def list_batches(
    services: ServicesDep,
    user: CurrentUser,
    uploader: Annotated[
        str | None, Query(max_length=200, description="Only this uploader's.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[BatchSummary]:
    """Batches, newest first. An enumerator (or any token limited to some countries) sees
    only their own."""
    if not sees_every_batch(user):
        if uploader is not None and uploader != user.name:
            return []
        uploader = user.name
    rows = batch_views.list_batches(services.engine, uploader=uploader, limit=limit, offset=offset)
    return [
        BatchSummary(**row, summary=outcome(row), status_url=_status_url(row["id"])) for row in rows
    ]


@router.get(
    "/{batch_id}",
    response_model=BatchDetail,
    summary="A batch's status, progress and report",
    responses=problem_responses(404),
)
def get_batch(services: ServicesDep, user: CurrentUser, batch_id: BatchId) -> BatchDetail:
    """Status (processing, done, failed), progress while processing, counts and report; the
    report lists the first rejected cells, all of them are at ``/errors``."""
    found = _visible(services, user, batch_id)
    progress = services.uploads.progress(batch_id)
    if progress is None:
        progress = 1.0 if found["status"] != "processing" else None
    summary = {k: v for k, v in found.items() if k != "report"}
    return BatchDetail(
        **summary,
        summary=outcome(found),
        status_url=_status_url(batch_id),
        progress=progress,
        report=_report(found["report"]),
        errors_url=f"{_status_url(batch_id)}/errors",
        rejected_url=f"{_status_url(batch_id)}/rejected",
    )


ERRORS_CSV = ("row", "column", "value", "message")


@router.get(
    "/{batch_id}/errors",
    response_model=list[RowError],
    summary="A batch's rejected cells",
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **problem_responses(404),
    },
)
def get_batch_errors(
    request: Request, services: ServicesDep, user: CurrentUser, batch_id: BatchId
) -> Any:
    """Every rejected cell in row order, as JSON, or as CSV with ``Accept: text/csv``
    (formula-safe: a cell a spreadsheet would run gets a leading apostrophe)."""
    _visible(services, user, batch_id)
    # Streamed a page at a time from the store: a batch may have a million rejected cells.
    # The pages are read in worker threads: each message is put in this request's language.
    language = current()

    def in_language(issue: dict[str, Any]) -> dict[str, Any]:
        with use_language(language):
            return _in_language(issue)

    errors = map(in_language, batch_views.batch_errors(services.engine, batch_id))
    if _wants_csv(request):
        lines = csv_lines([ERRORS_CSV, *([e[k] for k in ERRORS_CSV] for e in errors)])
        return StreamingResponse(
            iterate_in_threadpool(lines),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{batch_id}-errors.csv"'},
        )
    return StreamingResponse(
        iterate_in_threadpool(batch_views.json_array(errors)), media_type="application/json"
    )


@router.get(
    "/{batch_id}/rejected",
    summary="A batch's rejected rows as a fixable file",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "The rejected rows as sent (case number replaced by the returnee's "
            "key) with an error column; fix and upload again.",
        },
        **problem_responses(404),
    },
)
def get_batch_rejected(services: ServicesDep, user: CurrentUser, batch_id: BatchId) -> Response:
    """The rejected rows as a CSV to fix and upload again: cells as sent, the case number
    replaced by the returnee's key, and an ``error`` column; formula-safe."""
    found = _visible(services, user, batch_id)
    rows = batch_views.batch_rejected(services.engine, batch_id)
    # Header values must be Latin-1 and unquoted: keep a plain ASCII name.
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(found["file_name"]).stem).strip("._") or "batch"
    return Response(
        fixable_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{stem}-rejected.csv"'},
    )


def _declared(value: str | None) -> bool:
    """The form field ``consent_recorded_elsewhere``: absent or ``false`` is False."""
    text = (value or "").strip().lower()
    if text in ("", "false"):
        return False
    if text == "true":
        return True
    raise ValueError(_("the field consent_recorded_elsewhere must be true or false"))


def _wants_csv(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept
