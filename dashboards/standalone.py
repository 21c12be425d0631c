"""Serve the dashboard on its own, mounted at ``/dashboard/`` as in the API's server: for
tests, benchmarks and screenshots when the whole API is not wanted."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

MOUNT = "/dashboard"


def wsgi_app(dash_app: Any) -> DispatcherMiddleware:
    """The Dash app's server mounted at ``/dashboard`` (everything else: 404)."""
    return DispatcherMiddleware(NotFound(), {MOUNT: dash_app.server})


class _QuietHandler(WSGIRequestHandler):
    """No line per request: a page load makes dozens, and tests and benchmarks need none."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> BaseWSGIServer:
    """Serve a WSGI ``app`` from a daemon thread (threaded server); ``port=0`` picks a free one.

    Returns the server: ``server.server_port`` is its port, ``server.shutdown()`` stops it.
    """
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="dashboard-server", daemon=True)
    thread.start()
    return server
