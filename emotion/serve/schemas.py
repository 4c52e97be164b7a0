"""The API's typed requests and responses: what `/docs` shows as its reference."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from emotion.store.schema import MAX_COORD

# Positive int32 sides, far past any camera, so the features' int32 sizes never overflow.
MAX_SIDE = 100_000
ImageSide = Annotated[int, Field(ge=1, le=MAX_SIDE)]


class ErrorBody(BaseModel):
    """Every 4xx answer: what was wrong with the request, and what to send instead."""

    error: str
    fix: str


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Stats(BaseModel):
    """What this server process has received: a landmark client sends no image bytes."""

    image_bytes: int = Field(
        description="image bytes received by /v1/predict*, /enroll and the stream's frames"
    )
    images: int = Field(description="images received")
    landmark_frames: int = Field(description="landmark messages received on the stream")


class PreprocessingInfo(BaseModel):
    normalization: str = Field(
        description="nose_unit, none, procrustes, ... or pose (reads `pose`)"
    )
    features: str = Field(
        "landmarks", description="landmarks | blendshapes | landmarks+blendshapes (data.features)"
    )
    aspect_correction: bool
    baseline: str = Field(description="none | enrolled | session")
    enroll_per_subject: int
    baseline_features: str


class Limits(BaseModel):
    max_body_bytes: int
    max_pixels: int
    max_sessions: int
    max_connections: int
    session_ttl_s: float
    workers: int = Field(description="FaceMesh graphs answering side by side")


class TrainedOn(BaseModel):
    """What the model was trained on, and what it scored on people it never saw."""

    synthetic: bool
    data: str = Field(description="the store's file name, or SYNTHETIC landmarks")
    rows: int | None = Field(description="faces in the store")
    people: dict[str, int] = Field(description="people per stage (train, val, test)")
    test_bal_acc: float | None = Field(
        description="balanced accuracy on its test people (metrics.json), None when untested"
    )


class ModelInfo(BaseModel):
    model: str = Field(description="the checkpoint, or the ensemble and its folder")
    checkpoints: list[str]
    class_names: list[str]
    positive_class: str | None = Field(description="the class whose probability is `score`")
    preprocessing: PreprocessingInfo
    baseline: str = Field(description="none | enrolled | session (the personal baseline)")
    needs_reference: bool = Field(
        description="a baseline model: scores only within a session with an enrolled rest face"
    )
    temperature: list[float] = Field(description="per member, fitted by calibration=temperature")
    trained_on_synthetic: bool
    trained_on: TrainedOn
    version: str
    ema_alpha: float = Field(description="weight of the newest frame in the stream's EMA")
    calibration_seconds: float
    reference_model: str = Field(
        description="the model a client-held reference is made for: a stream refuses another's"
    )
    landmarker_url: str = Field(
        description="FaceLandmarker's model file, for a client that finds faces itself"
    )
    limits: Limits


class Timing(BaseModel):
    facemesh: float = Field(description="decoding and FaceMesh, ms")
    model: float = Field(description="features and model, ms")
    total: float = Field(description="the whole request as the server saw it, ms")


class Prediction(BaseModel):
    face: bool = Field(description="whether FaceMesh found a face")
    faces: int = Field(description="faces FaceMesh found; the largest is the one scored")
    probabilities: dict[str, float] | None = Field(
        description="per class, as emotion-predict gives them; null without a face"
    )
    label: str | None
    score: float | None = Field(description="P(positive_class)")
    image_size: tuple[int, int] | None = Field(description="upright [width, height]")
    landmarks: list[list[float]] | None = Field(
        description="raw FaceMesh [x, y, z] per point, with ?landmarks=true"
    )
    reference: str | None = Field(description="what a baseline model read the face against")
    trained_on_synthetic: bool
    timing_ms: Timing


class LandmarksIn(BaseModel):
    """A client's own FaceLandmarker output: 478 [x, y, z] landmarks (x, y in 0..1 of the
    image) and the image's upright size, which the aspect correction needs; and, for a model
    that reads them, its 52 blendshape scores and its 4x4 facial transformation matrix."""

    landmarks: list[list[float]] = Field(description=f"478 [x, y, z], each within ±{MAX_COORD:g}")
    image_size: tuple[ImageSide, ImageSide] = Field(
        description=f"[width, height] in pixels, 1 to {MAX_SIDE}"
    )
    blendshapes: list[float] | None = Field(
        None,
        max_length=64,
        description="FaceLandmarker's 52 blendshape scores (0..1) in its order; needed by a "
        "model trained with data.features holding blendshapes",
    )
    pose: list[list[float]] | None = Field(
        None,
        max_length=8,
        description="FaceLandmarker's 4x4 facial transformation matrix (row-major); needed by "
        "a model trained with data.normalization=pose",
    )


class HeldReference(BaseModel):
    """A rest face the client keeps and sends with its landmark frames (the stream's
    `calibrated` message hands it out): the sum of the faces' normalised vectors and their
    count, for the model named."""

    model: str = Field(max_length=64, description="the model's reference_model")
    count: int = Field(description="faces summed")
    total: str = Field(
        max_length=65_536, description="base64 of the float32 little-endian face-vector sum"
    )


class StreamLandmarks(BaseModel):
    """The stream's landmark message: the face the browser's FaceLandmarker found (or none),
    and the client's own reference for a baseline model."""

    type: Literal["landmarks"]
    landmarks: list[list[float]] | None = Field(
        None, max_length=512, description="478 [x, y, z]; null: no face in this frame"
    )
    image_size: tuple[ImageSide, ImageSide] | None = None
    faces: int = Field(1, ge=0, le=64)
    blendshapes: list[float] | None = Field(None, max_length=64)
    pose: list[list[float]] | None = Field(None, max_length=8)
    reference: HeldReference | None = None


class EnrollLandmarks(BaseModel):
    faces: list[LandmarksIn] = Field(min_length=1, max_length=256)


class SessionInfo(BaseModel):
    id: str
    enrolled: int = Field(description="rest faces averaged into the reference")
    has_reference: bool
    ttl_s: float = Field(description="the session expires this long after its last use")


class Enrollment(SessionInfo):
    added: int = Field(description="faces this request enrolled")
    no_face: int = Field(description="images of this request without a face (not enrolled)")


class StreamFrame(BaseModel):
    """The stream's answer to one frame."""

    type: Literal["frame"] = "frame"
    seq: int
    status: Literal["ok", "no_face", "calibrating", "no_reference", "bad_frame", "bad_reference"]
    face: bool
    faces: int = Field(0, description="faces FaceMesh found; the largest is the one scored")
    landmarks: list[list[float]] | None = None
    image_size: tuple[int, int] | None = None
    probabilities: dict[str, float] | None = None
    label: str | None = None
    score: float | None = None
    smoothed: dict[str, float] | None = None
    smoothed_label: str | None = None
    smoothed_score: float | None = None
    enrolled: int = 0
    timing_ms: Timing
    error: str | None = None
    fix: str | None = None
