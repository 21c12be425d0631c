"""The API's documentation page, served by this server alone.

FastAPI's page loads Swagger UI from a CDN, so ``/docs`` was blank without internet, and it
starts Swagger UI with an inline script, which a strict Content-Security-Policy forbids. Here
the page loads Swagger UI's files from ``/docs-assets/`` (the pinned ``fastapi-offline``
package ships them) and starts it with ``api/static/docs-init.js``: the page needs nothing but
``'self'`` (scripts, styles, the schema it fetches) and ``data:`` images (Swagger UI's icons).
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = "/docs-assets"
STATIC = Path(__file__).with_name("static")
# Swagger UI's bundle, its stylesheet and a favicon, in the package's folder "static".
SWAGGER_PACKAGE = ("fastapi_offline", "static")


def docs_page(title: str, root: str, openapi_url: str) -> str:
    """The HTML of the docs page: every address on this server, no inline script.

    Examples
    --------
    >>> page = docs_page("API <1>", "", "/openapi.json")
    >>> "API &lt;1&gt;" in page, 'data-openapi-url="/openapi.json"' in page, "http" in page
    (True, True, False)
    """
    assets = f"{root}{ASSETS_URL}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - docs</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/docs-init.js" data-openapi-url="{html.escape(root + openapi_url)}"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Serve the docs page at ``/docs`` and its files under ``/docs-assets/``.

    Build the app with ``docs_url=None`` (FastAPI's own page would answer first).
    """
    app.mount(
        ASSETS_URL,
        StaticFiles(directory=STATIC, packages=[SWAGGER_PACKAGE]),
        name="docs-assets",
    )
    openapi_url = app.openapi_url or "/openapi.json"

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return HTMLResponse(docs_page(app.title, root, openapi_url))

    app.add_route(DOCS_URL, docs, include_in_schema=False)
