"""The server and token commands: ``reintegration serve`` and ``reintegration users``.

Registered on the root command by ``reintegration/cli.py``. Nothing heavy is imported at module
level: FastAPI, Dash and uvicorn load inside ``serve``.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import socket
import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from reintegration.settings import Settings

users_app = typer.Typer(help="Add and revoke users and their tokens.", no_args_is_help=True)

# Exit statuses of DESIGN.md (the same as reintegration.cli's).
EXIT_NOTHING_DONE = 2


def _fail(message: str) -> NoReturn:
    from reintegration.cli import _fail as fail

    fail(message)


def _engine():  # type: ignore[no-untyped-def]
    from reintegration.cli import _store

    return _store()  # with the housekeeping of a start, as every command that opens the store


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="A unique name for the user.")],
    role: Annotated[str, typer.Option("--role", help="enumerator, manager, analyst or admin.")],
    country: Annotated[
        list[str] | None,
        typer.Option("--country", help="Limit the token to this country (ISO3); repeatable."),
    ] = None,
    actor: Annotated[str, typer.Option("--actor", help="Who adds the user (audited).")] = "cli",
) -> None:
    """Add a user and print their token, once: only its hash is stored."""
    from reintegration.errors import ReintegrationError
    from reintegration.policy import cli_caller
    from reintegration.users import add_user

    try:
        # No --country means every country (None); the API asks for "all" explicitly.
        token = add_user(_engine(), name, role, country or None, caller=cli_caller(actor))
    except ReintegrationError as exc:
        _fail(str(exc))
        return
    typer.echo(token)
    from reintegration.cli import _stderr

    scope = f", limited to {', '.join(sorted(c.upper() for c in country))}" if country else ""
    _stderr().print(
        f"Added {name} ({role}{scope}). The token above is shown this once; send it as "
        "Authorization: Bearer <token>.",
        markup=False,
    )


@users_app.command("revoke")
def users_revoke(
    name: Annotated[str, typer.Argument(help="The user whose token stops working.")],
    actor: Annotated[str, typer.Option("--actor", help="Who revokes (audited).")] = "cli",
) -> None:
    """Remove a user; their token stops working (a running server notices within a second)."""
    from reintegration.cli import _stderr
    from reintegration.errors import ReintegrationError
    from reintegration.policy import cli_caller
    from reintegration.users import revoke_user

    try:
        revoke_user(_engine(), name, caller=cli_caller(actor))
    except ReintegrationError as exc:
        _fail(str(exc))
        return
    _stderr().print(f"Revoked {name}: their token no longer works.", markup=False)


@users_app.command("list")
def users_list() -> None:
    """List users with their role and countries (tokens are never shown again)."""
    from reintegration.policy import CLI
    from reintegration.users import list_users

    for user in list_users(_engine(), caller=CLI):
        countries = ",".join(sorted(user.countries)) if user.countries else "all countries"
        typer.echo(f"{user.name}\t{user.role.value}\t{countries}")


def port_taken(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or None when it can.

    Examples
    --------
    >>> with socket.socket() as s:
    ...     s.bind(("127.0.0.1", 0)); s.listen()
    ...     "in use" in port_taken("127.0.0.1", s.getsockname()[1])
    True
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # uvicorn sets SO_REUSEADDR too: a port in TIME_WAIT is free for both.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use; choose another with --port"
            if exc.errno == errno.EACCES:
                return f"port {port} on {host} needs privileges; choose one above 1023"
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def server_config(app: Any, host: str, port: int, settings: Settings | None = None) -> Any:
    """uvicorn's configuration of ``serve``: forwarded headers believed only from the proxies
    ``REINTEGRATION_FORWARDED_ALLOW_IPS`` names (uvicorn alone would believe 127.0.0.1)."""
    import uvicorn

    from reintegration.settings import get_settings

    proxies = (settings or get_settings()).forwarded_allow_ips.strip()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )


GC_THRESHOLD = (10_000, 20, 20)
"""The server's cyclic-GC thresholds (Python's are 700, 10, 10)."""
SWITCH_INTERVAL_S = 0.0005
"""How long a busy thread keeps the interpreter before a waiting one gets it (Python's: 5 ms)."""


MALLOC_ARENAS = 2
"""glibc malloc arenas a server process may use (glibc's default: eight per CPU)."""
_M_ARENA_MAX = -8  # glibc's malloc.h


def cap_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Have this process and those it starts use at most ``arenas`` malloc arenas, unless the
    operator set ``MALLOC_ARENA_MAX`` already (their choice stands). True when this process's
    cap was set (glibc), False elsewhere (another C library ignores it).

    Each thread answering a question allocates its selections and summaries (tens of MB); with
    an arena per thread, what a thread frees stays in its arena and the server's resident
    memory grows with the number of threads that ever answered. Measured at 1M interviews
    (``benchmarks/api_bench.py --mixed``, 16 clients): peak RSS 2,066 MB with glibc's default,
    1,396 MB with two arenas, for the same requests per second.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)  # read by glibc in processes started from here
    return _mallopt(_M_ARENA_MAX, arenas)


