"""The synthetic panel generator: determinism, validity, the documented effects, the writers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from reintegration import synth
from reintegration.questionnaire import Questionnaire
from reintegration.synth import SynthParams, generate_panel, write_panel, write_truth

RETURNEES = 4000
ROUNDS = 3


@pytest.fixture(scope="module")
def panel() -> tuple[pd.DataFrame, dict]:
    return generate_panel(RETURNEES, ROUNDS, seed=11)


@pytest.fixture(scope="module")
def small() -> tuple[pd.DataFrame, dict]:
    return generate_panel(150, ROUNDS, seed=5)


def survey_round(frame: pd.DataFrame) -> pd.Series:
    """Round = rank of the interview date among the returnee's interviews (as ingest does)."""
    return frame.groupby("returnee_id")["interview_date"].rank(method="first").astype(int)


def coded_values(frame: pd.DataFrame, q: Questionnaire) -> pd.DataFrame:
    """Each item's value from the spec (NaN when missing, blank or not applicable)."""
    out = {}
    for item in q.items:
        if item.is_multiple:
            assert item.exclusive is not None
            signs = {o.code for o in item.options}

            def value(text: object, signs: set[str] = signs, none: str = item.exclusive.code):
                if not isinstance(text, str) or text == none:
                    return 1.0 if text == none else np.nan
                chosen = set(text.split())
                return 1 - len(chosen) / len(signs) if chosen <= signs else np.nan

            out[item.id] = frame[item.id].map(value).astype(float)
        else:
            values = {o.code: o.value for o in item.options}
            out[item.id] = frame[item.id].map(values).astype(float)
    return pd.DataFrame(out)


def dimension_means(frame: pd.DataFrame, q: Questionnaire) -> pd.DataFrame:
    values = coded_values(frame, q)
    return pd.DataFrame(
        {d: values[[i.id for i in q.items_of(d)]].mean(axis=1) for d in q.index.dimensions}
    )


def read_back(path, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if fmt == "jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        return pd.DataFrame([json.loads(line) for line in lines])
    sheet = load_workbook(path, read_only=True).worksheets[0]
    header, *rows = sheet.iter_rows(values_only=True)
    # A write-only sheet stores no empty trailing cells: pad each row to the header.
    padded = [
        [("" if v is None else v) for v in row] + [""] * (len(header) - len(row)) for row in rows
    ]
    return pd.DataFrame(padded, columns=list(header))


# --- determinism and shape -------------------------------------------------------------


def test_the_same_seed_gives_the_same_panel_and_truth(small):
    frame, truth = generate_panel(150, ROUNDS, seed=5)
    pd.testing.assert_frame_equal(frame, small[0])
    assert truth == small[1]


def test_another_seed_gives_another_panel(small):
    frame, _ = generate_panel(150, ROUNDS, seed=6)
    assert not frame["submission_id"].isin(small[0]["submission_id"]).any()


def test_columns_are_the_canonical_columns_all_strings(panel, questionnaire):
    frame, _ = panel
    # the weight column comes only with weights=True (tests/test_weight_column.py)
    assert list(frame.columns) == [c for c in questionnaire.columns if c != "weight"]
    assert all(pd.api.types.is_string_dtype(dtype) for dtype in frame.dtypes)


def test_every_returnee_has_round_one_and_none_has_more_rounds_than_asked(panel):
    frame, truth = panel
    rounds = survey_round(frame)
    assert frame["returnee_id"].nunique() == RETURNEES == (rounds == 1).sum()
    assert rounds.max() == ROUNDS
    assert len(frame) == truth["interviews"] == sum(truth["interviews_per_round"])


def test_attrition_thins_each_round_by_the_documented_share(panel):
    frame, truth = panel
    counts = survey_round(frame).value_counts().sort_index().to_numpy()
    kept = counts[1:] / counts[:-1]
    assert np.allclose(kept, 1 - truth["attrition"], atol=0.03)


def test_submission_ids_are_unique_uuids(panel):
    ids = panel[0]["submission_id"]
    assert ids.is_unique
    assert ids.str.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    ).all()


