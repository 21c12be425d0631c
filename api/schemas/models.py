"""Bodies of the model routes: models, versions, training jobs, promotion."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelSummary(BaseModel):
    """A registered model: its versions, champion and challenger."""

    model_config = ConfigDict(extra="allow")

    name: str
    short_name: str | None = None
    versions: int | None = None
    champion: int | None = None
    challenger: int | None = None


class ModelVersion(BaseModel):
    """A version of a registered model, with its label, aliases and metrics."""

    model_config = ConfigDict(extra="allow")

    version: int
    label: str | None = None
    aliases: list[str] = []
    created_at: datetime | None = None
    metrics: dict[str, Any] = {}
    run_id: str | None = None
    description: str | None = None


class TrainRequest(BaseModel):
    """Parameters of a training run (see ``reintegration train --help``)."""

    params: dict[str, Any] = Field(default_factory=dict)


class JobAccepted(BaseModel):
    """A training job was queued; follow ``status_url``."""

    job_id: str
    status_url: str


class Job(BaseModel):
    """A background job: what it is, its status and progress, its result."""

    model_config = ConfigDict(extra="allow")

    id: str
    kind: str
    status: str
    progress: float
    message: str | None = None
    result: Any = None
    actor: str | None = None
    created_at: datetime | str | None = None
    started_at: datetime | str | None = None
    finished_at: datetime | str | None = None


class PromoteRequest(BaseModel):
    """Why a version becomes champion; ``force`` overrides a refusal of the gate; ``dry_run``
    asks only what the promotion would change (the same as ``?dry_run=true``)."""

    reason: str | None = Field(default=None, max_length=2000)
    force: bool = False
    dry_run: bool = False


class Promotion(BaseModel):
    """What a promotion compared and decided (fields as the models issue defines them)."""

    model_config = ConfigDict(extra="allow")


class PromotionPreview(BaseModel):
    """What promoting a version would change, nothing changed (``dry_run``): ``preview`` holds
    an index's means and share sustainable before and after, overall and by group, or a risk
    model's worklist bands before and after; with the gate's comparison (``rows``,
    ``refused``, ``refusal``) as the promotion would decide it."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: int
    previous: int | None = None
    kind: str
    dry_run: bool = True
    data_version: int | None = None
    preview: dict[str, Any]
