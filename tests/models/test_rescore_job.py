"""Promoting an index version as a ``rescore`` job (issue 14): progress from 0 to all the
interviews, answers on the previous champion until the job is done, a failure that leaves the
previous champion serving and says why, one promotion at a time, and the worker process."""

from __future__ import annotations

import functools
import json
import time

import pytest
import sqlalchemy as sa

from models import promotion
from models.jobs import RESCORE, get_job
from models.serving import Champions
from reintegration.analytics import Analytics, Filters
from reintegration.errors import ModelError
from reintegration.policy import CLI, cli_caller
from reintegration.store import jobs as job_store
from reintegration.store.data_version import read_data_version
from reintegration.store.engine import for_reading
from reintegration.store.rescore import rescore
from tests.models.conftest import count
from tests.models.test_jobs import wait_for
from tests.models.test_promotion import audits, champion

OLD = "rss-v1-provisional"
REASON = "weights from our own field data"


def served(settings) -> str:
    """The label a server would answer with by default (the champion's), looked up now."""
    return Champions(settings, check_every=0).index()[1]


def data_version(engine) -> int:
    with for_reading(engine).connect() as conn:
        return read_data_version(conn)


def small_chunks(monkeypatch, rows=40):
    monkeypatch.setattr(promotion, "rescore", functools.partial(rescore, chunk_rows=rows))


def test_progress_runs_from_zero_to_all_and_answers_switch_only_at_the_end(
    registry_home, trained, monkeypatch
):
    settings, engine = registry_home
    version = trained.index["version"]
    label = f"rss-v{version}-derived"
    current = count(engine, "SELECT count(*) FROM submission WHERE current")
    small_chunks(monkeypatch)
    before = Analytics(engine).overview(Filters(), OLD)
    seen: list[tuple[int, int]] = []
    during: list[dict] = []

    def watch(done: int, total: int) -> None:
        seen.append((done, total))
        if 0 < done < total and not during:
            # Another process's view in the middle of the rescoring (WAL: the last commit).
            fresh = Analytics(engine)
            [job] = [j for j in job_store.list_jobs(engine) if j["kind"] == RESCORE]
            during.append(
                {
                    "labels": fresh.index_versions(),
                    "served": served(settings),
                    "overview": fresh.overview(Filters(), OLD),
                    "job": get_job(engine, job["id"], caller=CLI),
                    "new_rows": count(
                        for_reading(engine),
                        "SELECT count(*) FROM score WHERE index_version = :l",
                        l=label,
                    ),
                }
            )

    done = promotion.promote(
        engine,
        "index",
        version,
        reason=REASON,
        force=False,
        caller=cli_caller("officer"),
        settings=settings,
        progress=watch,
    )

    assert seen[0] == (0, current) and seen[-1] == (current, current)
    assert len(seen) >= 3 and [d for d, _ in seen] == sorted(d for d, _ in seen)
    [mid] = during
    assert label not in mid["labels"] and mid["new_rows"] == 0
    assert mid["served"] == OLD
    assert mid["overview"] == before
    job = mid["job"]
    assert job["status"] == "running" and 0 < job["progress"] < 1
    assert job["result"]["rows_total"] == current
    assert 0 < job["result"]["rows_done"] < current
    assert job["message"].endswith(f"of {current:,} interviews rescored")
    # At the end, all at once.
    assert done["rescored"] == current and done["label"] == label
    assert label in Analytics(engine).index_versions()
    assert count(engine, "SELECT count(*) FROM score WHERE index_version = :l", l=label) == current
    assert served(settings) == label and champion(settings, "rss-index") == version
    finished = get_job(engine, done["job_id"], caller=CLI)
    assert finished["status"] == "done" and finished["progress"] == 1.0
    assert finished["result"]["rescored"] == current and finished["result"]["label"] == label
    assert finished["params"]["reason"] == REASON
    [(actor, target, requested)] = audits(engine, "promote_requested")
    assert (actor, target) == ("officer", f"rss-index@{version}")
    assert requested == {"previous": 1, "reason": REASON, "job": done["job_id"]}
    assert audits(engine, "promote")[-1][2]["job"] == done["job_id"]


