"""`http.headers`: the operator's headers on every response (distribution's key).

A header the response already carries is left as the handler set it: as in distribution, the
configured ones are defaults, and a handler's own value (a Content-Type, say) wins.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ConfiguredHeaders:
    def __init__(self, app: ASGIApp, headers: Sequence[tuple[str, str]]) -> None:
        self.app = app
        self._headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in self._headers if name not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, add)
