"""Training and rescoring as background jobs: a process of its own, state in the ``job`` table.

A server submits a job and stays responsive; the worker (``python -m models.worker JOB_ID``)
marks it running, reports progress, registers the model (or moves the champion alias) as its
very last step and marks it done, or failed with the reason. A worker that dies (killed, out of
memory) leaves a job that the next look at the jobs finds and marks failed, and no registered
version (or the previous champion still serving).

A ``rescore`` job (the promotion of an index version, :mod:`models.promotion`) rescores every
stored interview in one transaction, so that readers see all the new scores or none. On SQLite
that transaction holds the store's only write lock for its whole run, so its progress cannot
be written into the ``job`` row meanwhile: it goes to a small file beside the store
(``<store>.jobs/<id>.json``, written atomically), which :func:`get_job` and :func:`list_jobs`
read for a running job. On PostgreSQL the progress is written into the row itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from reintegration.derive import parse_dimension_weights
from reintegration.errors import JobError, ModelError
from reintegration.policy import User, require
from reintegration.questionnaire import load_questionnaire
from reintegration.roles import Capability
from reintegration.settings import get_settings
from reintegration.store import jobs as store

KINDS = ("train-index", "train-risk")
RESCORE = "rescore"  # promoting an index version: rescoring, then the champion alias moves
PARAMS = {"train-index": ("date_from", "date_to", "dimension_weights"), "train-risk": ()}


def check_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate a job's parameters before anything starts; returns them as stored (JSON).

    Raises
    ------
    JobError
        An unknown kind or parameter, a date that is not ISO, invalid dimension weights.
    """
    if kind not in KINDS:
        raise JobError(f"there is no job kind {kind!r}; use one of {', '.join(KINDS)}")
    unknown = sorted(set(params) - set(PARAMS[kind]))
    if unknown:
        raise JobError(f"{kind} takes no parameter {unknown[0]!r}")
    out: dict[str, Any] = {}
    for name in ("date_from", "date_to"):
        value = params.get(name)
        if value in (None, ""):
            continue
        try:
            out[name] = date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise JobError(f"{name} {value!r} is not a date; write it as YYYY-MM-DD") from None
    if "date_from" in out and "date_to" in out and out["date_from"] > out["date_to"]:
        raise JobError(f"date_from {out['date_from']} is after date_to {out['date_to']}")
    weights = params.get("dimension_weights")
    if weights not in (None, "", {}):
        text = (
            weights
            if isinstance(weights, str)
            else ",".join(f"{k}={v}" for k, v in dict(weights).items())
        )
        try:
            out["dimension_weights"] = parse_dimension_weights(text, load_questionnaire())
        except ModelError as exc:
            raise JobError(str(exc).replace("--dimension-weights", "dimension_weights")) from None
    return out


def _require(caller: User) -> None:
    # Jobs train models on every country's returnees: MODELS, for every country.
    require(caller, Capability.MODELS, every_country=True)


def submit_job(engine: sa.Engine, kind: str, *, caller: User, params: dict[str, Any]) -> str:
    """Queue a training job and start its worker process; returns the job id.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The app's store; the worker opens the same database.
    kind : {"train-index", "train-risk"}
    caller : User
        Who asked (recorded, and with the model's run): MODELS for every country.
    params : dict
        ``train-index``: ``date_from``, ``date_to`` (ISO dates), ``dimension_weights``
        (``{"economic": 0.5, ...}`` or ``"economic=0.5,..."``); ``train-risk``: none.

    Raises
    ------
    Forbidden
        The caller may not train models (nothing is queued).
    JobError
        Invalid kind or parameters (nothing is queued).
    """
    _require(caller)
    checked = check_params(kind, params)
    store.recover_jobs(engine)
    job_id = store.create_job(engine, kind, actor=caller.name, params=checked)
    start_worker(engine, job_id)
    return job_id


def start_worker(engine: sa.Engine, job_id: str) -> None:
    """Start the worker process of a queued job (``python -m models.worker JOB_ID``).

    Raises
    ------
    JobError
        The process could not be started (the job is marked failed, saying why).
    """
    settings = get_settings()
    logs = settings.home / "jobs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "REINTEGRATION_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "REINTEGRATION_HOME": str(settings.home),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    try:
        with (logs / f"{job_id}.log").open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "models.worker", job_id],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    except OSError as exc:
        store.fail_job(engine, job_id, f"the worker could not be started: {exc.strerror or exc}")
        raise JobError(f"the worker could not be started: {exc.strerror or exc}") from exc
    store.set_process(engine, job_id, process.pid)
    # Reap the worker when it exits, so a dead worker is seen as gone, not as a zombie.
    threading.Thread(target=process.wait, name=f"job-{job_id}", daemon=True).start()


# -- progress of a job that holds SQLite's write lock ----------------------------------------


def _progress_file(engine: sa.Engine, job_id: str) -> Path | None:
    """Where a running job's progress goes when the store cannot take it (a SQLite file)."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    path = Path(str(engine.url.database))
    return path.with_name(f"{path.stem}.jobs") / f"{job_id}.json"


def report_rows(engine: sa.Engine, job_id: str, done: int, total: int, what: str) -> None:
    """Record how many rows of ``total`` a running job has done (``what``: e.g. "interviews
    rescored"), as progress (0..1), a message and ``rows_done``/``rows_total``.

    On SQLite the job may hold the store's write lock (a rescoring's one transaction): the
    figures go to the job's progress file, read back by :func:`get_job`; elsewhere to the row.
    """
    fraction = done / total if total else 1.0
    message = f"{done:,} of {total:,} {what}"
    counts = {"rows_done": int(done), "rows_total": int(total)}
    path = _progress_file(engine, job_id)
    if path is None:
        store.report_progress(engine, job_id, fraction, message, result=counts)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps({"progress": fraction, "message": message, "result": counts}))
    os.replace(partial, path)  # a reader sees the old figures or the new, never half a file


def forget_rows(engine: sa.Engine, job_id: str) -> None:
    """Remove a finished job's progress file (if any)."""
    path = _progress_file(engine, job_id)
    if path is not None:
        path.unlink(missing_ok=True)


def _live(engine: sa.Engine, job: dict[str, Any]) -> dict[str, Any]:
    """``job`` with its progress file's figures when it is running and has one."""
    if job["status"] != "running":
        return job
    path = _progress_file(engine, job["id"])
    try:
        live = json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        live = None
    if not live:
        return job
    return {**job, **{k: live[k] for k in ("progress", "message", "result")}}


def get_job(engine: sa.Engine, job_id: str, *, caller: User) -> dict[str, Any] | None:
    """A job (id, kind, status, progress, message, params, result, actor, times), or None.

    Raises
    ------
    Forbidden
        The caller may not see jobs (MODELS, for every country).
    """
    _require(caller)
    store.recover_jobs(engine)
    found = store.get_job(engine, job_id)
    return _live(engine, found) if found is not None else None


def list_jobs(engine: sa.Engine, *, caller: User) -> list[dict[str, Any]]:
    """Recent jobs, newest first (jobs whose worker died are marked failed first).

    Raises
    ------
    Forbidden
        The caller may not see jobs (MODELS, for every country).
    """
    _require(caller)
    store.recover_jobs(engine)
    return [_live(engine, found) for found in store.list_jobs(engine)]
