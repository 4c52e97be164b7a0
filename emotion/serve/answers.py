"""What the API answers: the model's description, sessions, and predictions for one face,
built the same way for images, landmark JSON and the stream."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from emotion import __version__
from emotion.facemesh.landmarker import MODEL_SHA256
from emotion.inference.ensemble import members_of
from emotion.inference.face_model import FaceModel
from emotion.rundir import METRICS_FILE
from emotion.serve.engine import Engine, Found, found_of
from emotion.serve.errors import ApiError
from emotion.serve.held import model_key
from emotion.serve.schemas import (
    LandmarksIn,
    Limits,
    ModelInfo,
    Prediction,
    PreprocessingInfo,
    SessionInfo,
    Timing,
    TrainedOn,
)
from emotion.serve.sessions import Session, SessionStore


def model_info(engine: Engine) -> ModelInfo:
    trained, settings = engine.trained, engine.settings
    preprocessing = trained.preprocessing
    return ModelInfo(
        model=trained.description,
        checkpoints=[str(path) for path in trained.checkpoints],
        class_names=trained.class_names,
        positive_class=settings.positive_class if engine.positive is not None else None,
        preprocessing=PreprocessingInfo(**preprocessing.to_record()),
        baseline=preprocessing.baseline,
        needs_reference=preprocessing.uses_baseline,
        temperature=[member.temperature for member in members_of(trained)],
        trained_on_synthetic=trained.trained_on_synthetic,
        trained_on=trained_on(trained),
        version=__version__,
        ema_alpha=settings.ema_alpha,
        calibration_seconds=settings.calibration_seconds,
        reference_model=model_key(trained),
        landmarker_url=f"/assets/face_landmarker.task?sha256={MODEL_SHA256[:16]}",
        limits=Limits(**{name: getattr(settings, name) for name in Limits.model_fields}),
    )


def trained_on(trained: FaceModel) -> TrainedOn:
    """The first member's data and its run's test balanced accuracy (metrics.json), so the
    page can say what a score rests on."""
    member = members_of(trained)[0]
    record = member.data_record
    metrics: dict[str, Any] = {}
    if member.run_dir is not None and (member.run_dir / METRICS_FILE).is_file():
        try:
            metrics = json.loads((member.run_dir / METRICS_FILE).read_text())
        except (OSError, ValueError):
            metrics = {}
    stages = (metrics.get("data") or {}).get("stages") or {}
    people = {stage: len(names) for stage, names in (record.get("subjects") or {}).items()}
    if not people:
        people = {stage: int(found.get("subjects", 0)) for stage, found in stages.items()}
    path = str(record.get("path") or (metrics.get("data") or {}).get("path") or "")
    score = (metrics.get("test") or {}).get("test/bal_acc")
    return TrainedOn(
        synthetic=trained.trained_on_synthetic,
        data="SYNTHETIC landmarks" if trained.trained_on_synthetic else Path(path).name or "?",
        rows=(metrics.get("data") or {}).get("rows"),
        people=people,
        test_bal_acc=None if score is None else float(score),
    )


def session_info(session: Session, sessions: SessionStore) -> SessionInfo:
    return SessionInfo(
        id=session.id,
        enrolled=session.enrolled,
        has_reference=session.enrolled > 0,
        ttl_s=sessions.ttl,
    )


def refuse_without_session(engine: Engine) -> None:
    """A baseline model reads a change from a rest face: never a single-photo guess."""
    preprocessing = engine.trained.preprocessing
    if preprocessing.uses_baseline:
        enroll = (
            ""
            if preprocessing.reference_policy.counts_scored_faces
            else "enroll the person's relaxed face (POST /v1/sessions/ID/enroll), "
        )
        raise ApiError(
            409,
            f"this model reads each face against the person's reference face "
            f"(data.baseline={preprocessing.baseline}), and a single image has none",
            f"create a session (POST /v1/sessions), {enroll}then POST the person's images to "
            "/v1/sessions/ID/predict",
        )


def reference_of(session: Session, engine: Engine) -> np.ndarray | None:
    """The session's enrolled reference for a baseline model; a 409 before any enrolment. A
    `data.baseline=session` model's reference is made of the faces it scores (`reference_for`),
    so it has none to refuse before the first."""
    reference = session.reference
    policy = engine.trained.preprocessing.reference_policy
    if reference is None and policy.needs_reference and not policy.counts_scored_faces:
        raise ApiError(
            409,
            f"session {session.id} has no rest face enrolled yet",
            f"POST the person's relaxed face to /v1/sessions/{session.id}/enroll first",
        )
    return reference


def reference_for(
    session: Session | None, engine: Engine, found: Found
) -> tuple[np.ndarray | None, str | None]:
    """The reference this face is read against, and its name, as the model's baseline mode
    makes it: the enrolled faces' mean, or for `data.baseline=session` the mean of every face
    the session has seen, this one counted in first (labels unread), as training and
    `emotion-predict --baseline session` read each face against all of the person's."""
    if session is None:
        return None, None
    policy = engine.trained.preprocessing.reference_policy
    if not policy.counts_scored_faces or found.landmarks is None:
        reference = reference_of(session, engine)
        name = f"session {session.id}: mean of {session.enrolled} enrolled faces"
        return reference, name if reference is not None else None
    points = engine.vector(found)
    if not np.isfinite(points).all():  # never into the running sum: it would poison the mean
        raise ApiError(
            422,
            "this face's normalised points are not finite numbers; it was not counted",
            "send FaceMesh's landmarks of a face as it gives them",
        )
    reference, count = session.seen(points)
    if count < policy.min_faces:
        raise ApiError(
            409,
            f"session {session.id} has seen {count} face: this model reads each face against "
            "the mean of all the session's faces (data.baseline=session), and a face read "
            "against itself shows no change",
            f"this face was counted into the session: POST the person's next face to "
            f"/v1/sessions/{session.id}/predict, and it is scored",
        )
    return reference, f"session {session.id}: mean of {count} faces seen"


