"""Data-quality queries: missing answers counted by kind for each item, and enumerators whose
interviews stand out found among the synthetic panel's planted ones."""

from __future__ import annotations

import pytest

from reintegration.index import ReintegrationIndex
from reintegration.ingest import ingest_file
from reintegration.quality import AnomalyRule, enumerator_anomalies, missingness
from reintegration.synth import generate_panel, write_panel
from tests.conftest import canonical_row, write_csv

SECRET = b"q" * 32
LABEL = "rss-v1-provisional"


def _ingest(engine, path, questionnaire, uploader="tester"):
    return ingest_file(
        path,
        engine,
        scorer=ReintegrationIndex().fit(),
        questionnaire=questionnaire,
        secret=SECRET,
        uploader=uploader,
    )


@pytest.fixture
def small_batch(engine, questionnaire, tmp_path):
    """Five interviews: the first item blank once, each missing code once, and the item with a
    not-applicable option answered so once; three in SEN, two in GIN."""
    first = questionnaire.items[0].id
    with_na = next(i for i in questionnaire.items if i.not_applicable)
    dont_know, refused = (o.code for o in questionnaire.missing_codes)
    rows = [
        canonical_row(questionnaire, 1, **{first: ""}),
        canonical_row(questionnaire, 2, **{first: dont_know}),
        canonical_row(
            questionnaire, 3, **{first: refused, with_na.id: with_na.not_applicable[0].code}
        ),
        canonical_row(questionnaire, 4, country="GIN"),
        canonical_row(questionnaire, 5, country="GIN", **{first: dont_know}),
    ]
    report = _ingest(engine, write_csv(tmp_path / "small.csv", rows), questionnaire)
    assert report.accepted == 5
    return report.batch_id, first, with_na.id, dont_know, refused


def test_missingness_counts_each_kind_of_missing_answer(engine, questionnaire, small_batch):
    _, first, with_na, dont_know, refused = small_batch
    table = missingness(engine, questionnaire).set_index("item")
    assert list(table.index) == list(questionnaire.item_ids)
    row = table.loc[first]
    assert (row["interviews"], row["blank"], row[dont_know], row[refused]) == (5, 1, 2, 1)
    assert row["missing"] == 4 and row["answered"] == 1
    assert row["share_missing"] == pytest.approx(0.8)
    assert table.loc[with_na, "not_applicable"] == 1
    assert table.loc[with_na, "answered"] == 4 and table.loc[with_na, "missing"] == 0


def test_missingness_keeps_to_the_countries_and_the_batch_asked_for(
    engine, questionnaire, small_batch, tmp_path
):
    batch_id, first, _, dont_know, _ = small_batch
    in_gin = missingness(engine, questionnaire, countries={"GIN"}).set_index("item")
    assert in_gin.loc[first, "interviews"] == 2 and in_gin.loc[first, dont_know] == 1
    later = _ingest(
        engine,
        write_csv(tmp_path / "later.csv", [canonical_row(questionnaire, 9)]),
        questionnaire,
    )
    assert missingness(engine, questionnaire, batch_id=later.batch_id)["interviews"].max() == 1
    assert missingness(engine, questionnaire, batch_id=batch_id)["interviews"].max() == 5
    assert missingness(engine, questionnaire, limit=2)["interviews"].max() == 2


def test_missingness_of_an_empty_store_has_no_interviews(engine, questionnaire):
    table = missingness(engine, questionnaire)
    assert len(table) == len(questionnaire.items)
    assert (table["interviews"] == 0).all() and table["share_missing"].isna().all()


@pytest.fixture(scope="module")
def panel_store(tmp_path_factory, questionnaire):
    from reintegration.store.engine import open_store

    folder = tmp_path_factory.mktemp("quality")
    frame, truth = generate_panel(1200, 3, seed=5)
    write_panel(frame, folder / "panel.csv")
    engine = open_store(f"sqlite:///{folder / 'store.db'}")
    _ingest(engine, folder / "panel.csv", questionnaire)
    yield engine, truth
    engine.dispose()


