"""Issue 13's small corrections: export rounding, interview dates after today, and the
returnee-rounds label of round totals."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from dashboards.figures.breakdowns import breakdown_figure, breakdown_table
from reintegration import casework
from reintegration.cli import app
from reintegration.coding import latest_today
from reintegration.counting import counted
from reintegration.errors import SynthError
from reintegration.index import ReintegrationIndex
from reintegration.scoring import score_file
from reintegration.store.schema import score, submission
from reintegration.synth import SynthParams, generate_panel, write_panel

LABEL = "rss-v1-provisional"
FIGURES = ("economic", "social", "psychosocial", "composite")


def spreadsheet(value: float) -> str:
    """Four decimals, halves away from zero, computed apart from the code under test."""
    return str(Decimal(repr(value)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def export_rows(engine) -> list[dict[str, str]]:
    text = "".join(casework.export_scores_csv(engine, index_version=LABEL))
    return list(csv.DictReader(io.StringIO(text)))


# -- 1. the score export rounds as `score` and RSS.md do ------------------------------------------


def test_a_stored_composite_of_a_half_exports_rounded_away_from_zero(engine, ingest, batch_file):
    ingest(batch_file({}, {"submission_id": "half"}))
    with engine.begin() as conn:
        conn.execute(
            score.update()
            .where(
                score.c.submission_pk
                == sa.select(submission.c.id)
                .where(submission.c.submission_id == "half")
                .scalar_subquery()
            )
            .values(composite=0.65625, economic=0.34375)
        )

    rows = {r["submission_id"]: r for r in export_rows(engine)}

    assert f"{0.65625:.4f}" == "0.6562"  # what the export wrote before: halves to even
    assert rows["half"]["composite"] == "0.6563"
    assert rows["half"]["economic"] == "0.3438"
    assert rows["sub-0001"]["composite"] == "1.0000"


def test_the_export_and_score_agree_row_by_row_on_a_synthetic_batch(
    engine, ingest, tmp_path, questionnaire
):
    frame, _ = generate_panel(40, 2, seed=13)
    path = tmp_path / "panel.csv"
    write_panel(frame, path)
    ingest(path)
    out = tmp_path / "scores.csv"
    with out.open("wb") as sink:
        score_file(path, sink, ReintegrationIndex().fit(), questionnaire)
    scored = {r["submission_id"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    exported = export_rows(engine)
    with engine.connect() as conn:
        stored = {
            row.submission_id: row
            for row in conn.execute(
                sa.select(submission.c.submission_id, *(score.c[f] for f in FIGURES)).join(
                    score, score.c.submission_pk == submission.c.id
                )
            )
        }

    assert len(exported) == len(scored) == len(frame)
    halves = 0
    for row in exported:
        for figure in FIGURES:
            assert row[figure] == scored[row["submission_id"]][figure], (row, figure)
            value = getattr(stored[row["submission_id"]], figure)
            if value is not None:
                assert row[figure] == spreadsheet(value)
                halves += f"{value:.4f}" != row[figure]
    # The batch holds figures that rounding halves to even would have written otherwise.
    assert halves > 0


# -- 2. interview dates after today -------------------------------------------------------------


def tomorrow() -> str:
    return (latest_today() + dt.timedelta(days=1)).isoformat()


def after_today(day: str) -> str:
    return (
        f"interview date {day} is after today ({latest_today().isoformat()} at the latest "
        "anywhere on Earth); write the date it took place"
    )


def test_latest_today_is_the_date_in_utc_plus_14():
    late = dt.datetime(2026, 12, 5, 23, 0, tzinfo=dt.UTC)
    assert latest_today(late) == dt.date(2026, 12, 6)
    assert latest_today(dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)) == dt.date(2026, 12, 5)
    assert latest_today() >= dt.datetime.now(dt.UTC).date()


def test_ingest_rejects_an_interview_dated_after_today(ingest, batch_file):
    day = tomorrow()
    report = ingest(batch_file({}, {"interview_date": day}))

    assert (report.accepted, report.rejected) == (1, 1)
    (issue,) = report.errors
    assert (issue.row, issue.column, issue.message) == (3, "interview_date", after_today(day))


def test_ingest_accepts_an_interview_dated_today(ingest, batch_file):
    utc_today = dt.datetime.now(dt.UTC).date().isoformat()
    report = ingest(
        batch_file(
            {"interview_date": utc_today},
            {"interview_date": latest_today().isoformat(), "returnee_id": "OTHER"},
        )
    )
    assert (report.accepted, report.rejected, report.errors) == (2, 0, [])


def test_score_rejects_an_interview_dated_after_today(tmp_path, batch_file):
    day = tomorrow()
    src = batch_file({}, {"interview_date": day}, {"interview_date": latest_today().isoformat()})
    out = tmp_path / "out.csv"

    result = CliRunner().invoke(app, ["score", str(src), "--out", str(out)])

    assert result.exit_code == 1
    assert f"row 3, column interview_date: {after_today(day)}" in result.stderr.splitlines()
    with out.open(encoding="utf-8") as fh:
        assert [r["submission_id"] for r in csv.DictReader(fh)] == ["sub-0001", "sub-0003"]


def test_a_return_date_after_today_is_refused_too(ingest, batch_file):
    day = tomorrow()
    report = ingest(batch_file({"return_date": day, "interview_date": day}))
    assert {(i.column, i.message.split(" is after")[0]) for i in report.errors} == {
        ("return_date", f"return date {day}"),
        ("interview_date", f"interview date {day}"),
    }


def test_the_generator_writes_no_interview_after_today():
    # Five rounds reach 25 months after return: returns end early enough for all of them.
    frame, truth = generate_panel(120, 5, seed=4)
    days = pd.to_datetime(frame["interview_date"]).dt.date
    returns = pd.to_datetime(frame["return_date"]).dt.date
    assert days.max() <= dt.date.fromisoformat(truth["observed_until"]) <= latest_today()
    assert returns.max() <= dt.date.fromisoformat(truth["return_window"][1]) < dt.date(2025, 1, 1)
    assert truth["interviews"] == len(frame) and truth["interviews_per_round"][4] > 0
    # Even asked for a day no one has reached, it stops at today.
    later, later_truth = generate_panel(
        120, 5, seed=4, params=SynthParams(observed_until="2999-12-31")
    )
    assert pd.to_datetime(later["interview_date"]).dt.date.max() <= latest_today()
    assert later_truth["observed_until"] <= latest_today().isoformat()


def test_two_rounds_keep_the_whole_return_period():
    _, truth = generate_panel(50, 2, seed=2)
    assert truth["return_window"] == ["2024-01-01", "2025-12-31"]


def test_rounds_that_cannot_all_have_happened_are_refused():
    with pytest.raises(SynthError) as caught:
        generate_panel(10, 9, seed=1)
    assert str(caught.value) == (
        "9 rounds do not fit between the start of the return period (2024-01-01) and "
        "2026-11-30: ask for fewer rounds or start the return period earlier"
    )


# -- 3. round totals are returnee-rounds ----------------------------------------------------------


def round_frame() -> pd.DataFrame:
    # Two rounds of 10 and 8 returnees: the total, 18, counts returnee-rounds.
    return pd.DataFrame(
        {
            "round": ["1", "2", "all"],
            "returnees": [10, 8, 18],
            "unscored": [0, 0, 0],
            "suppressed": [False, False, False],
            "composite_mean": [0.5, 0.6, 0.5444],
            "composite_low": [0.4, 0.5, 0.48],
            "composite_high": [0.6, 0.7, 0.61],
        }
    )


def test_counted_names_returnee_rounds_when_round_or_band_is_a_grouping():
    assert counted(["sex"]) == "returnees"
    assert counted(["round"]) == counted(["sex", "months_band"]) == "returnee-rounds"


def test_a_breakdown_by_round_says_its_counts_are_returnee_rounds():
    fig = breakdown_figure(
        round_frame(), by=["round"], figure="composite", index_version=LABEL, min_cell=5
    )
    subtitle = fig.layout.title.subtitle.text
    assert "n and the total count returnee-rounds (a returnee once in each round)" in subtitle
    texts = [a.text for a in fig.layout.annotations]
    assert any(t and t.startswith("all returnee-rounds: 0.54") for t in texts), texts


def test_a_breakdown_by_sex_still_counts_returnees():
    frame = round_frame().rename(columns={"round": "sex"})
    fig = breakdown_figure(frame, by=["sex"], figure="composite", index_version=LABEL, min_cell=5)
    assert "returnee-rounds" not in fig.to_json()


def test_the_csv_of_a_breakdown_by_round_names_its_count_returnee_rounds():
    assert list(breakdown_table(round_frame(), ["round"]).columns[:2]) == [
        "round",
        "returnee_rounds",
    ]
    assert "returnees" in breakdown_table(round_frame(), ["sex"]).columns
