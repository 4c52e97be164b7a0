"""Idle sockets closed: uvicorn's HTTP protocol with a deadline for each request's headers.

uvicorn counts every open socket against `limit_concurrency` (--max-connections) from the
moment it connects, but arms its keep-alive timer only after a response, and cancels it at
the first byte of the next request. So a socket that sends nothing, or half a request line,
holds a slot for ever, and 64 of them answer everyone else 503. Here a socket must complete
a request's headers within `timeout` seconds of connecting, and again after each response;
a request being answered (or a socket upgraded to a WebSocket: the stream has its own idle
timeout) is never cut.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

# `--processes N`: uvicorn imports the protocol by name in each worker process, so the
# deadline travels in the environment (server.serve sets it before the workers start).
TIMEOUT_VARIABLE = "EMOTION_SERVE_IDLE_TIMEOUT"


def __getattr__(name: str) -> Any:
    """`emotion.serve.idle:ConfiguredProtocol`: the deadline protocol with the timeout of
    $EMOTION_SERVE_IDLE_TIMEOUT, made on first import by name (a worker process's)."""
    if name == "ConfiguredProtocol":
        return http_protocol(float(os.environ[TIMEOUT_VARIABLE]))
    raise AttributeError(name)


def http_protocol(timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's own choice of HTTP protocol (httptools when installed, else h11: both keep
    the current request as `cycle` and the open sockets as `connections`), with the deadline."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # pragma: no cover (uvicorn[standard] installs httptools)
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]

    class DeadlineProtocol(Base):
        _deadline: asyncio.TimerHandle | None = None
        _idle_since: Any = None  # the request that was current when the wait began

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._request_started() or self not in self.connections:
                self._disarm()  # its headers are complete, or the socket is a WebSocket's

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.cycle is None or self.cycle.response_complete:  # nothing pipelined
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _request_started(self) -> bool:
            return self.cycle is not self._idle_since

        def _arm(self) -> None:
            self._disarm()
            self._idle_since = self.cycle
            self._deadline = self.loop.call_later(timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if not self._request_started() and not self.transport.is_closing():
                self.transport.close()

    return DeadlineProtocol
