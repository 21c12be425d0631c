"""Rescoring stored interviews with another index version, old scores kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from reintegration.index import ReintegrationIndex
from reintegration.ingest import ingest_file
from reintegration.store.data_version import read_data_version
from reintegration.store.engine import for_reading
from reintegration.store.rescore import rescore
from reintegration.store.submissions import read_submissions
from reintegration.synth import generate_panel, write_panel


@pytest.fixture
def stored(engine, questionnaire, tmp_path):
    frame, _ = generate_panel(120, 2, seed=3)
    path = tmp_path / "panel.csv"
    write_panel(frame, path, "csv")
    ingest_file(
        path,
        engine,
        scorer=ReintegrationIndex().fit(),
        questionnaire=questionnaire,
        secret=b"s" * 32,
        uploader="test",
    )
    return engine


def derived(questionnaire, label="rss-v2-derived"):
    weights = {
        d: {i: 1.0 + k for k, i in enumerate(items)}
        for d, items in questionnaire.item_weights().items()
    }
    return ReintegrationIndex(item_weights=weights, label=label).fit()


def data_version(engine):
    with for_reading(engine).connect() as conn:
        return read_data_version(conn)


def scores(engine, label):
    with for_reading(engine).connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT submission_pk, composite, level, sustainable, model_version FROM score "
                "WHERE index_version = :label ORDER BY submission_pk"
            ),
            {"label": label},
        ).all()
    return pd.DataFrame(rows, columns=["pk", "composite", "level", "sustainable", "version"])


def test_rescoring_adds_scores_of_the_new_label_and_keeps_the_old(stored, questionnaire):
    old = scores(stored, "rss-v1-provisional")
    before = data_version(stored)
    index = derived(questionnaire)
    seen = []
    n = rescore(
        stored,
        index,
        questionnaire,
        model="rss-index",
        model_version=2,
        chunk_rows=50,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert n == len(old)
    pd.testing.assert_frame_equal(scores(stored, "rss-v1-provisional"), old)
    new = scores(stored, "rss-v2-derived")
    assert new["pk"].tolist() == old["pk"].tolist()
    assert set(new["version"]) == {2}
    with for_reading(stored).connect() as conn:
        items = read_submissions(conn, questionnaire)
    assert data_version(stored) == before + 1
    expected = index.transform(items[list(questionnaire.item_ids)])
    assert np.allclose(new["composite"].astype(float), expected["composite"], equal_nan=True)
    assert new["level"].fillna("").tolist() == expected["level"].astype(object).fillna("").tolist()
    assert seen[0] == (0, n) and seen[-1] == (n, n) and len(seen) > 2


def test_rescoring_again_scores_only_what_has_no_score_of_that_label(stored, questionnaire):
    index = derived(questionnaire)
    first = rescore(stored, index, questionnaire, model="rss-index", model_version=2)
    version = data_version(stored)
    assert rescore(stored, index, questionnaire, model="rss-index", model_version=2) == 0
    assert data_version(stored) == version
    assert len(scores(stored, "rss-v2-derived")) == first


def test_only_current_versions_are_rescored(stored, questionnaire):
    with stored.begin() as conn:
        pk = conn.execute(sa.text("SELECT min(id) FROM submission")).scalar_one()
        conn.execute(sa.text("UPDATE submission SET current = false WHERE id = :pk"), {"pk": pk})
    rescore(stored, derived(questionnaire), questionnaire, model="rss-index", model_version=2)
    assert pk not in scores(stored, "rss-v2-derived")["pk"].tolist()
