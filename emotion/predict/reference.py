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
from typing import Any

import numpy as np

from emotion.errors import EmotionError
from emotion.facemesh.runner import FaceMeshRunner
from emotion.features.preprocessing import Preprocessing
from emotion.features.reference import MIN_SESSION_PHOTOS, Reference, reference_face
from emotion.inference.face_model import FaceModel
from emotion.inference.trained import check_reference_given
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


class VideoReference:
    """One video's references as its frames come, a chunk at a time (`enroll` or `first`).

    `first` holds back the frames of its window (and the chunk that ends it) until the window
    is over: its median face is the reference of every later face. A video that ends inside
    its window is all reference, nothing scored."""

    def __init__(self, plan: ReferencePlan, preprocessing: Preprocessing, source: str) -> None:
        self.plan = plan
        self.preprocessing = preprocessing
        self.source = source
        self.held: list[Item] = []
        self.decided = plan.kind != "first"
        self.reference: np.ndarray | None = plan.enrolled if plan.kind == "enroll" else None
        self.name = plan.enrolled_name if plan.kind == "enroll" else ""

    def assign(self, items: list[Item], fps: float | None) -> list[Item]:
        """Give these frames their reference; returns the items ready to score, in order."""
        if self.decided:
            _give([item for item in items if item.landmarks is not None], self.reference, self.name)
            return items
        self.held += items
        limit = self.plan.seconds * (fps if fps and fps > 0 else 30.0)
        if any((item.frame or 0) >= limit for item in items):
            return self._decide(limit)
        return []

    def finish(self, fps: float | None) -> list[Item]:
        """The items still held when the video ends."""
        if self.decided:
            return []
        return self._decide(self.plan.seconds * (fps if fps and fps > 0 else 30.0))

    def _decide(self, limit: float) -> list[Item]:
        faces = [item for item in self.held if item.landmarks is not None]
        window = [item for item in faces if (item.frame or 0) < limit]
        for item in window:
            item.status = "reference"
        self.reference = _median_face(self.preprocessing, window)
        self.name = (
            f"first {self.plan.seconds:g}s of {self.source}: median of {len(window)} faces"
            if window
            else ""
        )
        _give([item for item in faces if item.status != "reference"], self.reference, self.name)
        self.decided = True
        released, self.held = self.held, []
        return released


PHOTOS = "photos"  # the session key of every photo given (each video is its own session)


class SessionReferences:
    """`session` references as running `Reference`s: per video the mean of its normalised
    faces, for the photos the mean over every photo; none for a session holding fewer faces
    than the model's policy asks (read against itself a face would say "no change")."""

    def __init__(self, preprocessing: Preprocessing) -> None:
        self.preprocessing = preprocessing
        self.references: dict[Any, Reference] = {}
        self.sources: dict[Any, str] = {}

    def add(self, key: Any, items: list[Item]) -> None:
        """Count the faces among `items` into session `key`."""
        faces = [item for item in items if item.landmarks is not None]
        if items:
            self.sources.setdefault(key, items[0].source)
        if not faces:
            return
        vectors = self.preprocessing.face_vectors(faces)
        self.references.setdefault(key, Reference(how="session")).add(vectors)

    def give(self, key: Any, items: list[Item]) -> None:
        """Give the faces among `items` the reference of session `key` (or none)."""
        found = self.references.get(key, Reference(how="session"))
        count = found.count
        reference = None
        name = ""
        if count >= MIN_SESSION_PHOTOS:  # whatever the model, a session of one face is no reference
            reference = found.mean()
            name = (
                f"session: mean of {count} photos"
                if key == PHOTOS
                else f"session: {count} faces of {self.sources[key]}"
            )
        _give([item for item in items if item.landmarks is not None], reference, name)


def assign_photos(plan: ReferencePlan, preprocessing: Preprocessing, photos: list[Item]) -> None:
    """Give photos the enrolled reference; `first` has none for them (`session`:
    SessionReferences)."""
    if plan.kind == "enroll":
        faces = [item for item in photos if item.landmarks is not None]
        _give(faces, plan.enrolled, plan.enrolled_name)


def _give(items: list[Item], reference: np.ndarray | None, name: str) -> None:
    for item in items:
        item.reference, item.reference_name = reference, name


def _median_face(preprocessing: Preprocessing, items: list[Item]) -> np.ndarray | None:
    """The items' normalised faces' per-coordinate median (None without any)."""
    if not items:
        return None
    return np.median(preprocessing.face_vectors(items), axis=0).astype(np.float32)


def reference_plan(
    trained: FaceModel,
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
    if kind == "none":  # the model's own reference, when its policy has one (session)
        kind = trained.preprocessing.reference_policy.default_how
    check_reference_given(
        trained,
        kind != "none",
        "pass the person's rest-face photos (--enroll PHOTO ...), or for videos "
        "--baseline first:3s (the clip's first seconds) or --baseline session",
    )
    return ReferencePlan(kind, seconds)


def enrolled_reference(
    trained: FaceModel, runner: FaceMeshRunner, photos: list[str], encoding: str
) -> tuple[np.ndarray, str]:
    """The mean normalised face of the --enroll photos, refused (every problem named, before
    any input is read) when one is missing, cannot be read or shows no face: the reference,
    and the `reference` column naming every photo, would be made of fewer photos than given."""
    found = collect_inputs(photos, encoding)
    missing = [f"{source}: {why}" for source, why in found.unreadable]
    unreadable: list[str] = []
    faceless: list[str] = []
    faces = []
    for media in found.media:
        outcome = runner.run(media)
        if outcome.failures and not outcome.faces:
            unreadable.append(f"{media.source} cannot be read ({outcome.failures[0].why})")
        elif not outcome.faces:
            faceless.append(f"{media.source} shows no face FaceMesh finds")
        faces += outcome.faces
    problems = missing + unreadable + faceless
    if problems or not faces:
        fixes = []
        if missing or unreadable:
            fixes.append("check the paths: photos (.jpg/.jpeg/.png) that exist, or folders of them")
        if faceless or not faces:
            fixes.append("enrol clear, upright photos of the person's relaxed face")
        raise EmotionError(
            f"--enroll {'; '.join(problems or [' '.join(photos) + ' holds no photos'])} "
            "(nothing was predicted)",
            "; ".join(fixes) + ", or leave those out",
        )
    reference = reference_face(trained.preprocessing.face_vectors(faces))
    return reference, "enroll: " + ", ".join(photos)
