"""Protected data-quality summaries (issue 12): with ``protected=True`` the missing answers per
item and the enumerators' figures come from cell-key-perturbed counts and sums, each within
what the perturbation table and the sum noise allow, the same on every call; an enumerator too
small to list is gathered, not named; the default stays the exact figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from reintegration.disclosure import Protection, ptable
from reintegration.index import ReintegrationIndex
from reintegration.ingest import ingest_file
from reintegration.quality import enumerator_anomalies, missingness
from reintegration.store.schema import score, submission
from reintegration.synth import generate_panel, write_panel
from tests.conftest import canonical_row, write_csv

SECRET = b"q" * 32
LABEL = "rss-v1-provisional"
LONE = "LONE-E99"  # an enumerator with two interviews: too few to be named
PROTECTION = Protection()
MIN_CELL = 5
D = PROTECTION.max_count_change


def _ingest(engine, path, questionnaire):
    report = ingest_file(
        path,
        engine,
        scorer=ReintegrationIndex().fit(),
        questionnaire=questionnaire,
        secret=SECRET,
        uploader="tester",
    )
    assert report.accepted > 0, report
    return report


@pytest.fixture(scope="module")
def panel_store(tmp_path_factory, questionnaire):
    """A synthetic panel and two interviews by an enumerator of their own."""
    from reintegration.store.engine import open_store

    folder = tmp_path_factory.mktemp("quality-disclosure")
    frame, truth = generate_panel(600, 3, seed=11)
    write_panel(frame, folder / "panel.csv")
    engine = open_store(f"sqlite:///{folder / 'store.db'}")
    _ingest(engine, folder / "panel.csv", questionnaire)
    lone = [
        canonical_row(
            questionnaire, n, submission_id=f"lone-{n}", returnee_id=f"LONE-{n}", enumerator_id=LONE
        )
        for n in (1, 2)
    ]
    _ingest(engine, write_csv(folder / "lone.csv", lone), questionnaire)
    yield engine
    engine.dispose()


def protected_missingness(engine, questionnaire, **kw):
    return missingness(
        engine, questionnaire, protected=True, min_cell=MIN_CELL, protection=PROTECTION, **kw
    )


def protected_enumerators(engine, questionnaire, **kw):
    return enumerator_anomalies(
        engine,
        questionnaire,
        index_version=LABEL,
        protected=True,
        min_cell=MIN_CELL,
        protection=PROTECTION,
        **kw,
    )


def count_columns(questionnaire) -> list[str]:
    codes = [o.code for o in questionnaire.missing_codes]
    return ["interviews", "answered", "not_applicable", "blank", *codes, "missing"]


# -- exact by default ---------------------------------------------------------------------------


def stored(engine) -> pd.DataFrame:
    """Each current interview's enumerator and composite, read straight from the store."""
    joined = submission.outerjoin(
        score,
        sa.and_(score.c.submission_pk == submission.c.id, score.c.index_version == LABEL),
    )
    query = (
        sa.select(submission.c.enumerator_id, score.c.composite)
        .select_from(joined)
        .where(submission.c.current.is_(True))
    )
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).all(), columns=["enumerator_id", "composite"])


def test_the_default_is_the_exact_figures_recounted_from_the_store(panel_store, questionnaire):
    engine = panel_store
    interviews = stored(engine)
    expected = interviews.groupby("enumerator_id")["composite"].agg(["size", "mean"])

    table = enumerator_anomalies(engine, questionnaire, index_version=LABEL)
    explicit = enumerator_anomalies(engine, questionnaire, index_version=LABEL, protected=False)
    missing = missingness(engine, questionnaire)

    pd.testing.assert_frame_equal(table, explicit)
    pd.testing.assert_frame_equal(missing, missingness(engine, questionnaire, protected=False))
    assert "other" not in table and LONE in set(table["enumerator_id"])
    by_id = table.set_index("enumerator_id")
    assert by_id["interviews"].to_dict() == expected["size"].to_dict()
    assert by_id["mean_composite"].to_numpy() == pytest.approx(
        expected.loc[by_id.index, "mean"].to_numpy()
    )
    assert (missing["interviews"] == len(interviews)).all()
    assert missing["interviews"].dtype == np.int64


# -- protected: perturbed, bounded, repeatable ---------------------------------------------------


def test_protected_counts_move_but_never_by_more_than_the_tables_largest_change(
    panel_store, questionnaire
):
    engine = panel_store
    exact = missingness(engine, questionnaire).set_index("item")
    protected = protected_missingness(engine, questionnaire).set_index("item")
    columns = count_columns(questionnaire)
    assert D == ptable(PROTECTION).columns.max()

    moved = (protected[columns] - exact[columns]).abs().to_numpy().ravel()
    moved = moved[~np.isnan(moved)]  # hidden counts are NaN

    assert len(moved) and (moved <= D).all()
    assert (moved > 0).any(), "no count was perturbed"
    # A shown count is either zero or at least the minimum cell.
    values = protected[columns].to_numpy().ravel()
    assert not ((values > 0) & (values < MIN_CELL)).any()
    # Shares are the perturbed counts' ratio, not the exact one.
    share = protected["missing"] / protected["interviews"]
    assert protected["share_missing"].to_numpy() == pytest.approx(share.to_numpy())
    assert not np.allclose(protected["share_missing"], exact["share_missing"])


