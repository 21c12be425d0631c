"""Bodies of the aggregate routes: cells with their figures, suppression flags and filters."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field


class Figure(BaseModel):
    """A mean with its standard deviation and 95% interval; null where suppressed or unknown.

    The interval is Student's t on the design-based variance: enumerators as clusters, weights
    when the interviews carry them (docs/methods.md, "Intervals")."""

    mean: float | None
    sd: float | None
    low: float | None
    high: float | None
    deff: float | None = Field(
        default=None,
        description="design effect: the variance of the mean over that of a simple random "
        "sample of the same size (enumerator clustering and weights); protected figures give "
        "it to one decimal",
    )
    n_effective: float | None = Field(
        default=None, description="effective sample size: returnees / design effect"
    )


class ShareInterval(BaseModel):
    """The 95% interval of a share: Wilson's score interval on the effective sample size."""

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
    share_intervals: dict[str, ShareInterval] = Field(
        default_factory=dict,
        description="per share (sustainable, low, medium, high) its 95% interval",
    )


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
    exclude_flagged_enumerators: bool = False
    at_round: int | None = Field(
        default=None, description="the stage asked for: surveys of this round only"
    )
    at_band: str | None = Field(
        default=None, description="the stage asked for: surveys in this months band only"
    )


class Stage(BaseModel):
    """Scored returnees of one survey round or months band among an answer's records."""

    value: str | None = Field(description="the round or the band; null on the gathered row")
    returnees: int | None = Field(description="null where suppressed")
    suppressed: bool
    other: bool = Field(description="protected figures: the rounds or bands under min_cell")
    label: str | None


class StageMix(BaseModel):
    """Which follow-up times an answer mixes: its scored returnees per round and per months
    band (each adds up to the answer's total; exact figures suppress small counts with a
    complement, protected ones perturb them and gather the small ones)."""

    rounds: list[Stage]
    bands: list[Stage]


class Retention(BaseModel):
    """Round-1 returnees surveyed at a round (scored or not), and their share of round 1."""

    round: int
    returnees: int | None = Field(
        description="null where fewer than min_cell (protected figures: perturbed first)"
    )
    percent_of_round_1: float | None
    suppressed: bool


class ExclusionSide(BaseModel):
    """Returnees counted and the mean composite, with or without the flagged enumerators."""

    returnees: int | None
    mean: float | None
    low: float | None
    high: float | None


class EnumeratorExclusion(BaseModel):
    """What leaving out the flagged enumerators changes (exclude_flagged_enumerators=true);
    protected figures perturb every count and hide those from 1 to min_cell - 1 (null)."""

    figures: Literal["protected", "exact"]
    enumerators: int | None = Field(
        description="flagged enumerators with an interview in the selection (protected "
        "figures: null below min_cell)"
    )
    interviews: int | None = Field(description="their interviews, left out")
    returnees: int | None = Field(
        description="returnees whose every interview in the selection was theirs, so no "
        "longer counted"
    )
    with_: ExclusionSide = Field(alias="with")
    without: ExclusionSide
    summary: str


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
    stages: StageMix | None = Field(
        default=None,
        description="/aggregates: the rounds and months bands the answer's records come from "
        "(the default answer takes each returnee's latest survey in the window, which may mix "
        "follow-up times; at_round or at_band asks for one)",
    )
    enumerator_exclusion: EnumeratorExclusion | None = None


class Trajectories(Aggregates):
    """A breakdown by survey round, months band or return cohort (then months band) first,
    then ``by``."""

    axis: Literal["round", "months", "cohort"]
    follow: bool = Field(
        description="only the returnees scored at every point shown: the same n at each"
    )
    retention: list[Retention] = Field(
        description="per survey round, the round-1 returnees surveyed in it (every round, "
        "whatever round=, at_round or at_band say; the other filters hold)"
    )


class Gap(BaseModel):
    """A gap between two groups' means (received minus none) with its 95% interval; null when
    not compared."""

    difference: float | None
    low: float | None
    high: float | None


class AssistanceAssociation(BaseModel):
    """One assistance type against none: associations, not effects."""

    assistance: str
    treated: int | None = Field(
        description="returnees with a score who received this type (protected figures: "
        "perturbed); null when not compared"
    )
    untreated: int | None = Field(description="returnees with a score who received none")
    raw: Gap = Field(description="the difference of the two groups' means, as the cells show")
    adjusted: Gap = Field(
        description="the difference adjusted for sex, age group, return type, country and "
        "months since return (least squares; robust 95% interval)"
    )
    overlap: Literal["adequate", "limited"] | None = Field(
        description="poor when more than 10% of either group lies outside the range of "
        "propensities (from the same covariates) that the other group reaches"
    )
    treated_outside_support: float | None = Field(
        description="share of those who received it outside the common support"
    )
    untreated_outside_support: float | None = Field(
        description="share of those who received none outside the common support"
    )
    note: str | None = Field(description="why a gap is missing, or the overlap warning")


class Assistance(Aggregates):
    """Scores by assistance type received (the cells, as /aggregates?by=assistance), and each
    type against none, raw and adjusted, side by side."""

    figure: Literal["economic", "social", "psychosocial", "composite", "sustainable"]
    comparison: str
    adjusted_for: list[str]
    method: str
    associations: list[AssistanceAssociation]


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
    share_intervals: dict[str, ShareInterval] = Field(
        default_factory=dict,
        description="per share (sustainable, low, medium, high) its 95% interval",
    )
    enumerator_exclusion: EnumeratorExclusion | None = None
    stages: StageMix | None = Field(
        default=None,
        description="the rounds and months bands the returnees' counted surveys come from",
    )
