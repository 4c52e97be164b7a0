"""The HTTP API and the page: FastAPI routes over one Engine and one SessionStore.

Every client mistake is a 4xx with a JSON `{error, fix}` body, and the server goes on.
Routes that run FaceMesh do it on Starlette's thread pool, where each request takes a
graph of its own from the engine's pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from emotion import __version__
from emotion.facemesh.landmarker import MODEL_FILE
from emotion.serve.answers import (
    model_info,
    predict_image,
    predict_points,
    reference_of,
    refuse_without_session,
    session_info,
)
from emotion.serve.bodies import (
    ENROLL_BODY,
    IMAGE_BODY,
    MAX_UPLOADS,
    images_of,
    is_json,
    parse_enroll_json,
)
from emotion.serve.engine import Engine, found_of
from emotion.serve.errors import ApiError
from emotion.serve.limits import BodyLimit
from emotion.serve.origins import OriginGuard
from emotion.serve.schemas import (
    Enrollment,
    ErrorBody,
    Health,
    LandmarksIn,
    ModelInfo,
    Prediction,
    SessionInfo,
    Stats,
)
from emotion.serve.sessions import SessionStore
from emotion.serve.stream import stream_frames

STATIC = Path(__file__).resolve().parent / "static"
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 404, 409, 413, 415, 422, 429)
}


def create_app(engine: Engine) -> FastAPI:
    """The application: routes, error handlers, the body cap, the page and its assets."""
    settings = engine.settings
    sessions = SessionStore(settings.max_sessions, settings.session_ttl_s)
    # /docs and /redoc load Swagger UI and ReDoc from the package's own files, not a CDN: the
    # server works offline (and no validator badge calls out either).
    app = FastAPIOffline(
        title="emotion",
        version=__version__,
        summary="Anxious or neutral, from FaceMesh face geometry; live, with a personal baseline.",
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(OriginGuard, host_names=settings.host_names)  # outermost: first
    add_error_handlers(app)
    preprocessing = engine.trained.preprocessing

    @app.get("/healthz", response_model=Health, tags=["server"])
    @app.head("/healthz", include_in_schema=False)  # one route for both gave /docs two IDs
    def healthz() -> Health:
        return Health()

    @app.get("/v1/stats", response_model=Stats, tags=["server"])
    def stats() -> Stats:
        """What this process has received: image bytes stay 0 for clients that send only
        landmarks (the page in its landmark mode)."""
        return engine.stats

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
    async def predict(request: Request, landmarks: bool = Query(False)) -> Response:
        """One image (raw JPEG/PNG/WebP bytes, or a multipart upload): its face's class
        probabilities, as `emotion-predict` gives them for the same file."""
        refuse_without_session(engine)
        (data,) = await images_of(request, most=1)
        return as_json(await run_in_threadpool(predict_image, engine, data, None, landmarks))

    @app.post(
        "/v1/predict/landmarks", response_model=Prediction, responses=ERRORS, tags=["predict"]
    )
    def predict_landmarks(face: LandmarksIn) -> Response:
        """Landmarks from the client's own FaceMesh (478 x 3) and the image size."""
        refuse_without_session(engine)
        return as_json(predict_points(engine, face, None))

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
            found = [found_of(engine, face) for face in faces]
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
        points = [engine.vector(face) for face in faces_found]
        if not all(np.isfinite(face).all() for face in points):  # all or none are enrolled
            raise ApiError(
                422,
                "a face's normalised points are not finite numbers; nothing was enrolled",
                "send FaceMesh's landmarks of a face as it gives them",
            )
        for face in points:
            session.enroll(face)
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
    ) -> Response:
        """One image, read against the session's enrolled rest face."""
        session = sessions.get(session_id)
        reference_of(session, engine)
        (data,) = await images_of(request, most=1)
        return as_json(await run_in_threadpool(predict_image, engine, data, session, landmarks))

    @app.post(
        "/v1/sessions/{session_id}/predict/landmarks",
        response_model=Prediction,
        responses=ERRORS,
        tags=["sessions"],
    )
    def session_predict_landmarks(session_id: str, face: LandmarksIn) -> Response:
        return as_json(predict_points(engine, face, sessions.get(session_id)))

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket, session: str | None = None) -> None:
        """Live frames: binary messages are JPEG frames, text messages control calibration
        (`{"type": "calibrate", "action": "start" | "stop"}`, `{"type": "reset"}`); each
        frame is answered with a StreamFrame (its score and the EMA-smoothed score)."""
        await stream_frames(websocket, engine, sessions, session)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/assets/face_landmarker.task", include_in_schema=False)
    def landmarker_model() -> FileResponse:
        """The FaceLandmarker model the page runs: the file the server's extractor reads, so
        the browser finds the same landmarks. Cached for a year: the page asks for it by
        /v1/model's `landmarker_url`, which names the file's sha256, so an upgrade is a new URL."""
        return FileResponse(
            MODEL_FILE,
            media_type="application/octet-stream",
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def as_json(prediction: Prediction) -> Response:
    """A prediction serialised once: FastAPI would validate a returned model against the
    response model again before serialising it (the schema on /docs stays the same)."""
    return Response(prediction.model_dump_json(), media_type="application/json")


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
