"""Personal-baseline sessions: a person's rest face, enrolled once, read against later.

A session keeps its faces as a `Reference` (the running sum of their normalised points, 11 KB
whatever their number), so its reference is their mean, as `emotion-predict --enroll` averages
its photos. For a `data.baseline=session` model every face the session scores is counted in
first, as `emotion-predict --baseline session` reads each face against the mean of them all.
Sessions expire `ttl` seconds after their last use and are capped in number, so a client
that never deletes its sessions cannot grow the server's memory.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from emotion.features.reference import Reference
from emotion.serve.errors import ApiError


@dataclass
class Session:
    """One person's reference: their enrolled rest faces, or for a `data.baseline=session`
    model every face of theirs the session has seen."""

    id: str
    last_used: float
    faces: Reference = field(default_factory=Reference)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def enrolled(self) -> int:
        """Faces the reference holds."""
        with self.lock:
            return self.faces.count

    def enroll(self, points: np.ndarray) -> None:
        with self.lock:
            self.faces.add(points)

    def absorb(self, faces: Reference, replace: bool) -> None:
        """Add `faces` to this reference, or make them the whole of it: one step, so a reader
        never sees the reference half-changed."""
        with self.lock:
            self.faces.merge(faces, replace)

    def seen(self, points: np.ndarray) -> tuple[np.ndarray | None, int]:
        """Count one face into the reference and return the reference it is then read
        against and the faces that holds: one step, so concurrent faces each count once."""
        with self.lock:
            self.faces.add(points)
            return self.faces.mean(), self.faces.count

    @property
    def reference(self) -> np.ndarray | None:
        """The mean face, (478, 3) float32; None before any face was added."""
        with self.lock:
            return self.faces.mean()


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
