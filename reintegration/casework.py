"""Row-level views for case workers and M&E officers: one returnee, the worklist, score exports.

Everything here is pseudonymised: a returnee is known by their key, never their case number,
and no answer leaves the store, only scores, risk and the items behind it. A caller limited to
some countries passes them; a returnee outside them is as invisible as one that does not
exist. Reads go through :func:`reintegration.store.engine.for_reading`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from reintegration.coding import weight_text
from reintegration.index import ReintegrationIndex
from reintegration.people_csv import csv_text
from reintegration.policy import require
from reintegration.roles import Capability
from reintegration.scoring import format_figures
from reintegration.store.engine import for_reading
from reintegration.store.schema import audit, returnee, risk, score, submission
from reintegration.users import User
from reintegration.worklist import RiskBands, RiskSource, WorklistPage, ranked, reason_items

SCORE_FIGURES = ("economic", "social", "psychosocial", "composite")
EXPORT_COLUMNS = (
    "returnee_key",
    "submission_id",
    "interview_date",
    "survey_round",
    "months_since_return",
    "country",
    "sex",
    "age_at_return",
    "return_type",
    "weight",
    *SCORE_FIGURES,
    "level",
    "weakest_dimension",
    "sustainable",
    "index_version",
    "model_version",
)
EXPORT_CHUNK_ROWS = 5_000
DEFAULT_BANDS = (0.3, 0.6)
"""REINTEGRATION_RISK_BANDS' default: medium from 0.3, high from 0.6."""


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without their zone; they were stored in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _stored_reasons(item_ids: list[str] | None, weakest: str | None) -> list[dict[str, Any]]:
    # Rows stored before reasons were taken from the weakest dimension only may name items of
    # other dimensions: they are not reasons for the dimension shown.
    return [r for r in reason_items(item_ids) if r["dimension"] == weakest]


def returnee_detail(
    engine: sa.Engine, key: str, user: User, *, bands: tuple[float, float] | None = None
) -> dict[str, Any] | None:
    """A returnee's attributes, rounds with their scores, and risk rows with their reasons.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    key : str
        The returnee's key (HMAC of the case number, 64 hex digits; ``key:`` prefix allowed).
    user : User
        Who asks (ROW_LEVEL); a returnee outside their countries is not found. A read that
        finds someone is audited (``returnee_read``, the key as target).
    bands : tuple of float, optional
        The analyst's risk bands (``Settings.risk_band_limits``): each risk row's band is
        read from its probability with them, as the worklist does; without them, the band
        stored with the row (the thresholds its model version was trained under).

    Returns
    -------
    dict or None
        ``key, sex, age_at_return, child, return_type, country, rounds, risk``; None when
        there is no such returnee or the user may not see their country.

    Raises
    ------
    Forbidden
        The user's role may not see row-level data.
    """
    require(user, Capability.ROW_LEVEL)
    key = key.strip().lower().removeprefix("key:").strip()
    reader = for_reading(engine)
    with reader.connect() as conn:
        person = conn.execute(sa.select(returnee).where(returnee.c.key == key)).first()
        if person is None or not user.sees_country(person.country):
            return None
        s = submission.c
        rounds = conn.execute(
            sa.select(
                s.id,
                s.submission_id,
                s.version,
                s.interview_date,
                s.return_date,
                s.months_since_return,
                s.survey_round,
                s.country,
                s.interview_mode,
                s.assistance,
                s.batch_id,
            )
            .where(s.returnee_key == key, s.current.is_(True))
            .order_by(s.interview_date, s.submission_id)
        ).all()
        pks = [r.id for r in rounds]
        scores = conn.execute(
            sa.select(score).where(score.c.submission_pk.in_(pks)).order_by(score.c.index_version)
        ).all()
        risks = conn.execute(
            sa.select(risk, s.submission_id)
            .join(submission, submission.c.id == risk.c.submission_pk)
            .where(risk.c.returnee_key == key)
            .order_by(risk.c.model, risk.c.model_version)
        ).all()
    _audit_read(engine, user, "returnee_read", person.key, {"rounds": len(rounds)})
    by_submission: dict[int, list[dict[str, Any]]] = {}
    for row in scores:
        by_submission.setdefault(row.submission_pk, []).append(
            {
                "index_version": row.index_version,
                "model_version": row.model_version,
                **{f: row._mapping[f] for f in SCORE_FIGURES},
                "level": row.level,
                "weakest_dimension": row.weakest_dimension,
                "sustainable": row.sustainable,
            }
        )
    return {
        "key": person.key,
        "sex": person.sex,
        "age_at_return": person.age_at_return,
        "child": person.child,
        "return_type": person.return_type,
        "country": person.country,
        "rounds": [
            {
                "submission_id": r.submission_id,
                "version": r.version,
                "interview_date": r.interview_date,
                "return_date": r.return_date,
                "months_since_return": r.months_since_return,
                "survey_round": r.survey_round,
                "country": r.country,
                "interview_mode": r.interview_mode,
                "assistance": (r.assistance or "").split(),
                "batch_id": r.batch_id,
                "scores": by_submission.get(r.id, []),
            }
            for r in rounds
        ],
        "risk": [
            {
                "model": r.model,
                "model_version": r.model_version,
                "submission_id": r.submission_id,
                "probability": r.probability,
                "band": r.band if bands is None else RiskBands(*bands).band(r.probability),
                "weakest_dimension": r.weakest_dimension,
                "reasons": _stored_reasons(r.reasons, r.weakest_dimension),
                "created_at": _aware(r.created_at),
            }
            for r in risks
        ],
    }


