"""Kobo and ODK Central exports of the shipped form read like the canonical CSV of the same panel.

Exports come from the synthetic generator (``kobo``, ``kobo-xlsx``, ``odk``); label exports and
the variants a real server offers (0/1 columns only, no group names, the zip export) are made
here from them with the names and labels of the shipped XLSForm (``data/forms/rss.xlsx``).
"""

from __future__ import annotations

import csv
import functools
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from python_calamine import CalamineWorkbook

from reintegration.coding import code_chunk
from reintegration.errors import UnreadableFileError
from reintegration.exports import looks_like_identifier
from reintegration.questionnaire import Questionnaire
from reintegration.reading import BatchReader, Layout
from reintegration.synth import generate_panel, write_panel

FORM = Path(__file__).resolve().parents[1] / "data" / "forms" / "rss.xlsx"
LABEL_COLUMNS = {"en": "label::English (en)", "fr": "label::French (fr)"}
KOBO_SYSTEM = [
    "__version__",
    "meta/instanceID",
    "_id",
    "_uuid",
    "_submission_time",
    "_validation_status",
    "_notes",
    "_status",
    "_submitted_by",
    "_tags",
    "_index",
]
ODK_SYSTEM = [
    "SubmissionDate",
    "meta-instanceID",
    "KEY",
    "SubmitterID",
    "SubmitterName",
    "AttachmentsPresent",
    "AttachmentsExpected",
    "Status",
    "ReviewState",
    "DeviceID",
    "Edits",
    "FormVersion",
]


# -- the shipped form, and exports made from it ------------------------------------------------


@dataclass(frozen=True)
class ShippedForm:
    """Names and labels of the XLSForm that field teams deploy on Kobo or ODK Central."""

    groups: dict[str, dict[str, str]]
    questions: dict[str, tuple[str, str | None, dict[str, str]]]
    """name -> (type, choice list, labels)"""
    choices: dict[tuple[str, str], dict[str, str]]


@functools.cache
def shipped_form() -> ShippedForm:
    book = CalamineWorkbook.from_path(str(FORM))
    survey = book.get_sheet_by_name("survey").to_python()
    choice_rows = book.get_sheet_by_name("choices").to_python()

    def labels(header: Sequence[object], row: Sequence[object]) -> dict[str, str]:
        return {lang: str(row[list(header).index(c)]) for lang, c in LABEL_COLUMNS.items()}

    groups: dict[str, dict[str, str]] = {}
    questions: dict[str, tuple[str, str | None, dict[str, str]]] = {}
    for row in survey[1:]:
        kind, name = str(row[0]), str(row[1])
        if kind == "begin_group":
            groups[name] = labels(survey[0], row)
        elif kind != "end_group":
            parts = kind.split()
            questions[name] = (
                parts[0],
                parts[1] if len(parts) > 1 else None,
                labels(survey[0], row),
            )
    choices = {(str(r[0]), str(r[1])): labels(choice_rows[0], r) for r in choice_rows[1:]}
    return ShippedForm(groups, questions, choices)


def label_export(
    kobo: pd.DataFrame, lang: str, *, groups: bool = True, choice_columns_only: bool = False
) -> pd.DataFrame:
    """A Kobo export "with labels" of the same submissions as ``kobo``."""
    form = shipped_form()
    split = {c.rsplit("/", 1)[0] for c in kobo.columns if c.count("/") == 2}
    out = {}
    for column in kobo.columns:
        parts = column.split("/")
        group = parts.pop(0) if parts[0] in form.groups else None
        if parts[0] not in form.questions:  # system columns keep their names in Kobo
            out[column] = kobo[column]
            continue
        kind, list_name, question = form.questions[parts[0]]
        header = ([form.groups[group][lang]] if group and groups else []) + [question[lang]]
        values = kobo[column]
        if len(parts) == 2:
            header.append(form.choices[(str(list_name), parts[1])][lang])
        elif kind == "select_one":
            values = values.map(lambda v, n=list_name: form.choices[(n, v)][lang] if v else "")
        elif kind == "select_multiple":
            if choice_columns_only and column in split:
                continue
            values = values.map(
                lambda v, n=list_name: " ".join(form.choices[(n, c)][lang] for c in v.split())
            )
        out["/".join(header)] = values
    return pd.DataFrame(out)


