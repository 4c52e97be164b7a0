"""A trained checkpoint (or an ensemble) as ONNX (and optionally torch.export), taking RAW
landmarks and doing the normalisation inside the graph (`emotion.export.graph`).

    emotion-export outputs/train/runs/default                 # -> <run_dir>/export/model.onnx
    emotion-export path/to/best.ckpt --output model.onnx --torch-export
    emotion-export outputs/train/multiruns/seeds              # ensemble -> <sweep>/export/...

The export is checked against onnxruntime on random landmarks before it is kept; a file
whose outputs differ from torch by more than the tolerance is refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotion.errors import EmotionError
from emotion.export.graph import RawLandmarkEnsemble, RawLandmarkModel
from emotion.features.preprocessing import IN_GRAPH_NORMALISATIONS
from emotion.inference.ensemble import Ensemble, load_model, members_of
from emotion.inference.trained import TrainedModel, check_photo_ready, warn_synthetic
from emotion.notices import silence_known_notices
from emotion.store.schema import NUM_COORDS, NUM_LANDMARKS

log = logging.getLogger(__name__)
silence_known_notices()

TOLERANCE = 1e-5  # max abs difference of probabilities, onnxruntime vs torch
OPSET = 18
CHECK_ROWS = 64


Deployable = RawLandmarkModel | RawLandmarkEnsemble


def deployable(trained: TrainedModel | Ensemble) -> Deployable:
    """Raw landmarks in, probabilities out: one model, or the mean over an ensemble."""
    check_photo_ready(trained)
    if trained.normalization not in IN_GRAPH_NORMALISATIONS:
        raise EmotionError(
            f"{trained.description} uses data.normalization={trained.normalization}, whose "
            "alignment (an SVD) has no ONNX operator",
            "use emotion-predict with the checkpoint, or export a model trained with "
            f"one of {IN_GRAPH_NORMALISATIONS}",
        )
    members = [
        RawLandmarkModel(
            member.model.model,
            member.normalization,
            member.aspect_correction,
            member.temperature,
        ).eval()
        for member in members_of(trained)
    ]
    return members[0] if len(members) == 1 else RawLandmarkEnsemble(members).eval()


def example_inputs(rows: int, aspect_correction: bool, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random raw landmarks shaped like FaceMesh's output (x, y in [0, 1], small z)."""
    generator = torch.Generator().manual_seed(seed)
    landmarks = torch.rand(rows, NUM_LANDMARKS, NUM_COORDS, generator=generator)
    landmarks[..., 2] = (landmarks[..., 2] - 0.5) * 0.2
    if not aspect_correction:
        return (landmarks,)
    sizes = torch.randint(240, 4000, (rows, 2), generator=generator).float()
    return landmarks, sizes


def input_names(aspect_correction: bool) -> list[str]:
    return ["landmarks", "image_size"] if aspect_correction else ["landmarks"]


