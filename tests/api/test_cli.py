"""`reintegration users add/revoke/list` and `reintegration serve`'s refusal of a taken port."""

from __future__ import annotations

import os
import socket

import pytest
from typer.testing import CliRunner

from reintegration.cli import app


def test_users_add_prints_a_token_once_and_revoke_stops_it(home):
    from reintegration.settings import get_settings
    from reintegration.store.engine import open_store
    from reintegration.users import authenticate

    added = CliRunner().invoke(
        app, ["users", "add", "awa", "--role", "enumerator", "--country", "sen"]
    )

    assert added.exit_code == 0, added.output
    token = added.stdout.strip()
    engine = open_store(get_settings().database_url)
    user = authenticate(engine, token)
    assert user is not None and user.countries == frozenset({"SEN"})
    assert "shown this once" in added.stderr
    listed = CliRunner().invoke(app, ["users", "list"])
    assert listed.stdout.splitlines() == ["awa\tenumerator\tSEN"]

    revoked = CliRunner().invoke(app, ["users", "revoke", "awa"])

    assert revoked.exit_code == 0 and authenticate(engine, token) is None
    engine.dispose()


def test_users_add_with_an_unknown_role_exits_2_with_a_sentence(home):
    result = CliRunner().invoke(app, ["users", "add", "x", "--role", "boss"])

    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: 'boss' is not a role: use one of enumerator, manager, analyst, admin."
    )


def test_revoking_an_unknown_user_exits_2(home):
    result = CliRunner().invoke(app, ["users", "revoke", "ghost"])

    assert result.exit_code == 2
    assert result.stderr.strip() == "error: there is no user named 'ghost'."


def test_serve_on_a_taken_port_exits_2_with_a_sentence(home):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = CliRunner().invoke(app, ["serve", "--port", str(port)])

    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is already in use; choose another with --port."
    )


def test_serve_moves_the_built_app_out_of_the_collectors_reach(home, monkeypatch):
    import gc
    import sys

    import uvicorn

    from api.cli import GC_THRESHOLD, SWITCH_INTERVAL_S

    seen = {}

    def run(self, *args, **kwargs):  # the server would start answering here
        seen.update(
            threshold=gc.get_threshold(),
            frozen=gc.get_freeze_count(),
            switch=sys.getswitchinterval(),
        )

    before, switch = gc.get_threshold(), sys.getswitchinterval()
    monkeypatch.setattr(uvicorn.Server, "run", run)
    try:
        result = CliRunner().invoke(app, ["serve", "--port", str(_free_port())])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        sys.setswitchinterval(switch)

    assert result.exit_code == 0, result.output
    assert seen["threshold"] == GC_THRESHOLD
    # The app's objects (thousands: FastAPI, Dash, pandas) are never walked by a collection.
    assert seen["frozen"] > 10_000
    # A request waits at most this long each time it needs the interpreter back from an upload.
    assert seen["switch"] == pytest.approx(SWITCH_INTERVAL_S) and SWITCH_INTERVAL_S < 0.005


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_caps_malloc_arenas_for_itself_and_its_workers(home, monkeypatch):
    """At most two arenas: set in the serving process (glibc's mallopt, in a child process
    here: it cannot be undone) and in the environment its spawned workers read; an operator's
    own setting stands."""
    variable, setter, expected, operators = "MALLOC_ARENA_MAX", "cap_malloc_arenas", "2", "4"
    import platform
    import subprocess
    import sys

    import uvicorn

    from api import cli

    monkeypatch.delenv(variable, raising=False)
    calls: list[tuple[int, int]] = []  # not this process's own mallopt
    monkeypatch.setattr(
        cli, "_mallopt", lambda parameter, value: calls.append((parameter, value)) or True
    )
    seen = {}
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda self: seen.update(value=os.environ.get(variable))
    )
    monkeypatch.setattr("api.cli.settle_heap", lambda: None)
    result = CliRunner().invoke(app, ["serve", "--port", str(_free_port())])

    assert result.exit_code == 0, result.output
    assert seen["value"] == expected
    assert (cli._M_ARENA_MAX, int(expected)) in calls
    monkeypatch.setenv(variable, operators)
    assert getattr(cli, setter)() is False
    assert os.environ[variable] == operators
    monkeypatch.delenv(variable)
    code = f"from api.cli import {setter}; import os; print({setter}(), os.environ['{variable}'])"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    glibc = platform.libc_ver()[0] == "glibc"
    assert done.stdout.split() == [str(glibc), expected]
