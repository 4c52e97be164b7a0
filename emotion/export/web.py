"""`emotion-export RUN --web DIR`: a static folder that scores faces in the browser, with no
server: the page (emotion/export/page/), MediaPipe's tasks-vision runtime and
`face_landmarker.task`, and the model as ONNX (the same checked export as `emotion-export`)
run by onnxruntime-web. Any static host serves it; the page asks for nothing outside its own
folder, so no camera frame, landmark or score leaves the device.

The folder is made beside DIR under a name of its own and renamed into place once complete,
so a DIR that exists is always a whole page (an interrupted export leaves a `.partial`
folder, never a DIR that looks done).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emotion.errors import EmotionError
from emotion.facemesh.landmarker import MODEL_FILE, model_bytes
from emotion.rundir import fresh_name, make_dir_beside, write_json_atomic, write_problem

PAGE = Path(__file__).resolve().parent / "page"
PAGE_FILES = ("index.html", "app.js", "face.js", "style.css")
# The runtimes web/vendor.sh copies from npm into the package (`make setup`).
VENDOR = Path(__file__).resolve().parents[1] / "serve" / "static" / "vendor"
VENDOR_FILES = (
    "versions.json",
    "tasks-vision/vision_bundle.mjs",
    "tasks-vision/wasm/vision_wasm_internal.js",
    "tasks-vision/wasm/vision_wasm_internal.wasm",
    "tasks-vision/wasm/vision_wasm_nosimd_internal.js",
    "tasks-vision/wasm/vision_wasm_nosimd_internal.wasm",
    "onnxruntime-web/ort.wasm.min.mjs",
    "onnxruntime-web/ort-wasm-simd-threaded.mjs",
    "onnxruntime-web/ort-wasm-simd-threaded.wasm",
)
CALIBRATION_SECONDS = 3.0  # of rest face, as the served page's default
MAX_REFERENCE_FRAMES = 30  # raw frames the page keeps (localStorage) as the rest face


def check_target(folder: Path, overwrite: bool) -> None:
    """Refuse, before any work, a DIR that holds something (unless --overwrite) or that
    cannot be made."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise EmotionError(
            f"--web {folder} exists and is not a folder",
            "choose a new folder name for the page (--web DIR)",
        )
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise EmotionError(
            f"--web {folder} exists and is not empty; the export would replace what is in it",
            "choose a new or empty folder, or add --overwrite to replace this one",
        )
    problem = write_problem(folder.parent)
    if problem:
        raise EmotionError(
            f"cannot write the page beside {folder}: {problem}",
            "choose a folder you can write to (--web DIR)",
        )


def check_vendor(vendor: Path = VENDOR) -> None:
    """The browser runtimes are installed with the package by web/vendor.sh (npm)."""
    missing = [name for name in VENDOR_FILES if not (vendor / name).is_file()]
    if missing:
        raise EmotionError(
            f"the browser runtimes are not installed with this package ({vendor} lacks "
            f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''})",
            "install Node.js and npm, then run `make setup` (or `bash web/vendor.sh`) in the "
            "checkout, and reinstall the package if it is not an editable install",
        )


def page_settings(info: dict[str, Any]) -> dict[str, Any]:
    """What the page needs beside the graph's own input names: the model, said plainly."""
    names = info["class_names"]
    return {
        "calibration_seconds": CALIBRATION_SECONDS,
        "max_reference_frames": MAX_REFERENCE_FRAMES,
        "needs_reference": any(name.startswith("reference") for name in info["inputs"]),
        "positive_class": "anxious" if "anxious" in names else None,
        "trained_on_synthetic": bool(info["trained_on_synthetic"]),
    }


def export_web(
    model: Path | str | Sequence[str],
    folder: Path,
    *,
    overwrite: bool = False,
    **check: float,
) -> dict[str, Any]:
    """Write the static page into `folder`; return its model.json. `check`: export's
    tolerance, if given. Its refusals come before torch is imported (seconds)."""
    folder = Path(os.path.abspath(folder))
    check_target(folder, overwrite)
    check_vendor()
    model_bytes(MODEL_FILE)  # the shipped landmarker, checked as the extractor checks it
    from emotion.export.onnx import export

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = make_dir_beside(folder)
    try:
        info = export(model, staging / "model.onnx", **check)
        # The folder is published: it names no path of this machine.
        info["onnx"] = "model.onnx"
        info["checkpoint"] = (
            Path(info["checkpoint"]).name
            if not info["ensemble"]
            else (f"an ensemble of {len(info['ensemble'])} models")
        )
        info["ensemble"] = info["ensemble"] and [Path(p).name for p in info["ensemble"]]
        info["page"] = page_settings(info)
        write_json_atomic(staging / "model.json", info)
        for name in PAGE_FILES:
            shutil.copyfile(PAGE / name, staging / name)
        for name in VENDOR_FILES:
            (staging / "vendor" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(VENDOR / name, staging / "vendor" / name)
        shutil.copyfile(MODEL_FILE, staging / MODEL_FILE.name)
        licence = MODEL_FILE.with_name("face_landmarker.LICENSE.txt")
        if licence.is_file():
            shutil.copyfile(licence, staging / licence.name)
        put_in_place(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    info["folder"] = str(folder)
    info["folder_bytes"] = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return info


def put_in_place(staging: Path, folder: Path) -> None:
    """Rename the finished folder to its name; an old one (--overwrite) is moved aside first
    and removed after, so the name always holds a whole page."""
    if folder.is_dir() and any(folder.iterdir()):
        aside = fresh_name(folder, ".old")
        os.replace(folder, aside)
        os.replace(staging, folder)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(staging, folder)  # rename(2) replaces an empty folder


def describe(info: dict[str, Any]) -> str:
    """The command's summary line."""
    return (
        f"wrote {info['folder']} ({info['folder_bytes'] / 2**20:.1f} MiB; the model "
        f"{info['onnx_bytes'] / 2**20:.2f} MiB, onnxruntime vs torch: max |diff| "
        f"{info['check']['max_abs_difference']:.1e}); serve it from any static host, e.g. "
        f"`python -m http.server -d {info['folder']}`, and open it: it scores on the device "
        "and sends nothing anywhere"
    )
