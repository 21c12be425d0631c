"""How a submission's coded answers are stored, and read back.

Everything that reads ``submission.answers`` (training, rescoring, drift) goes through
:func:`decode_answers`, so the stored representation can change in one place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd


def decode_answers(raw: Iterable[Any], items: Sequence[str]) -> pd.DataFrame:
    """The stored answers as a frame of answer codes, one column per item, in ``items`` order.

    Parameters
    ----------
    raw : iterable
        ``submission.answers`` values as the driver returns them (a JSON text or an already
        decoded object of item id to answer code).
    items : sequence of str
        The item ids wanted as columns.

    Returns
    -------
    DataFrame
        Answer codes as text (a select-multiple keeps its space-separated codes); an item
        without an answer is missing (``None``).

    Examples
    --------
    >>> decode_answers(['{"currently_working":"yes"}', {}], ["currently_working", "debt"])
      currently_working  debt
    0               yes  None
    1              None  None
    """
    records = [json.loads(value) if isinstance(value, (str, bytes)) else value for value in raw]
    return (
        pd.DataFrame.from_records(records, columns=list(items))
        .astype(object)
        .where(lambda frame: frame.notna(), None)
    )
