"""The report of an index promotion: how the mean composite and the share sustainable move,
on how many returnees, how many submissions each version leaves unscored, and which items of
the new version are reverse-keyed (negative loading).

Its ``n`` is the number of returnees both versions score (the rows' ``n``, the overall row
first), not the number read: a returnee whose latest interview one version cannot score is in
neither mean, and is counted in ``unscored`` instead. Sizes are published as
:mod:`models.disclosure_models` says (rounded to ``min_cell``; below it, "fewer than ...").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from models import disclosure_models as rule
from models import registry
from models.evaluation import index_shift
from reintegration.index import ReintegrationIndex
from reintegration.questionnaire import load_questionnaire
from reintegration.risk_features import GROUPS
from reintegration.settings import Settings

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

WEIGHTS = "weights.json"
REVERSE_KEYED_TAG = "reverse_keyed_items"


def reverse_keyed_of(weights: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """The items of a weight table whose loading is negative (None or missing: not derived).

    Examples
    --------
    >>> reverse_keyed_of([{"item": "a", "loading": 0.7}, {"item": "b", "loading": -0.4},
    ...                   {"item": "c", "loading": None}])
    ['b']
    """
    out = []
    for row in weights or ():
        loading = row.get("loading")
        if loading is not None and loading == loading and float(loading) < 0:
            out.append(str(row["item"]))
    return out


def reverse_keyed_sentence(items: Sequence[str]) -> str:
    """What the reverse-keyed items of a version are, in words.

    Examples
    --------
    >>> reverse_keyed_sentence([])
    'Reverse-keyed items (negative loading): none.'
    >>> reverse_keyed_sentence(["q1"])  # doctest: +ELLIPSIS
    'Reverse-keyed items (negative loading): q1. Each falls when ...'
    """
    if not items:
        return "Reverse-keyed items (negative loading): none."
    return (
        f"Reverse-keyed items (negative loading): {', '.join(items)}. Each falls when the "
        "other items of its dimension rise; its weight is the absolute loading, so check its "
        "coding before promoting this version."
    )


def _size(n: int, min_cell: int) -> str:
    shown = rule.published_size(n, min_cell)
    if shown is None:
        return "none" if n == 0 else f"fewer than {min_cell}"
    return f"{shown:,}"


def index_comparison(
    engine: sa.Engine,
    settings: Settings,
    client: MlflowClient,
    challenger: ModelVersion,
    *,
    current: ReintegrationIndex,
    records: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Compare an index version with the champion on the stored returnees' latest interviews.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    settings : Settings
    client : MlflowClient
    challenger : ModelVersion
        The version to promote (its weight table is read for reverse-keyed items).
    current : ReintegrationIndex
        The champion index.
    records : DataFrame, optional
        The records already read (:func:`models.preview.preview_records`), so a promotion
        reads the store once; default: read them here.

    Returns
    -------
    dict
        ``basis`` (a sentence: returnees read, scored by both, unscored under each),
        ``rows`` (as :func:`models.disclosure_models.publish_shift`), ``n`` (published
        returnees scored by both: the overall row's n), ``returnees`` (published returnees
        read), ``unscored`` (``{"champion": ..., "challenger": ...}``, published sizes: None
        from 1 to ``min_cell - 1``), ``unscored_text`` (the same in words), ``reverse_keyed``
        (item ids), ``reverse_keyed_text``, ``champion_label``, ``label``, ``refusals`` (none) and
        ``refused`` (False).
    """
    from models.index_training import index_records

    questionnaire = load_questionnaire()
    new = registry.load_index(client, challenger)
    if records is None:
        records, _ = index_records(engine, questionnaire)
    items = records[list(questionnaire.item_ids)]
    before = after = np.zeros(0, dtype=bool)
    if len(records):
        before = current.transform(items)["composite"].notna().to_numpy()
        after = new.transform(items)["composite"].notna().to_numpy()
    both = int((before & after).sum())
    unscored = {"champion": int((~before).sum()), "challenger": int((~after).sum())}
    rows = []
    if len(records):
        rows = rule.publish_shift(
            index_shift(records[[*questionnaire.item_ids, *GROUPS]], current, new),
            settings.min_cell,
        )
    weights = None
    if challenger.run_id:
        weights = registry.read_json_artifact(client, challenger.run_id, WEIGHTS)
    reverse = reverse_keyed_of(weights)
    min_cell = settings.min_cell
    basis = (
        f"{_size(both, min_cell)} returnees scored by both versions, latest interview each "
        f"(of {_size(len(records), min_cell)} read); unscored: "
        f"{_size(unscored['champion'], min_cell)} under {current.label_}, "
        f"{_size(unscored['challenger'], min_cell)} under {new.label_}"
    )
    return {
        "basis": basis,
        "rows": rows,
        "n": rule.published_size(both, min_cell),
        "returnees": rule.published_size(len(records), min_cell),
        "unscored": {k: rule.published_size(v, min_cell) if v else 0 for k, v in unscored.items()},
        "unscored_text": {k: _size(v, min_cell) for k, v in unscored.items()},
        "reverse_keyed": reverse,
        "reverse_keyed_text": reverse_keyed_sentence(reverse),
        "champion_label": current.label_,
        "label": new.label_,
        "refusals": [],
        "refused": False,
    }
