"""The services later issues' tests rely on are reachable as .ci/run configures them."""

from __future__ import annotations

import subprocess

import pytest


@pytest.mark.postgres
def test_postgres_database_accepts_a_transaction(postgres_url):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TEMPORARY TABLE probe (x int)"))
            conn.execute(sa.text("INSERT INTO probe VALUES (1), (2)"))
            assert conn.execute(sa.text("SELECT sum(x) FROM probe")).scalar_one() == 3
    finally:
        engine.dispose()


@pytest.mark.browser
def test_headless_chromium_renders_a_page(chromium_path, tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><body><h1 id='t'>reintegration</h1></body></html>")
    done = subprocess.run(
        [
            chromium_path,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '<h1 id="t">reintegration</h1>' in done.stdout