def fail_after(engine, label: str, rows: int) -> None:
    """A store that refuses the new label's rows after ``rows`` of them (a full disk, say)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TRIGGER injected_failure BEFORE INSERT ON score "
                f"WHEN NEW.index_version = '{label}' AND "
                f"(SELECT count(*) FROM score WHERE index_version = '{label}') >= {rows} "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full (injected)'); END"
            )
        )


def test_a_failed_rescoring_leaves_the_previous_champion_and_says_why(
    registry_home, trained, monkeypatch
):
    settings, engine = registry_home
    version = trained.index["version"]
    label = f"rss-v{version}-derived"
    small_chunks(monkeypatch)
    fail_after(engine, label, 60)  # in the second chunk: the first one was written
    before, overview = data_version(engine), Analytics(engine).overview(Filters(), OLD)
    seen: list[tuple[int, int]] = []

    with pytest.raises(ModelError) as failed:
        promotion.promote(
            engine,
            "index",
            version,
            reason=REASON,
            force=False,
            caller=cli_caller("officer"),
            settings=settings,
            progress=lambda done, total: seen.append((done, total)),
        )

    message = str(failed.value)
    assert message.startswith(f"promoting rss-index version {version} failed: ")
    assert "database or disk is full (injected)" in message
    assert message.endswith("; version 1 stays the champion")
    assert seen[-1][0] > 0  # it failed part way
    assert count(engine, "SELECT count(*) FROM score WHERE index_version = :l", l=label) == 0
    assert label not in Analytics(engine).index_versions()
    assert served(settings) == OLD and champion(settings, "rss-index") == 1
    assert data_version(engine) == before
    assert Analytics(engine).overview(Filters(), OLD) == overview
    [job] = [j for j in job_store.list_jobs(engine) if j["kind"] == RESCORE]
    assert job["status"] == "failed" and job["message"] == message
    [(_, target, detail)] = audits(engine, "promote_failed")
    assert target == f"rss-index@{version}" and detail["failure"] == message
    assert [t for _, t, _ in audits(engine, "promote") if t.startswith("rss-index")] == []


def test_one_index_promotion_at_a_time(registry_home, trained):
    settings, engine = registry_home
    version = trained.index["version"]
    running = job_store.create_job(
        engine, RESCORE, actor="someone", params={"name": "rss-index", "version": version}
    )
    with pytest.raises(ModelError, match=f"rss-index version {version} is being promoted"):
        promotion.promote(
            engine,
            "index",
            version,
            reason=REASON,
            force=False,
            caller=cli_caller("officer"),
            settings=settings,
            background=True,
        )
    assert get_job(engine, running, caller=CLI)["status"] == "queued"
    assert audits(engine, "promote_requested") == []


def test_the_worker_process_promotes_in_the_background(registry_home, trained):
    settings, engine = registry_home
    version = trained.index["version"]
    label = f"rss-v{version}-derived"
    current = count(engine, "SELECT count(*) FROM submission WHERE current")
    started = time.perf_counter()
    queued = promotion.promote(
        engine,
        "index",
        version,
        reason=REASON,
        force=False,
        caller=cli_caller("officer"),
        settings=settings,
        background=True,
    )
    took = time.perf_counter() - started
    assert queued["status"] == "queued" and queued["previous"] == 1 and took < 5
    assert champion(settings, "rss-index") == 1  # nothing has moved yet
    job = wait_for(engine, queued["job_id"])
    assert job["status"] == "done", job["message"]
    assert job["result"]["rescored"] == job["result"]["rows_total"] == current
    assert champion(settings, "rss-index") == version and served(settings) == label
    assert not any((settings.home / "reintegration.jobs").glob("*.json"))


def test_a_failed_worker_leaves_the_previous_champion_and_says_why(registry_home, trained):
    settings, engine = registry_home
    version = trained.index["version"]
    label = f"rss-v{version}-derived"
    fail_after(engine, label, 0)
    queued = promotion.promote(
        engine,
        "index",
        version,
        reason=REASON,
        force=False,
        caller=cli_caller("officer"),
        settings=settings,
        background=True,
    )
    job = wait_for(engine, queued["job_id"])
    assert job["status"] == "failed"
    assert job["message"].startswith(f"promoting rss-index version {version} failed: ")
    assert "database or disk is full (injected)" in job["message"]
    assert job["message"].endswith("version 1 stays the champion")
    assert champion(settings, "rss-index") == 1 and served(settings) == OLD
    assert count(engine, "SELECT count(*) FROM score WHERE index_version = :l", l=label) == 0
    detail = audits(engine, "promote_failed")[-1][2]
    assert json.dumps(detail) and detail["job"] == queued["job_id"]


def test_the_command_line_runs_the_job_and_exits_2_when_it_fails(registry_home, trained):
    from typer.testing import CliRunner

    from reintegration.cli import app

    settings, engine = registry_home
    version = trained.index["version"]
    fail_after(engine, f"rss-v{version}-derived", 0)
    args = ["models", "promote", "index", str(version), "--reason", REASON]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: promoting rss-index version {version} failed: ")
    assert result.stderr.rstrip().endswith("version 1 stays the champion.")
    assert champion(settings, "rss-index") == 1
    [job] = [j for j in job_store.list_jobs(engine) if j["kind"] == RESCORE]
    assert job["status"] == "failed" and job["actor"] == "cli"
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER injected_failure"))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    done = [j for j in job_store.list_jobs(engine) if j["status"] == "done"]
    assert f"interviews rescored with it (job {done[0]['id']})." in result.stderr
    assert champion(settings, "rss-index") == version


@pytest.fixture
def postgres_store(registry_home, postgres_url, panel, monkeypatch):
    """The trained registry with the panel stored in PostgreSQL instead of SQLite."""
    from reintegration.index import ReintegrationIndex
    from reintegration.ingest import ingest_file
    from reintegration.questionnaire import load_questionnaire
    from reintegration.settings import get_settings
    from tests.conftest import _postgres_store

    engine = _postgres_store(postgres_url)
    ingest_file(
        panel[0],
        engine,
        scorer=ReintegrationIndex().fit(),
        questionnaire=load_questionnaire(),
        secret=b"k" * 32,
        uploader="test",
    )
    monkeypatch.setenv("REINTEGRATION_DATABASE_URL", postgres_url)
    get_settings.cache_clear()
    yield get_settings(), engine
    engine.dispose()


@pytest.mark.postgres
def test_on_postgresql_the_progress_is_in_the_job_row(postgres_store, trained, monkeypatch):
    settings, engine = postgres_store
    version = trained.index["version"]
    label = f"rss-v{version}-derived"
    current = count(engine, "SELECT count(*) FROM submission WHERE current")
    small_chunks(monkeypatch, rows=500)
    during: list[dict] = []

    def watch(done: int, total: int) -> None:
        if 0 < done < total and not during:
            [job] = [j for j in job_store.list_jobs(engine) if j["kind"] == RESCORE]
            during.append(
                {
                    "job": job,
                    "labels": Analytics(engine).index_versions(),
                    "served": served(settings),
                }
            )

    done = promotion.promote(
        engine,
        "index",
        version,
        reason=REASON,
        force=False,
        caller=cli_caller("officer"),
        settings=settings,
        progress=watch,
    )
    [mid] = during
    assert mid["job"]["result"] == {"rows_done": 500, "rows_total": current}  # the row itself
    assert mid["job"]["message"] == f"500 of {current:,} interviews rescored"
    assert label not in mid["labels"] and mid["served"] == OLD
    assert done["rescored"] == current and served(settings) == label
    # Back to version 1, through the worker process on PostgreSQL: nothing to rescore.
    queued = promotion.promote(
        engine,
        "index",
        1,
        reason="back",
        force=False,
        caller=cli_caller("officer"),
        settings=settings,
        background=True,
    )
    job = wait_for(engine, queued["job_id"])
    assert job["status"] == "done", job["message"]
    assert job["result"]["rescored"] == 0 and served(settings) == OLD
