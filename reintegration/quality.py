"""Data-quality queries: missing answers per item, and enumerators whose interviews stand out.

Both read the current version of the most recent interviews (``limit`` of them, so the page
stays quick on a store of millions), optionally one batch's, limited to a user's countries.
An enumerator is compared with the others through robust z-scores (median and MAD), on three
signs that interviews may not have been run as asked: answers that score unusually high or low
against their country's interviews, missing answers unusually rare or frequent, and scores
unusually uniform. These are prompts for a supervisor's check, not findings.

Both summaries are published figures: with ``protected=True`` every count and share or mean
they give passes :mod:`reintegration.disclosure` (cell-key perturbation, ``docs/privacy.md``),
computed from the perturbed counts and sums only; without it they are exact, as row-level
roles see them by default.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from reintegration import drift as item_drift
from reintegration.disclosure import KEY_MODULUS, Protection, gather, perturb_counts, publish
from reintegration.i18n import format_decimal, format_percent, gettext
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
DEFAULT_MIN_CELL = 5
DEFAULT_PROTECTION = Protection()
# The figures of an enumerator's cell, as reintegration.disclosure.publish names them: the
# composite of their scored interviews and each interview's share of items missing.
_ENUMERATOR_FIGURES = ("composite", "missing")


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
    protected: bool = False,
    min_cell: int = DEFAULT_MIN_CELL,
    protection: Protection = DEFAULT_PROTECTION,
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
    protected : bool
        Protected figures: each count perturbed with the key of the interviews it counts
        (:func:`reintegration.disclosure.perturb_counts`), ``share_missing`` the perturbed
        missing count over the perturbed number of interviews; a perturbed count from 1 to
        ``min_cell - 1`` is missing (NaN), and every figure when the interviews are that few.
        False (default): exact counts.
    min_cell : int
        Smallest count protected figures show.
    protection : Protection
        The parameters of protected figures (``reintegration.settings.protection``).

    Returns
    -------
    DataFrame
        One row per item in spec order: ``item``, ``dimension``, ``interviews``, ``answered``,
        ``not_applicable``, ``blank``, one column per missing code of the spec, ``missing``
        (blank plus missing codes) and ``share_missing`` (of interviews; NaN without any).
        Protected counts are floats (NaN where hidden).
    """
    columns: list[sa.ColumnElement] = [
        submission.c.answers,
        *([submission.c.record_key] if protected else []),
    ]
    frame = _recent(engine, columns=columns, countries=countries, batch_id=batch_id, limit=limit)
    answers = decode_answers(frame["answers"], questionnaire.item_ids, questionnaire=questionnaire)
    if protected:
        keys = frame["record_key"].to_numpy(np.int64)
        return _protected_missingness(answers, keys, questionnaire, min_cell, protection)
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


