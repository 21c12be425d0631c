"""Coding answers and validating metadata: every failing cell reported with row, column, value."""

from __future__ import annotations

import numpy as np
import pytest

from reintegration.coding import NO_DAY, RowIssue, code_chunk, parse_multiple
from reintegration.index import NOT_APPLICABLE
from reintegration.reading import BatchReader
from tests.conftest import canonical_row, write_csv


def code_rows(tmp_path, q, rows, required=()):
    path = write_csv(tmp_path / "b.csv", [canonical_row(q, k + 1, **r) for k, r in enumerate(rows)])
    reader = BatchReader(path, q)
    (chunk,) = list(reader.chunks())
    return code_chunk(chunk, reader.layout, q, required)


def messages(coded) -> list[str]:
    return [str(i) for i in coded.issues]


@pytest.mark.parametrize(
    "cell", ["very_good", "Very good", "  VERY GOOD ", "very   good", "Très bon", "très BON"]
)
def test_codes_and_labels_in_english_or_french_any_case(tmp_path, questionnaire, cell):
    coded = code_rows(tmp_path, questionnaire, [{"housing_access": cell}])
    assert coded.items["housing_access"].tolist() == [1.0]
    assert coded.issues == []


@pytest.mark.parametrize(
    "cell", ["dont_know", "Don't know", "DON’T KNOW", "refused", "Refused to answer", ""]
)
def test_missing_codes_labels_and_blanks_are_missing(tmp_path, questionnaire, cell):
    coded = code_rows(tmp_path, questionnaire, [{"housing_access": cell}])
    assert np.isnan(coded.items["housing_access"][0])
    assert coded.issues == []


def test_not_applicable_code_and_label(tmp_path, questionnaire):
    coded = code_rows(
        tmp_path,
        questionnaire,
        [
            {"children_in_school": "no_school_age_children"},
            {"children_in_school": "No school-aged children in the household"},
        ],
    )
    assert coded.items["children_in_school"].tolist() == [NOT_APPLICABLE, NOT_APPLICABLE]


def test_an_invalid_answer_names_row_column_value_and_the_valid_answers(tmp_path, questionnaire):
    coded = code_rows(tmp_path, questionnaire, [{}, {"can_borrow": "maybe"}])
    assert coded.rejected.tolist() == [False, True]
    (issue,) = coded.issues
    assert issue == RowIssue(
        3,
        "can_borrow",
        "maybe",
        "'maybe' is not an answer to can_borrow; use one of yes, no (or its label), dont_know, refused or a blank",
    )
    assert str(issue).startswith("row 3, column can_borrow: 'maybe' is not an answer")


def test_every_failing_row_is_reported_not_only_the_first(tmp_path, questionnaire):
    rows = [
        {"can_borrow": "maybe"},
        {},
        {"sex": "x", "age_at_return": "200"},
        {"country": "Senegal"},
    ]
    coded = code_rows(tmp_path, questionnaire, rows)
    # By row, then left to right as the file's columns stand.
    assert [(i.row, i.column) for i in coded.issues] == [
        (2, "can_borrow"),
        (4, "sex"),
        (4, "age_at_return"),
        (5, "country"),
    ]
    assert coded.rejected.tolist() == [True, False, True, True]


# -- distress_signs (select multiple) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("none", 1.0),
        ("None of these", 1.0),
        ("anger", 1 - 1 / 7),
        ("anger anger", 1 - 1 / 7),
        ("anger fear stress", 1 - 3 / 7),
        ("Feeling very angry Feeling afraid", 1 - 2 / 7),
        ("Se sentir très triste, Avoir peur", 1 - 2 / 7),
        ("dont_know", np.nan),
        ("refused", np.nan),
        ("", np.nan),
    ],
)
def test_distress_signs_values(tmp_path, questionnaire, cell, value):
    coded = code_rows(tmp_path, questionnaire, [{"distress_signs": cell}])
    assert coded.issues == []
    np.testing.assert_allclose(coded.items["distress_signs"], [value])


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("none anger", "'none anger': 'none' cannot be combined with other answers"),
        (
            "dont_know anger",
            "'dont_know anger': dont_know cannot be combined with other answers; give it alone",
        ),
        (
            "dont_know refused",
            "'dont_know refused': dont_know or refused cannot be combined with other answers; give it alone",
        ),
        ("anger furious", "'anger furious' is not an answer to distress_signs"),
    ],
)
def test_invalid_distress_signs_are_rejected(tmp_path, questionnaire, cell, message):
    coded = code_rows(tmp_path, questionnaire, [{"distress_signs": cell}])
    assert coded.rejected.tolist() == [True]
    assert coded.issues[0].message.startswith(message)


def test_labels_are_matched_longest_first():
    vocab = {"sad": "a", "very sad": "b", "feeling very sad": "c"}
    assert parse_multiple("Feeling very sad sad", vocab) == ["c", "a"]
    assert parse_multiple("feeling", vocab) is None