def write_kobo_csv(frame: pd.DataFrame, path: Path) -> Path:
    """As Kobo writes its CSV: semicolons, every cell quoted, UTF-8 with a BOM."""
    frame.to_csv(path, sep=";", index=False, quoting=csv.QUOTE_ALL, encoding="utf-8-sig")
    return path


def export_frame(panel: pd.DataFrame, tmp_path: Path, fmt: str) -> pd.DataFrame:
    path = tmp_path / f"export.{fmt}.csv"
    write_panel(panel, path, fmt)
    return pd.read_csv(path, sep=";" if fmt == "kobo" else ",", dtype=str, keep_default_na=False)


def coded_frame(path: Path, q: Questionnaire) -> tuple[pd.DataFrame, Layout]:
    """Every row as its coded items and metadata, by submission_id."""
    reader = BatchReader(path, q)
    frames = []
    for chunk in reader.chunks():
        coded = code_chunk(chunk, reader.layout, q)
        columns = dict(coded.items)
        for name, values in coded.metadata.items():
            is_arrow = isinstance(values, (pa.Array, pa.ChunkedArray))
            columns[name] = values.to_numpy(zero_copy_only=False) if is_arrow else values
        columns["rejected"] = coded.rejected
        frames.append(pd.DataFrame(columns))
    frame = pd.concat(frames, ignore_index=True).set_index("submission_id").sort_index()
    return frame[sorted(frame.columns)], reader.layout


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return generate_panel(60, 3, seed=7)[0]


@pytest.fixture(scope="module")
def canonical(panel, questionnaire, tmp_path_factory) -> pd.DataFrame:
    path = tmp_path_factory.mktemp("canonical") / "panel.csv"
    write_panel(panel, path, "csv")
    return coded_frame(path, questionnaire)[0]


# -- each export reads like the canonical CSV --------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name"), [("kobo", "k.csv"), ("kobo-xlsx", "k.xlsx"), ("odk", "o.csv")]
)
def test_synthetic_export_reads_like_the_canonical_csv(
    panel, canonical, questionnaire, tmp_path, fmt, name
):
    write_panel(panel, tmp_path / name, fmt)
    got, _ = coded_frame(tmp_path / name, questionnaire)
    pd.testing.assert_frame_equal(got, canonical)


@pytest.mark.parametrize(("lang", "groups"), [("en", True), ("fr", True), ("en", False)])
def test_kobo_label_export_reads_like_the_canonical_csv(
    panel, canonical, questionnaire, tmp_path, lang, groups
):
    labels = label_export(export_frame(panel, tmp_path, "kobo"), lang, groups=groups)
    got, layout = coded_frame(write_kobo_csv(labels, tmp_path / "labels.csv"), questionnaire)
    pd.testing.assert_frame_equal(got, canonical)
    form = shipped_form()
    group, question = form.groups["economic"][lang], form.questions["can_borrow"][2][lang]
    assert layout.source["can_borrow"] == (f"{group}/{question}" if groups else question)
    assert layout.ignored == []


def test_kobo_label_export_with_one_column_per_choice_only(
    panel, canonical, questionnaire, tmp_path
):
    labels = label_export(export_frame(panel, tmp_path, "kobo"), "en", choice_columns_only=True)
    path = write_kobo_csv(labels, tmp_path / "labels.csv")
    got, layout = coded_frame(path, questionnaire)
    pd.testing.assert_frame_equal(got, canonical)
    prefix = "Psychosocial dimension/Do you frequently experience any of the following? (select all that apply)/"
    assert layout.split["distress_signs"]["anger"] == prefix + "Feeling very angry"


def test_kobo_export_with_one_column_per_choice_only(panel, canonical, questionnaire, tmp_path):
    kobo = export_frame(panel, tmp_path, "kobo").drop(columns="psychosocial/distress_signs")
    got, layout = coded_frame(write_kobo_csv(kobo, tmp_path / "split.csv"), questionnaire)
    pd.testing.assert_frame_equal(got, canonical)
    assert "distress_signs" not in layout.source
    assert layout.notes == []


