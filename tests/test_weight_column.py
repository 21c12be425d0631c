"""The optional ``weight`` column (issue 13): read in every format, validated, stored as part of
the interview's content, exported, and handed to the analytics frame."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from reintegration import casework
from reintegration.coding import code_positive_number
from reintegration.fixable import fixable_csv
from reintegration.form import build_xlsform
from reintegration.panel_frame import read_base
from reintegration.prepare import content_hashes
from reintegration.store import batches as store
from reintegration.store.schema import submission
from reintegration.synth import generate_panel, write_panel
from tests.conftest import canonical_row, write_csv, write_jsonl


def rows(questionnaire, *overrides):
    return [canonical_row(questionnaire, k + 1, **o) for k, o in enumerate(overrides)]


def stored(engine, current_only=True):
    """(submission_id, version, weight) of the stored interviews, in id and version order."""
    query = sa.select(submission.c.submission_id, submission.c.version, submission.c.weight)
    if current_only:
        query = query.where(submission.c.current)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query.order_by("submission_id", "version"))]


def counts(report):
    return (report.accepted, report.updated, report.duplicate, report.rejected)


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-2", "'-2' is not a positive number"),
        ("0", "'0' is not a positive number"),
        ("0.0", "'0.0' is not a positive number"),
        ("abc", "'abc' is not a positive number"),
        ("inf", "'inf' is not a positive number"),
        ("nan", "'nan' is not a positive number"),
        ("1_000", "'1_000' is not a positive number"),
        ("1e999", "'1e999' is not a positive number"),
        ("1,5", "'1,5' is not a positive number; write decimals with a point, e.g. 1.5"),
    ],
)
def test_a_weight_that_is_not_a_positive_number_is_refused(text, message):
    assert code_positive_number(text).message == message


@pytest.mark.parametrize(
    ("text", "value"), [("2", 2.0), (" 1.25 ", 1.25), (".5", 0.5), ("1e-3", 0.001), ("+3.", 3.0)]
)
def test_a_positive_number_is_read_as_a_float(text, value):
    assert code_positive_number(text) == value


def test_a_bad_weight_is_a_row_error_naming_row_column_and_value(
    tmp_path, questionnaire, engine, ingest
):
    path = write_csv(
        tmp_path / "b.csv",
        rows(questionnaire, {"weight": "1.5"}, {"weight": "-2"}, {"weight": ""}, {"weight": "x"}),
    )
    report = ingest(path)
    assert (report.accepted, report.rejected) == (2, 2)
    assert [str(e) for e in report.errors] == [
        "row 3, column weight: '-2' is not a positive number",
        "row 5, column weight: 'x' is not a positive number",
    ]
    assert [(e.row, e.column, e.value) for e in report.errors] == [
        (3, "weight", "-2"),
        (5, "weight", "x"),
    ]
    assert stored(engine) == [("sub-0001", 1, 1.5), ("sub-0003", 1, None)]


# -- every format ------------------------------------------------------------------------------


def test_csv_headers_match_any_case_and_by_label(tmp_path, questionnaire, engine, ingest):
    first = canonical_row(questionnaire, 1)
    first["WEIGHT"] = "2.5"
    second = canonical_row(questionnaire, 2)
    ingest(write_csv(tmp_path / "upper.csv", [first]))
    labelled = write_csv(tmp_path / "label.csv", [second | {"Survey weight": "0.75"}])
    report = ingest(labelled)
    assert report.accepted == 1 and report.ignored_columns == []
    assert stored(engine) == [("sub-0001", 1, 2.5), ("sub-0002", 1, 0.75)]


def test_xlsx_numeric_and_text_cells(tmp_path, questionnaire, engine, ingest):
    data = rows(questionnaire, {}, {}, {})
    header = [*data[0], "weight"]
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row, weight in zip(data, [1.5, 2, "3.25"], strict=True):
        sheet.append([*row.values(), weight])
    path = tmp_path / "b.xlsx"
    book.save(path)
    report = ingest(path)
    assert (report.accepted, report.rejected) == (3, 0)
    assert [w for _, _, w in stored(engine)] == [1.5, 2.0, 3.25]


def test_json_lines_numbers_and_strings(tmp_path, questionnaire, engine, ingest):
    data: list[dict[str, object]] = list(rows(questionnaire, {}, {}, {}, {}))
    for row, weight in zip(data, [1.5, 2, "0.5", None], strict=True):
        row["weight"] = weight
    report = ingest(write_jsonl(tmp_path / "b.jsonl", data))
    assert (report.accepted, report.rejected) == (4, 0)
    assert [w for _, _, w in stored(engine)] == [1.5, 2.0, 0.5, None]


@pytest.fixture(scope="module")
def weighted():
    frame, truth = generate_panel(30, 3, seed=4, weights=True)
    return frame, truth


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [("csv", "csv"), ("xlsx", "xlsx"), ("jsonl", "jsonl"), ("kobo", "csv"), ("odk", "csv")]
    + [("kobo-xlsx", "xlsx")],
)
def test_every_format_of_a_weighted_panel_stores_its_weights(
    tmp_path, weighted, engine, ingest, fmt, suffix
):
    frame, _ = weighted
    path = tmp_path / f"panel.{suffix}"
    write_panel(frame, path, fmt)
    report = ingest(path)
    assert (report.accepted, report.rejected) == (len(frame), 0)
    with engine.connect() as conn:
        got = dict(conn.execute(sa.select(submission.c.submission_id, submission.c.weight)).all())
    expected = dict(zip(frame["submission_id"], frame["weight"].astype(float), strict=True))
    assert got == expected


@pytest.mark.parametrize(
    ("fmt", "suffix"), [("kobo", "csv"), ("kobo-xlsx", "xlsx"), ("odk", "csv")]
)
def test_a_kobo_or_odk_export_of_stored_weighted_interviews_is_all_duplicates(
    tmp_path, weighted, engine, ingest, fmt, suffix
):
    frame, _ = weighted
    canonical = tmp_path / "canonical.csv"
    write_panel(frame, canonical, "csv")
    assert ingest(canonical).accepted == len(frame)
    export = tmp_path / f"export.{suffix}"
    write_panel(frame, export, fmt)
    again = ingest(export)
    assert counts(again) == (0, 0, len(frame), 0)
    assert again.ignored_columns == []


# -- part of the content: edits and duplicates -----------------------------------------------


def test_a_changed_weight_is_an_edit_and_an_equal_one_a_duplicate(
    tmp_path, questionnaire, engine, ingest
):
    def upload(name, **row):
        return ingest(write_csv(tmp_path / name, [canonical_row(questionnaire, 1, **row)]))

    assert counts(upload("none.csv")) == (1, 0, 0, 0)
    # A blank weight is no weight: the interview stored without one is the same content.
    assert counts(upload("blank.csv", weight="")) == (0, 0, 1, 0)
    assert counts(upload("given.csv", weight="1.5")) == (1, 1, 0, 0)
    # The same number written otherwise is the same weight.
    assert counts(upload("same.csv", weight="1.50")) == (0, 0, 1, 0)
    assert counts(upload("changed.csv", weight="2")) == (1, 1, 0, 0)
    # An old file uploaded late (no weight, version 1's content) never reverts the edit.
    assert counts(upload("late.csv")) == (0, 0, 1, 0)
    assert stored(engine, current_only=False) == [
        ("sub-0001", 1, None),
        ("sub-0001", 2, 1.5),
        ("sub-0001", 3, 2.0),
    ]
    assert stored(engine) == [("sub-0001", 3, 2.0)]


def test_a_weight_edited_inside_one_file_is_an_update_of_the_earlier_row(
    tmp_path, questionnaire, engine, ingest
):
    path = write_csv(
        tmp_path / "b.csv",
        [canonical_row(questionnaire, 1, weight="1"), canonical_row(questionnaire, 1, weight="3")],
    )
    assert counts(ingest(path)) == (2, 1, 0, 0)
    assert stored(engine) == [("sub-0001", 2, 3.0)]


def test_interviews_stored_before_weights_keep_their_content_hashes():
    # The hash of a row without a weight is the hash it had before the column existed, whether
    # the file lacks the column or holds it blank; a weight changes it.
    metadata = {"submission_id": pa.array(["s-1", "s-2"]), "sex": pa.array(["female", "male"])}
    codes = {"item": pa.array(["yes", "no"])}
    keys = np.array(["k1", "k2"], dtype=object)
    before = content_hashes(metadata, codes, keys)
    blank = content_hashes(metadata | {"weight": pa.array(["", ""])}, codes, keys)
    mixed = content_hashes(metadata | {"weight": pa.array(["", "2.0"])}, codes, keys)
    assert blank.tolist() == before.tolist()
    assert mixed[0] == before[0] and mixed[1] != before[1]
    alone = content_hashes(
        {k: v[1:] for k, v in metadata.items()} | {"weight": pa.array(["2.0"])},
        {"item": pa.array(["no"])},
        keys[1:],
    )
    assert alone[0] == mixed[1]  # a row's hash does not depend on its neighbours


def test_re_uploading_a_file_stored_before_weights_is_all_duplicates(
    tmp_path, questionnaire, engine, ingest
):
    path = write_csv(tmp_path / "old.csv", rows(questionnaire, {}, {}, {"sex": "male"}))
    ingest(path)
    with engine.connect() as conn:
        hashes = conn.execute(sa.select(submission.c.content_hash)).scalars().all()
    again = ingest(path)
    assert counts(again) == (0, 0, 3, 0)
    # The same file with an empty weight column added: still the same interviews.
    text = path.read_text(encoding="utf-8").splitlines()
    blank = tmp_path / "blank.csv"
    blank.write_text("\n".join([text[0] + ",weight", *(t + "," for t in text[1:])]) + "\n")
    assert counts(ingest(blank)) == (0, 0, 3, 0)
    with engine.connect() as conn:
        assert conn.execute(sa.select(submission.c.content_hash)).scalars().all() == hashes


# -- exports and the analytics frame ---------------------------------------------------------


def test_the_score_export_carries_the_stored_weight(tmp_path, questionnaire, engine, ingest):
    ingest(
        write_csv(
            tmp_path / "b.csv",
            rows(questionnaire, {"weight": "1.5"}, {}, {"weight": "0.1"}, {"weight": "7"}),
        )
    )
    text = "".join(casework.export_scores_csv(engine, index_version="rss-v1-provisional"))
    lines = list(csv.DictReader(io.StringIO(text)))
    assert "weight" in casework.EXPORT_COLUMNS
    got = {line["submission_id"]: line["weight"] for line in lines}
    assert got == {"sub-0001": "1.5", "sub-0002": "", "sub-0003": "0.1", "sub-0004": "7.0"}


def test_a_row_refused_for_its_weight_comes_back_fixed_through_the_fixable_file(
    tmp_path, questionnaire, engine, ingest
):
    path = write_csv(tmp_path / "b.csv", rows(questionnaire, {"weight": "2"}, {"weight": "-2"}))
    report = ingest(path)
    with engine.connect() as conn:
        kept = store.rejected_rows(conn, report.batch_id)
    (row,) = kept
    assert row.cells["weight"] == "-2"
    text = fixable_csv(kept)
    (line,) = list(csv.DictReader(io.StringIO(text)))
    assert line["weight"] == "-2"
    assert line["error"] == "weight: '-2' is not a positive number"
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(text.replace(",-2,", ",2.5,"), encoding="utf-8")
    again = ingest(fixed)
    assert counts(again) == (1, 0, 0, 0)
    assert stored(engine) == [("sub-0001", 1, 2.0), ("sub-0002", 1, 2.5)]
    assert counts(ingest(fixed)) == (0, 0, 1, 0)  # and a second upload is a duplicate


def test_the_analytics_frame_carries_the_weight_as_float64(tmp_path, questionnaire, engine, ingest):
    ingest(write_csv(tmp_path / "b.csv", rows(questionnaire, {"weight": "1.5"}, {})))
    with engine.connect() as conn:
        frame = read_base(conn, questionnaire.child_age_below)
    assert frame["weight"].dtype == np.float64
    with engine.connect() as conn:
        ids = dict(conn.execute(sa.select(submission.c.id, submission.c.submission_id)).all())
    by_sid = dict(zip(frame["id"].map(ids), frame["weight"], strict=True))
    assert by_sid["sub-0001"] == 1.5 and np.isnan(by_sid["sub-0002"])


# -- the form and the generator --------------------------------------------------------------


def test_the_form_asks_an_optional_positive_decimal(questionnaire):
    (row,) = [r for r in build_xlsform(questionnaire)["survey"] if r["name"] == "weight"]
    assert row["type"] == "decimal"
    assert row["constraint"] == ". > 0"
    assert "required" not in row
    assert row["constraint_message::English (en)"] == (
        "Enter a number greater than 0, or leave it blank."
    )


def test_the_generator_writes_weights_only_when_asked_and_the_panel_is_the_same(weighted):
    frame, truth = weighted
    plain, plain_truth = generate_panel(30, 3, seed=4)
    assert "weight" not in plain.columns and "weights" not in plain_truth
    assert plain.equals(frame.drop(columns="weight"))
    weights = frame["weight"].astype(float)
    assert (weights > 0).all()
    # Retention weighting: every round carries round 1's total within each weighting class.
    rounds = frame.groupby("returnee_id")["interview_date"].rank(method="first").astype(int)
    totals = weights.groupby([frame["country"], frame["return_type"], rounds]).sum().unstack()
    for r in totals.columns[1:]:
        present = totals[r].notna()
        np.testing.assert_allclose(totals[r][present], totals[1][present], rtol=1e-3)
    assert set(truth["weights"]["sampling_fractions"]) == set(frame["country"])


def test_synth_cli_weights_flag(tmp_path):
    from typer.testing import CliRunner

    from reintegration.cli import app

    out = tmp_path / "p.csv"
    result = CliRunner().invoke(
        app, ["synth", "--out", str(out), "--returnees", "5", "--rounds", "2", "--weights"]
    )
    assert result.exit_code == 0, result.output
    header = out.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert "weight" in header
    truth = json.loads((tmp_path / "p.csv.truth.json").read_text(encoding="utf-8"))
    assert "weights" in truth
    plain = tmp_path / "q.csv"
    CliRunner().invoke(app, ["synth", "--out", str(plain), "--returnees", "5", "--rounds", "2"])
    assert "weight" not in plain.read_text(encoding="utf-8").splitlines()[0].split(",")


def test_stored_interviews_read_back_for_models_carry_the_weight(
    tmp_path, questionnaire, engine, ingest
):
    from reintegration.store.submissions import read_submissions

    ingest(write_csv(tmp_path / "b.csv", rows(questionnaire, {"weight": "1.5"}, {})))
    with engine.connect() as conn:
        frame = read_submissions(conn, questionnaire, items=False)
    assert frame["weight"].dtype == np.float64
    weights = frame.set_index("submission_id")["weight"]
    assert weights["sub-0001"] == 1.5 and np.isnan(weights["sub-0002"])


def test_score_checks_a_weight_it_is_given_and_writes_the_usual_columns(tmp_path, batch_file):
    from typer.testing import CliRunner

    from reintegration.cli import app

    src = batch_file({"weight": "2"}, {"weight": "-2"})
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["score", str(src), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "row 3, column weight: '-2' is not a positive number" in result.output
    (line,) = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert line["submission_id"] == "sub-0001" and "weight" not in line
