"""The XLSForm built from the questionnaire spec, and the copy shipped in data/forms."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pyxform.xls2xform import convert

from reintegration.errors import FormWriteError, SpecError
from reintegration.form import build_xlsform, write_xlsform
from reintegration.questionnaire import load_questionnaire

SHIPPED_FORM = Path(__file__).resolve().parents[1] / "data" / "forms" / "rss.xlsx"
EN, FR, AR = "English (en)", "French (fr)", "Arabic (ar)"
XFORMS = "{http://www.w3.org/2002/xforms}"
GATE = "${consent} = 'yes'"


def read_sheets(path: Path) -> dict[str, list[dict[str, object]]]:
    """Each sheet as rows of {header: value}, blank cells left out, as build_xlsform returns."""
    workbook = load_workbook(path, read_only=True)
    sheets = {}
    for sheet in workbook.worksheets:
        rows = list(sheet.iter_rows(values_only=True))
        header, body = rows[0], rows[1:]
        sheets[sheet.title] = [
            {h: v for h, v in zip(header, row, strict=True) if v is not None} for row in body
        ]
    workbook.close()
    return sheets


@pytest.fixture(scope="module")
def questionnaire():
    return load_questionnaire()


@pytest.fixture(scope="module")
def sheets(questionnaire):
    return build_xlsform(questionnaire)


@pytest.fixture(scope="module")
def survey(sheets):
    return {row["name"]: row for row in sheets["survey"] if row["type"] != "end_group"}


@pytest.fixture(scope="module")
def conversion():
    # validate=False: ODK Validate needs Java; pyxform's own checks still run and raise.
    return convert(xlsform=str(SHIPPED_FORM), validate=False)


@pytest.fixture(scope="module")
def xform(conversion):
    return ET.fromstring(conversion.xform)


def choice_list(sheets, list_name):
    return [row for row in sheets["choices"] if row["list_name"] == list_name]


def list_name_of(row):
    return row["type"].split(" ", 1)[1]


def test_shipped_form_matches_the_spec(sheets):
    assert read_sheets(SHIPPED_FORM) == sheets, (
        "data/forms/rss.xlsx is out of date with the questionnaire spec; "
        "run `reintegration form --out data/forms/rss.xlsx`"
    )


def test_written_form_reads_back_as_built(questionnaire, sheets, tmp_path):
    path = tmp_path / "rss.xlsx"
    write_xlsform(questionnaire, path)
    assert read_sheets(path) == sheets


def test_write_to_a_missing_folder_names_the_path(questionnaire, tmp_path):
    path = tmp_path / "no-such-folder" / "rss.xlsx"
    with pytest.raises(FormWriteError) as caught:
        write_xlsform(questionnaire, path)
    assert str(caught.value) == f"the form cannot be written to {path}: No such file or directory"


def test_pyxform_converts_the_shipped_form_without_warnings(conversion):
    assert conversion.warnings == []


def test_xform_has_every_item_and_metadata_column(questionnaire, xform):
    instance = xform.find(f".//{XFORMS}instance/{XFORMS}data")
    nodes = {node.tag.removeprefix(XFORMS) for node in instance.iter()}
    assert set(questionnaire.columns) <= nodes


def test_xform_carries_english_french_and_arabic(xform):
    languages = {t.get("lang") for t in xform.iter(f"{XFORMS}translation")}
    assert languages == {EN, FR, AR}


def test_xform_carries_the_form_id_and_version(questionnaire, xform):
    data = xform.find(f".//{XFORMS}instance/{XFORMS}data")
    assert (data.get("id"), data.get("version")) == (
        questionnaire.form_id,
        questionnaire.form_version,
    )


def test_settings_default_to_english(sheets):
    assert sheets["settings"][0]["default_language"] == EN


def test_consent_is_the_first_question(questionnaire, sheets):
    labels = questionnaire.metadata_field("consent").labels
    assert sheets["survey"][0] == {
        "type": "select_one consent",
        "name": "consent",
        f"label::{EN}": labels["en"],
        f"label::{FR}": labels["fr"],
        f"label::{AR}": labels["ar"],
        "required": "yes",
    }


def test_consent_offers_yes_and_no(sheets):
    assert [row["name"] for row in choice_list(sheets, "consent")] == ["yes", "no"]


def test_every_question_after_consent_waits_for_a_yes(sheets):
    top_level = []
    depth = 0
    for row in sheets["survey"][1:]:
        if depth == 0 and row["type"] not in ("calculate", "end_group"):
            top_level.append((row["name"], row.get("relevant")))
        if row["type"] == "begin_group":
            depth += 1
        elif row["type"] == "end_group":
            depth -= 1
    assert top_level and all(relevant == GATE for _, relevant in top_level), top_level


def test_groups_hold_the_items_of_their_dimension_in_spec_order(questionnaire, sheets):
    groups: dict[str, list[str]] = {}
    current = None
    for row in sheets["survey"]:
        if row["type"] == "begin_group":
            current = groups.setdefault(row["name"], [])
        elif row["type"] == "end_group":
            current = None
        elif current is not None:
            current.append(row["name"])
    expected = {
        d: [i.id for i in questionnaire.items_of(d)] for d in questionnaire.index.dimensions
    }
    assert groups == expected


def test_groups_are_labelled_in_every_language(questionnaire, survey):
    labels = {
        d: (survey[d][f"label::{EN}"], survey[d][f"label::{FR}"], survey[d][f"label::{AR}"])
        for d in questionnaire.groups
    }
    assert labels == {d: (g["en"], g["fr"], g["ar"]) for d, g in questionnaire.groups.items()}


def test_every_item_offers_dont_know_and_refused_in_every_language(questionnaire, sheets, survey):
    labels = {o.code: o.labels for o in questionnaire.missing_codes}
    expected = [
        {
            "name": code,
            f"label::{EN}": labels[code]["en"],
            f"label::{FR}": labels[code]["fr"],
            f"label::{AR}": labels[code]["ar"],
        }
        for code in ("dont_know", "refused")
    ]
    for item_id in questionnaire.item_ids:
        rows = choice_list(sheets, list_name_of(survey[item_id]))
        tail = [{k: v for k, v in row.items() if k != "list_name"} for row in rows[-2:]]
        assert tail == expected, item_id


def test_not_applicable_code_is_in_its_item_list(sheets, survey):
    codes = [row["name"] for row in choice_list(sheets, list_name_of(survey["children_in_school"]))]
    assert codes == ["yes", "no", "no_school_age_children", "dont_know", "refused"]


def test_pure_scale_items_share_the_scale_list(survey):
    names = {n: list_name_of(survey[n]) for n in ("food_reduction", "social_participation")}
    assert names == {
        "food_reduction": "frequency_never_best",
        "social_participation": "frequency_often_best",
    }


def test_items_with_extra_options_have_their_own_list(survey):
    names = [list_name_of(survey[n]) for n in ("children_in_school", "distress_signs")]
    assert names == ["children_in_school", "distress_signs"]


def test_distress_signs_offers_the_exclusive_none(sheets):
    none = [row for row in choice_list(sheets, "distress_signs") if row["name"] == "none"]
    assert none == [
        {
            "list_name": "distress_signs",
            "name": "none",
            f"label::{EN}": "None of these",
            f"label::{FR}": "Aucun de ces signes",
            f"label::{AR}": "لا شيء مما سبق",
        }
    ]


def test_distress_signs_keeps_none_and_missing_codes_alone(survey):
    assert survey["distress_signs"]["constraint"] == (
        "not(selected(., 'none') and count-selected(.) > 1)"
        " and not(selected(., 'dont_know') and count-selected(.) > 1)"
        " and not(selected(., 'refused') and count-selected(.) > 1)"
    )


def test_assistance_keeps_none_alone(survey):
    assert survey["assistance"]["constraint"] == (
        "not(selected(., 'none') and count-selected(.) > 1)"
    )


def test_interview_date_cannot_be_in_the_future(survey):
    assert survey["interview_date"]["constraint"] == ". <= today()"


def test_return_date_cannot_follow_the_interview(survey):
    assert survey["return_date"]["constraint"] == ". <= ${interview_date}"


def test_age_at_return_is_bounded_by_the_spec(survey):
    assert (survey["age_at_return"]["type"], survey["age_at_return"]["constraint"]) == (
        "integer",
        ". >= 0 and . <= 110",
    )


def test_country_takes_three_letters(survey):
    assert survey["country"]["constraint"] == "regex(., '^[A-Za-z]{3}$')"


def test_every_constraint_explains_itself_in_both_languages(sheets):
    unexplained = [
        row["name"]
        for row in sheets["survey"]
        if "constraint" in row
        and not (row.get(f"constraint_message::{EN}") and row.get(f"constraint_message::{FR}"))
    ]
    assert unexplained == []


def test_submission_id_is_computed_once(survey):
    assert (survey["submission_id"]["type"], survey["submission_id"]["calculation"]) == (
        "calculate",
        "once(uuid())",
    )


def test_form_version_column_holds_the_spec_version(questionnaire, survey):
    assert survey["form_version"]["calculation"] == f"'{questionnaire.form_version}'"


def test_every_item_is_required(questionnaire, survey):
    assert {survey[i].get("required") for i in questionnaire.item_ids} == {"yes"}


def test_free_text_no_command_needs_may_stay_blank(survey):
    assert [survey[n].get("required") for n in ("admin1", "enumerator_id")] == [None, None]


def test_columns_ingest_needs_are_required(questionnaire, survey):
    needed = [f.name for f in questionnaire.metadata if f.required_for and f.kind != "identifier"]
    assert {survey[n].get("required") for n in needed} == {"yes"}


def test_a_list_name_shared_by_different_choices_is_refused(questionnaire):
    # An item with a not-applicable code gets a list named after its id; an id equal to a
    # scale name would give two different lists one name.
    item = questionnaire.item("children_in_school")
    clash = dataclasses.replace(item, id="quality5")
    broken = dataclasses.replace(
        questionnaire,
        items=tuple(clash if i is item else i for i in questionnaire.items),
    )
    with pytest.raises(SpecError, match="choice list quality5: two questions need different"):
        build_xlsform(broken)