def test_kobo_export_with_the_assistance_column_split_only(
    panel, canonical, questionnaire, tmp_path
):
    kobo = export_frame(panel, tmp_path, "kobo")
    spec = questionnaire.metadata_field("assistance")
    given = kobo.pop("assistance")
    for code in [o.code for o in spec.choices] + [spec.exclusive.code]:
        kobo[f"assistance/{code}"] = given.map(
            lambda codes, c=code: "" if not codes else "1" if c in codes.split() else "0"
        )
    got, layout = coded_frame(write_kobo_csv(kobo, tmp_path / "split.csv"), questionnaire)
    pd.testing.assert_frame_equal(got, canonical)
    assert set(layout.split) == {"assistance"}


def test_kobo_xlsx_export_with_typed_cells_reads_like_the_canonical_csv(
    panel, canonical, questionnaire, tmp_path
):
    from openpyxl import Workbook

    kobo = export_frame(panel, tmp_path, "kobo")
    book = Workbook()
    sheet = book.active
    sheet.append(list(kobo.columns))
    typed = {"interview_date", "return_date", "age_at_return", "_id", "_index"}
    for row in kobo.itertuples(index=False):
        cells = []
        for column, value in zip(kobo.columns, row, strict=True):
            if column in typed and value:
                value = pd.Timestamp(value).to_pydatetime() if "date" in column else int(value)
            cells.append(None if value == "" else value)
        sheet.append(cells)
    book.save(tmp_path / "kobo.xlsx")
    got, _ = coded_frame(tmp_path / "kobo.xlsx", questionnaire)
    pd.testing.assert_frame_equal(got, canonical)


def test_odk_export_with_one_column_per_choice_only(panel, canonical, questionnaire, tmp_path):
    odk = export_frame(panel, tmp_path, "odk")
    item = next(i for i in questionnaire.items if i.is_multiple)
    summary = odk.pop(f"{item.dimension}-{item.id}")
    for code in [o.code for o in item.options] + [item.exclusive.code, "dont_know", "refused"]:
        # Central writes 0 in every choice column of an unanswered question.
        odk[f"{item.dimension}-{item.id}/{code}"] = summary.str.split().map(
            lambda codes, c=code: "1" if c in codes else "0"
        )
    odk.to_csv(tmp_path / "split.csv", index=False)
    got, layout = coded_frame(tmp_path / "split.csv", questionnaire)
    pd.testing.assert_frame_equal(got, canonical)
    assert layout.split["distress_signs"]["fear"] == "psychosocial-distress_signs/fear"


def test_odk_export_without_group_names(panel, canonical, questionnaire, tmp_path):
    odk = export_frame(panel, tmp_path, "odk")
    odk.columns = [c.split("-", 1)[1] if "-" in c else c for c in odk.columns]
    odk.to_csv(tmp_path / "bare.csv", index=False)
    got, layout = coded_frame(tmp_path / "bare.csv", questionnaire)
    pd.testing.assert_frame_equal(got, canonical)
    assert layout.identity_columns == ["KEY", "instanceID"]


# -- a select-multiple as one column and as its 0/1 columns ------------------------------------


@pytest.mark.parametrize(("fmt", "name"), [("kobo", "k.csv"), ("kobo-xlsx", "k.xlsx")])
def test_the_forms_own_kobo_export_brings_no_warning(panel, questionnaire, tmp_path, fmt, name):
    write_panel(panel, tmp_path / name, fmt)
    layout = BatchReader(tmp_path / name, questionnaire).layout
    assert "psychosocial/distress_signs/anger" in layout.headers
    assert layout.notes == []


def test_the_forms_own_kobo_label_export_brings_no_warning(panel, questionnaire, tmp_path):
    labels = label_export(export_frame(panel, tmp_path, "kobo"), "fr")
    layout = BatchReader(write_kobo_csv(labels, tmp_path / "labels.csv"), questionnaire).layout
    assert "distress_signs" in layout.source
    assert layout.notes == []