def test_protected_enumerator_figures_are_within_the_count_and_sum_noise(
    panel_store, questionnaire
):
    engine = panel_store
    exact = enumerator_anomalies(engine, questionnaire, index_version=LABEL)
    protected = protected_enumerators(engine, questionnaire)
    listed = protected[~protected["other"]].set_index("enumerator_id")
    truth = exact.set_index("enumerator_id").loc[listed.index]

    counts = (listed["interviews"] - truth["interviews"]).abs()
    assert (counts <= D).all() and (counts > 0).any()
    # Where every interview is scored, the composite is counted with the interviews' own key,
    # so (values in [0, 1]) the published mean times the published count is the sum plus a
    # noise of at most sum_noise times the largest value; the missing share always is.
    composites = stored(engine).groupby("enumerator_id")["composite"]
    all_scored = (composites.count() == composites.size()).reindex(listed.index)
    assert all_scored.sum() >= 10
    for figure, rows in (("mean_composite", all_scored), ("share_missing", all_scored | True)):
        noisy_sum = listed.loc[rows, figure] * listed.loc[rows, "interviews"]
        exact_sum = truth.loc[rows, figure] * truth.loc[rows, "interviews"]
        assert ((noisy_sum - exact_sum).abs() <= PROTECTION.sum_noise + 1e-9).all(), figure
        assert not np.allclose(listed[figure], truth[figure]), figure


def test_the_same_question_gets_the_same_protected_figures(panel_store, questionnaire):
    engine = panel_store

    first = protected_enumerators(engine, questionnaire)
    again = protected_enumerators(engine, questionnaire)

    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(
        protected_missingness(engine, questionnaire), protected_missingness(engine, questionnaire)
    )


def test_an_enumerator_too_small_to_list_is_gathered_not_named(panel_store, questionnaire):
    engine = panel_store
    exact = enumerator_anomalies(engine, questionnaire, index_version=LABEL)

    table = protected_enumerators(engine, questionnaire)

    assert LONE not in set(table["enumerator_id"].dropna())
    (other,) = table[table["other"]].to_dict("records")
    assert pd.isna(other["enumerator_id"]) and pd.isna(other["country"])
    assert other["reasons"] == [] and not other["flagged"]
    assert (table.loc[~table["other"], "interviews"] >= MIN_CELL).all()
    # The gathered row holds every enumerator not listed (the lone one, and any other whose
    # count perturbed under the minimum), perturbed as one cell: hidden, or shown as such.
    gathered = exact[~exact["enumerator_id"].isin(table["enumerator_id"].dropna())]
    assert LONE in set(gathered["enumerator_id"])
    total = int(gathered["interviews"].sum())
    if total + min(total, D) < MIN_CELL:  # a count under D moves by at most itself
        assert np.isnan(other["interviews"])
    if not np.isnan(other["interviews"]):
        assert other["interviews"] >= MIN_CELL
        assert abs(other["interviews"] - gathered["interviews"].sum()) <= D


# -- a batch too small to show --------------------------------------------------------------------


def test_a_batch_of_two_interviews_shows_nothing_when_protected(engine, questionnaire, tmp_path):
    rows = [canonical_row(questionnaire, n, enumerator_id="E01") for n in (1, 2)]
    batch = _ingest(engine, write_csv(tmp_path / "two.csv", rows), questionnaire).batch_id

    exact = missingness(engine, questionnaire, batch_id=batch)
    missing = protected_missingness(engine, questionnaire, batch_id=batch)
    enumerators = protected_enumerators(engine, questionnaire, batch_id=batch)

    assert (exact["interviews"] == 2).all()
    # Two perturb to at most four: every count is hidden, or a zero (a change of -2).
    counts = missing[count_columns(questionnaire)].to_numpy().ravel()
    assert np.isin(counts[~np.isnan(counts)], [0.0]).all()
    assert missing["share_missing"].isna().all()
    assert list(enumerators["other"]) == [True]
    assert enumerators["enumerator_id"].isna().all() and enumerators["interviews"].isna().all()


def test_an_empty_store_has_no_protected_figures_either(engine, questionnaire):
    missing = protected_missingness(engine, questionnaire)
    enumerators = protected_enumerators(engine, questionnaire)

    assert (missing["interviews"] == 0).all() and missing["share_missing"].isna().all()
    assert enumerators.empty and "other" in enumerators
