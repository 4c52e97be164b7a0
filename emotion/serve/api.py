"""The HTTP API and the page: FastAPI routes over one Engine and one SessionStore.

Every client mistake is a 4xx with a JSON `{error, fix}` body, and the server goes on.
Routes that run FaceMesh do it on Starlette's thread pool, where each request takes a
graph of its own from the engine's pool.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from emotion import __version__
from emotion.inference.ensemble import members_of
from emotion.serve.engine import Engine, Found, check_landmarks
from emotion.serve.errors import ApiError
from emotion.serve.limits import BodyLimit
from emotion.serve.schemas import (
    EnrollLandmarks,
    Enrollment,
    ErrorBody,
    Health,
    LandmarksIn,
    Limits,
    ModelInfo,
    Prediction,
    PreprocessingInfo,
    SessionInfo,
    Timing,
)
from emotion.serve.sessions import Session, SessionStore
from emotion.serve.stream import stream_frames

STATIC = Path(__file__).resolve().parent / "static"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
# The request bodies the image routes take, for the OpenAPI page (they read the raw body).
IMAGE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            **{kind: {"schema": {"type": "string", "format": "binary"}} for kind in IMAGE_TYPES},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}
ENROLL_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            **IMAGE_BODY["requestBody"]["content"],
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/LandmarksIn"},
                        {"$ref": "#/components/schemas/EnrollLandmarks"},
                    ]
                }
            },
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 404, 409, 413, 415, 422, 429)
}
MAX_UPLOADS = 64  # images in one multipart enrolment


def create_app(engine: Engine) -> FastAPI:
    """The application: routes, error handlers, the body cap, the page and its assets."""
    settings = engine.settings
    sessions = SessionStore(settings.max_sessions, settings.session_ttl_s)
    app = FastAPI(
        title="emotion",
        version=__version__,
        summary="Anxious or neutral, from FaceMesh face geometry; live, with a personal baseline.",
    )
    app.state.engine, app.state.sessions = engine, sessions
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    add_error_handlers(app)
    preprocessing = engine.trained.preprocessing

    @app.get("/healthz", response_model=Health, tags=["server"])
    def healthz() -> Health:
        return Health()

    @app.get("/v1/model", response_model=ModelInfo, tags=["model"])
    def model() -> ModelInfo:
        return model_info(engine)

    @app.post(
        "/v1/predict",
        response_model=Prediction,
        responses=ERRORS,
        openapi_extra=IMAGE_BODY,
        tags=["predict"],
    )
    async def predict(request: Request, landmarks: bool = Query(False)) -> Prediction:
        """One image (raw JPEG/PNG/WebP bytes, or a multipart upload): its face's class
        probabilities, as `emotion-predict` gives them for the same file."""
        refuse_without_session(engine)
        (data,) = await images_of(request, most=1)
        return await run_in_threadpool(predict_image, engine, data, None, landmarks)

    @app.post(
        "/v1/predict/landmarks", response_model=Prediction, responses=ERRORS, tags=["predict"]
    )
    def predict_landmarks(face: LandmarksIn) -> Prediction:
        """Landmarks from the client's own FaceMesh (478 x 3) and the image size."""
        refuse_without_session(engine)
        return predict_points(engine, face, None)

    @app.post(
        "/v1/sessions",
        response_model=SessionInfo,
        status_code=201,
        responses=ERRORS,
        tags=["sessions"],
    )
    def create_session() -> SessionInfo:
        """A personal-baseline session: enroll the person's rest face, then predict."""
        if not preprocessing.uses_baseline:
            raise ApiError(
                409,
                f"{engine.trained.description} reads each photo alone (data.baseline=none): "
                "a session has nothing to do",
                "POST images to /v1/predict, or serve a model trained with data.baseline=enrolled",
            )
        return session_info(sessions.create(), sessions)

    @app.get(
        "/v1/sessions/{session_id}",
        response_model=SessionInfo,
        responses=ERRORS,
        tags=["sessions"],
    )
    def get_session(session_id: str) -> SessionInfo:
        return session_info(sessions.get(session_id), sessions)

    @app.delete("/v1/sessions/{session_id}", status_code=204, responses=ERRORS, tags=["sessions"])
    def delete_session(session_id: str) -> Response:
        sessions.delete(session_id)
        return Response(status_code=204)

    @app.post(
        "/v1/sessions/{session_id}/enroll",
        response_model=Enrollment,
        responses=ERRORS,
        openapi_extra=ENROLL_BODY,
        tags=["sessions"],
    )
    async def enroll(session_id: str, request: Request) -> Enrollment:
        """Rest-face images (raw bytes, or one or more multipart files) or landmark sets
        (JSON): averaged into the session's reference, as `emotion-predict --enroll` does."""
        session = sessions.get(session_id)
        if is_json(request):
            body = await request.body()
            faces = parse_enroll_json(body)
            found = [
                Found(check_landmarks(face.landmarks, face.image_size), face.image_size, 0.0)
                for face in faces
            ]
        else:
            images = await images_of(request, most=MAX_UPLOADS)
            found = await run_in_threadpool(lambda: [engine.find_face(data) for data in images])
        faces_found = [face for face in found if face.landmarks is not None]
        if not faces_found:
            raise ApiError(
                422,
                f"none of the {len(found)} enrolment images shows a face FaceMesh finds",
                "enroll a clear, upright, well-lit image of the person's relaxed face",
            )
        for face in faces_found:
            session.enroll(engine.points(face.landmarks, face.image_size))  # type: ignore[arg-type]
        return Enrollment(
            **session_info(session, sessions).model_dump(),
            added=len(faces_found),
            no_face=len(found) - len(faces_found),
        )

    @app.post(
        "/v1/sessions/{session_id}/predict",
        response_model=Prediction,
        responses=ERRORS,
        openapi_extra=IMAGE_BODY,
        tags=["sessions"],
    )
    async def session_predict(
        session_id: str, request: Request, landmarks: bool = Query(False)
    ) -> Prediction:
        """One image, read against the session's enrolled rest face."""
        session = sessions.get(session_id)
        reference_of(session, engine)
        (data,) = await images_of(request, most=1)
        return await run_in_threadpool(predict_image, engine, data, session, landmarks)

    @app.post(
        "/v1/sessions/{session_id}/predict/landmarks",
        response_model=Prediction,
        responses=ERRORS,
        tags=["sessions"],
    )
    def session_predict_landmarks(session_id: str, face: LandmarksIn) -> Prediction:
        return predict_points(engine, face, sessions.get(session_id))

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket, session: str | None = None) -> None:
        """Live frames: binary messages are JPEG frames, text messages control calibration
        (`{"type": "calibrate", "action": "start" | "stop"}`, `{"type": "reset"}`); each
        frame is answered with a StreamFrame (its score and the EMA-smoothed score)."""
        await stream_frames(websocket, engine, sessions, session)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def add_error_handlers(app: FastAPI) -> None:
    """ApiError, FastAPI's validation errors and Starlette's HTTP errors as `{error, fix}`."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(part) for part in problem.get('loc', ()))}: {problem.get('msg')}"
            for problem in error.errors()[:5]
        ]
        body = {
            "error": "the request does not match the API: " + "; ".join(problems),
            "fix": "see the request schema at /docs",
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        fixes = {
            404: "see /docs for the API's routes",
            405: "see /docs for the methods each route takes",
            413: "send a smaller image (emotion-serve --max-body-bytes sets the limit)",
        }
        body = {"error": str(error.detail), "fix": fixes.get(error.status_code, "see /docs")}
        return JSONResponse(body, status_code=error.status_code, headers=error.headers)


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
        version=__version__,
        ema_alpha=settings.ema_alpha,
        calibration_seconds=settings.calibration_seconds,
        limits=Limits(
            max_body_bytes=settings.max_body_bytes,
            max_pixels=settings.max_pixels,
            max_sessions=settings.max_sessions,
            max_connections=settings.max_connections,
            session_ttl_s=settings.session_ttl_s,
            workers=settings.workers,
        ),
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
        raise ApiError(
            409,
            f"this model reads each face against the person's rest face "
            f"(data.baseline={preprocessing.baseline}), and a single image has none",
            "create a session (POST /v1/sessions), enroll the person's relaxed face "
            "(POST /v1/sessions/ID/enroll), then POST images to /v1/sessions/ID/predict",
        )


def reference_of(session: Session, engine: Engine) -> np.ndarray | None:
    """The session's reference for a baseline model; a 409 before any enrolment."""
    reference = session.reference
    if reference is None and engine.trained.preprocessing.uses_baseline:
        raise ApiError(
            409,
            f"session {session.id} has no rest face enrolled yet",
            f"POST the person's relaxed face to /v1/sessions/{session.id}/enroll first",
        )
    return reference


