"""SYNTHETIC default data: FaceMesh-like landmarks of invented people, neutral or anxious (fear).

Nothing here is a real face. The generator starts from one real FaceMesh result (the NASA
astronaut portrait, see `emotion.features.template`) and, fully vectorised in numpy:

1. puts the template into a face-centred metric frame (millimetres, x right, y down, z away
   from the camera, as in MediaPipe);
2. gives every synthetic subject its own face shape (anisotropic scale, eye spacing, jaw width,
   face length, nose, mouth width, brow height and a smooth low-order random deformation);
3. adds facial actions as smooth displacement fields anchored on FaceMesh landmarks: the fear
   actions AU1, AU2, AU4, AU5, AU20 and AU26 (strong in anxious frames, weak "leak" in neutral
   ones), a per-subject resting expression, and nuisance actions of both classes (smile, blink);
4. turns the head (yaw, pitch, roll: per-subject mean plus per-frame jitter), moves the irises
   (gaze), adds FaceMesh-like landmark noise, and projects with a pinhole camera into a phone
   photo of realistic size, writing MediaPipe's raw coordinates (x/width, y/height, z/width).

Same settings and seed give identical arrays. See docs/synthetic.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from emotion.features.template import load_template
from emotion.store.classes import BINARY
from emotion.store.io import open_store, write_store
from emotion.store.schema import (
    LEGACY_EXTRACTOR,
    LandmarkStore,
    StoreError,
    extractor_of,
    same_extractor,
)
from emotion.synthetic.face_model import FEAR_ACTIONS, NUISANCE_ACTIONS, FaceModel, build_face_model
from emotion.synthetic.population import draw_frames, draw_subjects
from emotion.synthetic.render import render_landmarks
from emotion.synthetic.settings import GENERATOR_VERSION, SYNTHETIC_NOTICE, SyntheticSettings

log = logging.getLogger(__name__)


def generate(settings: SyntheticSettings | None = None) -> LandmarkStore:
    """A schema-v1 store of SYNTHETIC landmarks; identical for identical settings and seed."""
    settings = settings or SyntheticSettings()
    model = build_face_model()
    rng = np.random.default_rng([settings.seed, 0])
    subjects = draw_subjects(model, settings, rng)
    frames = draw_frames(subjects, settings, rng)
    landmarks = render_landmarks(model, subjects, frames, settings)
    subject_ids = np.array([f"synth_{index:04d}" for index in range(settings.num_subjects)])
    sources = [
        f"synthetic://subject_{subject:04d}/frame_{frame:03d}"
        for subject, frame in zip(frames.subject.tolist(), frames.frame.tolist(), strict=True)
    ]
    return LandmarkStore(
        landmarks=landmarks,
        label=frames.label,
        subject=subject_ids[frames.subject].astype(object),
        split=np.where(subjects.is_test[frames.subject], "test", "train").astype(object),
        source=np.array(sources, dtype=object),
        image_size=subjects.photo_size[frames.subject].astype(np.int32),
        class_names=list(BINARY),
        synthetic=True,
        provenance=provenance(settings, model),
        # The template's extractor: the faces are deformations of its landmarks, so a model
        # trained on them is served on that extractor's faces. No blendshapes or pose (NaN).
        extractor=dict(model.provenance.get("extractor", LEGACY_EXTRACTOR)),
    )


def _made_from_another_template(path: Path) -> bool:
    """Whether a generated default store's faces are of another extractor than today's
    template (so a model trained on it could not be served); a store that cannot be read is
    left for the data module to refuse."""
    try:
        with open_store(path) as handle:
            if not bool(handle.attrs.get("synthetic", False)):
                return False
            stored = extractor_of(handle.attrs)
    except StoreError:
        return False
    template = load_template()[2].get("extractor", LEGACY_EXTRACTOR)
    return not same_extractor(stored, template)


def provenance(settings: SyntheticSettings, model: FaceModel) -> dict[str, Any]:
    return {
        "synthetic": True,
        "notice": SYNTHETIC_NOTICE,
        "generator": "emotion.synthetic",
        "generator_version": GENERATOR_VERSION,
        "settings": asdict(settings),
        "fear_actions": list(FEAR_ACTIONS),
        "nuisance_actions": list(NUISANCE_ACTIONS),
        "template": model.provenance,
    }


def generate_store(path: str | Path, settings: SyntheticSettings | None = None) -> Path:
    """Generate and write a SYNTHETIC store atomically; logs that the data is synthetic."""
    settings = settings or SyntheticSettings()
    started = time.perf_counter()
    store = generate(settings)
    written = write_store(path, store, tool="emotion-synth")
    log.warning(
        "%s: wrote %d SYNTHETIC rows (%d subjects, seed %d) to %s in %.1f s",
        SYNTHETIC_NOTICE,
        len(store),
        settings.num_subjects,
        settings.seed,
        written,
        time.perf_counter() - started,
    )
    return written


def ensure_default_store(path: str | Path, synthetic: Any | None) -> None:
    """Generate the SYNTHETIC default store when a run names it and it does not exist yet.

    Only training (and emotion-synth) writes data: `synthetic` is the run's `data.synthetic`
    config, whose `output` says which path is the generated default; any other missing path
    is left for the data module to refuse, naming the command that makes a store."""
    target = Path(path)
    if not synthetic or synthetic.get("output") is None:
        return
    if Path(str(synthetic["output"])).resolve() != target.resolve():
        return
    if target.exists():
        if not _made_from_another_template(target):
            return
        log.warning(
            "%s was generated from a face template of another landmark extractor (an older "
            "version of emotion): generating the SYNTHETIC default data set again",
            target,
        )
    else:
        log.info("no store at %s: generating the SYNTHETIC default data set", target)
    settings = {key: value for key, value in dict(synthetic).items() if key != "output"}
    generate_store(target, SyntheticSettings(**settings))
