"""The Tasks FaceLandmarker on a real photo, and the model file it ships with."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emotion.facemesh.landmarker import (
    BLENDSHAPE_NAMES,
    MODEL_FILE,
    MODEL_SHA256,
    ModelFileError,
    model_bytes,
)

pytest.importorskip("mediapipe", reason="the landmarker needs the extract extra")

FIXTURE = Path(__file__).parent / "fixtures" / "astronaut.jpg"


def test_the_shipped_model_is_the_recorded_one_with_its_licence() -> None:
    assert hashlib.sha256(MODEL_FILE.read_bytes()).hexdigest() == MODEL_SHA256
    licence = MODEL_FILE.with_name("face_landmarker.LICENSE.txt").read_text()
    assert "Apache License" in licence and "Version 2.0" in licence


def test_a_damaged_model_file_is_refused_naming_the_fix(tmp_path: Path) -> None:
    damaged = tmp_path / "face_landmarker.task"
    data = bytearray(MODEL_FILE.read_bytes())
    data[1000] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(ModelFileError) as raised:
        model_bytes(damaged)
    assert "sha256" in raised.value.problem and "reinstall" in raised.value.fix
    with pytest.raises(ModelFileError):
        model_bytes(tmp_path / "missing.task")


def test_the_fixture_photo_gives_landmarks_named_blendshapes_and_pose() -> None:
    from emotion.facemesh.decode import decode_upright
    from emotion.facemesh.landmarker import IMAGE, VIDEO, Landmarker

    rgb, size = decode_upright(FIXTURE.read_bytes(), 1)
    landmarker = Landmarker(IMAGE)
    try:
        reading, faces = landmarker.find(rgb)
        raw = landmarker._landmarker.detect(
            landmarker._image(image_format=landmarker._format, data=np.ascontiguousarray(rgb))
        )
    finally:
        landmarker.close()
    assert faces == 1 and reading is not None and size == (512, 512)
    assert reading.landmarks.shape == (478, 3) and reading.landmarks.dtype == np.float32
    # The nose tip (landmark 1) of a centred portrait lies inside the frame.
    assert 0.3 < reading.landmarks[1, 0] < 0.7 and 0.2 < reading.landmarks[1, 1] < 0.8
    assert reading.blendshapes.shape == (52,) and np.isfinite(reading.blendshapes).all()
    assert (reading.blendshapes >= 0).all() and (reading.blendshapes <= 1).all()
    # Our names are the model's own, in its order.
    assert [category.category_name for category in raw.face_blendshapes[0]] == list(
        BLENDSHAPE_NAMES
    )
    assert reading.pose.shape == (4, 4)
    rotation = reading.pose[:3, :3].astype(np.float64)
    assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3)  # a rotation
    assert np.allclose(reading.pose[3], [0, 0, 0, 1])
    # VIDEO mode on one frame finds the same face.
    tracker = Landmarker(VIDEO)
    try:
        again, _ = tracker.find(rgb, 0)
    finally:
        tracker.close()
    assert again is not None and np.abs(again.landmarks - reading.landmarks).max() < 1e-4


def test_a_photo_without_a_face_gives_none() -> None:
    from emotion.facemesh.decode import decode_upright
    from emotion.facemesh.landmarker import Landmarker
    from tests.extract_tree import no_face_jpeg

    landmarker = Landmarker()
    try:
        assert landmarker.find(decode_upright(no_face_jpeg())[0]) == (None, 0)
    finally:
        landmarker.close()


def test_no_module_outside_facemesh_imports_mediapipe() -> None:
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in (root / "emotion").rglob("*.py"):
        if path.parent.name == "facemesh" and path.parent.parent.name == "emotion":
            continue
        text = path.read_text(encoding="utf-8")
        if "import mediapipe" in text or "from mediapipe" in text:
            offenders.append(str(path.relative_to(root)))
    assert offenders == []
    found = subprocess.run(
        ["git", "grep", "-l", "mp" + ".solutions"], cwd=root, capture_output=True, text=True
    )
    if shutil.which("git") and found.returncode in (0, 1):
        assert found.stdout.split() == []


def test_importing_the_package_loads_no_mediapipe() -> None:
    code = (
        "import sys, emotion.facemesh.landmarker, emotion.store.io\n"
        "print('mediapipe' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_training_after_a_landmarker_does_not_kill_the_process() -> None:
    """mediapipe's threads send themselves SIGPROF; Lightning's Trainer restores every signal
    to what Python reported at its start. A notebook that extracted, then trained, then
    predicted was killed ("Profiling timer expired") until Python was told SIGPROF is ignored."""
    code = """
import numpy as np, torch, lightning as L
from emotion.facemesh.decode import decode_upright
from emotion.facemesh.landmarker import Landmarker
rgb, _ = decode_upright(open(FIXTURE, "rb").read(), 1)
landmarker = Landmarker()
landmarker.find(rgb)

class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
    def training_step(self, batch, _):
        return self.layer(batch[0]).sum()
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(4, 2)))
L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
          enable_model_summary=False).fit(Tiny(), data)
for _ in range(40):
    landmarker.find(rgb)
landmarker.close()
print("alive")
""".replace("FIXTURE", repr(str(FIXTURE)))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "alive" in done.stdout, (done.returncode, done.stderr[-500:])


def test_pose_normalisation_undoes_a_turned_head() -> None:
    """The fixture photo turned in-plane by 12 and 25 degrees: read through FaceLandmarker's
    pose matrix, the faces match the upright one ten times closer than nose_unit alone."""
    from PIL import Image

    from emotion.facemesh.landmarker import Landmarker
    from emotion.features.preprocessing import normalize

    photo = Image.open(FIXTURE).convert("RGB")
    landmarker = Landmarker()
    try:
        readings = [
            landmarker.find(np.asarray(photo.rotate(degrees, resample=Image.BICUBIC)))[0]
            for degrees in (0, 12, 25)
        ]
    finally:
        landmarker.close()
    size = np.array([[512, 512]])

    def face(reading, method: str) -> np.ndarray:
        return normalize(
            reading.landmarks[None], size, method=method, aspect=True, pose=reading.pose[None]
        )[0]

    for turned in readings[1:]:
        plain = np.abs(face(turned, "nose_unit") - face(readings[0], "nose_unit")).mean()
        undone = np.abs(face(turned, "pose") - face(readings[0], "pose")).mean()
        assert undone < plain / 5, (undone, plain)


def test_a_landmarker_never_closed_leaves_no_noise_at_exit() -> None:
    """A notebook or a one-liner never closes its landmarker: at exit mediapipe's own __del__
    printed "Exception ignored ... 'NoneType' object is not callable" after a clean run."""
    code = (
        "from emotion.facemesh.landmarker import Landmarker\n"
        "landmarker = Landmarker()\n"
        "print('done')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "done" in done.stdout
    assert "Exception ignored" not in done.stderr, done.stderr[-800:]
