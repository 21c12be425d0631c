"""Downloads keep their context (issue 15): every CSV names its filters, index version, day of
extraction and whether its figures are perturbed, in tidy columns with clear names and sane
numbers; the Excel file says the same on a "read me" sheet; a download follows the same
disclosure rules as the screen (a manager's is always perturbed)."""

from __future__ import annotations

import base64
import io
import re
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from dashboards.downloads import (
    CONTEXT_COLUMNS,
    ExportContext,
    csv_download,
    describe_filters,
    tidy,
    xlsx_bytes,
)
from dashboards.figures.common import PERTURBED
from reintegration.analytics import Filters
from reintegration.i18n import use_language
from tests.dashboards.conftest import LABEL, SCOPED_COUNTRY
from tests.dashboards.test_aggregate_pages import filter_values, outputs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "exports.md"
DAY = date(2026, 3, 9)


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sex": ["female", "male", "all"],
            "returnees": [291.0, np.nan, 600.0],
            "composite_mean": [0.41234567890123, np.nan, 0.5],
            "composite_low": [0.4, np.nan, 0.45],
            "composite_high": [0.43, np.nan, 0.55],
            "share_sustainable": [0.1690000001, np.nan, 0.2],
            "share_sustainable_ci_low": [0.12, np.nan, 0.15],
            "share_low": [0.169, np.nan, 0.2],
            "share_low_ci_high": [0.2, np.nan, 0.25],
            "suppressed": [False, True, False],
        }
    )


CTX = ExportContext((("country", "SEN"), ("sex", "female")), "rss-v9", DAY, False)


# -- tidy columns and numbers ----------------------------------------------------------------


def test_interval_bounds_and_level_shares_get_clear_names():
    columns = list(tidy(frame()).columns)

    assert columns == [
        "sex",
        "returnees",
        "composite_mean",
        "composite_mean_lower_95",
        "composite_mean_upper_95",
        "share_sustainable",
        "share_sustainable_lower_95",
        "share_level_low",
        "share_level_low_upper_95",
        "suppressed",
    ]


def test_counts_are_integers_and_other_numbers_are_rounded():
    text = csv_download(frame(), CTX, "x.csv")["content"]

    assert "291.0" not in text and ",291," in text
    assert "0.4123," in text and "0.41234" not in text
    assert "0.169," in text and "0.1690000001" not in text
    table = pd.read_csv(io.StringIO(text))
    assert table["returnees"].isna().tolist() == [False, True, False]  # suppressed stays empty


def test_every_csv_row_names_its_figures_filters_index_version_and_day():
    table = pd.read_csv(io.StringIO(csv_download(frame(), CTX, "x.csv")["content"]))

    assert list(table.columns[-4:]) == list(CONTEXT_COLUMNS)
    assert set(table["figures"]) == {"exact"}
    assert set(table["filters"]) == {"country=SEN; sex=female"}
    assert set(table["index_version"]) == {"rss-v9"}
    assert set(table["extracted_on"]) == {"2026-03-09"}


def test_protected_figures_say_so_in_the_figures_column():
    protected = ExportContext((), "rss-v9", DAY, True)

    table = pd.read_csv(io.StringIO(csv_download(frame(), protected, "x.csv")["content"]))

    assert set(table["figures"]) == {PERTURBED}
    assert set(table["filters"]) == {"none"}


def test_the_filters_are_named_as_the_address_names_them():
    filters = Filters(
        countries=frozenset({"SEN", "GIN"}),
        date_from=date(2025, 1, 1),
        rounds=frozenset({2, 1}),
        return_type=frozenset({"forced"}),
        exclude_flagged_enumerators=True,
    )

    assert describe_filters(filters) == (
        ("country", "GIN,SEN"),
        ("from", "2025-01-01"),
        ("round", "1,2"),
        ("return", "forced"),
        ("exclude", "flagged"),
    )