def worklist(
    engine: sa.Engine,
    *,
    caller: User,
    model: str,
    model_version: int,
    index: ReintegrationIndex | None = None,
    index_version: str | None = None,
    bands: tuple[float, float] = DEFAULT_BANDS,
    countries: Collection[str] | None = None,
    sex: Collection[str] | None = None,
    age_group: Collection[str] | None = None,
    return_type: Collection[str] | None = None,
    band: Collection[str] | None = None,
    limit: int | None = 100,
    offset: int = 0,
) -> WorklistPage:
    """Returnees ranked by a risk model version's risk of not reintegrating sustainably.

    With no promoted risk model, the worklist ranks by the baseline rule instead
    (:func:`reintegration.baseline_worklist.baseline_worklist`). Order, bands, reasons and
    counts are :func:`reintegration.worklist.ranked`'s.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    caller : User
        Who asks (ROW_LEVEL); the rows stay within their countries whatever ``countries``
        says. The read is audited (``worklist_read``, with the number of rows).
    model, model_version : str, int
        The risk model (registered name) and the version whose rows to rank (the champion).
    index, index_version : ReintegrationIndex, str, optional
        The champion index and its label (default: the built-in v1): the weakest dimension,
        its items, and the composite that breaks ties.
    bands : tuple of float
        Risk from which a returnee is medium, and high (``Settings.risk_band_limits``).
    countries, sex, age_group, return_type, band : collections of str, optional
        Keep only these (``age_group``: ``child`` / ``adult``); None keeps every value.
    limit, offset : int
        The page (``limit=None``: every row).

    Returns
    -------
    WorklistPage
        The page's rows (see :func:`reintegration.worklist.ranked`) and how many match.

    Raises
    ------
    Forbidden
        The caller's role may not see row-level data.
    """
    index = index if index is not None else ReintegrationIndex().fit()
    return ranked(
        engine,
        caller=caller,
        source=RiskSource(model, model_version),
        index=index,
        index_version=index_version or index.label_,
        bands=RiskBands(*bands),
        countries=countries,
        sex=sex,
        age_group=age_group,
        return_type=return_type,
        band=band,
        limit=limit,
        offset=offset,
    )


