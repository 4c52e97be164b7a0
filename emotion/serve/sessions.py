"""Personal-baseline sessions: a person's rest face, enrolled once, read against later.

A session keeps the running sum of its enrolled faces' normalised points (11 KB whatever the
number of faces), so its reference is their mean, as `emotion-predict --enroll` averages its
photos. Sessions expire `ttl` seconds after their last use and are capped in number, so a
client that never deletes its sessions cannot grow the server's memory.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from emotion.serve.errors import ApiError


@dataclass
class Session:
    """One person's enrolled rest faces."""

    id: str
    last_used: float
    total: np.ndarray | None = None  # float64 sum of the enrolled (478, 3) points
    enrolled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def enroll(self, points: np.ndarray) -> None:
        with self.lock:
            added = points.astype(np.float64)
            self.total = added if self.total is None else self.total + added
            self.enrolled += 1

    def absorb(self, other: Session, replace: bool) -> None:
        """Add `other`'s faces to this reference, or make them the whole of it: one step, so
        a reader never sees the reference half-changed."""
        with other.lock:
            total, count = other.total, other.enrolled
        if total is None:
            return
        with self.lock:
            if replace or self.total is None:
                self.total, self.enrolled = total.copy(), count
            else:
                self.total, self.enrolled = self.total + total, self.enrolled + count

    @property
    def reference(self) -> np.ndarray | None:
        """The mean enrolled face, (478, 3) float32; None before any enrolment."""
        with self.lock:
            if self.total is None:
                return None
            return (self.total / self.enrolled).astype(np.float32)


class SessionStore:
    """Sessions by id, expiring `ttl` seconds after last use, at most `capacity` at once."""

    def __init__(self, capacity: int, ttl: float) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        stale = [key for key, found in self._sessions.items() if now - found.last_used > self.ttl]
        for key in stale:
            del self._sessions[key]

    def create(self) -> Session:
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            if len(self._sessions) >= self.capacity:
                raise ApiError(
                    429,
                    f"{len(self._sessions)} sessions are open, the most this server keeps",
                    f"delete finished sessions (DELETE /v1/sessions/ID), or wait: unused ones "
                    f"expire after {self.ttl:g} s (emotion-serve --max-sessions raises the cap)",
                )
            session = Session(secrets.token_urlsafe(16), now)
            self._sessions[session.id] = session
            return session

    def get(self, key: str) -> Session:
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            session = self._sessions.get(key)
            if session is None:
                raise ApiError(
                    404,
                    f"session {key[:64]!r} is unknown or expired (after {self.ttl:g} s unused)",
                    "create one (POST /v1/sessions) and enroll the person's rest face again",
                )
            session.last_used = now
            return session

    def delete(self, key: str) -> None:
        self.get(key)
        with self._lock:
            self._sessions.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            self._expire(time.monotonic())
            return len(self._sessions)
