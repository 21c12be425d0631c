"""What a promotion would change, shown before it is confirmed (a dry run changes nothing).

An index version: the stored returnees' latest interviews (the default answer of every
aggregate) scored by the champion and by the candidate; the mean of each dimension and of the
composite, and the share sustainable, overall and by sex, child or adult, return type and
country, before, after and the difference. A risk model: the worklist's bands (low, medium,
high) of the stored first surveys as the champion (or, with none, the baseline rule) puts them
and as the candidate would, overall and by group, with the gate's verdict and metrics
(:func:`models.promotion.compare_risk`).

The promotion itself computes the same figures with the same functions and returns them
(``preview``), so what was previewed is what is applied when the data has not changed
meanwhile. Only callers who may promote may preview (:func:`models.registry.require_models`);
the figures are published as every promotion report is (:mod:`models.disclosure_models`: no
group under ``min_cell``, numbers of returnees rounded, figures to three decimals).

A preview runs in the request and reads the store once: at 5,000 returnees (15,000
interviews, SQLite) reading takes about a second and the figures 0.1 s (an index); a risk
model adds the gate's paired bootstrap (seconds). It grows with the store (every current
interview is read), so at a million returnees it takes minutes: there it should become a job
like the promotion's rescoring, which it is not yet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from models import _mlflow, registry
from models import disclosure_models as rule
from models.evaluation import NOT_RECORDED, OVERALL
from reintegration.derive import latest_per_returnee
from reintegration.errors import ModelError
from reintegration.index import ReintegrationIndex
from reintegration.policy import User
from reintegration.questionnaire import Questionnaire, load_questionnaire
from reintegration.risk_features import age_group, first_surveys
from reintegration.settings import Settings, get_settings
from reintegration.store.data_version import read_data_version
from reintegration.store.engine import for_reading
from reintegration.store.submissions import read_submissions

if TYPE_CHECKING:
    from mlflow import MlflowClient

GROUPS_SHOWN = ("sex", "age_group", "return_type", "country")
"""The breakdowns of a preview, each alone (intersections are in the promotion's report)."""
BANDS = ("low", "medium", "high")
SUSTAINABLE = "sustainable"


def preview_records(engine: sa.Engine, questionnaire: Questionnaire) -> tuple[pd.DataFrame, int]:
    """Each stored returnee's latest interview: coded items and the breakdown columns.

    Returns
    -------
    records : DataFrame
        The items, ``sex``, ``age_group`` (child or adult), ``return_type`` and ``country``.
    data_version : int
        The store's data version the records were read at.
    """
    with for_reading(engine).connect() as conn:
        version = read_data_version(conn)
        stored = read_submissions(conn, questionnaire)
    latest = latest_per_returnee(stored)
    records = latest[[*questionnaire.item_ids, "sex", "return_type", "country"]].copy()
    records["age_group"] = age_group(latest["age_at_return"], questionnaire)
    return records.reset_index(drop=True), version


def _share_change(a: float | None, b: float | None, n: int | None) -> float | None:
    # Shares are published as whole numbers of returnees out of n; so is their difference.
    if a is None or b is None or not n:
        return None
    return (math.floor(b * n + 0.5) - math.floor(a * n + 0.5)) / n


def _effect_row(
    by: str | None,
    value: str | None,
    before: Mapping[str, np.ndarray],
    after: Mapping[str, np.ndarray],
    mask: np.ndarray,
    measures: Sequence[str],
    min_cell: int,
) -> dict[str, Any] | None:
    scored = mask & ~np.isnan(before["composite"]) & ~np.isnan(after["composite"])
    n = rule.published_size(int(scored.sum()), min_cell)
    if n is None:
        return None
    row: dict[str, Any] = {
        "group": OVERALL if by is None else f"{by}={value}",
        "by": by,
        "value": value,
        "n": n,
    }
    for measure in measures:
        a = rule.figure(float(np.nanmean(before[measure][scored])))
        b = rule.figure(float(np.nanmean(after[measure][scored])))
        row[f"{measure}_before"], row[f"{measure}_after"] = a, b
        row[f"{measure}_change"] = None if a is None or b is None else rule.figure(b - a)
    a = rule.published_share(float(np.mean(before[SUSTAINABLE][scored] == 1)), n)
    b = rule.published_share(float(np.mean(after[SUSTAINABLE][scored] == 1)), n)
    row["sustainable_before"], row["sustainable_after"] = a, b
    row["sustainable_change"] = _share_change(a, b, n)
    return row


def _labels(records: pd.DataFrame, column: str) -> np.ndarray:
    values = records[column].astype(object)
    return values.where(values.notna(), NOT_RECORDED).astype(str).to_numpy()


def index_effect(
    records: pd.DataFrame,
    champion: ReintegrationIndex,
    candidate: ReintegrationIndex,
    *,
    min_cell: int,
    groups: Sequence[str] = GROUPS_SHOWN,
) -> dict[str, Any]:
    """How promoting ``candidate`` would move each mean and the share sustainable.

    Parameters
    ----------
    records : DataFrame
        One record per returnee (:func:`preview_records`): coded items and the ``groups``.
    champion, candidate : ReintegrationIndex
        The index in use and the one to promote.
    min_cell : int
        Groups under it are not listed; sizes are rounded to a multiple of it.
    groups : sequence of str
        The breakdown columns, each alone.

    Returns
    -------
    dict
        ``measures`` (the dimensions, then ``composite``), ``champion_label``, ``label``,
        ``unscored`` (published returnees each version leaves without a composite: None under
        ``min_cell``) and ``rows``: overall first, then each group of each breakdown, with
        ``group``, ``by``, ``value``, ``n`` (returnees both versions score), and for each
        measure ``<measure>_before``, ``_after``, ``_change``, then ``sustainable_before``,
        ``_after``, ``_change``. Nothing but ``measures`` and the labels when the overall
        group is under ``min_cell``.

    Examples
    --------
    >>> from reintegration.questionnaire import load_questionnaire
    >>> q = load_questionnaire()
    >>> items = pd.DataFrame({i: [2.0] * 10 for i in q.item_ids})
    >>> records = items.assign(sex=["female"] * 5 + ["male"] * 5, age_group="adult",
    ...                        return_type="voluntary", country="SEN")
    >>> v1 = ReintegrationIndex().fit()
    >>> effect = index_effect(records, v1, v1, min_cell=5)
    >>> [(r["group"], r["n"], r["composite_change"]) for r in effect["rows"]][:3]
    [('overall', 10, 0.0), ('sex=female', 5, 0.0), ('sex=male', 5, 0.0)]
    """
    measures = (*champion.dimensions_, "composite")
    out: dict[str, Any] = {
        "measures": list(measures),
        "champion_label": champion.label_,
        "label": candidate.label_,
        "unscored": {"champion": None, "candidate": None},
        "rows": [],
    }
    if records.empty:
        return out
    item_columns = [c for c in records.columns if c not in groups]
    columns = {c: records[c].to_numpy(dtype=np.float64) for c in item_columns}
    before = champion.score_arrays(columns, n_rows=len(records))
    after = candidate.score_arrays(columns, n_rows=len(records))
    before = {k: _floats(v) for k, v in before.items() if k in (*measures, SUSTAINABLE)}
    after = {k: _floats(v) for k, v in after.items() if k in (*measures, SUSTAINABLE)}
    out["unscored"] = {
        "champion": rule.published_size(int(np.isnan(before["composite"]).sum()), min_cell),
        "candidate": rule.published_size(int(np.isnan(after["composite"]).sum()), min_cell),
    }
    everyone = np.ones(len(records), dtype=bool)
    overall = _effect_row(None, None, before, after, everyone, measures, min_cell)
    if overall is None:
        return out
    rows = [overall]
    for by in groups:
        if by not in records.columns:
            continue
        labels = _labels(records, by)
        for value in sorted(set(labels)):
            row = _effect_row(by, value, before, after, labels == value, measures, min_cell)
            if row is not None:
                rows.append(row)
    out["rows"] = rows
    return out


def _floats(values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == np.int8:  # sustainable: 1, 0, or -1 for missing
        return array.astype(np.float64)
    return array.astype(np.float64, copy=False)


def band_counts(bands: Sequence[str | None], mask: np.ndarray | None = None) -> dict[str, int]:
    """Returnees per band (``None``: not ranked) among ``mask``.

    Examples
    --------
    >>> band_counts(["low", "high", None, "high"])
    {'low': 1, 'medium': 0, 'high': 2, 'not ranked': 1}
    """
    chosen = np.asarray(bands, dtype=object)
    if mask is not None:
        chosen = chosen[mask]
    counts = {band: int(np.sum(chosen == band)) for band in BANDS}
    counts["not ranked"] = int(sum(1 for b in chosen if b is None))
    return counts


def bands_effect(
    before: Sequence[str | None],
    after: Sequence[str | None],
    groups: pd.DataFrame,
    *,
    min_cell: int,
) -> list[dict[str, Any]]:
    """The worklist's bands before and after, overall and per group, as published.

    Parameters
    ----------
    before, after : sequence of str or None
        Each first survey's band under the champion (or the baseline rule) and the candidate.
    groups : DataFrame
        The breakdown columns of the same rows.
    min_cell : int

    Returns
    -------
    list of dict
        ``group``, ``by``, ``value``, ``n`` and, for each band and ``not ranked``,
        ``<band>_before``, ``<band>_after`` and ``<band>_change`` (sizes rounded; a group under
        ``min_cell`` is left out, and so is everything when the overall group is).
    """
    rows: list[dict[str, Any]] = []
    parts: list[tuple[str | None, str | None, np.ndarray]] = [
        (None, None, np.ones(len(before), dtype=bool))
    ]
    for by in groups.columns:
        labels = _labels(groups, by)
        parts.extend((by, value, labels == value) for value in sorted(set(labels)))
    for by, value, mask in parts:
        n = rule.published_size(int(mask.sum()), min_cell)
        if n is None:
            if by is None:
                return []
            continue
        a, b = band_counts(before, mask), band_counts(after, mask)
        row: dict[str, Any] = {
            "group": OVERALL if by is None else f"{by}={value}",
            "by": by,
            "value": value,
            "n": n,
        }
        for band in a:
            key = band.replace(" ", "_")
            shown_a, shown_b = rule.rounded(a[band], min_cell), rule.rounded(b[band], min_cell)
            row[f"{key}_before"], row[f"{key}_after"] = shown_a, shown_b
            row[f"{key}_change"] = (shown_b or 0) - (shown_a or 0)
        rows.append(row)
    return rows


def _risk_bands(
    engine: sa.Engine,
    settings: Settings,
    client: MlflowClient,
    champion: Any,
    candidate: Any,
    index: ReintegrationIndex,
) -> dict[str, Any]:
    """The stored first surveys' bands under the champion (or the rule) and the candidate."""
    from models.risk_training import one_thread
    from reintegration.risk_features import features

    questionnaire = load_questionnaire()
    with for_reading(engine).connect() as conn:
        stored = read_submissions(conn, questionnaire)
    first = first_surveys(stored)
    groups = first[["sex", "return_type", "country"]].copy()
    groups.insert(1, "age_group", age_group(first["age_at_return"], questionnaire))
    if first.empty:
        return {"basis": "baseline rule" if champion is None else "champion", "rows": []}
    X = features(first, questionnaire)
    new = registry.load_model(client, candidate)
    with one_thread():
        after = new.bands(new.risk(X))
        if champion is not None:
            old = registry.load_model(client, champion)
            before: list[str | None] = list(old.bands(old.risk(X)))
    if champion is None:
        medium, high = settings.risk_band_limits
        composite = index.transform(first[list(questionnaire.item_ids)])["composite"]
        risk = 1.0 - composite.to_numpy(dtype=np.float64, na_value=np.nan)
        before = [
            None if np.isnan(r) else "high" if r >= high else "medium" if r >= medium else "low"
            for r in risk
        ]
    rows = bands_effect(
        before, list(after), groups.reset_index(drop=True), min_cell=settings.min_cell
    )
    return {"basis": "baseline rule" if champion is None else "champion", "rows": rows}


def index_preview(
    engine: sa.Engine,
    settings: Settings,
    champion: ReintegrationIndex,
    candidate: ReintegrationIndex,
) -> tuple[dict[str, Any], pd.DataFrame, int]:
    """Read the store once and compute :func:`index_effect`; also returns the records read
    (the promotion's report reuses them) and the data version they were read at."""
    records, data_version = preview_records(engine, load_questionnaire())
    effect = index_effect(records, champion, candidate, min_cell=settings.min_cell)
    return effect, records, data_version


def preview_promotion(
    engine: sa.Engine,
    name: str,
    version: int,
    *,
    caller: User,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """What promoting a version would change, without changing anything.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store (only read).
    name : str
        ``index``, ``risk``, or the registered name.
    version : int
        The version that would become champion.
    caller : User
        Who asks: MODELS for every country, as for promoting.
    settings : Settings, optional

    Returns
    -------
    dict
        ``name``, ``version``, ``previous``, ``kind``, ``dry_run`` (True), ``data_version``,
        ``preview``: an index: :func:`index_effect`'s dict; a risk model: ``bands`` (as
        :func:`bands_effect`) and ``bands_basis`` ("champion" or "baseline rule"). With the
        promotion's own comparison (an index: ``basis``, ``rows``, ``unscored_text``,
        ``reverse_keyed_text``...; a risk model: the gate's ``rows``, ``refusals``,
        ``refused``, ``baseline`` and, when refused, ``refusal`` the sentence it would say).

    Raises
    ------
    Forbidden
        The caller may not promote models.
    ModelError
        Unknown model or version, or the version is already the champion.
    """
    from models.index_report import index_comparison
    from models.index_training import champion_index
    from models.promotion import compare_risk, refusal_message

    registry.require_models(caller)
    settings = settings or get_settings()
    name = registry.resolve_name(name)
    client = _mlflow.client(settings)
    target = registry.get_version(client, name, version)
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    previous = int(champion.version) if champion is not None else None
    if previous == version:
        raise ModelError(f"{name} version {version} is already the champion")
    head = {"name": name, "version": version, "previous": previous, "dry_run": True}
    if name == registry.INDEX_MODEL:
        current, _ = champion_index(client)
        candidate = registry.load_index(client, target)
        effect, records, data_version = index_preview(engine, settings, current, candidate)
        comparison = index_comparison(
            engine, settings, client, target, current=current, records=records
        )
        return {
            **head,
            "kind": "index",
            "data_version": data_version,
            **comparison,
            "preview": effect,
        }
    with for_reading(engine).connect() as conn:
        data_version = read_data_version(conn)
    comparison = compare_risk(engine, settings, client, champion, target)
    out = {
        **head,
        "kind": "risk",
        "data_version": data_version,
        **comparison,
        "preview": risk_bands_preview(engine, settings, client, champion, target),
    }
    if comparison["refused"]:
        out["refusal"] = refusal_message(name, version, previous, comparison)
    return out


def risk_bands_preview(
    engine: sa.Engine,
    settings: Settings,
    client: MlflowClient,
    champion: Any,
    candidate: Any,
) -> dict[str, Any]:
    """The ``preview`` a risk promotion returns: the worklist's bands before and after."""
    from models.index_training import champion_index

    current, _ = champion_index(client)
    bands = _risk_bands(engine, settings, client, champion, candidate, current)
    return {"bands": bands["rows"], "bands_basis": bands["basis"]}
