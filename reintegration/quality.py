"""Data-quality queries: missing answers per item, and enumerators whose interviews stand out.

Both read the current version of the most recent interviews (``limit`` of them, so the page
stays quick on a store of millions), optionally one batch's, limited to a user's countries.
An enumerator is compared with the others through robust z-scores (median and MAD), on three
signs that interviews may not have been run as asked: answers that score unusually high or low
against their country's interviews, missing answers unusually rare or frequent, and scores
unusually uniform. These are prompts for a supervisor's check, not findings.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from reintegration.questionnaire import Questionnaire
from reintegration.store.answers import decode_answers
from reintegration.store.engine import for_reading
from reintegration.store.schema import score, submission

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 10_000
# MAD of a normal sample is 0.6745 sd: this factor makes robust z-scores read like z-scores.
MAD_TO_SD = 1.4826
BLANK = "blank"
NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class AnomalyRule:
    """Thresholds of :func:`enumerator_anomalies`.

    Parameters
    ----------
    min_interviews : int
        Enumerators with fewer interviews are listed but not judged.
    threshold : float
        A robust z-score beyond this (in absolute value) raises a flag.
    floors : tuple of float
        Smallest spread used for the score, missing-share and uniformity z-scores, so that a
        field where every enumerator is nearly identical does not flag tiny differences.
    """

    min_interviews: int = 20
    threshold: float = 3.5
    floors: tuple[float, float, float] = (0.01, 0.005, 0.01)


def _recent(
    engine: sa.Engine,
    *,
    columns: list[sa.ColumnElement],
    countries: Collection[str] | None,
    batch_id: str | None,
    limit: int,
    index_version: str | None = None,
) -> pd.DataFrame:
    query = sa.select(*columns).where(submission.c.current.is_(True))
    if index_version is not None:
        query = query.select_from(
            submission.outerjoin(
                score,
                sa.and_(
                    score.c.submission_pk == submission.c.id,
                    score.c.index_version == index_version,
                ),
            )
        )
    if countries is not None:
        query = query.where(submission.c.country.in_(sorted(countries)))
    if batch_id is not None:
        query = query.where(submission.c.batch_id == batch_id)
    query = query.order_by(submission.c.id.desc()).limit(limit)
    with for_reading(engine).connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame(rows, columns=[c.name for c in columns])


def _answer_kinds(answers: pd.DataFrame, questionnaire: Questionnaire) -> dict[str, pd.DataFrame]:
    """Per item, boolean columns: blank, not applicable, each missing code."""
    kinds = {}
    missing = [o.code for o in questionnaire.missing_codes]
    for item in questionnaire.items:
        column = answers[item.id]
        na_codes = [o.code for o in item.not_applicable]
        kinds[item.id] = pd.DataFrame(
            {
                BLANK: column.isna(),
                NOT_APPLICABLE: column.isin(na_codes),
                **{code: column.eq(code) for code in missing},
            }
        )
    return kinds


def missingness(
    engine: sa.Engine,
    questionnaire: Questionnaire,
    *,
    countries: Collection[str] | None = None,
    batch_id: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> pd.DataFrame:
    """How often each item was left blank, not applicable or answered with a missing code.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    questionnaire : Questionnaire
        The spec whose items, not-applicable options and missing codes are counted.
    countries : collection of str, optional
        Only interviews in these countries (a country-scoped user's).
    batch_id : str, optional
        Only this batch's interviews.
    limit : int
        How many of the most recent current interviews to read.

    Returns
    -------
    DataFrame
        One row per item in spec order: ``item``, ``dimension``, ``interviews``, ``answered``,
        ``not_applicable``, ``blank``, one column per missing code of the spec, ``missing``
        (blank plus missing codes) and ``share_missing`` (of interviews; NaN without any).
    """
    frame = _recent(
        engine,
        columns=[submission.c.answers],
        countries=countries,
        batch_id=batch_id,
        limit=limit,
    )
    answers = decode_answers(frame["answers"], questionnaire.item_ids)
    codes = [o.code for o in questionnaire.missing_codes]
    rows = []
    for item_id, kinds in _answer_kinds(answers, questionnaire).items():
        counts = kinds.sum().astype(int)
        missing = int(counts[BLANK] + sum(counts[c] for c in codes))
        interviews = len(kinds)
        rows.append(
            {
                "item": item_id,
                "dimension": questionnaire.item(item_id).dimension,
                "interviews": interviews,
                "answered": interviews - missing - int(counts[NOT_APPLICABLE]),
                NOT_APPLICABLE: int(counts[NOT_APPLICABLE]),
                BLANK: int(counts[BLANK]),
                **{c: int(counts[c]) for c in codes},
                "missing": missing,
                "share_missing": missing / interviews if interviews else np.nan,
            }
        )
    return pd.DataFrame(rows)


def _robust_z(values: pd.Series, judged: pd.Series, floor: float) -> pd.Series:
    reference = values[judged].dropna()
    if reference.empty:
        return pd.Series(np.nan, index=values.index)
    median = reference.median()
    scale = max(MAD_TO_SD * float((reference - median).abs().median()), floor)
    return ((values - median) / scale).where(judged)


def enumerator_anomalies(
    engine: sa.Engine,
    questionnaire: Questionnaire,
    *,
    index_version: str,
    countries: Collection[str] | None = None,
    batch_id: str | None = None,
    limit: int = DEFAULT_LIMIT,
    rule: AnomalyRule = AnomalyRule(),
) -> pd.DataFrame:
    """Per enumerator: interviews, missing answers and scores, compared with the others.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    questionnaire : Questionnaire
    index_version : str
        The index label whose stored composite scores are compared.
    countries, batch_id, limit
        As in :func:`missingness`.
    rule : AnomalyRule
        Thresholds.

    Returns
    -------
    DataFrame
        One row per enumerator (interviews without one are left out): ``enumerator_id``,
        ``country`` (where most of their interviews are), ``interviews``, ``share_missing``,
        ``mean_composite``, ``relative_composite`` (mean of each interview's composite minus
        its country's mean), ``sd_composite``, the robust z-scores ``z_composite``,
        ``z_missing``, ``z_uniform``, ``reasons`` (sentences) and ``flagged``; flagged first,
        the most unusual at the top.

    Examples
    --------
    >>> from reintegration.store.engine import open_store
    >>> from reintegration.questionnaire import load_questionnaire
    >>> engine = open_store("sqlite://")
    >>> len(enumerator_anomalies(engine, load_questionnaire(), index_version="rss-v1-provisional"))
    0
    """
    frame = _recent(
        engine,
        columns=[
            submission.c.enumerator_id,
            submission.c.country,
            submission.c.answers,
            score.c.composite,
        ],
        countries=countries,
        batch_id=batch_id,
        limit=limit,
        index_version=index_version,
    )
    frame = frame[frame["enumerator_id"].notna()]
    columns = [
        "enumerator_id",
        "country",
        "interviews",
        "share_missing",
        "mean_composite",
        "relative_composite",
        "sd_composite",
        "z_composite",
        "z_missing",
        "z_uniform",
        "reasons",
        "flagged",
    ]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    answers = decode_answers(frame["answers"], questionnaire.item_ids)
    missing_codes = [o.code for o in questionnaire.missing_codes]
    missing = sum(
        (kinds[BLANK] | kinds[missing_codes].any(axis=1)).astype(int).to_numpy()
        for kinds in _answer_kinds(answers, questionnaire).values()
    )
    composite = pd.to_numeric(frame["composite"], errors="coerce")
    rows = pd.DataFrame(
        {
            "enumerator_id": frame["enumerator_id"].to_numpy(),
            "country": frame["country"].to_numpy(),
            "missing": np.asarray(missing, dtype=float) / len(questionnaire.items),
            "composite": composite.to_numpy(),
        }
    )
    rows["relative"] = rows["composite"] - rows.groupby("country")["composite"].transform("mean")
    grouped = rows.groupby("enumerator_id", sort=True)
    table = pd.DataFrame(
        {
            "country": grouped["country"].agg(lambda c: c.mode().iloc[0]),
            "interviews": grouped.size(),
            "share_missing": grouped["missing"].mean(),
            "mean_composite": grouped["composite"].mean(),
            "relative_composite": grouped["relative"].mean(),
            "sd_composite": grouped["composite"].std(ddof=1),
        }
    ).reset_index()
    judged = table["interviews"] >= rule.min_interviews
    floor_score, floor_missing, floor_uniform = rule.floors
    table["z_composite"] = _robust_z(table["relative_composite"], judged, floor_score)
    table["z_missing"] = _robust_z(table["share_missing"], judged, floor_missing)
    table["z_uniform"] = _robust_z(table["sd_composite"], judged, floor_uniform)
    table["reasons"] = [_flags(row, table, judged, rule) for _, row in table.iterrows()]
    table["flagged"] = table["reasons"].map(bool)
    strength = table[["z_composite", "z_missing", "z_uniform"]].abs().max(axis=1).fillna(-1)
    table = table.assign(_strength=strength).sort_values(
        ["flagged", "_strength"], ascending=[False, False], kind="stable"
    )
    log.info("enumerator anomalies: %d enumerators, %d flagged", len(table), table["flagged"].sum())
    return table.drop(columns="_strength").reset_index(drop=True)[columns]


def _flags(row: pd.Series, table: pd.DataFrame, judged: pd.Series, rule: AnomalyRule) -> list[str]:
    if row["interviews"] < rule.min_interviews:
        return []
    reference = table[judged]
    out = []
    t = rule.threshold
    if abs(row["z_composite"]) > t:
        direction = "higher" if row["z_composite"] > 0 else "lower"
        out.append(
            f"scores {direction} than other enumerators' in the same country "
            f"({row['relative_composite']:+.2f} against the country mean)"
        )
    if abs(row["z_missing"]) > t:
        direction = "more" if row["z_missing"] > 0 else "fewer"
        out.append(
            f"{direction} missing answers than others ({row['share_missing']:.1%} against a "
            f"median of {reference['share_missing'].median():.1%})"
        )
    if row["z_uniform"] < -t:
        out.append(
            f"scores unusually alike (spread {row['sd_composite']:.2f} against a median of "
            f"{reference['sd_composite'].median():.2f})"
        )
    return out


def drift_by_item(
    engine: sa.Engine, *, model: str, model_version: int, last_batches: int = 10
) -> pd.DataFrame:
    """Population stability of each item in the most recent batches, against the data the
    model version was trained on (the ``drift`` rows written after each batch).

    Parameters
    ----------
    engine : sqlalchemy.Engine
    model : str
        Registered model name.
    model_version : int
    last_batches : int
        How many of the most recent batches with drift rows to summarise.

    Returns
    -------
    DataFrame
        One row per item, largest latest PSI first: ``item``, ``batches``, ``n`` (answers
        compared, summed), ``psi_latest`` (the most recent batch's), ``psi_mean``,
        ``psi_max``. Empty when the version has no drift rows.
    """
    from reintegration.store.schema import batch, drift

    recent = (
        sa.select(drift.c.batch_id, sa.func.max(batch.c.created_at).label("at"))
        .join(batch, batch.c.id == drift.c.batch_id)
        .where(drift.c.model == model, drift.c.model_version == model_version)
        .group_by(drift.c.batch_id)
        .order_by(sa.desc("at"))
        .limit(last_batches)
        .subquery()
    )
    query = (
        sa.select(drift.c.item, drift.c.psi, drift.c.n, recent.c.at)
        .join(recent, recent.c.batch_id == drift.c.batch_id)
        .where(drift.c.model == model, drift.c.model_version == model_version)
    )
    with for_reading(engine).connect() as conn:
        rows = pd.DataFrame(conn.execute(query).all(), columns=["item", "psi", "n", "at"])
    columns = ["item", "batches", "n", "psi_latest", "psi_mean", "psi_max"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows = rows.sort_values("at", kind="stable")
    grouped = rows.groupby("item", sort=False)
    table = pd.DataFrame(
        {
            "batches": grouped.size(),
            "n": grouped["n"].sum(),
            "psi_latest": grouped["psi"].last(),
            "psi_mean": grouped["psi"].mean(),
            "psi_max": grouped["psi"].max(),
        }
    ).reset_index()
    return table.sort_values("psi_latest", ascending=False, kind="stable").reset_index(drop=True)[
        columns
    ]
