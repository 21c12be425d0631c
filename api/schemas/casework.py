"""Bodies of the row-level routes: a returnee's rounds, scores and risk; the worklist."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class Reason(BaseModel):
    """An item behind a risk: its id, its dimension (the weakest) and its question."""

    item: str
    dimension: str | None = None
    question: str | None


class RoundScore(BaseModel):
    """A round's scores under one index version."""

    index_version: str
    model_version: int | None
    economic: float | None
    social: float | None
    psychosocial: float | None
    composite: float | None
    level: str | None
    weakest_dimension: str | None
    sustainable: bool | None


class Round(BaseModel):
    """One interview (its current version)."""

    submission_id: str
    version: int
    interview_date: date
    return_date: date
    months_since_return: float
    survey_round: int | None
    country: str
    interview_mode: str | None
    assistance: list[str]
    batch_id: str
    scores: list[RoundScore]


class Risk(BaseModel):
    """A risk model's estimate for a returnee, from their first survey."""

    model: str
    model_version: int
    submission_id: str
    probability: float
    band: str
    weakest_dimension: str | None
    reasons: list[Reason]
    created_at: datetime


class CaseStatus(BaseModel):
    """A case status as it was set: what, by whom, when."""

    status: Literal["none", "contacted", "follow_up_planned"]
    actor: str
    at: datetime


class CaseStatusChange(BaseModel):
    """A new case status for a returnee."""

    status: Literal["none", "contacted", "follow_up_planned"]


class CaseStatusSet(CaseStatus):
    """The status recorded, with the returnee's key."""

    key: str


class Returnee(BaseModel):
    """A returnee, by key: attributes from their latest interview, rounds, risk."""

    key: str
    sex: str | None
    age_at_return: int | None
    child: bool | None
    return_type: str | None
    country: str | None
    rounds: list[Round]
    risk: list[Risk]
    statuses: list[CaseStatus] = []


class WorkItem(BaseModel):
    """A returnee on the worklist: rank, risk and band, the tie-breakers (first-survey
    composite, days since the last survey), the weakest dimension and its items, the status."""

    rank: int
    key: str
    country: str | None
    sex: str | None
    age_group: str | None
    return_type: str | None
    submission_id: str
    interview_date: date
    probability: float
    ranked_risk: float = Field(
        description="The probability to 3 decimals (0.1%), as ranked and banded: risks that "
        "read the same are ties, broken by the lower composite then the longest time since "
        "the last survey."
    )
    band: str
    composite: float | None
    last_interview_date: date | None
    days_since_last_survey: int | None
    weakest_dimension: str | None
    reasons: list[Reason]
    status: str
    status_at: datetime | None


class Band(BaseModel):
    """A risk band and its range: from ``low`` (included) to ``high`` (excluded; 1 included)."""

    band: str
    low: float
    high: float


class Worklist(BaseModel):
    """Returnees ranked by risk, highest first, under the risk champion; ``total`` rows match
    the filters (``items`` is the page asked for)."""

    model: str | None
    model_version: int | None
    note: str
    total: int
    bands: list[Band]
    items: list[WorkItem]
