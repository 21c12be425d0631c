"""The worklist: returnees ranked by risk, each with the weakest dimension and the items behind it.

One ranking for both sources of risk, a promoted risk model's rows or, without one, the
baseline rule (``1 - the first survey's composite``, DESIGN.md "Models and versions"):

- **Order.** Risk to a tenth of a percent (as shown), highest first; ties (an
  isotonic-calibrated model gives many returnees the same probability, hundreds of them 1)
  go to the lower first-survey composite, then to the returnee surveyed longest ago (earliest
  last interview), then to the key, so the order is stable.
- **Bands** are computed when read from the risk as shown and the analyst's absolute thresholds
  (``REINTEGRATION_RISK_BANDS``, :class:`RiskBands`), never taken from a stored label, so a
  band always holds the range it names, whatever thresholds a model version was trained under.
- **Reasons** are computed when read from the first survey's items with the champion index:
  the weakest dimension and up to three items of that dimension, lowest first
  (:func:`reintegration.risk_features.reasons`), so every reason belongs to the dimension shown.
- **Counts.** :class:`WorklistPage` carries the number of rows matching the filters; a page
  and the whole list (``limit=None``, the export) come from the same query.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from reintegration.case_status import latest_statuses, normalised_key
from reintegration.index import ReintegrationIndex
from reintegration.policy import require
from reintegration.questionnaire import load_questionnaire
from reintegration.risk_features import FIRST_SURVEY_MAX_MONTHS, reasons
from reintegration.roles import Capability
from reintegration.store.engine import for_reading
from reintegration.store.schema import audit, returnee, risk, score, submission
from reintegration.store.submissions import read_submissions
from reintegration.users import User

BANDS = ("low", "medium", "high")
BASELINE_TARGET = "baseline rule"
RANK_DIGITS = 3
"""Decimals of the risk that ranks (0.1%): closer risks are ties, broken by the composite."""
EXPLAIN_CHUNK = 2_000  # first surveys whose items are read at once to give reasons


@dataclass(frozen=True)
class RiskBands:
    """The analyst's absolute risk thresholds: medium from ``medium_from``, high from
    ``high_from`` (``Settings.risk_band_limits``).

    Examples
    --------
    >>> bands = RiskBands(0.3, 0.6)
    >>> [bands.band(p) for p in (0.0, 0.2999, 0.3, 0.6, 1.0)]
    ['low', 'low', 'medium', 'high', 'high']
    >>> bands.ranges()["medium"]
    (0.3, 0.6)
    """

    medium_from: float
    high_from: float

    def band(self, risk: float) -> str:
        """``low``, ``medium`` or ``high`` for one risk."""
        if risk >= self.high_from:
            return "high"
        return "medium" if risk >= self.medium_from else "low"

    def ranges(self) -> dict[str, tuple[float, float]]:
        """Each band's range ``[from, to)`` (high includes 1)."""
        return {
            "low": (0.0, self.medium_from),
            "medium": (self.medium_from, self.high_from),
            "high": (self.high_from, 1.0),
        }

    def condition(self, value: Any, names: Collection[str]) -> Any:
        """A SQL condition keeping ``value`` (a risk expression) within the bands ``names``."""
        within = {
            "low": value < self.medium_from,
            "medium": sa.and_(value >= self.medium_from, value < self.high_from),
            "high": value >= self.high_from,
        }
        return sa.or_(sa.false(), *(within[b] for b in sorted(names) if b in within))


@dataclass(frozen=True)
class RiskSource:
    """Whose risk ranks the list: a risk model version (``model``, ``model_version``), or the
    baseline rule when ``model`` is None."""

    model: str | None = None
    model_version: int | None = None

    def target(self, index_version: str) -> str:
        """How the audit names the ranking (the baseline rule with the index it reads)."""
        if self.model is None:
            return f"{BASELINE_TARGET} {index_version}"
        return f"{self.model} v{self.model_version}"


@dataclass(frozen=True)
class WorklistPage:
    """Rows of the worklist, the number matching the filters, and the bands they are in."""

    items: list[dict[str, Any]]
    total: int
    bands: RiskBands
    source: RiskSource


def _first_surveys() -> Any:
    """Each returnee's first current interview (date, round, id order), numbered 1."""
    s = submission.c
    order = sa.func.row_number().over(
        partition_by=s.returnee_key,
        order_by=(s.interview_date, s.survey_round.asc().nulls_last(), s.id),
    )
    return (
        sa.select(s.id, s.returnee_key, s.months_since_return)
        .add_columns(order.label("position"))
        .where(s.current.is_(True))
        .subquery("ordered")
    )


