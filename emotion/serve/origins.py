"""Only this server's own names and pages: the Host and Origin of every request checked.

A browser lets any web page send simple POSTs and open WebSockets to any server, the one on
127.0.0.1 included, and sends the page's Origin with them; with DNS rebinding (evil.example
resolving to 127.0.0.1) the page's Host is evil.example too. So a request must name one of
the hosts the server was started for (the loopback names, --host, --allowed-host), and a
request that changes something (any method but GET/HEAD/OPTIONS, and the stream) from a
browser must come from a page of that same origin. HTTP refusals are JSON `{error, fix}`;
a refused WebSocket is accepted and closed with 1008 (policy), so a browser's script sees
the code and reason instead of a failed handshake.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

CLOSE_POLICY = 1008  # RFC 6455: a message that violates the server's policy
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Refusal(Exception):
    def __init__(self, status: int, error: str, fix: str) -> None:
        super().__init__(error)
        self.status, self.error, self.fix = status, error, fix


class OriginGuard:
    """ASGI middleware: requests by a host name the server was not started for are a 400,
    cross-origin requests that change something a 403 (a WebSocket: close 1008)."""

    def __init__(self, app: ASGIApp, host_names: frozenset[str]) -> None:
        self.app = app
        self.host_names = host_names
        self.any_host = "*" in host_names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            self.check(scope)
        except Refusal as refusal:
            if scope["type"] == "websocket":
                socket = WebSocket(scope, receive, send)
                await socket.accept()
                reason = refusal.error.encode()[:120].decode(errors="ignore")  # 123 bytes at most
                await socket.close(code=CLOSE_POLICY, reason=reason)
                return
            body = {"error": refusal.error, "fix": refusal.fix}
            await JSONResponse(body, status_code=refusal.status)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def check(self, scope: Scope) -> None:
        """A Refusal unless the request's Host and Origin are this server's."""
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        name = urlsplit(f"//{host}").hostname if host else None
        if not self.any_host and name not in self.host_names:
            raise Refusal(
                400,
                f"the request names host {host[:100]!r}, not one this server was started for",
                f"reach it as one of {', '.join(sorted(self.host_names))}, or start "
                "emotion-serve with --allowed-host NAME for the name clients use",
            )
        origin = headers.get("origin")
        changes = scope["type"] == "websocket" or scope.get("method") not in SAFE_METHODS
        if origin is not None and changes and urlsplit(origin).netloc.lower() != host.lower():
            raise Refusal(
                403,
                f"cross-origin request from {origin[:100]!r} refused",
                "use the server's own page, or call the API without a browser (no Origin)",
            )
