"""What `emotion-serve` is started with: plain values, checked once, named in the error."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from emotion.errors import check_ranges
from emotion.inference.threads import threads_check

# A phone photo is a few MB; 16 MiB refuses nothing real and bounds what one request holds.
MAX_BODY_BYTES = 16 * 2**20
# 40 MP is past any phone or webcam frame; a header claiming more is refused before decoding.
MAX_PIXELS = 40_000_000
# Every client holds one of --max-connections while its socket is open: one that sends no
# whole request (or a stream that sends no message) this long is closed, so idle sockets
# cannot keep the others out for longer. The page sends frames many times a second.
IDLE_TIMEOUT_S = 20.0
# The names a browser on this machine uses for a loopback server.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServeSettings:
    """The server's bounds. `workers` FaceMesh graphs serve requests side by side, each on
    its own thread (MediaPipe releases the GIL while its graph runs), so sessions live in one
    process and stay correct whichever worker answers."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # Server processes on the one port (uvicorn's workers), each with its own model and
    # `workers` landmarkers; HTTP sessions live in one process (docs/serving.md).
    processes: int = 1
    max_body_bytes: int = MAX_BODY_BYTES
    max_pixels: int = MAX_PIXELS
    max_sessions: int = 100
    # Open connections and requests at once (uvicorn's limit_concurrency): past it, a 503.
    max_connections: int = 64
    session_ttl_s: float = 600.0
    idle_timeout_s: float = IDLE_TIMEOUT_S
    # Host names clients may use besides the loopback names and --host ("*": any).
    allowed_hosts: tuple[str, ...] = ()
    ema_alpha: float = 0.3
    calibration_seconds: float = 3.0
    positive_class: str = "anxious"

    def __post_init__(self) -> None:
        checks = (
            ("--port", self.port, 1 <= self.port <= 65535, "a port from 1 to 65535"),
            threads_check("--workers", self.workers),
            threads_check("--processes", self.processes),
            ("--max-body-bytes", self.max_body_bytes, self.max_body_bytes >= 1024, "1024 or more"),
            ("--max-pixels", self.max_pixels, self.max_pixels >= 4096, "4096 or more"),
            ("--max-sessions", self.max_sessions, self.max_sessions >= 1, "1 or more"),
            ("--max-connections", self.max_connections, self.max_connections >= 1, "1 or more"),
            ("--session-ttl", self.session_ttl_s, self.session_ttl_s > 0, "seconds, over 0"),
            (
                "--idle-timeout",
                self.idle_timeout_s,
                0 < self.idle_timeout_s <= 86400,
                "seconds, over 0, e.g. 20",
            ),
            ("--ema-alpha", self.ema_alpha, 0.0 < self.ema_alpha <= 1.0, "in (0, 1], e.g. 0.3"),
            (
                "--calibration-seconds",
                self.calibration_seconds,
                self.calibration_seconds > 0,
                "seconds, e.g. 3",
            ),
            *(
                (
                    "--allowed-host",
                    name,
                    name == "*" or (bool(name) and name.count(":") != 1 and "/" not in name),
                    "a host name or address alone, without scheme or port: e.g. myhost.lan",
                )
                for name in self.allowed_hosts
            ),
        )
        check_ranges(checks)

    @property
    def host_names(self) -> frozenset[str]:
        """The Host header names this server answers: a page reached by any other name
        (DNS rebinding: evil.example resolving to 127.0.0.1) is refused."""
        names = {*LOOPBACK_NAMES, *(name.strip("[]").lower() for name in self.allowed_hosts)}
        if not self.any_address:
            names.add(self.host.lower())
        return frozenset(names)

    @property
    def any_address(self) -> bool:
        """--host 0.0.0.0 or ::, every address of this machine: not a name clients use."""
        return self.host in ("0.0.0.0", "::")

    @property
    def url(self) -> str:
        """The server's address as a browser takes it: an IPv6 host in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def loopback(self) -> bool:
        """Whether only this machine can reach the server."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
