"""The live stream: camera frames over a WebSocket, each answered with its score and the
EMA-smoothed score that `emotion-predict` gives video frames (`VideoTrack`: a frame without a
face leaves the smoothed score where it was).

A baseline model is calibrated in the stream itself: between `calibrate start` and `stop`,
frames are the person's rest face, averaged into the reference (of the session named in
`?session=`, or the connection's own).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from fastapi import WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from emotion.predict.smoothing import VideoTrack
from emotion.serve.answers import label_of
from emotion.serve.engine import Engine
from emotion.serve.errors import ApiError
from emotion.serve.schemas import StreamFrame, Timing
from emotion.serve.sessions import Session, SessionStore

CLOSE_POLICY = 1008  # RFC 6455: a message that violates the server's policy
CLOSE_UNKNOWN_SESSION = 4404


class Stream:
    """One connection's state: its reference, its smoothing, whether it is calibrating."""

    def __init__(self, engine: Engine, session: Session) -> None:
        self.engine = engine
        self.session = session
        self.calibrating = False
        self.seq = 0
        self.track = self._new_track()

    def _new_track(self) -> VideoTrack:
        return VideoTrack(self.engine.trained.class_names, self.engine.settings.ema_alpha)

    def control(self, text: str) -> dict[str, Any]:
        """A text message: calibrate start/stop or reset; the reply to send."""
        try:
            message = json.loads(text)
            kind, action = message.get("type"), message.get("action")
        except (ValueError, AttributeError):
            return _error(
                "a text message must be a JSON object",
                '{"type": "calibrate", "action": "start"|"stop"} or {"type": "reset"}',
            )
        if kind == "reset":
            self.track = self._new_track()
            return {"type": "reset"}
        if kind == "calibrate" and action == "start":
            self.session.clear()
            self.track = self._new_track()
            self.calibrating = True
            return {"type": "calibrating"}
        if kind == "calibrate" and action == "stop":
            self.calibrating = False
            if self.session.enrolled == 0:
                return _error(
                    "no face was seen while calibrating, so there is no reference",
                    "face the camera with a relaxed face and calibrate again",
                )
            return {"type": "calibrated", "enrolled": self.session.enrolled}
        return _error(
            f"unknown control message {text[:200]!r}",
            '{"type": "calibrate", "action": "start"|"stop"} or {"type": "reset"}',
        )

    def frame(self, data: bytes) -> StreamFrame:
        """One camera frame: FaceMesh, then a score (or a calibration face)."""
        started = time.perf_counter()
        self.seq += 1
        try:
            found = self.engine.find_face(data)
        except ApiError as error:
            return self._answer("bad_frame", None, None, started, 0.0, error)
        if found.landmarks is None:
            self.track.update(None, "no_face")
            return self._answer("no_face", None, None, started, found.facemesh_ms)
        if self.calibrating:
            self.session.enroll(self.engine.points(found.landmarks, found.image_size))
            return self._answer("calibrating", found, None, started, found.facemesh_ms)
        reference = self.session.reference
        if self.engine.trained.preprocessing.uses_baseline and reference is None:
            return self._answer("no_reference", found, None, started, found.facemesh_ms)
        probabilities = self.engine.probabilities(found.landmarks, found.image_size, reference)
        return self._answer("ok", found, probabilities, started, found.facemesh_ms)

    def _answer(
        self,
        status: str,
        found: Any,
        probabilities: np.ndarray | None,
        started: float,
        facemesh_ms: float,
        error: ApiError | None = None,
    ) -> StreamFrame:
        names = self.engine.trained.class_names
        positive = self.engine.positive
        if probabilities is not None:
            self.track.update(probabilities, status)
        smoothed = self.track.smoothed
        total = (time.perf_counter() - started) * 1000
        return StreamFrame(
            seq=self.seq,
            status=status,  # type: ignore[arg-type]
            face=found is not None,
            landmarks=np.round(found.landmarks, 5).tolist() if found is not None else None,
            image_size=found.image_size if found is not None else None,
            probabilities=_named(names, probabilities),
            label=label_of(names, probabilities),
            score=float(probabilities[positive])
            if probabilities is not None and positive is not None
            else None,
            smoothed=_named(names, smoothed),
            smoothed_label=label_of(names, smoothed),
            smoothed_score=float(smoothed[positive])
            if smoothed is not None and positive is not None
            else None,
            enrolled=self.session.enrolled,
            timing_ms=Timing(
                facemesh=round(facemesh_ms, 3),
                model=round(max(total - facemesh_ms, 0.0), 3),
                total=round(total, 3),
            ),
            error=error.error if error else None,
            fix=error.fix if error else None,
        )


def _named(names: list[str], values: np.ndarray | None) -> dict[str, float] | None:
    if values is None:
        return None
    return {name: float(value) for name, value in zip(names, values, strict=True)}


def _error(error: str, fix: str) -> dict[str, Any]:
    return {"type": "error", "error": error, "fix": fix}


def same_origin(websocket: WebSocket) -> bool:
    """Browsers send any page's origin to any WebSocket; only this server's page may stream."""
    origin = websocket.headers.get("origin")
    if origin is None:  # not a browser: curl, Python clients
        return True
    return urlsplit(origin).netloc == websocket.headers.get("host")


async def stream_frames(
    websocket: WebSocket, engine: Engine, sessions: SessionStore, session_id: str | None
) -> None:
    """Serve one connection until the client leaves."""
    if not same_origin(websocket):
        await websocket.close(code=CLOSE_POLICY, reason="cross-origin streams are refused")
        return
    await websocket.accept()
    try:
        session = sessions.get(session_id) if session_id else Session("stream", 0.0)
    except ApiError as error:
        await websocket.send_json(_error(error.error, error.fix))
        await websocket.close(code=CLOSE_UNKNOWN_SESSION, reason="unknown or expired session")
        return
    state = Stream(engine, session)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                answer = await run_in_threadpool(state.frame, message["bytes"])
                await websocket.send_text(answer.model_dump_json())
            elif message.get("text") is not None:
                await websocket.send_json(state.control(message["text"]))
    except WebSocketDisconnect:
        return
