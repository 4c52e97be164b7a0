"""Request bodies capped before they are held: an oversized upload is a 413, never memory."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI's body parsing passes it on as it is (a 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the server's limit of {limit} bytes")


class BodyLimit:
    """Refuse a body by its declared length, and stop reading one that grows past it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self.app(scope, _refuse(self.max_bytes), send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


def _refuse(limit: int) -> Any:
    """A receive that fails at once: the route answers 413 through the usual handlers."""

    async def receive() -> Message:
        raise BodyTooLarge(limit)

    return receive
