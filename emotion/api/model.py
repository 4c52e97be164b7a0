"""`Model`: a trained model (or ensemble) that scores photos, arrays or faces the way
`emotion-predict` does, and holds a baseline model's rest face between calls."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from emotion.api.faces import check_photo_path, face_in_array, face_like, only_face
from emotion.errors import EmotionError
from emotion.facemesh.media import Face, Media
from emotion.features.reference import Reference
from emotion.inference.face_model import FaceModel
from emotion.inference.trained import check_reference_given
from emotion.predict.predictor import face_probabilities

POSITIVE_CLASS = "anxious"  # `score` is its probability (emotion-predict's --positive-class)
ENROLL_FIX = (
    "call model.enroll([...]) with photos of the person's relaxed face first "
    "(emotion-predict --enroll does the same)"
)


@dataclass
class Prediction:
    """One photo's (or one given face's) answer. Without a face: no probabilities, label,
    score or landmarks, and `faces` is 0."""

    probabilities: dict[str, float]  # {class name: probability}; empty without a face
    label: str | None  # the most probable class
    score: float | None  # the probability of "anxious" (None if the model has no such class)
    faces: int  # faces found; the largest is the one scored
    image_size: tuple[int, int] | None  # upright (width, height) in pixels
    source: str | None = None  # the path given, or None for bytes, arrays and landmarks
    reference: str | None = None  # what a baseline model read the face against
    trained_on_synthetic: bool = False
    landmarks: np.ndarray | None = field(default=None, repr=False)  # (478, 3) raw
    blendshapes: np.ndarray | None = field(default=None, repr=False)  # (52,)
    pose: np.ndarray | None = field(default=None, repr=False)  # (4, 4)


class Model:
    """A trained model (or ensemble) that scores photos, arrays or faces.

    The rest face of a baseline model (`baseline`):
    - `enrolled`: `enroll(photos)` gives the person's rest face; every `predict` reads
      faces against it until `forget()` or another `enroll`. Without one, `predict` is refused.
    - `session`: the faces of one `predict` call are the session (as `emotion-predict
      --baseline session` does for the photos it is given): each is read against their mean,
      which needs 2 faces or more. `enroll` replaces the session with a rest face.
    - `none`: each face alone; `enroll` is refused.
    The landmarker (native resources) is made on first use: `close()` it, or use `with`.
    """

    def __init__(self, trained: FaceModel) -> None:
        self.trained = trained
        self._runner: Any = None
        self._reference: Reference | None = None
        self._reference_name: str | None = None

    # -- what it is ----------------------------------------------------------------------------

    @property
    def class_names(self) -> list[str]:
        return list(self.trained.class_names)

    @property
    def trained_on_synthetic(self) -> bool:
        return self.trained.trained_on_synthetic

    @property
    def description(self) -> str:
        return self.trained.description

    @property
    def baseline(self) -> str:
        """none | enrolled | session: what the model reads each face against."""
        return self.trained.baseline

    @property
    def enrolled(self) -> bool:
        return self._reference is not None

    def __repr__(self) -> str:
        synthetic = ", SYNTHETIC" if self.trained_on_synthetic else ""
        return f"Model({self.description}, baseline={self.baseline}{synthetic})"

    # -- finding faces -------------------------------------------------------------------------

    @property
    def runner(self) -> Any:
        """emotion-predict's worker, made on first use (mediapipe starts here, not at load)."""
        if self._runner is None:
            from emotion.facemesh.runner import FaceMeshRunner

            self._runner = FaceMeshRunner(reduce="auto", video_stride=1, video_max_frames=1)
        return self._runner

    def _find_all(self, inputs: list[Any]) -> list[tuple[Face | None, str | None]]:
        """Every input's face; paths are checked first, so a missing one stops before any
        landmark work."""
        for given in inputs:
            if isinstance(given, str | os.PathLike):
                check_photo_path(Path(given))
        return [self._find(given) for given in inputs]

    def _find(self, given: Any) -> tuple[Face | None, str | None]:
        """One input as the face found in it (None without one) and its name."""
        if hasattr(given, "landmarks") and not isinstance(given, np.ndarray):
            return face_like(given, self.trained), None
        if isinstance(given, np.ndarray):
            return face_in_array(self.runner.detector, given), None
        if isinstance(given, bytes | bytearray | memoryview):
            return only_face(self.runner.run_bytes(bytes(given)), "the image bytes"), None
        if isinstance(given, str | os.PathLike):
            path = Path(given)
            media = Media(str(path), str(path), None, False)
            return only_face(self.runner.run(media), str(path)), str(path)
        raise EmotionError(
            f"cannot predict on a {type(given).__name__}",
            "pass an image path, its bytes, an RGB uint8 array (H, W, 3), or a list of them",
        )

    # -- scoring -------------------------------------------------------------------------------

    def predict(
        self,
        images: Any = None,
        *,
        landmarks: np.ndarray | None = None,
        image_size: tuple[int, int] | None = None,
        blendshapes: np.ndarray | None = None,
        pose: np.ndarray | None = None,
    ) -> Prediction | list[Prediction]:
        """Class probabilities for an image path, image bytes or RGB array (a list of them:
        a list of Predictions), or for a face found elsewhere: `landmarks` (478, 3) raw
        FaceLandmarker coordinates, with `image_size` (width, height), `blendshapes` and `pose`
        where the model reads them."""
        if landmarks is not None:
            if images is not None:
                raise EmotionError("pass images or landmarks=..., not both")
            face = SimpleNamespace(
                landmarks=landmarks, image_size=image_size, blendshapes=blendshapes, pose=pose
            )
            return self.predict(face)
        if images is None:
            raise EmotionError("nothing to predict", "pass an image, a list of them, or landmarks=")
        single, inputs = _listed(images)
        if self.baseline == "enrolled" and self._reference is None:
            check_reference_given(self.trained, False, ENROLL_FIX)
        if self.baseline == "session" and self._reference is None:
            self._check_session(len(inputs))  # before any landmark work
        found = self._find_all(inputs)
        faces = [face for face, _ in found if face is not None]
        reference, name = self._reference_for(faces)
        scores = face_probabilities(self.trained, faces, reference) if faces else []
        scored = iter(scores)
        answers = [
            self._answer(face, source, None if face is None else next(scored), name)
            for face, source in found
        ]
        return answers[0] if single else answers

    def _reference_for(self, faces: list[Face]) -> tuple[np.ndarray | None, str | None]:
        """The rest face this call's faces are read against: the enrolled one, the call's
        own mean for a session model, nothing for a model without a baseline."""
        if not self.trained.uses_baseline:
            return None, None
        if self._reference is not None:
            return self._reference.mean(), self._reference_name
        session = Reference(how="session")
        if faces:
            session.add(self.trained.preprocessing.face_vectors(faces))
        self._check_session(session.count)
        return session.mean(), f"session: mean of {session.count} photos"

    def _check_session(self, count: int) -> None:
        """A session of fewer faces than the model's policy asks is refused: read against
        itself a face says "no change" whatever the face."""
        policy = self.trained.preprocessing.reference_policy
        if count < policy.min_faces:
            raise EmotionError(
                f"{self.description} reads each face against the mean of the session's faces "
                f"(data.baseline=session), and this call holds {count} face(s): "
                "read against itself a face says 'no change'",
                f"pass {policy.min_faces} or more photos of the person in one call "
                "(model.predict([...])), or " + ENROLL_FIX,
            )

    def _answer(
        self,
        face: Face | None,
        source: str | None,
        probabilities: np.ndarray | None,
        reference: str | None,
    ) -> Prediction:
        synthetic = self.trained_on_synthetic
        if face is None or probabilities is None:
            return Prediction({}, None, None, 0, None, source, None, synthetic)
        names = self.class_names
        values = {name: float(p) for name, p in zip(names, probabilities, strict=True)}
        finite = bool(np.isfinite(probabilities).all())
        return Prediction(
            probabilities=values,
            label=names[int(np.argmax(probabilities))] if finite else None,
            score=values.get(POSITIVE_CLASS),
            faces=face.faces,
            image_size=face.image_size if any(face.image_size) else None,  # (0, 0): not given
            source=source,
            reference=reference,
            trained_on_synthetic=synthetic,
            landmarks=face.landmarks,
            blendshapes=face.blendshapes,
            pose=face.pose,
        )

    # -- the rest face -------------------------------------------------------------------------

    def enroll(self, photos: Any) -> Model:
        """Make the person's rest face from photos of their relaxed face (paths, bytes, RGB
        arrays, or faces such as Predictions), as `emotion-predict --enroll` does; it
        replaces any earlier one. Refused, naming every photo at fault, when one shows no face."""
        if not self.trained.uses_baseline:
            raise EmotionError(
                f"{self.description} reads each photo alone (data.baseline=none): "
                "it has no rest face to enroll",
                "leave enroll out, or use a model trained with data.baseline=enrolled",
            )
        found = self._find_all(_listed(photos)[1])
        names = [source or f"item {number}" for number, (_, source) in enumerate(found)]
        faceless = [name for name, (face, _) in zip(names, found, strict=True) if face is None]
        if faceless or not found:
            raise EmotionError(
                f"enroll: {', '.join(faceless) or 'no photos given'}: no face FaceLandmarker "
                "finds (no rest face was made)",
                "enroll clear, upright photos of the person's relaxed face, or leave those out",
            )
        faces = [face for face, _ in found if face is not None]
        vectors = self.trained.preprocessing.face_vectors(faces)
        self._reference = Reference.of(vectors, how="enrolled")
        self._reference_name = "enroll: " + ", ".join(names)
        return self

    def forget(self) -> None:
        """Drop the enrolled rest face (a `session` model goes back to its calls' own)."""
        self._reference = self._reference_name = None

    # -- resources -----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the landmarker; a later predict makes a new one."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _listed(given: Any) -> tuple[bool, list[Any]]:
    """Whether one input was given (not a list or tuple), and the inputs as a list."""
    if isinstance(given, list | tuple):
        return False, list(given)
    return True, [given]