def _protected_missingness(
    answers: pd.DataFrame,
    keys: np.ndarray,
    questionnaire: Questionnaire,
    min_cell: int,
    protection: Protection,
) -> pd.DataFrame:
    """:func:`missingness` from perturbed counts: every count is that of a set of interviews,
    perturbed with the sum of their record keys."""
    codes = [o.code for o in questionnaire.missing_codes]
    everyone = np.ones(len(answers), dtype=bool)
    names = ["interviews", "answered", NOT_APPLICABLE, BLANK, *codes, "missing"]
    rows = []
    for item_id, kinds in _answer_kinds(answers, questionnaire).items():
        missing = (kinds[BLANK] | kinds[codes].any(axis=1)).to_numpy()
        not_applicable = kinds[NOT_APPLICABLE].to_numpy()
        masks = [
            everyone,
            ~(missing | not_applicable),
            not_applicable,
            kinds[BLANK].to_numpy(),
            *(kinds[c].to_numpy() for c in codes),
            missing,
        ]
        counted = _shown_counts(masks, keys, min_cell, protection)
        shown = dict(zip(names, counted, strict=True))
        interviews = shown["interviews"]
        if np.isnan(interviews):  # too few interviews: nothing of them is shown
            shown = dict.fromkeys(names, np.nan)
        share = shown["missing"] / interviews if interviews > 0 else np.nan
        rows.append(
            {
                "item": item_id,
                "dimension": questionnaire.item(item_id).dimension,
                **shown,
                "share_missing": min(share, 1.0) if not np.isnan(share) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def _shown_counts(
    masks: list[np.ndarray], keys: np.ndarray, min_cell: int, protection: Protection
) -> np.ndarray:
    """The perturbed number of interviews in each mask (keyed by their record keys), NaN from 1
    to ``min_cell - 1``: a true zero stays zero."""
    counts = np.array([int(m.sum()) for m in masks], dtype=np.int64)
    cell_keys = np.array([int(keys[m].sum() % KEY_MODULUS) for m in masks], dtype=np.int64)
    perturbed = perturb_counts(counts, cell_keys, protection).astype(np.float64)
    return np.where((perturbed > 0) & (perturbed < min_cell), np.nan, perturbed)


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
    protected: bool = False,
    min_cell: int = DEFAULT_MIN_CELL,
    protection: Protection = DEFAULT_PROTECTION,
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
    protected : bool
        Protected figures: each enumerator is a cell of
        :func:`reintegration.disclosure.publish` (interviews counted with their record keys,
        the composite and each interview's share of items missing summed with sum noise), and
        every figure, z-score and flag comes from what it publishes; ``relative_composite`` is
        then the enumerator's mean composite minus their country's, both protected.
        Enumerators whose perturbed number of interviews is under ``min_cell`` are not named:
        they are gathered into one row (``other`` True, ``enumerator_id`` and ``country``
        missing), perturbed as a cell of its own and never judged. False (default): exact.
    min_cell : int
        Smallest perturbed number of interviews of a listed enumerator.
    protection : Protection
        The parameters of protected figures.

    Returns
    -------
    DataFrame
        One row per enumerator (interviews without one are left out): ``enumerator_id``,
        ``country`` (where most of their interviews are), ``interviews``, ``share_missing``,
        ``mean_composite``, ``relative_composite`` (mean of each interview's composite minus
        its country's mean), ``sd_composite``, the robust z-scores ``z_composite``,
        ``z_missing``, ``z_uniform``, ``reasons`` (sentences) and ``flagged``; flagged first,
        the most unusual at the top. Protected figures add ``other``.

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
            *([submission.c.record_key] if protected else []),
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
        *(["other"] if protected else []),
    ]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    answers = decode_answers(frame["answers"], questionnaire.item_ids, questionnaire=questionnaire)
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
    if protected:
        rows["record_key"] = frame["record_key"].to_numpy(np.int64)
        table = _protected_enumerators(rows, min_cell, protection)
    else:
        table = _exact_enumerators(rows)
    judged = table["interviews"] >= rule.min_interviews
    if protected:  # the gathered row is not an enumerator
        judged &= ~table["other"]
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


def _exact_enumerators(rows: pd.DataFrame) -> pd.DataFrame:
    """Per enumerator, the exact figures of :func:`enumerator_anomalies`."""
    rows = rows.assign(
        relative=rows["composite"] - rows.groupby("country")["composite"].transform("mean")
    )
    grouped = rows.groupby("enumerator_id", sort=True)
    return pd.DataFrame(
        {
            "country": grouped["country"].agg(lambda c: c.mode().iloc[0]),
            "interviews": grouped.size(),
            "share_missing": grouped["missing"].mean(),
            "mean_composite": grouped["composite"].mean(),
            "relative_composite": grouped["relative"].mean(),
            "sd_composite": grouped["composite"].std(ddof=1),
        }
    ).reset_index()


def _protected_enumerators(
    rows: pd.DataFrame, min_cell: int, protection: Protection
) -> pd.DataFrame:
    """Per enumerator, :func:`enumerator_anomalies`' figures from protected cells only."""
    cells = _cells(rows, "enumerator_id")
    published = publish(
        pd.concat([cells, gather(cells, ["enumerator_id"])], ignore_index=True),
        figures=_ENUMERATOR_FIGURES,
        min_cell=min_cell,
        protection=protection,
    ).iloc[:-1]
    countries = _cells(rows, "country")
    by_country = publish(
        pd.concat([countries, gather(countries, ["country"])], ignore_index=True),
        figures=_ENUMERATOR_FIGURES,
        min_cell=min_cell,
        protection=protection,
    ).iloc[:-1]
    listed = by_country[~by_country["other"].astype(bool)]
    country_mean = listed.set_index("country")["composite_mean"]
    # The country label of an enumerator is where most of their interviews are.
    home = rows.groupby("enumerator_id", sort=True)["country"].agg(lambda c: c.mode().iloc[0])
    other = published["other"].astype(bool).to_numpy()
    country = published["enumerator_id"].map(home).where(~other, None)
    mean = published["composite_mean"].astype("float64")
    return pd.DataFrame(
        {
            "enumerator_id": published["enumerator_id"].where(~other, None).to_numpy(),
            "country": country.to_numpy(),
            "interviews": published["returnees"].astype("float64").to_numpy(),
            "share_missing": published["missing_mean"].astype("float64").to_numpy(),
            "mean_composite": mean.to_numpy(),
            "relative_composite": (mean - country.map(country_mean).astype("float64")).to_numpy(),
            "sd_composite": published["composite_sd"].astype("float64").to_numpy(),
            "other": other,
        }
    )


def _cells(rows: pd.DataFrame, by: str) -> pd.DataFrame:
    """The per-cell summaries :func:`reintegration.disclosure.publish` takes, one cell per
    value of ``by``: every interview counted (``returnees``), those without a composite
    (``unscored``), each with the sum of their record keys; the composite of the scored ones and
    each interview's share of items missing as figures (``_n``, ``_key``, ``_sum``, ``_sumsq``,
    ``_top``, ``_sd``)."""
    key = rows["record_key"].astype("int64")
    scored = rows["composite"].notna()
    composite = rows["composite"].astype("float64")
    missing = rows["missing"].astype("float64")
    parts = pd.DataFrame(
        {
            by: rows[by],
            "returnees": 1,
            "returnees_key": key,
            "unscored": (~scored).astype("int64"),
            "unscored_key": key.where(~scored, 0),
            "composite_n": scored.astype("int64"),
            "composite_key": key.where(scored, 0),
            "composite_sum": composite.fillna(0.0),
            "composite_sumsq": composite.fillna(0.0) ** 2,
            "composite_top": composite.abs(),
            "composite_sd": composite,
            "missing_n": 1,
            "missing_key": key,
            "missing_sum": missing,
            "missing_sumsq": missing**2,
            "missing_top": missing.abs(),
            "missing_sd": missing,
        }
    )
    grouped = parts.groupby(by, sort=True)
    sums = grouped.sum(numeric_only=True)
    cells = sums.assign(
        **{c: sums[c] % KEY_MODULUS for c in sums.columns if c.endswith("_key")},
        composite_top=grouped["composite_top"].max(),
        missing_top=grouped["missing_top"].max(),
        composite_sd=grouped["composite_sd"].std(ddof=1),
        missing_sd=grouped["missing_sd"].std(ddof=1),
    )
    return cells.reset_index()


def _flags(row: pd.Series, table: pd.DataFrame, judged: pd.Series, rule: AnomalyRule) -> list[str]:
    if row["interviews"] < rule.min_interviews:
        return []
    reference = table[judged]
    out = []
    t = rule.threshold
    # Sentences in the reader's language: a supervisor reads them on the Data quality page.
    relative = row["relative_composite"]
    if abs(row["z_composite"]) > t:
        gap = ("+" if relative > 0 else "") + format_decimal(relative)
        if row["z_composite"] > 0:
            out.append(
                gettext(
                    "scores higher than other enumerators' in the same country ({gap} against "
                    "the country mean)",
                    gap=gap,
                )
            )
        else:
            out.append(
                gettext(
                    "scores lower than other enumerators' in the same country ({gap} against "
                    "the country mean)",
                    gap=gap,
                )
            )
    if abs(row["z_missing"]) > t:
        share = format_percent(row["share_missing"], 1)
        median = format_percent(reference["share_missing"].median(), 1)
        if row["z_missing"] > 0:
            out.append(
                gettext(
                    "more missing answers than others ({share} against a median of {median})",
                    share=share,
                    median=median,
                )
            )
        else:
            out.append(
                gettext(
                    "fewer missing answers than others ({share} against a median of {median})",
                    share=share,
                    median=median,
                )
            )
    if row["z_uniform"] < -t:
        out.append(
            gettext(
                "scores unusually alike (spread {spread} against a median of {median})",
                spread=format_decimal(row["sd_composite"]),
                median=format_decimal(reference["sd_composite"].median()),
            )
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
        compared, summed), ``n_latest`` (the most recent batch's answers), ``psi_latest`` (the
        most recent batch's; NaN when it had fewer than ``drift.MIN_ROWS`` answers, however it
        was stored), ``psi_mean``, ``psi_max`` and ``status`` (of the latest batch, see
        :func:`reintegration.drift.status`: "too few rows" below ``drift.MIN_ROWS`` answers).
        Empty when the version has no drift rows.
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
    columns = ["item", "batches", "n", "n_latest", "psi_latest", "psi_mean", "psi_max", "status"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    rows = rows.sort_values("at", kind="stable")
    grouped = rows.groupby("item", sort=False)
    table = pd.DataFrame(
        {
            "batches": grouped.size(),
            "n": grouped["n"].sum(),
            "n_latest": grouped["n"].last(),
            # The latest batch's, even when it has none (last() would skip to an older one).
            "psi_latest": grouped["psi"].agg(lambda p: p.iloc[-1]),
            "psi_mean": grouped["psi"].mean(),
            "psi_max": grouped["psi"].max(),
        }
    ).reset_index()
    # Rows stored before drift.MIN_ROWS (a PSI of a 4-row batch) read "too few rows" too.
    latest = pd.to_numeric(table["psi_latest"], errors="coerce")
    table["psi_latest"] = latest.where(table["n_latest"] >= item_drift.MIN_ROWS)
    table["status"] = [
        item_drift.status(p, n) for p, n in zip(table["psi_latest"], table["n_latest"], strict=True)
    ]
    return table.sort_values("psi_latest", ascending=False, kind="stable").reset_index(drop=True)[
        columns
    ]
