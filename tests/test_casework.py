"""Row-level views: one returnee, the worklist ranked by risk, the score export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from reintegration import casework
from reintegration.index import ReintegrationIndex
from reintegration.ingest import ingest_file
from reintegration.pseudonym import returnee_key
from reintegration.roles import Role
from reintegration.store.schema import audit, risk, submission
from reintegration.users import User

SECRET = b"k" * 32
EVERYWHERE = User("ana", Role.ANALYST, None)
SENEGAL = User("sen", Role.ANALYST, frozenset({"SEN"}))


@pytest.fixture
def stored(engine, questionnaire, batch_file):
    rows = [
        {"submission_id": "a1", "returnee_id": "A", "country": "SEN", "sex": "male"},
        {
            "submission_id": "a2",
            "returnee_id": "A",
            "country": "SEN",
            "interview_date": "2025-09-01",
        },
        {"submission_id": "b1", "returnee_id": "B", "country": "GIN", "age_at_return": "12"},
        {
            "submission_id": "=c1",
            "returnee_id": "C",
            "country": "SEN",
            "interview_date": "2024-01-01",
            "return_date": "2023-12-01",
        },
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


def key(case):
    return returnee_key(case, SECRET)


def add_risk(engine, version, probabilities):
    with engine.begin() as conn:
        firsts = dict(
            conn.execute(
                sa.select(submission.c.returnee_key, submission.c.id).where(
                    submission.c.survey_round == 1
                )
            ).all()
        )
        for case, probability in probabilities.items():
            conn.execute(
                risk.insert().values(
                    submission_pk=firsts[key(case)],
                    model="risk",
                    model_version=version,
                    returnee_key=key(case),
                    probability=probability,
                    band="high" if probability > 0.5 else "low",
                    weakest_dimension="social",
                    reasons=[],
                    created_at=datetime.now(UTC),
                )
            )


def test_a_returnee_has_rounds_in_date_order_with_scores(stored):
    found = casework.returnee_detail(stored, key("A"), EVERYWHERE)

    assert found is not None and found["country"] == "SEN"
    assert [r["submission_id"] for r in found["rounds"]] == ["a1", "a2"]
    assert [r["survey_round"] for r in found["rounds"]] == [1, 2]
    assert found["rounds"][0]["scores"][0]["index_version"] == "rss-v1-provisional"


def test_a_returnee_outside_the_users_countries_is_not_found(stored):
    assert casework.returnee_detail(stored, key("B"), SENEGAL) is None
    assert casework.returnee_detail(stored, key("A"), SENEGAL) is not None
    assert casework.returnee_detail(stored, "0" * 64, EVERYWHERE) is None


def test_the_worklist_ranks_one_versions_rows_and_filters(stored):
    add_risk(stored, 1, {"A": 0.3, "B": 0.8, "C": 0.6})
    add_risk(stored, 2, {"A": 0.9})

    ranked = casework.worklist(stored, caller=EVERYWHERE, model="risk", model_version=1).items
    senegal = casework.worklist(
        stored, caller=EVERYWHERE, model="risk", model_version=1, countries={"SEN"}
    ).items
    children = casework.worklist(
        stored, caller=EVERYWHERE, model="risk", model_version=1, age_group={"child"}
    ).items
    high = casework.worklist(
        stored, caller=EVERYWHERE, model="risk", model_version=1, band={"high"}, limit=1
    ).items

    assert [(r["key"], r["probability"]) for r in ranked] == [
        (key("B"), 0.8),
        (key("C"), 0.6),
        (key("A"), 0.3),
    ]
    assert {r["country"] for r in senegal} == {"SEN"}
    assert [r["key"] for r in children] == [key("B")]
    assert [r["probability"] for r in high] == [0.8]


def test_the_export_is_formula_safe_filtered_and_pseudonymised(stored):
    text = "".join(casework.export_scores_csv(stored, index_version="rss-v1-provisional"))
    rows = list(csv.DictReader(io.StringIO(text)))
    senegal_2025 = list(
        csv.DictReader(
            io.StringIO(
                "".join(
                    casework.export_scores_csv(
                        stored,
                        index_version="rss-v1-provisional",
                        countries={"SEN"},
                        date_from=datetime(2025, 1, 1).date(),
                    )
                )
            )
        )
    )

    assert list(rows[0]) == list(casework.EXPORT_COLUMNS)
    assert sorted(r["submission_id"] for r in rows) == ["'=c1", "a1", "a2", "b1"]
    assert {r["submission_id"] for r in senegal_2025} == {"a1", "a2"}
    assert all(len(r["returnee_key"]) == 64 for r in rows)
    assert "A" not in {r["returnee_key"] for r in rows}
    assert rows[0]["sustainable"] in ("true", "false")


def test_an_export_of_an_unknown_version_is_only_the_header(stored):
    text = "".join(casework.export_scores_csv(stored, index_version="rss-v9-derived"))
    assert text.splitlines() == [",".join(casework.EXPORT_COLUMNS)]


def test_an_export_is_audited_without_rows(stored):
    casework.record_export(stored, EVERYWHERE, "scores", {"countries": ["SEN"]})

    with stored.connect() as conn:
        entry = conn.execute(sa.select(audit).where(audit.c.action == "export")).one()
    assert (entry.actor, entry.target, entry.detail) == ("ana", "scores", {"countries": ["SEN"]})


# ---------------------------------------------------------------- the baseline rule's worklist


@pytest.fixture
def first_surveys(engine, questionnaire, batch_file):
    """Returnees with first surveys within 4 months of return, at different composites."""
    from tests.conftest import worst_answers

    worst = worst_answers(questionnaire)
    half = dict(list(worst.items())[: len(worst) // 2])
    early = {"interview_date": "2025-03-01", "return_date": "2025-01-15"}
    rows = [
        {"submission_id": "p1", "returnee_id": "P", **early},  # best answers: risk 0
        {"submission_id": "p2", "returnee_id": "P", "interview_date": "2025-11-01", **worst},
        {"submission_id": "q1", "returnee_id": "Q", "country": "GIN", **early, **half},
        {"submission_id": "r1", "returnee_id": "R", "sex": "male", **early, **worst},
        # first interview 6 months after return: no first survey, not ranked
        {"submission_id": "s1", "returnee_id": "S", "interview_date": "2025-07-20", **worst},
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


def test_without_a_model_the_worklist_ranks_by_1_minus_the_first_surveys_composite(
    first_surveys,
):
    from reintegration.baseline_worklist import baseline_worklist

    index = ReintegrationIndex().fit()
    ranked = baseline_worklist(
        first_surveys,
        caller=EVERYWHERE,
        index=index,
        index_version=index.label_,
        bands=(0.3, 0.6),
    ).items

    assert [r["key"] for r in ranked] == [key("R"), key("Q"), key("P")]
    assert [r["submission_id"] for r in ranked] == ["r1", "q1", "p1"]  # first surveys only
    assert ranked[0]["probability"] == pytest.approx(1.0) and ranked[0]["band"] == "high"
    assert ranked[-1]["probability"] == pytest.approx(0.0) and ranked[-1]["band"] == "low"
    assert 0 < ranked[1]["probability"] < 1
    assert ranked[0]["reasons"] and ranked[0]["reasons"][0]["question"]
    assert ranked[0]["weakest_dimension"] in ("economic", "social", "psychosocial")


def test_the_baseline_worklist_filters_bands_countries_and_groups(first_surveys):
    from reintegration.baseline_worklist import baseline_worklist

    index = ReintegrationIndex().fit()

    def keys(**chosen):
        found = baseline_worklist(
            first_surveys,
            caller=chosen.pop("caller", EVERYWHERE),
            index=index,
            index_version=index.label_,
            bands=(0.3, 0.6),
            **chosen,
        ).items
        return [r["key"] for r in found]

    assert keys(band={"high"}) == [key("R")]
    assert keys(band={"low"}) == [key("P")]
    assert keys(band={"low", "high"}) == [key("R"), key("P")]
    assert keys(countries={"GIN"}) == [key("Q")]
    assert keys(caller=SENEGAL) == [key("R"), key("P")]
    assert keys(sex={"male"}) == [key("R")]
    assert keys(limit=1, offset=1) == [key("Q")]
    # bands are the analyst's absolute thresholds: a lower high band takes in the middle one
    middle = baseline_worklist(
        first_surveys,
        caller=EVERYWHERE,
        index=index,
        index_version=index.label_,
        bands=(0.05, 0.1),
    ).items
    assert [r["band"] for r in middle] == ["high", "high", "low"]


def test_the_baseline_worklist_is_audited_and_needs_row_level(first_surveys):
    from reintegration.baseline_worklist import baseline_worklist
    from reintegration.errors import Forbidden

    index = ReintegrationIndex().fit()
    with pytest.raises(Forbidden, match="the manager role may not see row-level data"):
        baseline_worklist(
            first_surveys,
            caller=User("m", Role.MANAGER, None),
            index=index,
            index_version=index.label_,
            bands=(0.3, 0.6),
        )
    baseline_worklist(
        first_surveys, caller=EVERYWHERE, index=index, index_version=index.label_, bands=(0.3, 0.6)
    )
    with first_surveys.connect() as conn:
        row = conn.execute(
            sa.select(audit.c.action, audit.c.target).where(audit.c.action == "worklist_read")
        ).one()
    assert row.target == "baseline rule rss-v1-provisional"