def test_case_numbers_carry_country_and_year_of_return(panel):
    frame, _ = panel
    parts = frame["returnee_id"].str.extract(r"^([A-Z]{3})-(\d{4})-(\d{6})$")
    assert parts.notna().all().all()
    assert (parts[0] == frame["country"]).all()
    assert (parts[1] == frame["return_date"].str[:4]).all()


def test_a_returnees_characteristics_are_the_same_in_every_round(panel):
    frame, _ = panel
    fixed = [
        "sex",
        "age_at_return",
        "return_type",
        "country",
        "admin1",
        "enumerator_id",
        "return_date",
        "assistance",
    ]
    assert (frame.groupby("returnee_id")[fixed].nunique() == 1).all().all()


# --- validity --------------------------------------------------------------------------


def test_every_answer_is_a_code_of_its_item_or_missing(panel, questionnaire):
    frame, _ = panel
    missing = {o.code for o in questionnaire.missing_codes}
    for item in questionnaire.items:
        answers = frame[item.id].dropna()
        if item.is_multiple:
            signs = {o.code for o in item.options}
            for text in answers.unique():
                codes = text.split()
                assert len(codes) == len(set(codes)), text
                assert (
                    set(codes) <= signs
                    or codes == [item.exclusive.code]
                    or (len(codes) == 1 and codes[0] in missing)
                ), text
        else:
            allowed = {o.code for o in item.options + item.not_applicable} | missing
            assert set(answers.unique()) <= allowed, item.id


def test_metadata_values_are_valid_choices(panel, questionnaire):
    frame, _ = panel
    for name in ("consent", "sex", "return_type", "interview_mode"):
        choices = {c.code for c in questionnaire.metadata_field(name).choices}
        assert set(frame[name].unique()) <= choices, name
    assert (frame["consent"] != questionnaire.metadata_field("consent").rejects_row_on).all()
    assistance = questionnaire.metadata_field("assistance")
    allowed = {c.code for c in assistance.choices}
    for text in frame["assistance"].unique():
        assert set(text.split()) <= allowed or text == assistance.exclusive.code, text
    ages = frame["age_at_return"].astype(int)
    assert ages.between(0, questionnaire.metadata_field("age_at_return").maximum).all()
    assert frame["country"].str.fullmatch(r"[A-Z]{3}").all()
    assert (frame["form_version"] == questionnaire.form_version).all()


def test_about_fifteen_percent_are_child_returnees(panel, questionnaire):
    frame, _ = panel
    first = frame.drop_duplicates("returnee_id")
    child = first["age_at_return"].astype(int) < questionnaire.child_age_below
    assert child.mean() == pytest.approx(SynthParams().child_share, abs=0.02)


def test_about_five_percent_of_answers_are_missing_codes_and_a_few_blank(panel, questionnaire):
    frame, truth = panel
    answers = frame[list(questionnaire.item_ids)]
    codes = [o.code for o in questionnaire.missing_codes]
    assert answers.isin(codes).to_numpy().mean() == pytest.approx(truth["missing_rate"], abs=0.01)
    assert 0 < answers.isna().to_numpy().mean() < 2 * truth["blank_rate"]


def test_not_applicable_holds_for_a_returnee_in_every_round(panel, questionnaire):
    frame, truth = panel
    for item in (i for i in questionnaire.items if i.not_applicable):
        answered = frame[
            frame[item.id].notna()
            & ~frame[item.id].isin([o.code for o in questionnaire.missing_codes])
        ]
        na = answered[item.id] == item.not_applicable[0].code
        per_returnee = na.groupby(answered["returnee_id"]).mean()
        assert per_returnee.isin([0.0, 1.0]).all()
        assert per_returnee.mean() == pytest.approx(truth["not_applicable_share"], abs=0.03)


def test_dates_are_iso_and_return_is_not_after_interview(panel):
    frame, _ = panel
    for column in ("interview_date", "return_date"):
        assert frame[column].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    interview = pd.to_datetime(frame["interview_date"], format="%Y-%m-%d")
    back = pd.to_datetime(frame["return_date"], format="%Y-%m-%d")
    assert (back < interview).all()
    assert back.min() >= pd.Timestamp("2024-01-01") and back.max() <= pd.Timestamp("2025-12-31")