def export_scores_csv(
    engine: sa.Engine,
    *,
    index_version: str,
    countries: Collection[str] | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> Iterator[str]:
    """The current submissions' scores of one index version as CSV text, chunk by chunk.

    Pseudonymised (the returnee's key, never the case number) and formula-safe: a text cell
    a spreadsheet would run as a formula gets a leading apostrophe. Rows come in returnee and
    interview-date order; the first chunk is the header. Scores are written as ``reintegration
    score`` writes them (:func:`reintegration.scoring.format_figures`: four decimals, halves
    away from zero, so a stored 0.65625 is ``0.6563``). ``weight`` is the interview's design or
    retention weight as stored (blank when it has none), so a weighted estimate can be
    recomputed from the file.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    index_version : str
        The index label whose scores to export.
    countries : collection of str, optional
        Only returnees of these countries.
    date_from, date_to : date, optional
        Interview dates, both ends included.

    Yields
    ------
    str
        CSV text (UTF-8 when encoded, ``\\n`` line ends).
    """
    s, r, sc = submission.c, returnee.c, score.c
    query = (
        sa.select(
            s.returnee_key,
            s.submission_id,
            s.interview_date,
            s.survey_round,
            s.months_since_return,
            r.country,
            s.sex,
            s.age_at_return,
            s.return_type,
            s.weight,
            *(sc[f] for f in SCORE_FIGURES),
            sc.level,
            sc.weakest_dimension,
            sc.sustainable,
            sc.index_version,
            sc.model_version,
        )
        .join(returnee, r.key == s.returnee_key)
        .join(score, sc.submission_pk == s.id)
        .where(s.current.is_(True), sc.index_version == index_version)
        .order_by(s.returnee_key, s.interview_date, s.submission_id)
    )
    if countries is not None:
        query = query.where(r.country.in_(sorted(countries)))
    if date_from is not None:
        query = query.where(s.interview_date >= date_from)
    if date_to is not None:
        query = query.where(s.interview_date <= date_to)
    yield _csv_lines([EXPORT_COLUMNS])
    with for_reading(engine).connect() as conn:
        result = conn.execution_options(yield_per=EXPORT_CHUNK_ROWS).execute(query)
        for rows in result.partitions():
            figures = _figure_texts(rows)
            yield _csv_lines(_export_cells(row, figures, k) for k, row in enumerate(rows))


def _figure_texts(rows: Any) -> dict[str, list[str | None]]:
    # One rounding rule for every score file: the one `reintegration score` applies. Python's
    # f"{x:.4f}" rounds an exact binary half to even (0.65625 -> 0.6562); RSS.md says away
    # from zero.
    texts: dict[str, list[str | None]] = {}
    for name in SCORE_FIGURES:
        values = np.array(
            [np.nan if row._mapping[name] is None else row._mapping[name] for row in rows],
            dtype=np.float64,
        )
        texts[name] = format_figures(values).to_pylist()
    return texts


def _export_cells(row: Any, figures: dict[str, list[str | None]], k: int) -> list[str]:
    cells = []
    for name, value in zip(EXPORT_COLUMNS, row, strict=True):
        if value is None:
            cells.append("")
        elif name in figures:
            cells.append(figures[name][k] or "")
        elif name == "sustainable":
            cells.append("true" if value else "false")
        elif name == "weight":  # as stored: the shortest text that reads back the same
            cells.append(weight_text(value))
        elif isinstance(value, float):
            cells.append(f"{value:.2f}")
        else:
            cells.append(str(value))  # neutralised by csv_text, like every cell
    return cells


def _csv_lines(rows: Any) -> str:
    return csv_text(rows)


def _audit_read(
    engine: sa.Engine, caller: User, action: str, target: str, detail: dict[str, Any]
) -> None:
    # Reads of row-level data are audited like changes: who, what (a pseudonymous key or a
    # model), and counts; never case numbers or answers.
    with engine.begin() as conn:
        conn.execute(
            audit.insert().values(
                at=datetime.now(UTC), actor=caller.name, action=action, target=target, detail=detail
            )
        )


def record_export(engine: sa.Engine, caller: User, what: str, detail: dict[str, Any]) -> None:
    """Audit a row-level export: who exported what, with which filters (never the rows).

    Called before the export is written, so a refused caller gets neither rows nor an entry.

    Raises
    ------
    Forbidden
        The caller's role may not export row-level data.
    """
    require(caller, Capability.ROW_LEVEL)
    _audit_read(engine, caller, "export", what, detail)
