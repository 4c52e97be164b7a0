"""The LEGACY FaceMesh baseline of the extraction benchmark, run by a side environment's python.

mediapipe 1.2.x no longer has the old FaceMesh graph, so `emotion/facemesh/legacy.py` (a
script importing nothing of ours) runs it under the python of a side virtual environment with
mediapipe 0.10.21: `--legacy-python PATH`, else $EMOTION_LEGACY_PYTHON, else
`.venv-legacy/bin/python` (made with `python3 -m venv .venv-legacy &&
.venv-legacy/bin/pip install mediapipe==0.10.21 pillow`). Without a usable one the legacy
figures are recorded as skipped, with the reason, and everything else still runs.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emotion.extract.plan import Task
from emotion.facemesh import legacy
from emotion.facemesh.decode import reduction_for
from emotion.facemesh.jpeg import jpeg_size
from emotion.facemesh.mesh import MAX_FACES

LEGACY_PYTHON_ENV = "EMOTION_LEGACY_PYTHON"
# At the root of the checkout, beside .venv (git ignores both).
DEFAULT_LEGACY_PYTHON = Path(__file__).resolve().parents[2] / ".venv-legacy" / "bin" / "python"
SCRIPT = Path(legacy.__file__).resolve()
TIMEOUT_S = 600


class LegacyFailed(Exception):
    """The side environment's script did not give a result; the message says why."""


@dataclass(frozen=True)
class LegacySide:
    """The side python and its mediapipe version, or why the legacy figures are skipped."""

    python: Path
    version: str | None = None
    skipped: str | None = None


def default_legacy_python() -> Path:
    """$EMOTION_LEGACY_PYTHON, else .venv-legacy/bin/python at the root of the checkout."""
    return Path(os.environ.get(LEGACY_PYTHON_ENV) or DEFAULT_LEGACY_PYTHON)


def _why(completed: subprocess.CompletedProcess[str]) -> str:
    """The script's `error:` line, else its last line of stderr, else its exit status."""
    lines = [line.strip() for line in completed.stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return (errors or lines[-1:] or [f"exit status {completed.returncode}"])[0]


def check_legacy(python: Path) -> LegacySide:
    """Whether `python` can run the legacy graph (mediapipe 0.10.21), without running it."""
    if not python.is_file() or not os.access(python, os.X_OK):
        return LegacySide(
            python,
            skipped=f"no python at {python} (--legacy-python, ${LEGACY_PYTHON_ENV}); "
            f"make it: {legacy.FIX.removeprefix('make the side environment: ')}",
        )
    completed = subprocess.run(
        [str(python), str(SCRIPT), "--check"], capture_output=True, text=True, timeout=120
    )
    if completed.returncode != 0:
        return LegacySide(python, skipped=_why(completed))
    return LegacySide(python, version=json.loads(completed.stdout)["mediapipe_version"])


def photo_lines(photos: list[tuple[Task, bytes]], reduce: int | str) -> str:
    """The script's input: each photo's file or zip member, and the factor the extractor picks
    for it at `reduce`, so that both graphs are given the same pixels."""
    lines = []
    for task, data in photos:
        factor = reduction_for(jpeg_size(data), reduce)
        lines.append(json.dumps({"path": task.path, "member": task.member, "reduce": factor}))
    return "\n".join(lines) + "\n"


def run_legacy(
    side: LegacySide,
    photos: list[tuple[Task, bytes]],
    reduce: int | str,
    cpu: int | None,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One fresh legacy process over the photos (warm-up, then a timed pass); its JSON."""
    command = [str(side.python), str(SCRIPT), "--max-faces", str(MAX_FACES), *extra]
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    completed = subprocess.run(
        command,
        input=photo_lines(photos, reduce),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if completed.returncode != 0:
        raise LegacyFailed(_why(completed))
    return json.loads(completed.stdout)


def legacy_landmarks(
    side: LegacySide, photos: list[tuple[Task, bytes]], reduce: int | str
) -> tuple[list[np.ndarray | None], list[str | None]]:
    """The legacy graph's landmarks of the largest face per photo, and its pixels' sha256."""
    output = run_legacy(side, photos, reduce, None, ("--landmarks", "--digests"))
    points = [
        None if face is None else np.asarray(face, np.float32) for face in output["landmarks"]
    ]
    return points, output["pixel_sha256"]
