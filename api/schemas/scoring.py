"""Bodies of stateless scoring: JSON records in, scores and rejected cells out."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from api.schemas.batches import FileWarning, RowError
from reintegration.limits import MAX_COLUMNS

MAX_RECORDS = 10_000
# Different fields the records of one request may name, as many as a batch file's columns: a
# record of 100,000 keys (1 MB of JSON) kept the server busy for a minute and a half before it
# could say that nothing in it is a known column.
MAX_FIELDS = MAX_COLUMNS

Value = str | int | float | bool | None


class ScoreRequest(BaseModel):
    """Records in the canonical batch format: one object per interview, column to value."""

    records: list[dict[str, Value]] = Field(
        min_length=1,
        max_length=MAX_RECORDS,
        description="Only submission_id is required; metadata present is validated as in "
        "uploads (when records carry consent, a consent other than yes rejects the record; "
        "no consent is needed).",
    )

    @model_validator(mode="after")
    def _few_fields(self) -> ScoreRequest:
        names: set[str] = set()
        for record in self.records:
            names.update(record)
            if len(names) > MAX_FIELDS:
                raise PydanticCustomError(
                    "too_many_fields",
                    "the records name more than {limit} different fields; the canonical batch "
                    "format has far fewer: send its columns only",
                    {"limit": f"{MAX_FIELDS:,}"},
                )
        return self


class RiskEstimate(BaseModel):
    """The risk champion's estimate for a record (first surveys only)."""

    model_version: int
    probability: float
    band: str


class RecordScore(BaseModel):
    """The scores of one valid record (``record``: its position, 1 for the first)."""

    record: int | None
    submission_id: str
    economic: float | None
    social: float | None
    psychosocial: float | None
    composite: float | None
    coverage_economic: float | None
    coverage_social: float | None
    coverage_psychosocial: float | None
    level: str | None
    weakest_dimension: str | None
    sustainable: bool | None
    index_version: str
    risk: RiskEstimate | None = None


class ScoreResponse(BaseModel):
    """Scores of the valid records in input order, and why the others were rejected (``row``
    is the record's position, as a line of JSON lines)."""

    index_version: str
    model_version: int | None
    received: int
    scored: int
    rejected: int
    scores: list[RecordScore]
    errors: list[RowError]
    warnings: list[FileWarning]
    ignored_columns: list[str]
