"""The server and token commands: ``reintegration serve`` and ``reintegration users``.

Registered on the root command by ``reintegration/cli.py``. Nothing heavy is imported at module
level: FastAPI, Dash and uvicorn load inside ``serve``.
"""

from __future__ import annotations

import typer

users_app = typer.Typer(help="Add and revoke users and their tokens.", no_args_is_help=True)


def serve() -> None:
    """Serve the API at /api/v1 and the dashboards at /dashboard/."""
    raise NotImplementedError