def export_onnx(
    module: Deployable, path: Path, class_names: list[str], trained_on_synthetic: bool = False
) -> None:
    """Dynamo-based torch.onnx.export with a dynamic batch axis, class names in metadata."""
    import onnx

    inputs = example_inputs(2, module.aspect_correction)
    batch = torch.export.Dim("batch", min=1)
    shapes: dict[str, Any] = {"landmarks": {0: batch}}
    if module.aspect_correction:
        shapes["image_size"] = {0: batch}
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            module,
            inputs,
            str(path),
            input_names=input_names(module.aspect_correction),
            output_names=["probabilities"],
            dynamic_shapes=shapes,
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    model = onnx.load(str(path))
    onnx.helper.set_model_props(
        model,
        {
            "class_names": json.dumps(class_names),
            "trained_on_synthetic": json.dumps(trained_on_synthetic),
            "normalization": module.normalization,
            "aspect_correction": json.dumps(module.aspect_correction),
            "inputs": "landmarks: raw FaceMesh (N, 478, 3) float32"
            + (
                "; image_size: (N, 2) float32 (width, height) px"
                if module.aspect_correction
                else ""
            ),
        },
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def max_difference_onnxruntime(module: Deployable, path: Path, rows: int) -> float:
    """Largest |onnxruntime - torch| over the probabilities of `rows` random inputs; inf when
    either side gives a non-finite value (NaN compares false with any tolerance)."""
    import onnxruntime

    inputs = example_inputs(rows, module.aspect_correction, seed=1)
    with torch.no_grad():
        expected = module(*inputs).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {
        name: tensor.numpy()
        for name, tensor in zip(input_names(module.aspect_correction), inputs, strict=True)
    }
    (got,) = session.run(["probabilities"], feeds)
    if not (np.isfinite(got).all() and np.isfinite(expected).all()):
        return float("inf")
    return float(np.abs(got - expected).max())


def export_torch(module: Deployable, path: Path) -> None:
    """torch.export's ExportedProgram (.pt2), the successor of TorchScript."""
    batch = torch.export.Dim("batch", min=2)
    inputs = example_inputs(2, module.aspect_correction)
    shapes: Any = {"landmarks": {0: batch}}
    if module.aspect_correction:
        shapes["image_size"] = {0: batch}
    program = torch.export.export(module, inputs, dynamic_shapes=shapes)
    torch.export.save(program, str(path))


def export(
    model: Path | str | Sequence[str],
    output: Path | None = None,
    *,
    with_torch_export: bool = False,
    tolerance: float = TOLERANCE,
) -> dict[str, Any]:
    """Write the ONNX file (+ optional .pt2) and a JSON sidecar; return the sidecar."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise EmotionError(
            f"ONNX export needs onnx and onnxruntime ({error})",
            "pip install -e '.[export]'",
        ) from None
    trained = load_model(str(model) if isinstance(model, Path) else model)
    if output is None:
        base = trained.run_dir if trained.run_dir else trained.checkpoints[0].resolve().parent
        name = "ensemble.onnx" if isinstance(trained, Ensemble) else "model.onnx"
        output = base / "export" / name
    module = deployable(trained)
    if trained.trained_on_synthetic:
        warn_synthetic(trained.description)
    export_onnx(module, output, trained.class_names, trained.trained_on_synthetic)
    difference = max_difference_onnxruntime(module, output, CHECK_ROWS)
    if not difference <= tolerance:
        output.unlink()
        raise EmotionError(
            f"the ONNX graph differs from torch by {difference:.2e} > {tolerance:.0e}; removed",
            "report this as a bug (opset or onnxruntime version)",
        )
    info = sidecar(trained, output, difference, tolerance)
    if with_torch_export:
        pt2 = output.with_suffix(".pt2")
        export_torch(module, pt2)
        info["torch_export"] = str(pt2)
        info["torch_export_bytes"] = pt2.stat().st_size
    output.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def sidecar(
    trained: TrainedModel | Ensemble, output: Path, difference: float, tolerance: float
) -> dict[str, Any]:
    """`<model>.json`: what the graph takes and gives, what it was made from, its check."""
    ensemble = isinstance(trained, Ensemble)
    inputs = {"landmarks": "float32 (N, 478, 3): raw FaceMesh normalised image coordinates"}
    if trained.aspect_correction:
        inputs["image_size"] = "float32 (N, 2): upright image (width, height) in pixels"
    return {
        "checkpoint": trained.description,
        "ensemble": [str(path) for path in trained.checkpoints] if ensemble else None,
        "temperature": [member.temperature for member in members_of(trained)],
        "onnx": str(output),
        "onnx_bytes": output.stat().st_size,
        "opset": OPSET,
        "class_names": trained.class_names,
        "trained_on_synthetic": trained.trained_on_synthetic,
        "inputs": inputs,
        "output": "probabilities float32 (N, C), softmax, in class_names order"
        + (" (the mean over the ensemble's members)" if ensemble else ""),
        "normalization": trained.normalization,
        "aspect_correction": trained.aspect_correction,
        "check": {
            "runtime": "onnxruntime CPUExecutionProvider",
            "rows": CHECK_ROWS,
            "max_abs_difference": difference,
            "tolerance": tolerance,
        },
    }