def _mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt`` for this process; False where there is none."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(parameter, value))


def settle_heap() -> None:
    """Keep the cyclic garbage collector's pauses short while uploads are read beside requests.

    An upload is read in a thread of the server. Reading a large workbook makes and keeps many
    container objects, and with Python's default thresholds a full collection then ran every
    second or so, each walking the whole heap (Dash, pandas, scikit-learn and MLflow included):
    pauses of 0.4 s alone and over 1 s beside other work, during which no request is answered
    (``benchmarks/hostile_bench.py``'s ``/healthz``). So, once the app is built, what it made is
    moved out of the collector's reach (``gc.freeze``: never garbage, never walked again), and
    young objects are collected less often, which makes full collections rare.

    The interpreter is also handed over more often (:data:`SWITCH_INTERVAL_S`). Answering one
    request takes the interpreter lock dozens of times (the event loop, the worker thread, each
    return from a socket or SQLite call), and each time the request waits for the thread that
    reads an upload to give it up: at Python's 5 ms a ``/healthz`` took 1–2 s beside a large
    workbook on an idle machine; at 0.5 ms it stays in tens of milliseconds, for a few percent
    of the upload's throughput.
    """
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")
    ] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Worker processes answering on the port (each builds the app).",
        ),
    ] = 1,
) -> None:
    """Serve the API at /api/v1 and the dashboards at /dashboard/."""
    from reintegration.cli import _stderr
    from reintegration.errors import ReintegrationError

    why = port_taken(host, port)
    if why:
        _fail(why)
        return
    cap_malloc_arenas()  # before any thread or worker process starts
    if workers != 1:
        _serve_workers(host, port, workers)
        return
    import logging

    from api.workers import configure_logging

    # Batch ids, counts and one line per request (by route template): never answers or
    # case numbers, which nothing logs.
    configure_logging(worker=False)
    try:
        import uvicorn

        from api.app import create_app
        from models._mlflow import check_artifacts
        from reintegration.settings import get_settings

        for warning in check_artifacts(get_settings()):
            logging.getLogger(__name__).warning("%s", warning)
        app = create_app()
    except ReintegrationError as exc:
        _fail(str(exc))
        return
    settle_heap()
    shown = f"[{host}]" if ":" in host else host
    _stderr().print(
        f"Serving the API at http://{shown}:{port}/api/v1 (docs at /docs) and the dashboards "
        f"at http://{shown}:{port}/dashboard/. Ctrl-C stops.",
        markup=False,
    )
    server = uvicorn.Server(server_config(app, host, port))
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits 1 when it cannot bind (a race with the probe)
        if exc.code:
            _fail(f"cannot listen on {host}:{port}; is the port in use?")
        raise


def _serve_workers(host: str, port: int, workers: int) -> None:
    """``serve --workers N``: the port bound once, N worker processes (:mod:`api.workers`)."""
    from api import workers as pool
    from reintegration.cli import _stderr

    try:
        pool.check_workers(workers)
    except ValueError as exc:
        _fail(str(exc))
        return
    try:
        sock = pool.listening_socket(host, port)
    except OSError:
        _fail(port_taken(host, port) or f"cannot listen on {host}:{port}")
        return
    shown = f"[{host}]" if ":" in host else host

    def announce() -> None:
        _stderr().print(
            f"Serving the API at http://{shown}:{port}/api/v1 (docs at /docs) and the "
            f"dashboards at http://{shown}:{port}/dashboard/ with {workers} worker processes. "
            "Ctrl-C stops.",
            markup=False,
        )

    with sock:
        why = pool.run(host, port, workers, sock, announce)
    if why is not None:
        if why:
            _fail(why)
        raise typer.Exit(EXIT_NOTHING_DONE)