def test_months_since_return_grow_by_round_along_the_schedule(panel):
    frame, truth = panel
    days = (pd.to_datetime(frame["interview_date"]) - pd.to_datetime(frame["return_date"])).dt.days
    months = days / synth.DAYS_PER_MONTH
    rounds = survey_round(frame)
    jitter = truth["schedule"]["jitter_months"]
    for k, centre in enumerate(truth["schedule"]["months"], start=1):
        m = months[rounds == k]
        assert m.min() >= centre - jitter - 0.05 and m.max() <= centre + jitter + 0.05
    by_returnee = months.groupby([frame["returnee_id"], rounds]).first().unstack()
    assert (by_returnee.diff(axis=1).iloc[:, 1:].stack().dropna() > 0).all()


# --- the documented effects ------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "group", "reference", "effects"),
    [
        ("return_type", "forced", "voluntary", "return_type"),
        ("sex", "female", "male", "sex"),
    ],
)
def test_groups_start_lower_where_the_truth_says(
    panel, questionnaire, column, group, reference, effects
):
    frame, truth = panel
    means = dimension_means(frame, questionnaire).groupby(frame[column]).mean()
    lowered = {d: e for d, e in truth["effects"][effects][group].items() if e <= -0.2}
    assert lowered
    for dim in lowered:
        assert means.loc[group, dim] < means.loc[reference, dim] - 0.03, dim


def test_child_returnees_score_lower_psychosocially(panel, questionnaire):
    frame, truth = panel
    child = frame["age_at_return"].astype(int) < questionnaire.child_age_below
    means = dimension_means(frame, questionnaire).groupby(child).mean()
    for dim, effect in truth["effects"]["child"].items():
        assert effect < 0
        assert means.loc[True, dim] < means.loc[False, dim] - 0.03


def test_scores_improve_with_time_since_return(panel, questionnaire):
    frame, _ = panel
    means = dimension_means(frame, questionnaire).groupby(survey_round(frame)).mean()
    assert (means.diff().iloc[1:] > 0).all().all()


def test_anomalous_enumerators_answer_higher_and_never_missing(panel, questionnaire):
    frame, truth = panel
    odd = frame["enumerator_id"].isin(truth["enumerators"]["anomalous"])
    assert odd.any()
    values = coded_values(frame, questionnaire).mean(axis=1)
    assert values[odd].mean() > values[~odd].mean() + 0.1
    answers = frame.loc[odd, list(questionnaire.item_ids)]
    assert not answers.isin([o.code for o in questionnaire.missing_codes]).any().any()


def test_round_three_follows_round_one_for_the_same_returnee(panel, questionnaire):
    frame, _ = panel
    score = coded_values(frame, questionnaire).mean(axis=1)
    wide = score.groupby([frame["returnee_id"], survey_round(frame)]).first().unstack()
    assert wide[1].corr(wide[3]) > 0.6


def test_truth_records_loadings_from_weak_to_strong(panel, questionnaire):
    _, truth = panel
    loadings = truth["loadings"]
    assert set(loadings) == set(questionnaire.item_ids)
    assert min(loadings.values()) == pytest.approx(0.3)
    assert max(loadings.values()) == pytest.approx(0.9)


def test_a_parameter_naming_an_unknown_code_is_refused():
    params = SynthParams(sex_shares={"female": 0.5, "woman": 0.5})
    with pytest.raises(ValueError, match="'woman' is not one of"):
        generate_panel(10, 1, params=params)


# --- writing ---------------------------------------------------------------------------


def test_truth_round_trips_through_json(small, tmp_path):
    _, truth = small
    written = write_truth(truth, tmp_path / "panel.csv")
    assert written.name == "panel.csv.truth.json"
    assert json.loads(written.read_text(encoding="utf-8")) == truth


@pytest.mark.parametrize(
    ("fmt", "name"), [("csv", "p.csv"), ("xlsx", "p.xlsx"), ("jsonl", "p.jsonl")]
)
def test_written_panel_reads_back_the_same(small, tmp_path, fmt, name):
    frame, _ = small
    path = tmp_path / name
    write_panel(frame, path, fmt)
    back = read_back(path, fmt)
    expected = frame.astype(object).fillna("")
    pd.testing.assert_frame_equal(back.astype(object), expected, check_dtype=False)


