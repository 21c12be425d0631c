"""``reintegration serve --workers N``: N processes answering on one port.

The parent binds the port once and hands the socket to N worker processes (uvicorn's
supervisor, :class:`uvicorn.supervisors.Multiprocess`: each worker a new interpreter, started
again when it dies, all stopped by Ctrl-C or SIGTERM, replaced one by one on SIGHUP). Each
worker builds the app as a single server does (:func:`worker_app`: ``create_app``, then
:func:`api.cli.settle_heap`), so it holds its own services, caches and champions; everything
they share is in the database and the registry.

Two details matter:

* The socket is made with ``IPPROTO_TCP`` (:func:`listening_socket`). asyncio sets
  ``TCP_NODELAY`` on an accepted connection only when the listening socket says it is TCP;
  uvicorn's own ``bind_socket`` makes it with protocol 0, so with its workers every response
  written in two parts (head, then body) waited for the client's delayed acknowledgement
  (Nagle's algorithm): +44-48 ms per request on a reused connection.
* What a start does once for all (the store's migrations, the key's fingerprint, MLflow's
  tables and the built-in index) runs first in a process of its own (:func:`prepare`), so N
  workers do not race to create the same tables or register the built-in index N times, and a
  wrong setting ends ``serve`` with its sentence (exit 2) before any worker starts. The parent
  itself imports neither the app nor MLflow: it only supervises.
"""

from __future__ import annotations

import logging
import multiprocessing
import socket
import sys
from collections.abc import Callable
from typing import Any

MAX_WORKERS = 64
WORKER_APP = "api.workers:worker_app"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
WORKER_LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
"""The workers' log lines name their process, so that requests can be told apart by worker."""
HEALTHCHECK_S = 90
"""How long a worker may leave the supervisor's ping unanswered before it is replaced, and how
long a new worker may take to serve when SIGHUP replaces them (building the app imports pandas,
scikit-learn, Dash and MLflow and loads the analytics frame: 13-42 s for two workers starting
together on this busy 2-core machine)."""
STARTUP_FAILURE = 3
"""uvicorn's exit status of a worker that cannot start; the supervisor then stops them all."""


def check_workers(workers: int) -> None:
    """Refuse a number of workers outside 1..:data:`MAX_WORKERS`.

    Raises
    ------
    ValueError
        A sentence saying what is allowed.

    Examples
    --------
    >>> check_workers(4)
    >>> check_workers(0)
    Traceback (most recent call last):
    ...
    ValueError: --workers must be between 1 and 64; got 0
    """
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"--workers must be between 1 and {MAX_WORKERS}; got {workers}")


def listening_socket(host: str, port: int) -> socket.socket:
    """The port, bound once for every worker, as asyncio expects a TCP socket to be.

    Made with ``IPPROTO_TCP`` so that asyncio sets ``TCP_NODELAY`` on each connection it
    accepts (see the module's docstring), and ``TCP_NODELAY`` set on it too (Linux hands it
    to accepted connections); ``SO_REUSEADDR`` as uvicorn sets it, and inheritable so that the
    workers receive it. Measured with two workers, 40 ``/healthz`` on one connection: median
    44.0 ms with uvicorn's kind of socket, 1.8 ms with this one.

    Raises
    ------
    OSError
        The port cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def configure_logging(*, worker: bool) -> None:
    """Log lines on stderr (batch ids, counts, one line per request; never answers or case
    numbers), with the process id in a worker's."""
    logging.basicConfig(level=logging.INFO, format=WORKER_LOG_FORMAT if worker else LOG_FORMAT)


def prepare() -> None:
    """What every start would do once, done once before the workers start (exit 2 on a bad
    setting, its sentence on stderr)."""
    from models._mlflow import check_artifacts
    from models.registry import ensure_builtin_index
    from reintegration.errors import ReintegrationError
    from reintegration.housekeeping import keep_private, verified_key
    from reintegration.settings import get_settings
    from reintegration.store.engine import open_store

    configure_logging(worker=False)
    try:
        settings = get_settings()
        for warning in check_artifacts(settings):
            logging.getLogger("api.workers").warning("%s", warning)
        keep_private()
        engine = open_store(settings.database_url)
        try:
            verified_key(settings, engine)
        finally:
            engine.dispose()
        ensure_builtin_index(settings)
    except ReintegrationError as exc:
        sentence = str(exc) if str(exc).endswith(".") else f"{exc}."
        sys.stderr.write(f"error: {sentence}\n")
        sys.stderr.flush()
        sys.exit(2)


def worker_app() -> Any:
    """The app of one worker, built as ``serve`` builds it (uvicorn calls this in each worker).

    A setting that stops the app (a ConfigurationError) ends the worker with uvicorn's startup
    failure status, and the supervisor then stops every worker instead of restarting them.
    """
    configure_logging(worker=True)
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from api.app import create_app
    from api.cli import settle_heap
    from reintegration.errors import ReintegrationError
    from reintegration.settings import get_settings

    try:
        app: Any = create_app()
        proxies = get_settings().forwarded_allow_ips.strip()
    except ReintegrationError as exc:
        logging.getLogger("api.workers").error("this worker cannot start: %s", exc)
        sys.exit(STARTUP_FAILURE)
    if proxies:
        # What api.cli.server_config has uvicorn do in a single server; here the settings are
        # read in the worker, so that the parent never imports them (nor pandas with them).
        app = ProxyHeadersMiddleware(app, trusted_hosts=proxies)
    settle_heap()
    return app


def run(
    host: str,
    port: int,
    workers: int,
    sock: socket.socket,
    announce: Callable[[], None] | None = None,
) -> str | None:
    """Prepare once, then serve on ``sock`` with ``workers`` processes until Ctrl-C or SIGTERM.

    The parent reads no setting itself (:func:`prepare` checks them, each worker applies them),
    so it stays a small supervisor: 42 MB resident, 221 MB when it read the settings (which
    import pandas).

    ``announce`` is called once the preparation has succeeded, before the workers start.

    Returns
    -------
    str or None
        Why serving could not start (a sentence for ``serve`` to end with; empty when
        :func:`prepare` has already said it), or None after a stop by Ctrl-C or SIGTERM.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    check_workers(workers)
    preparing = multiprocessing.get_context("spawn").Process(target=prepare, name="prepare")
    preparing.start()
    preparing.join()
    if preparing.exitcode == 2:
        return ""  # prepare() has said why
    if preparing.exitcode != 0:
        return "the store or the model registry could not be prepared; the log above says why"
    if announce is not None:
        announce()
    config = uvicorn.Config(
        WORKER_APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
        proxy_headers=False,  # applied by each worker from its settings (worker_app)
        timeout_worker_healthcheck=HEALTHCHECK_S,
    )
    supervisor = Multiprocess(config, sockets=[sock])
    supervisor.run()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        return "a worker could not start; the log above says why"
    return None