def is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip() == "application/json"


async def images_of(request: Request, most: int) -> list[bytes]:
    """The image(s) of a request: its raw body, or the files of a multipart form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        raise ApiError(
            415,
            "this route takes an image, not JSON",
            "send JPEG/PNG/WebP bytes (or multipart); landmarks go to the .../predict/landmarks "
            "routes",
        )
    if kind != "multipart/form-data":
        return [await request.body()]
    form = await request.form(max_files=most, max_fields=most)
    files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
    if not files or len(files) > most:
        raise ApiError(
            400,
            f"the multipart form holds {len(files)} files; this route takes "
            + ("one" if most == 1 else f"1 to {most}"),
            "send the image as a form field named file",
        )
    return [await upload.read() for upload in files]


def parse_enroll_json(body: bytes) -> list[LandmarksIn]:
    """One landmark set, or `{"faces": [...]}`; a 422 naming the problem otherwise."""
    from pydantic import ValidationError

    for schema in (LandmarksIn, EnrollLandmarks):
        try:
            parsed = schema.model_validate_json(body)
        except ValidationError as error:
            last = error
            continue
        return [parsed] if isinstance(parsed, LandmarksIn) else parsed.faces
    problem = last.errors()[0]
    raise ApiError(
        422,
        f"malformed landmarks: {'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}",
        'send {"landmarks": [[x, y, z] x 478], "image_size": [w, h]} or {"faces": [...]}',
    )


def predict_image(
    engine: Engine, data: bytes, session: Session | None, with_landmarks: bool
) -> Prediction:
    started = time.perf_counter()
    found = engine.find_face(data)
    reference = reference_of(session, engine) if session is not None else None
    return scored(engine, found, reference, session, with_landmarks, started)


def predict_points(engine: Engine, face: LandmarksIn, session: Session | None) -> Prediction:
    started = time.perf_counter()
    landmarks = check_landmarks(face.landmarks, face.image_size)
    reference = reference_of(session, engine) if session is not None else None
    found = Found(landmarks, face.image_size, 0.0)
    return scored(engine, found, reference, session, False, started)


def scored(
    engine: Engine,
    found: Found,
    reference: np.ndarray | None,
    session: Session | None,
    with_landmarks: bool,
    started: float,
) -> Prediction:
    """The prediction for one face (or its absence), timed."""
    probabilities = None
    model_started = time.perf_counter()
    if found.landmarks is not None:
        probabilities = engine.probabilities(found.landmarks, found.image_size, reference)
    now = time.perf_counter()
    names = engine.trained.class_names
    return Prediction(
        face=found.landmarks is not None,
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
        reference=f"session {session.id}: mean of {session.enrolled} enrolled faces"
        if session is not None and reference is not None
        else None,
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
