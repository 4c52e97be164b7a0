"""Where a personal-baseline model's reference face comes from in `emotion-predict`.

- `--enroll PHOTO ...`: rest-face photos of the person in the inputs; their normalised faces
  are averaged, as training averages a person's enrolled neutral photos. They are never
  scored.
- `--baseline first:3s`: per video, the median face over its first 3 seconds, when the person
  is asked to hold a rest face; those frames are the reference, never scored.
- `--baseline session`: per video, the mean face over the whole clip (offline); for photos,
  the mean over every photo given (one person's session). Every face is scored, unless the
  session holds a single face: read against itself it would say "no change" whatever the
  face, so it is marked `no_reference` instead.
Every row names the reference it was read against (`reference`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from emotion.errors import EmotionError
from emotion.facemesh.runner import FaceMeshRunner
from emotion.features.baseline import MIN_SESSION_PHOTOS, reference_face
from emotion.features.preprocessing import Preprocessing
from emotion.inference.ensemble import Ensemble
from emotion.inference.trained import TrainedModel, check_reference_given
from emotion.predict.inputs import collect_inputs
from emotion.predict.predictor import Item

FIRST = re.compile(r"^first:(\d+(?:\.\d+)?)s$")


@dataclass
class ReferencePlan:
    """How each input gets its reference: enroll, first (seconds), session, or none."""

    kind: str = "none"
    seconds: float = 0.0
    enrolled: np.ndarray | None = None  # (478, 3) normalised, for kind == "enroll"
    enrolled_name: str = ""

    @property
    def buffers_everything(self) -> bool:
        """A session over photos needs every photo before the first can be scored."""
        return self.kind == "session"


def parse_baseline(text: str | None) -> tuple[str, float]:
    """`--baseline`: None, "session" or "first:<seconds>s"."""
    if text is None:
        return "none", 0.0
    if text == "session":
        return "session", 0.0
    match = FIRST.match(text)
    if not match or float(match.group(1)) <= 0:
        raise EmotionError(
            f"--baseline {text} is not known", "use --baseline session or --baseline first:3s"
        )
    return "first", float(match.group(1))


def assign_video(
    plan: ReferencePlan, preprocessing: Preprocessing, items: list[Item], fps: float | None
) -> None:
    """Give one video's face frames their reference (first seconds or session) or enrolled."""
    faces = [item for item in items if item.landmarks is not None]
    if plan.kind == "enroll":
        _give(faces, plan.enrolled, plan.enrolled_name)
        return
    if plan.kind == "session":
        reference = _session_face(preprocessing, faces)
        name = f"session: {len(faces)} faces of {items[0].source}" if reference is not None else ""
        _give(faces, reference, name)
        return
    rate = fps if fps and fps > 0 else 30.0
    window = [item for item in faces if (item.frame or 0) < plan.seconds * rate]
    for item in window:
        item.status = "reference"
    reference = _mean_face(preprocessing, window, median=True)
    name = (
        f"first {plan.seconds:g}s of {items[0].source}: median of {len(window)} faces"
        if window
        else ""
    )
    _give([item for item in faces if item not in window], reference, name)


def assign_photos(plan: ReferencePlan, preprocessing: Preprocessing, photos: list[Item]) -> None:
    """Give photos the enrolled reference, or the session's mean face; `first` has none."""
    faces = [item for item in photos if item.landmarks is not None]
    if plan.kind == "enroll":
        _give(faces, plan.enrolled, plan.enrolled_name)
    elif plan.kind == "session":
        reference = _session_face(preprocessing, faces)
        name = f"session: mean of {len(faces)} photos" if reference is not None else ""
        _give(faces, reference, name)


def _give(items: list[Item], reference: np.ndarray | None, name: str) -> None:
    for item in items:
        item.reference, item.reference_name = reference, name


def _session_face(preprocessing: Preprocessing, faces: list[Item]) -> np.ndarray | None:
    """The session's mean face; None for a session of fewer than two faces."""
    if len(faces) < MIN_SESSION_PHOTOS:
        return None
    return _mean_face(preprocessing, faces, median=False)


def _mean_face(preprocessing: Preprocessing, items: list[Item], median: bool) -> np.ndarray | None:
    """The items' normalised faces averaged (or their per-coordinate median)."""
    if not items:
        return None
    landmarks = np.stack([item.landmarks for item in items])  # type: ignore[misc]
    sizes = np.asarray([item.image_size for item in items], dtype=np.int32)
    points = preprocessing.points(landmarks, sizes)
    if median:
        return np.median(points, axis=0).astype(np.float32)
    return reference_face(points)


def reference_plan(
    trained: TrainedModel | Ensemble,
    runner: FaceMeshRunner,
    enroll: list[str],
    kind: str,
    seconds: float,
    zip_encoding: str,
) -> ReferencePlan:
    """Where the reference comes from; refused when a baseline model would get none."""
    baseline = trained.preprocessing.baseline
    if baseline == "none":
        if enroll or kind != "none":
            raise EmotionError(
                f"{trained.description} reads each photo alone (data.baseline=none): "
                "--enroll and --baseline have nothing to do",
                "leave them out, or use a model trained with data.baseline=enrolled or session",
            )
        return ReferencePlan()
    if enroll:
        enrolled, name = enrolled_reference(trained, runner, enroll, zip_encoding)
        return ReferencePlan("enroll", enrolled=enrolled, enrolled_name=name)
    if kind == "none" and baseline == "session":
        kind = "session"
    check_reference_given(
        trained,
        kind != "none",
        "pass the person's rest-face photos (--enroll PHOTO ...), or for videos "
        "--baseline first:3s (the clip's first seconds) or --baseline session",
    )
    return ReferencePlan(kind, seconds)


def enrolled_reference(
    trained: TrainedModel | Ensemble, runner: FaceMeshRunner, photos: list[str], encoding: str
) -> tuple[np.ndarray, str]:
    """The mean normalised face of the --enroll photos that show one; refused when none does."""
    faces = [
        face for media in collect_inputs(photos, encoding).media for face in runner.run(media).faces
    ]
    if not faces:
        raise EmotionError(
            f"none of the --enroll photos {photos} shows a face FaceMesh finds",
            "enrol a clear, upright photo of the person's relaxed face",
        )
    landmarks = np.stack([face.landmarks for face in faces])
    sizes = np.asarray([face.image_size for face in faces], dtype=np.int32)
    reference = trained.preprocessing.reference(landmarks, sizes)
    return reference, "enroll: " + ", ".join(photos)