def _last_surveys() -> Any:
    s = submission.c
    return (
        sa.select(s.returnee_key, sa.func.max(s.interview_date).label("last_interview"))
        .where(s.current.is_(True))
        .group_by(s.returnee_key)
        .subquery("last_survey")
    )


def _query(source: RiskSource, index_version: str) -> tuple[Any, Any, Any]:
    """The ranked rows of ``source`` (every returnee, unfiltered), the risk as shown (what
    ranks and bands), and the order."""
    r, s, sc = returnee.c, submission.c, score.c
    last, status = _last_surveys(), latest_statuses()
    if source.model is None:
        first = _first_surveys()
        pk, key = first.c.id, first.c.returnee_key
        value = sa.literal(1.0) - sc.composite
        base = (
            sa.select(pk.label("pk"), key.label("returnee_key"), value.label("risk"))
            .select_from(first)
            .join(score, sa.and_(sc.submission_pk == pk, sc.index_version == index_version))
            .where(
                first.c.position == 1,
                first.c.months_since_return <= FIRST_SURVEY_MAX_MONTHS,
                sc.composite.is_not(None),
            )
        )
    else:
        p = risk.c
        pk, key, value = p.submission_pk, p.returnee_key, p.probability
        base = (
            sa.select(pk.label("pk"), key.label("returnee_key"), value.label("risk"))
            .select_from(risk)
            .outerjoin(score, sa.and_(sc.submission_pk == pk, sc.index_version == index_version))
            .where(p.model == source.model, p.model_version == source.model_version)
        )
    # Ranked on the risk as shown (to a tenth of a percent): rows that read the same risk are
    # ties, and go to the lower composite. NUMERIC, as PostgreSQL rounds no double to digits.
    shown = sa.func.round(sa.cast(value, sa.Numeric), RANK_DIGITS)
    query = (
        base.add_columns(
            shown.label("ranked_risk"),
            sc.composite,
            last.c.last_interview,
            r.country,
            r.sex,
            r.child,
            r.return_type,
            s.submission_id,
            s.interview_date,
            status.c.status,
            status.c.status_at,
        )
        .join(returnee, r.key == key)
        .join(submission, s.id == pk)
        .outerjoin(last, last.c.returnee_key == key)
        .outerjoin(status, status.c.returnee_key == key)
    )
    order = (
        shown.desc(),
        sc.composite.asc().nulls_last(),
        last.c.last_interview.asc().nulls_last(),
        key.asc(),
    )
    return query, shown, order


def ranked(
    engine: sa.Engine,
    *,
    caller: User,
    source: RiskSource,
    index: ReintegrationIndex,
    index_version: str,
    bands: RiskBands,
    countries: Collection[str] | None = None,
    sex: Collection[str] | None = None,
    age_group: Collection[str] | None = None,
    return_type: Collection[str] | None = None,
    band: Collection[str] | None = None,
    key: str | None = None,
    limit: int | None = 100,
    offset: int = 0,
    today: date | None = None,
) -> WorklistPage:
    """The worklist of one source of risk, ranked, filtered, one page of it and its total.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    caller : User
        Who asks (ROW_LEVEL); the rows stay within their countries whatever ``countries``
        says. The read is audited (``worklist_read``: the ranking, rows and total).
    source : RiskSource
        The risk model version whose rows rank, or the baseline rule.
    index : ReintegrationIndex
        The champion index: it names the weakest dimension and the items behind it.
    index_version : str
        Its label: the stored scores whose composite breaks ties (and is the baseline's risk).
    bands : RiskBands
        The thresholds that band each risk (and that ``band`` filters on).
    countries, sex, age_group, return_type, band : collections of str, optional
        Keep only these (``age_group``: ``child`` / ``adult``); None keeps every value.
    key : str, optional
        Only this returnee (their page), with their rank among the rows the filters keep and
        ``total`` those rows; such a read is not audited here (the page's read is).
    limit, offset : int
        The page; ``limit=None`` gives every matching row (the export).
    today : date, optional
        The day ``days_since_last_survey`` counts to (default: today, UTC).

    Returns
    -------
    WorklistPage
        ``items``: dicts with ``rank, key, country, sex, age_group, return_type,
        submission_id, interview_date, probability, ranked_risk`` (the probability to
        :data:`RANK_DIGITS` decimals, which ranks), ``band, composite, last_interview_date,
        days_since_last_survey, weakest_dimension, reasons, status, status_at``.

    Raises
    ------
    Forbidden
        The caller's role may not see row-level data.
    """
    require(caller, Capability.ROW_LEVEL)
    if caller.countries is not None:
        countries = caller.countries if countries is None else set(countries) & caller.countries
    query, value, order = _query(source, index_version)
    r = returnee.c
    for column, wanted in ((r.country, countries), (r.sex, sex), (r.return_type, return_type)):
        if wanted is not None:
            query = query.where(column.in_(sorted(wanted)))
    if age_group is not None:
        children = [g == "child" for g in set(age_group) if g in ("child", "adult")]
        query = query.where(r.child.in_(children))
    if band is not None:
        query = query.where(bands.condition(value, band))
    counted = sa.select(sa.func.count()).select_from(query.subquery("matching"))
    if key is None:
        page = query.order_by(*order).offset(offset)
        if limit is not None:
            page = page.limit(limit)
    else:
        # One returnee, with their rank among the rows the filters keep.
        ranks = query.add_columns(sa.func.row_number().over(order_by=order).label("position"))
        positioned = ranks.subquery("positioned")
        page = sa.select(positioned).where(positioned.c.returnee_key == normalised_key(key))
    with for_reading(engine).connect() as conn:
        total = int(conn.execute(counted).scalar_one())
        rows = conn.execute(page).all()
        explained = _explain(conn, [row.pk for row in rows], index)
    if key is None:
        detail = {"rows": len(rows), "offset": offset, "total": total}
        _audit(caller, engine, source.target(index_version), detail)
    today = today or datetime.now(UTC).date()
    items = [
        _entry(row, getattr(row, "position", rank), bands, explained.get(row.pk, (None, [])), today)
        for rank, row in enumerate(rows, start=offset + 1)
    ]
    return WorklistPage(items=items, total=total, bands=bands, source=source)


