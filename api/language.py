"""Each API request in the language its ``Accept-Language`` asks for (English by default).

A pure ASGI middleware, outermost, so every answer — a route's, a handler's problem document,
a refusal of the body guard — is written in it. JSON keys, codes and numbers stay canonical;
only sentences change. The answer says which language it speaks (``Content-Language``) and that
it depends on the header (``Vary``), so caches keep one copy per language.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reintegration import i18n


class Language:
    """Set the language of a request from its ``Accept-Language`` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"accept-language"), None
        )
        language = i18n.negotiate(header)

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Language", language)
                headers.add_vary_header("Accept-Language")
            await send(message)

        with i18n.use_language(language):
            await self.app(scope, receive, send_with_language)
