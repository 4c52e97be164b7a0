"""The live stream: camera frames over a WebSocket, each answered with its score and the
EMA-smoothed score that `emotion-predict` gives video frames (`VideoTrack`: a frame without a
face leaves the smoothed score where it was).

A baseline model is calibrated in the stream itself: between `calibrate start` and `stop`,
frames are the person's rest face. At `stop` they are added to the reference (of the session
named in `?session=`, or the connection's own), or replace it with `"replace": true` (what
the page sends to recalibrate); never before, so a calibration that saw no face, or one
cut short, leaves the reference as it was and says so. A `data.baseline=session` model needs
no calibration: every frame with a face is counted into the reference before it is scored.

A browser that finds the face itself sends landmark messages instead of frames (text:
`{"type": "landmarks", "landmarks": [[x, y, z], ...] | null, "image_size": [w, h], ...}`,
with `blendshapes` and `pose` when the model reads them): no image leaves it. It may hold its
own reference (`"reference"`: what `calibrated` hands out, see emotion/serve/held.py); a
frame that carries one is scored against it and the server keeps nothing of it.

A connection that sends nothing for --idle-timeout seconds is closed (4408), so idle
sockets cannot hold the server's connection slots; a text message is a JSON object.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from emotion.features.reference import Reference
from emotion.predict.smoothing import VideoTrack
from emotion.serve.answers import label_of
from emotion.serve.engine import Engine, Found, found_of
from emotion.serve.errors import ApiError
from emotion.serve.held import held_of, mean_of, model_key
from emotion.serve.schemas import LandmarksIn, StreamFrame, StreamLandmarks, Timing
from emotion.serve.sessions import Session, SessionStore

CLOSE_UNKNOWN_SESSION = 4404
CLOSE_IDLE = 4408  # as HTTP's 408 Request Timeout
# A landmark message with blendshapes, pose and a reference is about 30 000 characters;
# longer text is refused before it is parsed.
MAX_TEXT_CHARS = 65_536
CONTROLS = (
    '{"type": "calibrate", "action": "start"|"stop"}, {"type": "reset"} '
    'or {"type": "landmarks", ...}'
)


class Stream:
    """One connection's state: its reference, its smoothing, whether it is calibrating."""

    def __init__(self, engine: Engine, session: Session) -> None:
        self.engine = engine
        self.session = session
        self.calibration: Reference | None = None  # the faces of a calibration under way
        self.replace = False
        self.seq = 0
        self.track = self._new_track()
        self.key = model_key(engine.trained)

    def _new_track(self) -> VideoTrack:
        return VideoTrack(self.engine.trained.class_names, self.engine.settings.ema_alpha)

    def text(self, text: str) -> dict[str, Any] | StreamFrame:
        """A text message: a landmark frame, or calibrate start/stop or reset; the reply."""
        if len(text) > MAX_TEXT_CHARS:
            return _error(f"a text message of {len(text)} characters is too long", CONTROLS)
        try:
            message = json.loads(text)
            kind, action = message.get("type"), message.get("action")
        except (ValueError, AttributeError, RecursionError):
            return _error("a text message must be a JSON object", CONTROLS)
        if kind == "landmarks":
            return self.landmarks(message)
        if kind == "reset":
            self.track = self._new_track()
            return {"type": "reset"}
        if kind == "calibrate" and action == "start":
            self.calibration = Reference()
            self.replace = message.get("replace") is True
            self.track = self._new_track()
            return {"type": "calibrating"}
        if kind == "calibrate" and action == "stop":
            return self._stop_calibration()
        return _error(f"unknown control message {text[:200]!r}", CONTROLS)

    def _stop_calibration(self) -> dict[str, Any]:
        """The calibration's faces into the reference; an error, and nothing changed,
        without one."""
        calibration, self.calibration = self.calibration, None
        kept = f"the reference is unchanged ({self.session.enrolled} faces enrolled)"
        if calibration is None:
            return _error(
                f"no calibration is under way; {kept}",
                'send {"type": "calibrate", "action": "start"}, then frames, then stop',
            )
        if calibration.count == 0:
            return _error(
                f"no face was seen while calibrating; {kept}",
                "face the camera with a relaxed face, in good light, and calibrate again",
            )
        self.session.absorb(calibration, self.replace)
        held = held_of(self.session.faces, self.key)
        return {
            "type": "calibrated",
            "enrolled": self.session.enrolled,
            "added": calibration.count,
            "reference": held.model_dump() if held else None,
        }

    @property
    def enrolled(self) -> int:
        """Faces the reference holds, or will hold when the calibration under way stops."""
        if self.calibration is None:
            return self.session.enrolled
        kept = 0 if self.replace else self.session.enrolled
        return kept + self.calibration.count

    def frame(self, data: bytes) -> StreamFrame:
        """One camera frame: FaceMesh, then a score (or a calibration face)."""
        started = time.perf_counter()
        self.seq += 1
        try:
            found = self.engine.find_face(data)
        except ApiError as error:
            return self._answer("bad_frame", None, None, started, 0.0, error)
        return self._scored(found, None, started, echo=True)

    def landmarks(self, message: dict[str, Any]) -> StreamFrame:
        """One landmark message: the client's face (checked as /v1/predict/landmarks checks
        it) scored against the reference it holds, or the connection's own."""
        started = time.perf_counter()
        self.seq += 1
        self.engine.count_landmark_frame()
        try:
            sent = StreamLandmarks.model_validate(message)
        except ValidationError as invalid:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
                for problem in invalid.errors()[:3]
            )
            error = ApiError(422, f"the landmark message does not match: {problems}", CONTROLS)
            return self._answer("bad_frame", None, None, started, 0.0, error)
        if sent.landmarks is None:
            return self._scored(Found(None, (0, 0), 0.0, 0), None, started, echo=False)
        if sent.image_size is None:
            error = ApiError(422, "a landmark message needs image_size", "send [width, height]")
            return self._answer("bad_frame", None, None, started, 0.0, error)
        # Its fields were validated as StreamLandmarks' (the same bounds): not again.
        face = LandmarksIn.model_construct(
            landmarks=sent.landmarks,
            image_size=sent.image_size,
            blendshapes=sent.blendshapes,
            pose=sent.pose,
        )
        try:
            found = found_of(self.engine, face)
        except ApiError as error:
            return self._answer("bad_frame", None, None, started, 0.0, error)
        found.faces = sent.faces
        held = None
        if sent.reference is not None:
            try:
                held = mean_of(sent.reference, self.key, self.engine.trained.preprocessing.face_dim)
            except ApiError as error:
                return self._answer("bad_reference", None, None, started, 0.0, error)
        return self._scored(found, held, started, echo=False)

    def _scored(
        self, found: Found, held: np.ndarray | None, started: float, *, echo: bool
    ) -> StreamFrame:
        """A found face (or none) as a score, a calibration face or the reason for neither;
        `held` is the client's own reference, `echo` sends the landmarks back."""
        shown = found if echo else None
        if found.landmarks is None:
            self.track.update(None, "no_face")
            return self._answer("no_face", None, None, started, found.facemesh_ms)
        if self.calibration is not None:
            self.calibration.add(self.engine.vector(found))
            return self._answer("calibrating", found, None, started, found.facemesh_ms, shown=shown)
        policy = self.engine.trained.preprocessing.reference_policy
        if policy.counts_scored_faces:  # data.baseline=session: every face joins the reference
            points = self.engine.vector(found)
            reference, count = self.session.seen(points) if np.isfinite(points).all() else (None, 0)
            if count < policy.min_faces:
                return self._answer(
                    "no_reference", found, None, started, found.facemesh_ms, shown=shown
                )
        else:
            reference = held if held is not None else self.session.reference
        if policy.needs_reference and reference is None:
            return self._answer(
                "no_reference", found, None, started, found.facemesh_ms, shown=shown
            )
        probabilities = self.engine.probabilities(found, reference)
        return self._answer("ok", found, probabilities, started, found.facemesh_ms, shown=shown)

    def _answer(
        self,
        status: str,
        found: Any,
        probabilities: np.ndarray | None,
        started: float,
        facemesh_ms: float,
        error: ApiError | None = None,
        shown: Found | None = None,
    ) -> StreamFrame:
        """The frame's answer; `shown`: the face whose landmarks are sent back."""
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
            faces=found.faces if found is not None else 0,
            landmarks=np.round(shown.landmarks, 5).tolist() if shown is not None else None,
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
            enrolled=self.enrolled,
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


async def stream_frames(
    websocket: WebSocket, engine: Engine, sessions: SessionStore, session_id: str | None
) -> None:
    """Serve one connection until the client leaves or stays silent too long (the Host and
    Origin were checked before: emotion/serve/origins.py)."""
    await websocket.accept()
    try:
        session = sessions.get(session_id) if session_id else Session("stream", 0.0)
    except ApiError as error:
        await websocket.send_json(_error(error.error, error.fix))
        await websocket.close(code=CLOSE_UNKNOWN_SESSION, reason="unknown or expired session")
        return
    state = Stream(engine, session)
    idle = engine.settings.idle_timeout_s
    try:
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), idle)
            except asyncio.TimeoutError:
                await websocket.close(code=CLOSE_IDLE, reason=f"no message for {idle:g} s")
                return
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                answer = await run_in_threadpool(state.frame, message["bytes"])
                await websocket.send_text(answer.model_dump_json())
            elif message.get("text") is not None:
                reply = await run_in_threadpool(state.text, message["text"])
                if isinstance(reply, StreamFrame):
                    await websocket.send_text(reply.model_dump_json())
                else:
                    await websocket.send_json(reply)
    except WebSocketDisconnect:
        return
