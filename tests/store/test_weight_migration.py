"""Migration 0006: an optional weight on every stored interview version (issue 13)."""

from __future__ import annotations

import sqlalchemy as sa

from reintegration.store import create_store_engine, downgrade, upgrade
from reintegration.store.schema import metadata
from tests.store.test_migrations import _batch, _differences, _stored_interviews


def test_0006_adds_an_empty_weight_column_and_back_keeping_rows_and_hashes(store_url):
    upgrade(store_url, "0005")
    engine = create_store_engine(store_url)
    person, rows = _stored_interviews(3)
    for k, row in enumerate(rows):
        row["content_hash"] = f"{k:032x}"
        row["record_key"] = k
    typed = metadata.tables["submission"].c
    old = sa.table("submission", *(sa.column(c, typed[c].type) for c in rows[0]))
    with engine.begin() as conn:
        conn.execute(metadata.tables["batch"].insert(), _batch())
        conn.execute(metadata.tables["returnee"].insert(), person)
        conn.execute(old.insert(), rows)

    def read():
        with engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT id, content_hash, record_key FROM submission ORDER BY id")
            ).all()

    before = read()
    upgrade(store_url)
    with engine.connect() as conn:
        weights = conn.execute(sa.text("SELECT weight FROM submission")).scalars().all()
    assert weights == [None, None, None]
    assert read() == before
    assert _differences(store_url) == []
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE submission SET weight = 1.25 WHERE id = 1"))

    downgrade(store_url, "0005")

    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("submission")}
    assert "weight" not in columns
    assert read() == before
    upgrade(store_url)  # and up again
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(weight) FROM submission")).scalar() == 0
    engine.dispose()
