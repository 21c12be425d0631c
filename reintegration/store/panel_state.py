"""What an ingest knows of each returnee it touches, in NumPy arrays indexed by a local id.

A batch of a million interviews touches hundreds of thousands of returnees, chunk after chunk;
looking them up by their 64-character keys in a pandas index at every step costs more than
storing the rows. Each key gets a small integer once, and everything else is array indexing.

Rounds and attributes are kept up to date here while a returnee's interviews arrive in date
order (exports are sorted by date). A returnee whose history changes out of order (an earlier
interview arriving late, an edit of a stored interview) is *dirty*: the store renumbers it in
SQL at the end of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

NO_DAY_LOW = np.iinfo(np.int64).min // 2  # before any interview (halved: no overflow)
NO_DAY_HIGH = np.iinfo(np.int64).max // 2
NO_ROW = np.iinfo(np.int64).max

FIELDS: dict[str, tuple[Any, Any]] = {  # name: (dtype, value of a returnee not seen yet)
    "count": (np.int64, 0),  # current interviews in the store, this batch's included
    "min_day": (np.int64, NO_DAY_HIGH),
    "max_day": (np.int64, NO_DAY_LOW),
    "dirty": (bool, False),
    "differs": (bool, False),  # sex, return type, return date or country differ between rounds
    "ref_sex": (object, None),
    "ref_rtype": (object, None),
    "ref_rday": (np.int64, NO_DAY_LOW),
    "ref_country": (object, None),
    # What the store held before this batch, for an uploader limited to some countries:
    "outside": (bool, False),  # a current interview under a country outside the scope
    "home": (object, None),  # the one country of the current interviews ("": several)
    "has_row": (bool, False),  # the returnee row exists in the store
    "first_row": (np.int64, NO_ROW),  # the returnee's first row in this batch
    "latest_day": (np.int64, NO_DAY_LOW),
    "sex": (object, None),
    "age": (np.int64, -1),
    "rtype": (object, None),
    "country": (object, None),
    "touched": (bool, False),  # an interview of this batch was stored for the returnee
}


class PanelState:
    """Per-returnee arrays for one batch; ``ids(keys)`` gives each key its row."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._ids: dict[str, int] = {}
        self.arrays: dict[str, np.ndarray] = {
            name: np.full(0, empty, dtype=dtype) for name, (dtype, empty) in FIELDS.items()
        }

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name][: len(self.keys)]

    def ids(self, keys: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Row of each key, adding unseen keys; also the keys that were new."""
        new = [k for k in dict.fromkeys(keys) if k not in self._ids]
        if new:
            start = len(self.keys)
            for offset, key in enumerate(new):
                self._ids[key] = start + offset
            self.keys.extend(new)
            self._grow(len(self.keys))
        found = map(self._ids.__getitem__, keys)
        return np.fromiter(found, dtype=np.int64, count=len(keys)), new

    def _grow(self, size: int) -> None:
        capacity = len(self.arrays["count"])
        if size <= capacity:
            return
        capacity = max(size, capacity * 2, 1024)
        for name, (dtype, empty) in FIELDS.items():
            grown = np.full(capacity, empty, dtype=dtype)
            old = self.arrays[name]
            grown[: len(old)] = old
            self.arrays[name] = grown

    def set(self, name: str, ids: np.ndarray, values: Any) -> None:
        self.arrays[name][ids] = values

    def track(self, panel: pd.DataFrame) -> list[Any]:
        """Take in a chunk's new interviews; return the round of each (None: decided later).

        ``panel`` has one row per stored interview: ``id`` (from :meth:`ids`), ``sid``,
        ``current``, ``replaces``, ``day``, ``rday``, ``sex``, ``age``, ``rtype``,
        ``country``, ``row``.

        Only current interviews count: a returnee is touched (and gets its row at the end)
        through them. That holds every returnee written because all versions of an identity
        share one returnee (the writer refuses an id sent under another one): the versions no
        longer current have a current one under the same returnee.
        """
        a = self.arrays
        rounds: list[Any] = [None] * len(panel)
        dirty_ids = np.unique(panel["id"].to_numpy()[panel["replaces"].to_numpy()])
        current = panel[panel["current"].to_numpy()]
        # By returnee, interview date, then identity (Arrow sorts the text in C).
        order = pc.sort_indices(
            pa.table(
                {
                    "id": current["id"].to_numpy(),
                    "day": current["day"].to_numpy(),
                    "sid": current["sid"].to_numpy(),
                }
            ),
            sort_keys=[("id", "ascending"), ("day", "ascending"), ("sid", "ascending")],
        )
        current = current.iloc[order.to_numpy()]
        if current.empty:
            a["dirty"][dirty_ids] = True
            return rounds
        ids = current["id"].to_numpy()
        days = current["day"].to_numpy()
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])  # first row of each returnee
        ends = np.r_[starts[1:], len(ids)] - 1  # last row of each returnee
        group_ids = ids[starts]
        first_day = days[starts]
        late = (a["count"][group_ids] > 0) & (first_day <= a["max_day"][group_ids])
        a["dirty"][dirty_ids] = True
        a["dirty"][group_ids[late]] = True
        rank = np.arange(len(ids)) - np.repeat(starts, ends - starts + 1) + 1 + a["count"][ids]
        clean = ~a["dirty"][ids]
        for position, value in zip(
            current.index[clean].tolist(), rank[clean].tolist(), strict=True
        ):
            rounds[position] = value
        a["count"][group_ids] += ends - starts + 1
        a["min_day"][group_ids] = np.minimum(a["min_day"][group_ids], first_day)
        a["max_day"][group_ids] = np.maximum(a["max_day"][group_ids], days[ends])
        newer = days[ends] >= a["latest_day"][group_ids]
        rows = ends[newer]
        target = group_ids[newer]
        a["latest_day"][target] = days[rows]
        for name, column in (
            ("sex", "sex"),
            ("age", "age"),
            ("rtype", "rtype"),
            ("country", "country"),
        ):
            a[name][target] = current[column].to_numpy()[rows]
        a["touched"][group_ids] = True
        row_numbers = current["row"].to_numpy()
        a["first_row"][group_ids] = np.minimum(
            a["first_row"][group_ids], np.minimum.reduceat(row_numbers, starts)
        )
        # Disagreement between rounds: compare each interview with the returnee's first one.
        unset = a["ref_sex"][group_ids] == None  # noqa: E711 - element-wise on objects
        fill = starts[unset]
        a["ref_sex"][group_ids[unset]] = current["sex"].to_numpy()[fill]
        a["ref_rtype"][group_ids[unset]] = current["rtype"].to_numpy()[fill]
        a["ref_rday"][group_ids[unset]] = current["rday"].to_numpy()[fill]
        a["ref_country"][group_ids[unset]] = current["country"].to_numpy()[fill]
        differs = (
            (current["sex"].to_numpy() != a["ref_sex"][ids])
            | (current["rtype"].to_numpy() != a["ref_rtype"][ids])
            | (current["rday"].to_numpy() != a["ref_rday"][ids])
            | (current["country"].to_numpy() != a["ref_country"][ids])
        )
        a["differs"][np.unique(ids[differs])] = True
        return rounds
