"""The follow-up schedule and the months-since-return bands, read from data beside the spec.

``reintegration/spec/follow-up.yaml`` holds the planned month of each survey round and the
bands trajectories and "at a months band" answers use (DESIGN.md, "Models and versions"). The
bands are contiguous and cover every value, so each survey falls in exactly one; each is
centred on a scheduled round, and when a returnee has two surveys in one band the one nearest
the band's scheduled month counts (a tie goes to the later survey): see
:func:`nearest_first` and ``docs/methods.md``, "Panels and bands".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from reintegration.errors import SpecError

DEFAULT_FOLLOW_UP = Path(__file__).parent / "spec" / "follow-up.yaml"


@dataclass(frozen=True)
class Band:
    """A months-since-return band: ``low`` to ``high`` months (infinite where open)."""

    id: str
    label: str
    low: float
    high: float
    low_included: bool
    high_included: bool
    scheduled: float
    #: The label in each language readers see (``label`` stays the canonical value).
    names: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)

    def contains(self, months: np.ndarray) -> np.ndarray:
        """Which of ``months`` fall in this band."""
        above = months >= self.low if self.low_included else months > self.low
        below = months <= self.high if self.high_included else months < self.high
        return np.asarray(above & below)


@dataclass(frozen=True)
class FollowUp:
    """The planned month of each round (``schedule[k - 1]`` for round k) and the bands."""

    schedule: tuple[float, ...]
    bands: tuple[Band, ...]

    @property
    def labels(self) -> list[str]:
        """The band labels in time order."""
        return [b.label for b in self.bands]

    def band(self, asked: str) -> Band | None:
        """The band whose id or label is ``asked`` (case and spaces ignored), else None."""
        wanted = " ".join(asked.split()).casefold()
        for band in self.bands:
            if wanted in (band.id.casefold(), band.label.casefold()):
                return band
        return None

    def scheduled_month(self, round_number: int) -> float:
        """The planned month of ``round_number`` (later rounds continue the last step)."""
        months = list(self.schedule)
        step = months[-1] - months[-2] if len(months) > 1 else months[-1]
        if round_number <= len(months):
            return months[max(round_number, 1) - 1]
        return months[-1] + step * (round_number - len(months))


def band_codes(months: np.ndarray, follow_up: FollowUp | None = None) -> np.ndarray:
    """The position of each months-since-return value's band in ``follow_up.bands`` (int8).

    A missing value (NaN) matches no band and gets the first, as months ≤ the first edge do.

    Examples
    --------
    >>> band_codes(np.array([0.0, 4.0, 4.01, 8.99, 9.0, 40.0])).tolist()
    [0, 0, 1, 1, 2, 2]
    """
    follow_up = follow_up or load_follow_up()
    months = np.asarray(months, dtype=np.float64)
    codes = np.zeros(len(months), dtype=np.int8)
    for position, band in enumerate(follow_up.bands[1:], start=1):
        codes[band.contains(months)] = position
    return codes


def months_band(months: np.ndarray, follow_up: FollowUp | None = None) -> np.ndarray:
    """The band label of each months-since-return value (every value has exactly one).

    Examples
    --------
    >>> months_band(np.array([0.0, 4.0, 4.01, 8.99, 9.0, 40.0])).tolist()
    ['within 4 months', 'within 4 months', 'over 4, under 9 months', \
'over 4, under 9 months', '9 or more months', '9 or more months']
    """
    follow_up = follow_up or load_follow_up()
    labels = np.array(follow_up.labels, dtype=object)
    return labels[band_codes(months, follow_up)]


def band_distance(months: np.ndarray, follow_up: FollowUp | None = None) -> np.ndarray:
    """How far each value lies from its band's scheduled month (in months)."""
    follow_up = follow_up or load_follow_up()
    scheduled = np.array([band.scheduled for band in follow_up.bands])
    months = np.asarray(months, dtype=np.float64)
    return np.abs(months - scheduled[band_codes(months, follow_up)])


def nearest_first(months: np.ndarray, days: np.ndarray) -> np.ndarray:
    """A preference order within a band: nearest the band's scheduled month first, then later.

    Returns a number per row, larger for the row to keep (the one nearest the scheduled
    month; of two equally near, the later interview), for use as a sort key.

    Examples
    --------
    >>> nearest_first(np.array([1.0, 3.0, 2.5]), np.array([30, 91, 76])).argmax()
    np.int64(2)
    """
    distance = np.round(band_distance(months), 9)
    ranks = np.lexsort((np.asarray(days), -distance))
    keep = np.empty(len(ranks), dtype=np.int64)
    keep[ranks] = np.arange(len(ranks), dtype=np.int64)
    return keep


@functools.cache
def load_follow_up(path: Path = DEFAULT_FOLLOW_UP) -> FollowUp:
    """The follow-up schedule and bands of ``path``, checked.

    Raises
    ------
    SpecError
        A band file that does not cover every value exactly once, or a malformed one.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        schedule = tuple(float(r["month"]) for r in sorted(raw["schedule"], key=_round))
        bands = tuple(_band(item) for item in raw["bands"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"{path.name}: not a follow-up schedule with bands ({exc})") from exc
    if not schedule or not bands:
        raise SpecError(f"{path.name}: the schedule and the bands may not be empty")
    _check_cover(path.name, bands)
    return FollowUp(schedule=schedule, bands=bands)


def _round(item: dict[str, Any]) -> int:
    return int(item["round"])


def _band(item: dict[str, Any]) -> Band:
    return Band(
        id=str(item["id"]),
        label=str(item["label"]),
        low=float(item.get("from", -math.inf)),
        high=float(item.get("to", math.inf)),
        low_included=bool(item.get("from_included", False)),
        high_included=bool(item.get("to_included", False)),
        scheduled=float(item["scheduled"]),
        names={str(k): str(v) for k, v in (item.get("names") or {}).items()},
    )


def _check_cover(name: str, bands: tuple[Band, ...]) -> None:
    if bands[0].low != -math.inf or bands[-1].high != math.inf:
        raise SpecError(f"{name}: the first band needs no lower edge and the last no upper edge")
    for before, after in zip(bands, bands[1:], strict=False):
        if before.high != after.low or before.high_included == after.low_included:
            raise SpecError(
                f"{name}: bands {before.id!r} and {after.id!r} must meet at one edge, "
                "included in exactly one of them"
            )
    for band in bands:
        if not band.low <= band.scheduled <= band.high:
            raise SpecError(f"{name}: band {band.id!r} does not hold its scheduled month")
    ids = [b.id for b in bands]
    if len(set(ids)) != len(ids):
        raise SpecError(f"{name}: band ids repeat")
