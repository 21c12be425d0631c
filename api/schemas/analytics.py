"""Bodies of the aggregate routes: cells with their figures, suppression flags and filters."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field


class Figure(BaseModel):
    """A mean with its standard deviation and 95% interval; null where suppressed or unknown."""

    mean: float | None
    sd: float | None
    low: float | None
    high: float | None


class Cell(BaseModel):
    """One group of the breakdown (``total``: every group together, its values "all")."""

    group: dict[str, str | None]
    total: bool
    other: bool = Field(
        description="protected figures: the groups not listed (each under min_cell), gathered "
        "into this one cell, its group values null"
    )
    label: str | None = Field(
        description='"other groups: fewer than 5 each" on the gathered cell, else null'
    )
    returnees: int | None = Field(
        description="distinct returnees, or returnee-rounds when the answer's counted says so "
        "(round or months_band among the groupings: a returnee counts once per round or band, "
        "and the total cell is the sum of the cells); null where suppressed"
    )
    unscored: int | None = Field(description="returnees without a score; null where suppressed")
    suppressed: bool = Field(description="fewer than min_cell returnees, or a complement")
    unscored_suppressed: bool
    figures: dict[str, Figure]
    share_sustainable: float | None
    share_low: float | None
    share_medium: float | None
    share_high: float | None


class AppliedFilters(BaseModel):
    """The filters the answer covers (countries already narrowed to the token's; dates widened
    to whole months for protected figures)."""

    countries: list[str] | None
    date_from: date | None
    date_to: date | None
    rounds: list[int] | None
    sex: list[str] | None
    age_group: list[str] | None
    return_type: list[str] | None


class Aggregates(BaseModel):
    """A breakdown: one cell per group, then the total."""

    index_version: str
    figures: Literal["protected", "exact"] = Field(
        description="protected: figures perturbed for privacy (managers always); exact: as "
        "computed, with suppression"
    )
    by: list[str]
    counted: Literal["returnees", "returnee-rounds"] = Field(
        description="what returnees counts: distinct returnees, or returnee-rounds when round "
        "or months_band is among the groupings (a returnee surveyed in two rounds counts twice "
        "in the total)"
    )
    min_cell: int
    suppression: str
    data_version: int
    filters: AppliedFilters
    cells: list[Cell]


class Trajectories(Aggregates):
    """A breakdown by months since return (or return cohort) first, then ``by``."""

    axis: str
    follow: bool


class IndexVersions(BaseModel):
    """The index labels with stored scores, and the champion's (the default)."""

    champion: str
    stored: list[str]


class Overview(BaseModel):
    """The headline figures of the filtered returnees."""

    model_config = {"extra": "allow"}

    index_version: str
    figures: Literal["protected", "exact"]
    filters: AppliedFilters
    returnees: int | None
    surveys: int | None
    unscored: int | None
    suppressed: bool
    share_sustainable: float | None
