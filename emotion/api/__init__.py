"""The Python API, for notebooks and scripts: a trained model and a store as Python objects.

    import emotion
    with emotion.load("outputs/train/runs/latest") as model:
        print(model.predict("tests/fixtures/astronaut.jpg"))

`Model.predict` runs what `emotion-predict` runs on the same photo: the same worker
(`FaceMeshRunner`: upright, reduced-resolution decoding and FaceLandmarker in IMAGE mode) and
the same face-to-probabilities step (`emotion.predict.predictor.face_probabilities`), so the
probabilities are the CLI's. An RGB array is handed to the landmarker as it is: no EXIF
orientation, no reduced decoding (pass a large photo's path or bytes instead).
`emotion.load_store` reads a store: its arrays, and `frame()`, a table of its rows.

Whatever a user can fix is an `EmotionError` (its `problem` and `fix`), as in the CLIs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from emotion.api.model import POSITIVE_CLASS, Model, Prediction
from emotion.api.store import Store, load_store
from emotion.predict.pipeline import model_for_photos

__all__ = ["Model", "Prediction", "Store", "load", "load_store"]


def load(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> Model:
    """A model from a run folder (e.g. outputs/train/runs/latest), a .ckpt, a sweep folder, a
    glob or a list of them (an ensemble), refused as emotion-predict refuses one (not a
    model, another extractor's faces); a SYNTHETIC model says so on stderr."""
    if isinstance(path, str | os.PathLike):
        return Model(model_for_photos(os.fspath(path), None, POSITIVE_CLASS))
    return Model(model_for_photos([os.fspath(name) for name in path], None, POSITIVE_CLASS))
