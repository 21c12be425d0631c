"""The worklist without a promoted risk model: ranked by the baseline rule.

DESIGN.md, "Models and versions": a risk model is promoted only when it beats the baseline rule,
``risk = 1 - the composite of the returnee's first survey``; until one is, the worklist ranks
by that rule and says so (:data:`BASELINE_NOTE`). The first survey is the one the risk model
uses (:func:`reintegration.risk_features.first_surveys`: a returnee's first interview, when it
took place within 4 months of return), scored by the champion index; a returnee whose first
survey has no composite is not ranked. Bands are the analyst's absolute thresholds
(``REINTEGRATION_RISK_BANDS``) applied to the rule's risk, which is a ranking score and not a
calibrated probability. Each row names the first survey's weakest dimension and its
lowest-scoring items, as a model's risk rows do.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from reintegration.casework import _audit_read, worklist_entry
from reintegration.index import ReintegrationIndex
from reintegration.policy import require
from reintegration.questionnaire import load_questionnaire
from reintegration.risk_features import FIRST_SURVEY_MAX_MONTHS, reasons
from reintegration.roles import Capability
from reintegration.store.engine import for_reading
from reintegration.store.schema import returnee, score, submission
from reintegration.store.submissions import read_submissions
from reintegration.users import User

BASELINE_NOTE = "ranked by the baseline rule (1 − first-survey composite): no promoted risk model"
BASELINE_TARGET = "baseline rule"


def _first_surveys() -> Any:
    """Each returnee's first current interview (date, round, id order), numbered 1."""
    s = submission.c
    order = sa.func.row_number().over(
        partition_by=s.returnee_key,
        order_by=(s.interview_date, s.survey_round.asc().nulls_last(), s.id),
    )
    return (
        sa.select(s.id, s.returnee_key, s.months_since_return, s.submission_id, s.interview_date)
        .add_columns(order.label("position"))
        .where(s.current.is_(True))
        .subquery("ordered")
    )


def baseline_worklist(
    engine: sa.Engine,
    *,
    caller: User,
    index: ReintegrationIndex,
    index_version: str,
    bands: tuple[float, float],
    countries: Collection[str] | None = None,
    sex: Collection[str] | None = None,
    age_group: Collection[str] | None = None,
    return_type: Collection[str] | None = None,
    band: Collection[str] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Returnees ranked by 1 - their first survey's composite, highest risk first.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    caller : User
        Who asks (ROW_LEVEL); the rows stay within their countries. The read is audited
        (``worklist_read``, target ``baseline rule <index label>``).
    index : ReintegrationIndex
        The champion index (its weights rank the items given as reasons).
    index_version : str
        Its label: the stored scores whose composite ranks.
    bands : tuple of float
        Risk from which a returnee is medium, and high (``Settings.risk_band_limits``).
    countries, sex, age_group, return_type, band : collections of str, optional
        Keep only these; None keeps every value.
    limit, offset : int
        The page.

    Returns
    -------
    list of dict
        As :func:`reintegration.casework.worklist`; ``probability`` is the rule's risk
        (1 - composite) and ``band`` its band.

    Raises
    ------
    Forbidden
        The caller's role may not see row-level data.
    """
    require(caller, Capability.ROW_LEVEL)
    if caller.countries is not None:
        countries = caller.countries if countries is None else set(countries) & caller.countries
    first = _first_surveys()
    r, sc, f = returnee.c, score.c, first.c
    risk = (sa.literal(1.0) - sc.composite).label("risk")
    query = (
        sa.select(
            f.id,
            f.returnee_key,
            f.submission_id,
            f.interview_date,
            risk,
            sc.weakest_dimension,
            r.country,
            r.sex,
            r.child,
            r.return_type,
        )
        .join(score, sc.submission_pk == f.id)
        .join(returnee, r.key == f.returnee_key)
        .where(
            f.position == 1,
            f.months_since_return <= FIRST_SURVEY_MAX_MONTHS,
            sc.index_version == index_version,
            sc.composite.is_not(None),
        )
        .order_by(sc.composite.asc(), f.returnee_key)
    )
    for column, wanted in ((r.country, countries), (r.sex, sex), (r.return_type, return_type)):
        if wanted is not None:
            query = query.where(column.in_(sorted(wanted)))
    if age_group is not None:
        children = [g == "child" for g in set(age_group) if g in ("child", "adult")]
        query = query.where(r.child.in_(children))
    if band is not None:
        medium, high = bands
        within = {
            "low": risk < medium,
            "medium": sa.and_(risk >= medium, risk < high),
            "high": risk >= high,
        }
        query = query.where(sa.or_(sa.false(), *(within[b] for b in sorted(band) if b in within)))
    questionnaire = load_questionnaire()
    with for_reading(engine).connect() as conn:
        rows = conn.execute(query.limit(limit).offset(offset)).all()
        pks = [row.id for row in rows]
        items = read_submissions(conn, questionnaire, extra=submission.c.id.in_(pks))
    lowest: dict[int, list[str]] = {}
    if pks:
        _, found = reasons(items[list(questionnaire.item_ids)], index)
        lowest = dict(zip(items["pk"].tolist(), found, strict=True))
    _audit_read(
        engine,
        caller,
        "worklist_read",
        f"{BASELINE_TARGET} {index_version}",
        {"rows": len(rows), "offset": offset},
    )
    medium, high = bands
    return [
        worklist_entry(
            row,
            probability=float(row.risk),
            band="low" if row.risk < medium else ("medium" if row.risk < high else "high"),
            reasons=lowest.get(row.id, []),
        )
        for row in rows
    ]