def test_the_forms_own_odk_export_with_split_choices_brings_no_warning(
    panel, canonical, questionnaire, tmp_path
):
    odk = export_frame(panel, tmp_path, "odk")
    summary = odk["psychosocial-distress_signs"]
    item = questionnaire.item("distress_signs")
    for code in [o.code for o in item.options] + [item.exclusive.code]:
        # Central's "split select multiples" keeps the question's column and adds these.
        odk[f"psychosocial-distress_signs/{code}"] = summary.str.split().map(
            lambda codes, c=code: "1" if c in codes else "0"
        )
    odk.to_csv(tmp_path / "split.csv", index=False)
    got, layout = coded_frame(tmp_path / "split.csv", questionnaire)
    pd.testing.assert_frame_equal(got, canonical)
    assert layout.notes == []


def test_choice_columns_from_another_file_beside_the_question_are_warned_about(
    panel, questionnaire, tmp_path
):
    frame = export_frame(panel, tmp_path, "csv")
    frame["psychosocial-distress_signs/anger"] = "0"
    frame.to_csv(tmp_path / "merged.csv", index=False)
    layout = BatchReader(tmp_path / "merged.csv", questionnaire).layout
    assert [n.message for n in layout.notes] == [
        "distress_signs comes as one column and as one column per choice; "
        "the single column was used"
    ]


# -- ODK Central's zip export ------------------------------------------------------------------


def odk_zip(panel: pd.DataFrame, tmp_path: Path, root: str) -> Path:
    """A zip as Central's "CSV download" makes it: root table, a repeat table, media."""
    write_panel(panel, tmp_path / "odk.csv", "odk")
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{root}-household.csv", "member,PARENT_KEY,KEY\nx,uuid:a,uuid:a/h[1]\n")
        archive.write(tmp_path / "odk.csv", f"{root}.csv")
        archive.writestr(f"{root} - audit.csv", "event,node,start,end\n")
        archive.writestr("files/uuid:a/photo.jpg", b"\xff\xd8\xff\xe0 not really a photo")
    return path


def test_odk_zip_export_reads_its_root_table(panel, canonical, questionnaire, tmp_path):
    got, layout = coded_frame(odk_zip(panel, tmp_path, questionnaire.form_id), questionnaire)
    pd.testing.assert_frame_equal(got, canonical)
    assert layout.fmt == "zip"


def test_odk_zip_root_table_is_the_one_no_other_table_extends(
    panel, canonical, questionnaire, tmp_path
):
    got, _ = coded_frame(odk_zip(panel, tmp_path, "Reintegration survey"), questionnaire)
    pd.testing.assert_frame_equal(got, canonical)


def test_zip_of_unrelated_csv_files_is_refused(tmp_path, questionnaire):
    path = tmp_path / "b.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("round1.csv", "submission_id\na\n")
        archive.writestr("round2.csv", "submission_id\nb\n")
    with pytest.raises(UnreadableFileError) as caught:
        BatchReader(path, questionnaire)
    assert str(caught.value) == (
        "b.zip holds several CSV files (round1.csv, round2.csv) and none is named after the "
        "form (rss_reintegration.csv); upload the main table alone"
    )


# -- column findings: system columns, missing items, identity, direct identifiers -------------


def test_kobo_system_columns_are_listed_not_ignored(panel, questionnaire, tmp_path):
    write_panel(panel, tmp_path / "k.csv", "kobo")
    layout = BatchReader(tmp_path / "k.csv", questionnaire).layout
    assert layout.system_columns == KOBO_SYSTEM
    assert layout.ignored == []


def test_odk_system_columns_are_listed_not_ignored(panel, questionnaire, tmp_path):
    write_panel(panel, tmp_path / "o.csv", "odk")
    layout = BatchReader(tmp_path / "o.csv", questionnaire).layout
    assert layout.system_columns == ODK_SYSTEM
    assert layout.ignored == []


def test_an_item_column_absent_from_the_form_is_reported_and_missing(
    panel, canonical, questionnaire, tmp_path
):
    kobo = export_frame(panel, tmp_path, "kobo").drop(columns="economic/can_borrow")
    got, layout = coded_frame(write_kobo_csv(kobo, tmp_path / "drift.csv"), questionnaire)
    assert layout.missing_columns == ["can_borrow"]
    assert "can_borrow" not in got.columns
    pd.testing.assert_frame_equal(got, canonical.drop(columns="can_borrow"))


