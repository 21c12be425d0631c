"""The worklist's order, bands and reasons, and the case status: who sets it, where, audited,
erased with the returnee."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from reintegration.case_status import set_case_status, status_history
from reintegration.errors import Forbidden, QueryError
from reintegration.index import ReintegrationIndex
from reintegration.ingest import ingest_file
from reintegration.pseudonym import returnee_key
from reintegration.roles import Role
from reintegration.store.batches import erase_returnee
from reintegration.store.schema import audit, case_status
from reintegration.users import User
from reintegration.worklist import RiskBands, RiskSource, ranked
from tests.conftest import worst_answers

SECRET = b"k" * 32
EVERYWHERE = User("ana", Role.ANALYST, None)
SENEGAL = User("sen", Role.ANALYST, frozenset({"SEN"}))
ADMIN = User("root", Role.ADMIN, None)
EARLY = {"interview_date": "2025-03-01", "return_date": "2025-01-15"}


def key(case):
    return returnee_key(case, SECRET)


@pytest.fixture
def store(engine, questionnaire, batch_file):
    worst = worst_answers(questionnaire)
    rows = [
        # T and U tie at the worst first survey (risk 1): U was surveyed again later
        {"submission_id": "t1", "returnee_id": "T", "country": "SEN", **EARLY, **worst},
        {"submission_id": "u1", "returnee_id": "U", "country": "SEN", **EARLY, **worst},
        {"submission_id": "u2", "returnee_id": "U", "interview_date": "2025-10-01", **worst},
        {"submission_id": "v1", "returnee_id": "V", "country": "GIN", **EARLY},
    ]
    ingest_file(
        batch_file(*rows),
        engine,
        scorer=ReintegrationIndex().fit(),
        questionnaire=questionnaire,
        secret=SECRET,
        uploader="t",
    )
    return engine


def page(engine, caller=EVERYWHERE, **kwargs):
    index = ReintegrationIndex().fit()
    return ranked(
        engine,
        caller=caller,
        source=RiskSource(),
        index=index,
        index_version=index.label_,
        bands=RiskBands(0.3, 0.6),
        today=date(2026, 1, 1),
        **kwargs,
    )


def test_ties_in_risk_go_to_the_returnee_surveyed_longest_ago(store):
    found = page(store)

    assert [i["key"] for i in found.items] == [key("T"), key("U"), key("V")]
    assert [i["rank"] for i in found.items] == [1, 2, 3]
    assert found.items[0]["probability"] == found.items[1]["probability"] == pytest.approx(1.0)
    assert found.items[0]["days_since_last_survey"] == (date(2026, 1, 1) - date(2025, 3, 1)).days
    assert found.items[1]["last_interview_date"] == date(2025, 10, 1)
    assert found.total == 3


def test_a_page_says_how_many_rows_match_and_the_whole_list_holds_them(store):
    first = page(store, limit=1)
    everything = page(store, limit=None)
    second = page(store, limit=1, offset=1)

    assert first.total == everything.total == len(everything.items) == 3
    assert [i["rank"] for i in second.items] == [2]
    assert page(store, band={"low"}).total == 1


def test_bands_hold_the_range_they_name():
    bands = RiskBands(0.3, 0.6)
    assert [bands.band(p) for p in (0.29, 0.3, 0.59, 0.6, 0.74, 1.0)] == [
        "low",
        "medium",
        "medium",
        "high",
        "high",
        "high",
    ]


def test_every_reason_belongs_to_the_weakest_dimension(store, questionnaire):
    for item in page(store).items:
        assert item["weakest_dimension"] in questionnaire.index.dimensions
        # an interview with every answer at its best has no item behind a weakness
        assert bool(item["reasons"]) == (item["probability"] > 0), item
        for reason in item["reasons"]:
            assert questionnaire.item(reason["item"]).dimension == item["weakest_dimension"]


def test_an_analyst_sets_a_status_seen_in_the_worklist_and_audited(store):
    done = set_case_status(store, f"key:{key('T').upper()}", "contacted", SENEGAL)

    assert done is not None and done["status"] == "contacted" and done["actor"] == "sen"
    set_case_status(store, key("T"), "follow_up_planned", ADMIN)
    statuses = {i["key"]: i["status"] for i in page(store).items}
    assert statuses == {key("T"): "follow_up_planned", key("U"): "none", key("V"): "none"}
    history = status_history(store, key("T"), EVERYWHERE)
    assert [(h["status"], h["actor"]) for h in history] == [
        ("follow_up_planned", "root"),
        ("contacted", "sen"),
    ]
    with store.connect() as conn:
        entries = conn.execute(
            sa.select(audit.c.actor, audit.c.target, audit.c.detail).where(
                audit.c.action == "case_status"
            )
        ).all()
    assert [(e.actor, e.target) for e in entries] == [("sen", key("T")), ("root", key("T"))]
    assert all(set(e.detail) == {"entry"} for e in entries)  # no status in the audit


def test_a_returnee_outside_the_callers_countries_is_as_unknown_as_none(store):
    assert set_case_status(store, key("V"), "contacted", SENEGAL) is None
    assert set_case_status(store, "0" * 64, "contacted", EVERYWHERE) is None
    set_case_status(store, key("V"), "contacted", EVERYWHERE)
    assert status_history(store, key("V"), SENEGAL) == []


def test_managers_and_enumerators_may_not_set_a_status(store):
    for role in (Role.MANAGER, Role.ENUMERATOR):
        with pytest.raises(Forbidden, match=f"the {role.value} role may not see row-level data"):
            set_case_status(store, key("T"), "contacted", User("x", role, None))


def test_an_unknown_status_is_refused_with_the_choices(store):
    with pytest.raises(QueryError) as refused:
        set_case_status(store, key("T"), "closed", EVERYWHERE)
    assert str(refused.value) == (
        "'closed' is not a case status: use one of none, contacted, follow_up_planned"
    )


def test_an_erasure_removes_the_returnees_statuses(store):
    set_case_status(store, key("T"), "contacted", EVERYWHERE)
    set_case_status(store, key("U"), "contacted", EVERYWHERE)

    erase_returnee(store, key("T"), "admin")

    with store.connect() as conn:
        left = conn.execute(sa.select(case_status.c.returnee_key)).scalars().all()
    assert left == [key("U")]
    assert status_history(store, key("T"), EVERYWHERE) == []


def test_one_returnee_is_read_with_their_rank_in_the_whole_list(store):
    alone = page(store, key=f"key:{key('U')}")

    assert [(i["key"], i["rank"]) for i in alone.items] == [(key("U"), 2)]
    assert alone.total == 3
    assert page(store, caller=SENEGAL, key=key("V")).items == []


def test_a_returnees_risk_rows_are_banded_by_the_analysts_thresholds(store):
    from datetime import UTC, datetime

    from reintegration.casework import returnee_detail
    from reintegration.store.schema import risk, submission

    with store.begin() as conn:
        first = conn.execute(
            sa.select(submission.c.id).where(submission.c.submission_id == "t1")
        ).scalar_one()
        conn.execute(
            risk.insert().values(
                submission_pk=first,
                model="risk",
                model_version=1,
                returnee_key=key("T"),
                probability=0.74,
                band="low",  # as a model banded by tertiles once stored it
                weakest_dimension="social",
                reasons=[],
                created_at=datetime.now(UTC),
            )
        )

    found = returnee_detail(store, key("T"), EVERYWHERE, bands=(0.3, 0.6))

    assert [(r["probability"], r["band"]) for r in found["risk"]] == [(0.74, "high")]
