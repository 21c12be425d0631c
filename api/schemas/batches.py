"""Bodies of the batch routes: the upload's answers, batch summaries and reports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class RowError(BaseModel):
    """A rejected cell: the spreadsheet row, the column as the file names it, and why."""

    row: int | None
    column: str | None
    value: str | None
    message: str


class FileWarning(BaseModel):
    """A warning about the whole file (row and column null) or one of its cells."""

    row: int | None
    column: str | None
    message: str


class UploadAccepted(BaseModel):
    """The upload is being processed; follow ``status_url``."""

    batch_id: str
    status: Literal["processing", "done", "failed"]
    status_url: str


class Report(BaseModel):
    """What the ingest found besides the counts (the keys of ``reintegration ingest --json``)."""

    errors: list[RowError]
    errors_total: int = Field(description="rejected cells in all; errors lists the first ones")
    warnings: list[FileWarning]
    warnings_total: int = Field(description="warnings in all; warnings lists the first ones")
    ignored_columns: list[str]
    missing_columns: list[str]
    dropped_identifier_columns: list[str]


class UploadReport(Report):
    """The report of an upload that finished within ``?wait``."""

    batch_id: str
    status: Literal["done"]
    status_url: str
    summary: str = Field(
        description="the outcome in one sentence of the request's language, e.g. "
        "'88 stored, 5 need fixing'"
    )
    received: int
    accepted: int
    rejected: int
    duplicate: int
    updated: int


class BatchSummary(BaseModel):
    """One upload: who sent what, its status and counts."""

    id: str
    uploader: str
    file_name: str
    format: str | None
    form_version: str | None
    status: Literal["processing", "done", "failed"]
    reason: str | None = Field(description="why a failed batch failed")
    summary: str = Field(
        description="the outcome in one sentence of the request's language, e.g. "
        "'Nothing new: all 93 rows were already stored'"
    )
    received: int
    accepted: int
    rejected: int
    duplicate: int
    updated: int
    created_at: datetime
    finished_at: datetime | None
    status_url: str


class BatchDetail(BatchSummary):
    """A batch with its progress and report."""

    progress: float | None = Field(description="share of rows read, while processing")
    report: Report
    errors_url: str
    rejected_url: str