def _explain(
    conn: sa.Connection, pks: list[int], index: ReintegrationIndex
) -> dict[int, tuple[str | None, list[str]]]:
    """Weakest dimension and its lowest items of each first survey, by submission pk."""
    questionnaire = load_questionnaire()
    out: dict[int, tuple[str | None, list[str]]] = {}
    for chunk in _chunks(pks, EXPLAIN_CHUNK):
        items = read_submissions(conn, questionnaire, extra=submission.c.id.in_(chunk))
        if items.empty:
            continue
        weakest, lowest = reasons(items[list(questionnaire.item_ids)], index)
        for pk, w, found in zip(items["pk"].tolist(), weakest, lowest, strict=True):
            out[int(pk)] = (w, found)
    return out


def _chunks(values: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _entry(
    row: Any,
    rank: int,
    bands: RiskBands,
    explained: tuple[str | None, list[str]],
    today: date,
) -> dict[str, Any]:
    weakest, items = explained
    last = _as_date(row.last_interview)
    probability = float(row.risk)
    return {
        "rank": rank,
        "key": row.returnee_key,
        "country": row.country,
        "sex": row.sex,
        "age_group": None if row.child is None else ("child" if row.child else "adult"),
        "return_type": row.return_type,
        "submission_id": row.submission_id,
        "interview_date": _as_date(row.interview_date),
        "probability": probability,
        "ranked_risk": float(row.ranked_risk),
        "band": bands.band(float(row.ranked_risk)),
        "composite": None if row.composite is None else float(row.composite),
        "last_interview_date": last,
        "days_since_last_survey": None if last is None else (today - last).days,
        "weakest_dimension": weakest,
        "reasons": reason_items(items),
        "status": row.status or "none",
        "status_at": None
        if row.status_at is None
        else (row.status_at if row.status_at.tzinfo else row.status_at.replace(tzinfo=UTC)),
    }


def reason_items(item_ids: list[str] | None) -> list[dict[str, str | None]]:
    """Item ids as reasons: each with its dimension and (English) question."""
    questionnaire = load_questionnaire()
    known = set(questionnaire.item_ids)
    out: list[dict[str, str | None]] = []
    for item_id in item_ids or []:
        item = questionnaire.item(item_id) if item_id in known else None
        out.append(
            {
                "item": item_id,
                "dimension": None if item is None else item.dimension,
                "question": None if item is None else item.question.get("en"),
            }
        )
    return out


def _as_date(value: Any) -> date | None:
    # SQLite gives a MAX() over dates back as text.
    if value is None or isinstance(value, date):
        return value if not isinstance(value, datetime) else value.date()
    return date.fromisoformat(str(value)[:10])


def _audit(caller: User, engine: sa.Engine, target: str, detail: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(
            audit.insert().values(
                at=datetime.now(UTC),
                actor=caller.name,
                action="worklist_read",
                target=target,
                detail=detail,
            )
        )