def test_the_planted_anomalous_enumerators_are_the_ones_flagged(panel_store, questionnaire):
    engine, truth = panel_store
    table = enumerator_anomalies(engine, questionnaire, index_version=LABEL)
    flagged = table[table["flagged"]]
    assert set(flagged["enumerator_id"]) == set(truth["enumerators"]["anomalous"])
    assert list(table["flagged"].iloc[: len(flagged)]) == [True] * len(flagged)  # flagged first
    reasons = flagged["reasons"].iloc[0]
    assert any(
        r.startswith("scores higher than other enumerators' in the same country (+")
        for r in reasons
    )
    assert any(
        r.startswith("fewer missing answers than others (0.0% against a median of") for r in reasons
    )
    assert table["interviews"].sum() == truth["interviews"]  # every interview names one


def test_an_enumerator_with_few_interviews_is_listed_but_not_judged(panel_store, questionnaire):
    engine, truth = panel_store
    strict = AnomalyRule(min_interviews=10**6)
    table = enumerator_anomalies(engine, questionnaire, index_version=LABEL, rule=strict)
    assert not table["flagged"].any()
    assert table["z_composite"].isna().all()
    assert len(table) == len(truth["enumerators"]["effects"])


def test_anomalies_keep_to_a_users_countries(panel_store, questionnaire):
    engine, _ = panel_store
    table = enumerator_anomalies(engine, questionnaire, index_version=LABEL, countries={"SEN"})
    assert set(table["country"]) == {"SEN"}
    assert table["enumerator_id"].str.startswith("SEN-").all()


def test_drift_summarises_the_latest_batches_per_item(engine, questionnaire, small_batch, tmp_path):
    from datetime import UTC, datetime

    from reintegration.quality import drift_by_item
    from reintegration.store.schema import drift

    first_batch = small_batch[0]
    later = _ingest(
        engine, write_csv(tmp_path / "later.csv", [canonical_row(questionnaire, 9)]), questionnaire
    )
    a, b = questionnaire.item_ids[:2]
    now = datetime.now(UTC)
    rows = [
        (first_batch, a, 0.30, 50),
        (first_batch, b, 0.02, 50),
        (later.batch_id, a, 0.05, 40),
        (later.batch_id, b, 0.40, 40),
    ]
    with engine.begin() as conn:
        conn.execute(
            drift.insert(),
            [
                {
                    "batch_id": batch,
                    "model": "rss-index",
                    "model_version": 2,
                    "item": item,
                    "psi": psi,
                    "n": n,
                    "created_at": now,
                }
                for batch, item, psi, n in rows
            ]
            + [
                {
                    "batch_id": first_batch,
                    "model": "rss-index",
                    "model_version": 1,
                    "item": a,
                    "psi": 9.0,
                    "n": 5,
                    "created_at": now,
                }
            ],
        )
    table = drift_by_item(engine, model="rss-index", model_version=2)
    assert list(table["item"]) == [b, a]  # the latest batch's largest shift first
    by_item = table.set_index("item")
    assert by_item.loc[b, "psi_latest"] == pytest.approx(0.40)
    assert by_item.loc[a, "psi_mean"] == pytest.approx(0.175)
    assert by_item.loc[a, "psi_max"] == pytest.approx(0.30)
    assert by_item.loc[a, "n"] == 90 and by_item.loc[a, "batches"] == 2
    assert by_item.loc[a, "n_latest"] == 40 and by_item.loc[b, "status"] == "major shift"
    assert by_item.loc[a, "status"] == "stable"
    only_latest = drift_by_item(engine, model="rss-index", model_version=2, last_batches=1)
    assert only_latest.set_index("item").loc[a, "batches"] == 1
    assert drift_by_item(engine, model="rss-index", model_version=3).empty