def test_the_workbook_has_a_read_me_then_the_data():
    book = load_workbook(io.BytesIO(xlsx_bytes(frame(), CTX, "Composite by sex")))

    assert book.sheetnames == ["read me", "data"]
    said = {row[0]: row[1] for row in book["read me"].iter_rows(values_only=True) if row[0]}
    assert said["What"] == "Composite by sex"
    assert said["Filters"] == "country=SEN; sex=female"
    assert said["Index version"] == "rss-v9"
    assert said["Extracted on"] == "2026-03-09"
    assert said["Figures"].startswith("Exact")
    assert said["composite_mean_lower_95"] == "lower bound of the 95% interval"
    data = list(book["data"].iter_rows(values_only=True))
    assert data[0][:2] == ("sex", "returnees")
    assert data[1][1] == 291 and data[2][1] is None


def test_the_read_me_is_in_the_users_language_and_the_columns_stay_canonical():
    with use_language("fr"):
        book = load_workbook(io.BytesIO(xlsx_bytes(frame(), CTX, "x")))

    assert [c.value for c in book["data"][1]][:2] == ["sex", "returnees"]
    assert book["read me"]["B2"].value == "country=SEN; sex=female"


def test_a_text_that_looks_like_a_formula_stays_a_text():
    hostile = pd.DataFrame({"label": ["=cmd|' /C calc'!A0"], "returnees": [5]})

    book = load_workbook(io.BytesIO(xlsx_bytes(hostile, CTX, "x")))

    cell = book["data"]["A2"]
    assert cell.data_type == "s" and not str(cell.value).startswith("=")


def test_the_docs_list_the_context_columns():
    text = DOCS.read_text(encoding="utf-8")

    for column in CONTEXT_COLUMNS:
        assert f"`{column}`" in text
    assert re.search(r"`_lower_95`", text) and "read me" in text


# -- through the pages, as the browser asks ------------------------------------------------------


def download(client: Any, page: str, chart: str, kind: str, states: dict[str, Any]) -> Any:
    answer = outputs(
        client.callback(
            f"{page}-{chart}-{kind}.data", {f"{page}-{chart}-{kind}-button.n_clicks": 1}, states
        )
    )
    return answer[f"{page}-{chart}-{kind}.data"]


def test_a_filtered_overview_csv_names_its_filters(client):
    client.login("analyst")
    states = {
        **filter_values("overview", sex=["female"], round=[1]),
        "overview-publishable.value": [],
    }

    payload = download(client, "overview", "means", "csv", states)

    table = pd.read_csv(io.StringIO(payload["content"]))
    assert set(table["filters"]) == {"round=1; sex=female"}
    assert set(table["figures"]) == {"exact"} and set(table["index_version"]) == {LABEL}
    assert payload["filename"] == f"overview-means-{LABEL}.csv"


def test_a_scoped_managers_excel_names_the_country_and_is_perturbed_whatever_asked(client):
    client.login("scoped-manager")
    states = {
        **filter_values("breakdowns"),
        "breakdowns-by-control.value": ["sex"],
        "breakdowns-score-control.value": "composite",
        "breakdowns-publishable.value": [],  # a request for exact figures
    }

    payload = download(client, "breakdowns", "groups", "xlsx", states)

    assert payload["filename"] == f"breakdown-sex-{LABEL}.xlsx" and payload["base64"]
    book = load_workbook(io.BytesIO(base64.b64decode(payload["content"])))
    said = {row[0]: row[1] for row in book["read me"].iter_rows(values_only=True) if row[0]}
    assert said["Filters"] == f"country={SCOPED_COUNTRY}; by=sex"
    assert said["Figures"].startswith("Perturbed for privacy")
    data = pd.DataFrame(list(book["data"].iter_rows(values_only=True))[1:])
    assert set(data[data.columns[-4]]) == {PERTURBED}


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_an_enumerator_gets_no_aggregate_download(client, kind):
    client.login("enumerator")
    states = {**filter_values("overview"), "overview-publishable.value": []}

    answer = client.callback(
        f"overview-means-{kind}.data", {f"overview-means-{kind}-button.n_clicks": 1}, states
    )

    assert answer.status_code in (204, 401, 403)
    assert b"composite" not in answer.get_data()