def test_csv_is_utf8_without_bom_and_unquoted(small, tmp_path):
    path = tmp_path / "p.csv"
    write_panel(small[0], path, "csv")
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert b'"' not in raw
    raw.decode("utf-8")


def test_csv_quotes_only_the_cells_that_need_it(small, tmp_path):
    frame = small[0].head(3).copy()
    frame.loc[0, "admin1"] = 'Dakar, "Plateau"'
    path = tmp_path / "p.csv"
    write_panel(frame, path, "csv")
    text = path.read_text(encoding="utf-8")
    assert text.count('"') == 6  # the one cell: "Dakar, ""Plateau"""
    assert read_back(path, "csv").loc[0, "admin1"] == 'Dakar, "Plateau"'


def test_jsonl_escapes_what_json_must_escape(small, tmp_path):
    frame = small[0].head(3).copy()
    frame.loc[1, "admin1"] = 'Say "hi"\\\n'
    path = tmp_path / "p.jsonl"
    write_panel(frame, path, "jsonl")
    assert read_back(path, "jsonl").loc[1, "admin1"] == 'Say "hi"\\\n'


def test_kobo_export_has_groups_split_choices_and_system_columns(small, tmp_path, questionnaire):
    frame, _ = small
    path = tmp_path / "kobo.csv"
    write_panel(frame, path, "kobo")
    assert path.read_text(encoding="utf-8").startswith('"consent";')
    back = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    for column in ("_id", "_uuid", "_submission_time", "_index", "__version__", "meta/instanceID"):
        assert column in back.columns
    assert (back["meta/instanceID"] == "uuid:" + frame["submission_id"]).all()
    item = next(i for i in questionnaire.items if i.is_multiple)
    summary = back[f"{item.dimension}/{item.id}"]
    for option in item.options:
        flags = back[f"{item.dimension}/{item.id}/{option.code}"]
        chosen = summary.str.split().map(lambda codes, c=option.code: c in codes)
        assert (flags[summary != ""] == chosen[summary != ""].map({True: "1", False: "0"})).all()
        assert (flags[summary == ""] == "").all()
    for item in questionnaire.items:
        assert (back[f"{item.dimension}/{item.id}"] == frame[item.id].fillna("")).all()


def test_odk_export_has_dash_groups_and_central_columns(small, tmp_path, questionnaire):
    frame, _ = small
    path = tmp_path / "odk.csv"
    write_panel(frame, path, "odk")
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert back.columns[0] == "SubmissionDate"
    assert list(back.columns[-11:]) == [
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
    assert (back["KEY"] == "uuid:" + frame["submission_id"]).all()
    assert (back["meta-instanceID"] == back["KEY"]).all()
    assert back["SubmissionDate"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z").all()
    for item in questionnaire.items:
        assert (back[f"{item.dimension}-{item.id}"] == frame[item.id].fillna("")).all()


def test_kobo_xlsx_holds_the_kobo_columns(small, tmp_path):
    frame, _ = small
    write_panel(frame, tmp_path / "kobo.csv", "kobo")
    write_panel(frame, tmp_path / "kobo.xlsx", "kobo-xlsx")
    csv_back = pd.read_csv(tmp_path / "kobo.csv", sep=";", dtype=str, keep_default_na=False)
    xlsx_back = read_back(tmp_path / "kobo.xlsx", "xlsx")
    pd.testing.assert_frame_equal(xlsx_back.astype(object), csv_back.astype(object))


def test_a_sheet_too_long_for_excel_is_refused(small, tmp_path, monkeypatch):
    monkeypatch.setattr(synth.formats, "XLSX_MAX_ROWS", 10)
    with pytest.raises(ValueError, match="do not fit in one worksheet"):
        write_panel(small[0], tmp_path / "p.xlsx", "xlsx")


def test_an_unknown_format_is_refused(small, tmp_path):
    with pytest.raises(ValueError, match="format 'parquet' is not one of"):
        write_panel(small[0], tmp_path / "p.parquet", "parquet")
