"""Protected figures through the API: managers always get them, analysts on request; answers
say which, widen dates to whole months, gather hidden groups into one cell, merge histogram
bins, and give the same cell the same figures whatever the question that finds it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import reintegration.analytics as analytics_module
from reintegration.questionnaire import Questionnaire
from tests.api.conftest import Stack, build_stack, ingest_panel

AGGREGATES = "/api/v1/aggregates"
TRAJECTORIES = "/api/v1/trajectories"
OVERVIEW = "/api/v1/overview"
NUMBERS = ("returnees", "unscored", "share_sustainable", "share_low", "share_high")
_read_base = analytics_module.read_base


def _with_record_keys(conn: sa.Connection, child_age_below: int) -> pd.DataFrame:
    """The frame with a record key per interview, where the store does not give one yet."""
    base = _read_base(conn, child_age_below)
    if "record_key" in base:
        return base
    ids = base["id"].to_numpy(np.int64)
    return base.assign(record_key=(ids * 2_654_435_761 + 97_531) % 2**31)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, questionnaire: Questionnaire, panel_file: Path
) -> Iterator[Stack]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(analytics_module, "read_base", _with_record_keys)
        built = build_stack(tmp_path_factory.mktemp("protected-home"), questionnaire)
        ingest_panel(built, panel_file)
        with built.client:
            yield built
        built.services.close()


@pytest.fixture(scope="module")
def truth(stack: Stack) -> pd.DataFrame:
    """Every current interview with its composite, read with plain SQL."""
    sql = sa.text(
        "SELECT s.returnee_key AS returnee, s.interview_date AS day, r.sex, r.country, "
        "sc.composite FROM submission s JOIN returnee r ON r.key = s.returnee_key "
        "LEFT JOIN score sc ON sc.submission_pk = s.id WHERE s.current"
    )
    with stack.services.engine.connect() as conn:
        rows = pd.read_sql(sql, conn)
    rows["day"] = pd.to_datetime(rows["day"])
    return rows


def ask(stack: Stack, path: str, who: str, **params: str) -> dict:
    response = stack.get(path, who, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _figures(cell: dict) -> tuple:
    return (tuple(cell[n] for n in NUMBERS), cell["figures"])


# -- who gets which ---------------------------------------------------------------------------------


def test_a_manager_always_gets_protected_figures(stack, truth):
    asked_exact = ask(stack, AGGREGATES, "manager", protected="false")
    default = ask(stack, AGGREGATES, "manager")
    assert asked_exact["figures"] == default["figures"] == "protected"
    assert asked_exact["cells"] == default["cells"]
    assert default["suppression"].startswith("figures perturbed for privacy")
    scored = truth[truth["composite"].notna()]["returnee"].nunique()
    assert abs(default["cells"][-1]["returnees"] - scored) <= 4  # at most D away


def test_an_analyst_gets_exact_figures_unless_asking_for_protected_ones(stack, truth):
    exact = ask(stack, AGGREGATES, "analyst", by="sex")
    protected = ask(stack, AGGREGATES, "analyst", by="sex", protected="true")
    managers = ask(stack, AGGREGATES, "manager", by="sex")
    assert exact["figures"] == "exact" and protected["figures"] == "protected"
    assert (
        exact["cells"][-1]["returnees"] == truth[truth["composite"].notna()]["returnee"].nunique()
    )
    assert all(cell["other"] is False and cell["label"] is None for cell in exact["cells"])
    assert protected["cells"] == managers["cells"]  # the same protected figures for everyone


def test_the_overview_says_which_figures_it_gives(stack):
    assert ask(stack, OVERVIEW, "manager")["figures"] == "protected"
    assert ask(stack, OVERVIEW, "admin")["figures"] == "exact"
    assert ask(stack, OVERVIEW, "admin", protected="true")["figures"] == "protected"


# -- coarsening -------------------------------------------------------------------------------------


def test_protected_answers_widen_dates_to_whole_months(stack, truth):
    day = truth["day"].sort_values().iloc[len(truth) // 2]
    first, second = day.date(), (day + pd.Timedelta(days=1)).date()
    one = ask(stack, AGGREGATES, "manager", to=str(first), **{"from": str(first)})
    other = ask(stack, AGGREGATES, "manager", to=str(second), **{"from": str(first)})
    month_end = (day + pd.offsets.MonthEnd(0)).date()
    assert one["filters"]["date_from"] == str(first.replace(day=1))
    assert one["filters"]["date_to"] == str(month_end)
    if second <= month_end:
        assert one["cells"] == other["cells"]
    exact = ask(stack, AGGREGATES, "analyst", to=str(first), **{"from": str(first)})
    assert exact["filters"]["date_from"] == exact["filters"]["date_to"] == str(first)
    overview = ask(stack, OVERVIEW, "manager", to=str(first))
    assert overview["filters"]["date_to"] == str(month_end)


def test_hidden_groups_are_gathered_into_one_unlabelled_cell(stack):
    body = ask(stack, AGGREGATES, "manager", by="country,sex,return_type,age_group")
    cells = body["cells"]
    others = [c for c in cells if c["other"]]
    assert len(others) == 1 and cells[-2]["other"] and cells[-1]["total"]
    other = others[0]
    assert set(other["group"].values()) == {None}
    assert other["label"] == "other groups: fewer than 5 each"
    listed = cells[:-2]
    assert listed and all(c["returnees"] >= 5 and not c["suppressed"] for c in listed)
    assert all(c["label"] is None for c in listed)
    assert all(None not in c["group"].values() for c in listed)


def test_a_protected_histogram_merges_bins_until_each_shows_the_minimum(stack):
    histogram = ask(stack, OVERVIEW, "manager")["histogram"]
    assert histogram[0]["bin_low"] == 0.0 and histogram[-1]["bin_high"] == 1.0
    for before, after in zip(histogram, histogram[1:], strict=False):
        assert before["bin_high"] == after["bin_low"]
    if len(histogram) > 1:
        assert all(b["count"] >= 5 for b in histogram)  # no zero beside a hidden bin
    small = ask(stack, OVERVIEW, "manager", country="SEN", sex="female", to="2024-01-31")
    assert all(b["count"] is None or b["count"] == 0 or b["count"] >= 5 for b in small["histogram"])


# -- consistency ------------------------------------------------------------------------------------


def test_the_same_cell_asked_through_two_groupings_gets_the_same_figures(stack):
    by_sex = ask(stack, AGGREGATES, "manager", by="sex")
    female = next(c for c in by_sex["cells"] if c["group"]["sex"] == "female")
    by_country = ask(stack, AGGREGATES, "manager", by="country", sex="female")
    assert _figures(by_country["cells"][-1]) == _figures(female)
    overview = ask(stack, OVERVIEW, "manager", sex="female")
    assert overview["returnees"] == female["returnees"]
    assert overview["means"]["composite"]["mean"] == female["figures"]["composite"]["mean"]


def test_trajectories_and_assistance_are_protected_for_a_manager(stack):
    months = ask(stack, TRAJECTORIES, "manager", by="sex", to="2025-03-03")
    assert months["figures"] == "protected" and months["filters"]["date_to"] == "2025-03-31"
    assistance = ask(stack, AGGREGATES, "manager", by="assistance")
    assert assistance["figures"] == "protected"
    assert all(c["returnees"] is None or c["returnees"] >= 5 for c in assistance["cells"])


def test_protected_figures_without_record_keys_are_a_503_that_says_why(
    tmp_path, questionnaire, panel_file, monkeypatch
):
    def without_keys(conn: sa.Connection, child_age_below: int) -> pd.DataFrame:
        return _read_base(conn, child_age_below).drop(columns="record_key", errors="ignore")

    monkeypatch.setattr(analytics_module, "read_base", without_keys)
    built = build_stack(tmp_path / "home", questionnaire)
    ingest_panel(built, panel_file)
    with built.client:
        refused = built.get(AGGREGATES, "manager")
        exact = built.get(AGGREGATES, "analyst")
    built.services.close()
    assert refused.status_code == 503
    assert "Protected figures need the record key of every stored interview" in refused.text
    assert exact.status_code == 200 and exact.json()["figures"] == "exact"