def predict_image(
    engine: Engine, data: bytes, session: Session | None, with_landmarks: bool
) -> Prediction:
    started = time.perf_counter()
    found = engine.find_face(data)
    reference, name = reference_for(session, engine, found)
    return scored(engine, found, reference, name, with_landmarks, started)


def predict_points(engine: Engine, face: LandmarksIn, session: Session | None) -> Prediction:
    started = time.perf_counter()
    found = found_of(engine, face)
    reference, name = reference_for(session, engine, found)
    return scored(engine, found, reference, name, False, started)


def scored(
    engine: Engine,
    found: Found,
    reference: np.ndarray | None,
    reference_name: str | None,
    with_landmarks: bool,
    started: float,
) -> Prediction:
    """The prediction for one face (or its absence), timed."""
    probabilities = None
    model_started = time.perf_counter()
    if found.landmarks is not None:
        probabilities = engine.probabilities(found, reference)
        if not np.isfinite(probabilities).all():  # never a 200 with null probabilities
            raise ApiError(
                422,
                "these landmarks give no finite probabilities (the face's points are "
                "degenerate for the model's normalisation)",
                "send FaceMesh's landmarks of a face as it gives them",
            )
    now = time.perf_counter()
    names = engine.trained.class_names
    return Prediction(
        face=found.landmarks is not None,
        faces=found.faces,
        probabilities=dict(zip(names, probabilities.tolist(), strict=True))
        if probabilities is not None
        else None,
        label=label_of(names, probabilities),
        score=float(probabilities[engine.positive])
        if probabilities is not None and engine.positive is not None
        else None,
        image_size=found.image_size if found.landmarks is not None else None,
        landmarks=found.landmarks.tolist()
        if with_landmarks and found.landmarks is not None
        else None,
        reference=reference_name,
        trained_on_synthetic=engine.trained.trained_on_synthetic,
        timing_ms=Timing(
            facemesh=round(found.facemesh_ms, 3),
            model=round((now - model_started) * 1000, 3),
            total=round((now - started) * 1000, 3),
        ),
    )


def label_of(names: list[str], probabilities: np.ndarray | None) -> str | None:
    """argmax; None without a face, or when a probability is not finite."""
    if probabilities is None or not np.isfinite(probabilities).all():
        return None
    return names[int(np.argmax(probabilities))]