def test_identity_precedence_is_root_uuid_key_instance_id_uuid_then_submission_id(
    tmp_path, questionnaire
):
    path = tmp_path / "b.csv"
    path.write_text(
        "submission_id,_uuid,meta/instanceID,KEY,meta/rootUuid,sex\n"
        "s1,u1,uuid:i1,uuid:k1,uuid:r1,female\n"
        "s2,u2,uuid:i2,uuid:k2,,female\n"
        "s3,u3,uuid:i3,,,female\n"
        "s4,u4,,,,female\n"
        "s5,,,,,female\n"
    )
    reader = BatchReader(path, questionnaire)
    ids = [v for c in reader.chunks() for v in c.columns["submission_id"].to_pylist()]
    assert ids == ["r1", "k2", "i3", "u4", "s5"]
    assert reader.layout.identity_columns == [
        "meta/rootUuid",
        "KEY",
        "meta/instanceID",
        "_uuid",
        "submission_id",
    ]
    assert reader.layout.source["submission_id"] == "meta/rootUuid"


def test_an_edited_kobo_submission_keeps_its_root_uuid(tmp_path, questionnaire):
    path = tmp_path / "b.csv"
    path.write_text(
        '"meta/instanceID";"meta/rootUuid";"meta/deprecatedID";"_uuid";"sex"\n'
        '"uuid:second";"uuid:first";"uuid:first";"second";"female"\n'
    )
    (chunk,) = BatchReader(path, questionnaire).chunks()
    assert chunk.columns["submission_id"].to_pylist() == ["first"]


def test_the_uuid_prefix_is_dropped_from_any_identity_column(tmp_path, questionnaire):
    path = tmp_path / "b.csv"
    path.write_text("submission_id,sex\nuuid:a,female\n UUID:b ,male\nc,male\n")
    (chunk,) = BatchReader(path, questionnaire).chunks()
    assert [v.strip() for v in chunk.columns["submission_id"].to_pylist()] == ["a", "b", "c"]


def test_columns_that_look_like_direct_identifiers_are_listed_and_never_read(
    panel, questionnaire, tmp_path
):
    kobo = export_frame(panel, tmp_path, "kobo")
    secrets = {
        "name": "Aminata Diallo",
        "phone_number": "+221770000000",
        "_geolocation": "[14.7, -17.4]",
    }
    for column, value in secrets.items():
        kobo.insert(3, column, value)
    reader = BatchReader(write_kobo_csv(kobo, tmp_path / "k.csv"), questionnaire)
    assert reader.layout.dropped_identifier_columns == ["_geolocation", "phone_number", "name"]
    assert reader.layout.ignored == []
    for chunk in reader.chunks():
        assert not set(chunk.columns) & set(secrets)
        for values in chunk.columns.values():
            assert not set(values.cast("string").to_pylist()) & set(secrets.values())


def test_the_case_number_is_read_not_dropped(panel, questionnaire, tmp_path):
    write_panel(panel, tmp_path / "k.csv", "kobo")
    reader = BatchReader(tmp_path / "k.csv", questionnaire)
    assert "returnee_id" in next(iter(reader.chunks())).columns
    assert reader.layout.dropped_identifier_columns == []


@pytest.mark.parametrize(
    "header",
    [
        "name",
        "full_name",
        "firstName",
        "respondent/last_name",
        "Surname",
        "phone_number",
        "telephone",
        "Mobile",
        "home_address",
        "gps",
        "_gps_latitude",
        "gps-Longitude",
        "location-Altitude",
        "_location_precision",
        "_geolocation",
        "email",
        "national_id",
        "id_number",
        "passport_no",
        "What is your name?",
        "Prénom",
        "Numéro de téléphone",
        "meta/instanceName",
    ],
)
def test_identifier_word_list_matches_the_last_segment(header):
    assert looks_like_identifier(header)


@pytest.mark.parametrize(
    "header",
    ["returnee_id", "enumerator_id", "country", "admin1", "household_size", "name_of/village"],
)
def test_identifier_word_list_spares_other_columns(header):
    assert not looks_like_identifier(header)