def test_distress_signs_as_one_column_per_choice(tmp_path, questionnaire):
    row = canonical_row(questionnaire)
    del row["distress_signs"]
    item = questionnaire.item("distress_signs")
    split = {f"psychosocial/distress_signs/{o.code}": "0" for o in item.options}
    rows = [
        {
            **row,
            **split,
            "psychosocial/distress_signs/anger": "1",
            "psychosocial/distress_signs/fear": "1",
        },
        {**row, **split},  # no choice at 1: missing
        {**row, **split, "psychosocial/distress_signs/fear": "2"},
    ]
    path = write_csv(tmp_path / "split.csv", rows)
    reader = BatchReader(path, questionnaire)
    coded = code_chunk(next(reader.chunks()), reader.layout, questionnaire)
    values = coded.items["distress_signs"]
    assert values[0] == pytest.approx(1 - 2 / 7)
    assert np.isnan(values[1])
    assert coded.rejected.tolist() == [False, False, True]
    assert "fear=2" in coded.issues[0].value


# -- metadata -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "column", "message"),
    [
        (
            {"interview_date": "2025-13-01"},
            "interview_date",
            "'2025-13-01' is not a date: there is no month 13",
        ),
        (
            {"interview_date": "2024-02-30"},
            "interview_date",
            "'2024-02-30' is not a date: February 2024 has 29 days",
        ),
        (
            {"interview_date": "2025-02-29"},
            "interview_date",
            "'2025-02-29' is not a date: February 2025 has 28 days",
        ),
        (
            {"interview_date": "01/06/2025"},
            "interview_date",
            "'01/06/2025' is not written as YYYY-MM-DD, e.g. 2025-03-31",
        ),
        (
            {"interview_date": "2025-6-1"},
            "interview_date",
            "'2025-6-1' is not written as YYYY-MM-DD, e.g. 2025-03-31",
        ),
        (
            {"return_date": "2025-07-01", "interview_date": "2025-06-01"},
            "return_date",
            "return date 2025-07-01 is after the interview date 2025-06-01",
        ),
        ({"age_at_return": "111"}, "age_at_return", "age at return 111 is outside 0–110"),
        ({"age_at_return": "-1"}, "age_at_return", "age at return -1 is outside 0–110"),
        ({"age_at_return": "12.5"}, "age_at_return", "'12.5' is not a whole number of years"),
        ({"age_at_return": "old"}, "age_at_return", "'old' is not a whole number of years"),
        (
            {"sex": "f"},
            "sex",
            "'f' is not a valid sex; use one of female, male, other, unknown (or its label)",
        ),
        ({"return_type": "deported"}, "return_type", "'deported' is not a valid return type"),
        (
            {"country": "SN"},
            "country",
            "'SN' is not a country code; use the three-letter ISO code, e.g. SEN",
        ),
        ({"country": "ABC"}, "country", "'ABC' is not a country code"),
        ({"consent": "no"}, "consent", "consent was not recorded as yes; nothing of this row"),
        ({"interview_mode": "video"}, "interview_mode", "'video' is not a valid interview mode"),
        ({"assistance": "cash lottery"}, "assistance", "'cash lottery' is not a valid assistance"),
    ],
)
def test_metadata_errors(tmp_path, questionnaire, overrides, column, message):
    coded = code_rows(tmp_path, questionnaire, [overrides])
    assert coded.rejected.tolist() == [True]
    (issue,) = coded.issues
    assert (issue.row, issue.column) == (2, column)
    assert issue.message.startswith(message)


def test_an_impossible_day_names_its_row_and_column(tmp_path, questionnaire):
    coded = code_rows(tmp_path, questionnaire, [{"interview_date": "2024-02-30"}])
    (issue,) = coded.issues
    assert str(issue) == (
        "row 2, column interview_date: '2024-02-30' is not a date: February 2024 has 29 days"
    )


@pytest.mark.parametrize(
    ("overrides", "column", "value"),
    [
        ({"country": " sen "}, "country", "SEN"),
        ({"country": "XKX"}, "country", "XKX"),
        ({"sex": " Femme "}, "sex", "female"),
        ({"return_type": "FORCED"}, "return_type", "forced"),
        ({"age_at_return": "17.0"}, "age_at_return", 17.0),
        ({"interview_date": "2025-06-01T10:30:00.000+01:00"}, "interview_date", 20240),
    ],
)
def test_metadata_values_are_normalised(tmp_path, questionnaire, overrides, column, value):
    coded = code_rows(tmp_path, questionnaire, [overrides])
    assert coded.issues == []
    assert coded.metadata[column][0] == value


def test_blank_required_metadata_is_an_error_only_where_required(tmp_path, questionnaire):
    rows = [{"interview_date": "", "returnee_id": ""}]
    assert code_rows(tmp_path, questionnaire, rows).issues == []
    coded = code_rows(
        tmp_path, questionnaire, rows, required=questionnaire.required_columns("ingest")
    )
    assert sorted(i.message for i in coded.issues) == [
        "interview_date is empty; every interview needs it",
        "returnee_id is empty; every interview needs it",
    ]
    assert coded.metadata["interview_date"][0] == NO_DAY


def test_none_with_other_assistance_is_a_warning_and_none_is_dropped(tmp_path, questionnaire):
    coded = code_rows(tmp_path, questionnaire, [{"assistance": "none cash"}])
    assert coded.issues == []
    assert coded.metadata["assistance"][0] == "cash"
    (note,) = coded.notes
    assert (note.row, note.column, note.message) == (
        2,
        "assistance",
        "'none' was given with other assistance; 'none' was dropped",
    )
