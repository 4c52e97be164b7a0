"""A trained checkpoint (or an ensemble) as ONNX (and optionally torch.export), taking RAW
landmarks and doing the normalisation inside the graph: the very `FaceModel`
(`emotion.inference.face_model`) that evaluation, prediction and serving run.

    emotion-export outputs/train/runs/default                 # -> <run_dir>/export/model.onnx
    emotion-export path/to/best.ckpt --output model.onnx --torch-export
    emotion-export outputs/train/multiruns/seeds              # ensemble -> <sweep>/export/...

The export is checked against onnxruntime on random landmarks before it is kept; a file
whose outputs differ from torch by more than the tolerance is refused. Every file is made in a
private folder beside the output and renamed into place once checked: `<name>.onnx`, with
--torch-export `<name>.pt2`, and last the sidecar `<name>.json`, three names that never
collide (a link planted at one is replaced, never written through), and a refused graph never
replaces an earlier export.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotion.errors import EmotionError, check_ranges
from emotion.features.preprocessing import IN_GRAPH_NORMALIZATIONS
from emotion.inference.ensemble import load_model, members_of
from emotion.inference.face_model import FaceModel
from emotion.inference.trained import check_current_extractor, warn_synthetic
from emotion.notices import silence_known_notices
from emotion.rundir import write_json_atomic, write_problem
from emotion.store.schema import NUM_COORDS, NUM_LANDMARKS

log = logging.getLogger(__name__)
silence_known_notices()

TOLERANCE = 1e-5  # max abs difference of probabilities, onnxruntime vs torch
OPSET = 18
CHECK_ROWS = 64


Deployable = FaceModel  # raw landmarks in, probabilities out: what is exported
NO_REFERENCE = (
    "; NaN in every column of a row given no reference photo (R = 0): a personal-baseline "
    "model has no answer without the person's rest face"
)


# What each graph input is, in the order the graph takes them (`graph_inputs`).
INPUTS = {
    "landmarks": "float32 (N, 478, 3): raw FaceLandmarker normalised image coordinates",
    "image_size": "float32 (N, 2): upright image (width, height) in pixels",
    "reference_landmarks": "float32 (N, R, 478, 3): raw landmarks of each row's R >= 1 reference "
    "photos (the person's rest face; averaged after normalising); with R = 0 every probability "
    "is NaN, never an answer",
    "reference_image_size": "float32 (N, R, 2): the reference photos' (width, height)",
    "blendshapes": "float32 (N, 52): FaceLandmarker's blendshape scores, in its order",
    "pose": "float32 (N, 4, 4): FaceLandmarker's facial transformation matrix",
    "reference_blendshapes": "float32 (N, R, 52): the reference photos' blendshape scores",
    "reference_pose": "float32 (N, R, 4, 4): the reference photos' transformation matrices",
}


def deployable(trained: FaceModel) -> FaceModel:
    """The model itself, refused when its preprocessing cannot run in a graph."""
    if trained.normalization not in IN_GRAPH_NORMALIZATIONS:
        raise EmotionError(
            f"{trained.description} uses data.normalization={trained.normalization}, whose "
            "alignment (an SVD) has no ONNX operator",
            "use emotion-predict with the checkpoint, or export a model trained with "
            f"one of {IN_GRAPH_NORMALIZATIONS}",
        )
    return trained.eval()


def input_names(module: Deployable) -> list[str]:
    """The inputs the model reads, in INPUTS order: [landmarks [, image_size]]
    [, reference_landmarks [, reference_image_size]] [, blendshapes] [, pose] and their
    references."""
    recipe, baseline = module.preprocessing, module.uses_baseline
    size = recipe.uses_image_size
    wanted = {
        "landmarks": recipe.uses_landmarks,
        "image_size": size,
        "reference_landmarks": baseline and recipe.uses_landmarks,
        "reference_image_size": baseline and size,
        "blendshapes": recipe.uses_blendshapes,
        "pose": recipe.uses_pose,
        "reference_blendshapes": baseline and recipe.uses_blendshapes,
        "reference_pose": baseline and recipe.uses_pose,
    }
    return [name for name, used in wanted.items() if used]


def example_inputs(
    module: Deployable, rows: int, seed: int = 0, references: int = 2
) -> dict[str, torch.Tensor]:
    """Random raw landmarks shaped like FaceMesh's output (x, y in [0, 1], small z), by name."""
    generator = torch.Generator().manual_seed(seed)

    def landmarks(*shape: int) -> torch.Tensor:
        points = torch.rand(*shape, NUM_LANDMARKS, NUM_COORDS, generator=generator)
        points[..., 2] = (points[..., 2] - 0.5) * 0.2
        return points

    def sizes(*shape: int) -> torch.Tensor:
        return torch.randint(240, 4000, (*shape, 2), generator=generator).float()

    def scores(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, 52, generator=generator)

    def poses(*shape: int) -> torch.Tensor:
        """Rotations (from random unit quaternions) with a translation, as FaceLandmarker's."""
        quaternion = torch.randn(*shape, 4, generator=generator)
        w, x, y, z = (quaternion / quaternion.norm(dim=-1, keepdim=True)).unbind(-1)
        rotation = torch.stack(
            [
                torch.stack(
                    [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1
                ),
                torch.stack(
                    [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1
                ),
                torch.stack(
                    [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1
                ),
            ],
            -2,
        )
        matrix = torch.zeros(*shape, 4, 4)
        matrix[..., :3, :3] = rotation
        matrix[..., :3, 3] = torch.randn(*shape, 3, generator=generator) * 10
        matrix[..., 3, 3] = 1
        return matrix

    made = {
        "landmarks": lambda: landmarks(rows),
        "image_size": lambda: sizes(rows),
        "reference_landmarks": lambda: landmarks(rows, references),
        "reference_image_size": lambda: sizes(rows, references),
        "blendshapes": lambda: scores(rows),
        "pose": lambda: poses(rows),
        "reference_blendshapes": lambda: scores(rows, references),
        "reference_pose": lambda: poses(rows, references),
    }
    return {name: made[name]() for name in input_names(module)}


def dynamic_shapes(module: Deployable, min_batch: int = 1) -> dict[str, Any]:
    """A dynamic batch axis on every input, and a dynamic count of reference photos."""
    batch = torch.export.Dim("batch", min=min_batch)
    references = torch.export.Dim("references", min=1)
    return {
        name: {0: batch, 1: references} if name.startswith("reference") else {0: batch}
        for name in input_names(module)
    }


def export_onnx(
    module: Deployable, path: Path, class_names: list[str], trained_on_synthetic: bool = False
) -> None:
    """Dynamo-based torch.onnx.export with dynamic axes; class names in the metadata."""
    import onnx

    silence_known_notices()  # again: a caller (pytest, say) may have reset warning filters
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            module,
            (),
            str(path),
            kwargs=example_inputs(module, 2),
            input_names=input_names(module),
            output_names=["probabilities"],
            dynamic_shapes=dynamic_shapes(module),
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
            "features": module.preprocessing.feature_set,
            "baseline": module.baseline,
            "extractor": json.dumps(module.extractor),
            "inputs": "; ".join(f"{name}: {INPUTS[name]}" for name in input_names(module)),
            "output": "probabilities float32 (N, C), softmax, in class_names order"
            + (NO_REFERENCE if module.uses_baseline else ""),
        },
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def max_difference_onnxruntime(module: Deployable, path: Path, rows: int) -> float:
    """Largest |onnxruntime - torch| over the probabilities of `rows` random inputs; inf when
    either side gives a non-finite value (NaN compares false with any tolerance)."""
    import onnxruntime

    inputs = example_inputs(module, rows, seed=1, references=3)
    with torch.no_grad():
        expected = module(**inputs).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {name: tensor.numpy() for name, tensor in inputs.items()}
    (got,) = session.run(["probabilities"], feeds)
    if not (np.isfinite(got).all() and np.isfinite(expected).all()):
        return float("inf")
    return float(np.abs(got - expected).max())


def export_torch(module: Deployable, path: Path) -> None:
    """torch.export's ExportedProgram (.pt2), the successor of TorchScript."""
    shapes = dynamic_shapes(module, min_batch=2)
    program = torch.export.export(
        module, (), kwargs=example_inputs(module, 2), dynamic_shapes=shapes
    )
    torch.export.save(program, str(path))


def export(
    model: Path | str | Sequence[str],
    output: Path | None = None,
    *,
    with_torch_export: bool = False,
    tolerance: float = TOLERANCE,
) -> dict[str, Any]:
    """Write the ONNX file (+ optional .pt2) and a JSON sidecar; return the sidecar."""
    # NaN passes no comparison, so a NaN tolerance would refuse every graph after the export.
    check_ranges(
        [
            (
                "--tolerance",
                tolerance,
                0 < tolerance <= 1,
                f"a largest |difference| of probabilities in (0, 1], e.g. {TOLERANCE:g}",
            )
        ]
    )
    if output is not None and output.suffix.lower() != ".onnx":
        raise EmotionError(
            f"--output {output} must end in .onnx: the .json sidecar and the .pt2 are written "
            "beside it under the same name, and would overwrite the graph",
            f"e.g. --output {output.with_suffix('.onnx')}",
        )
    if output is not None:
        check_writable(output)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise EmotionError(
            f"ONNX export needs onnx and onnxruntime ({error})",
            "pip install -e '.[export]'",
        ) from None
    trained = load_model(str(model) if isinstance(model, Path) else model)
    check_current_extractor(trained)
    if output is None:
        base = trained.run_dir if trained.run_dir else trained.checkpoints[0].resolve().parent
        name = "ensemble.onnx" if trained.is_ensemble else "model.onnx"
        output = base / "export" / name
        check_writable(output)
    module = deployable(trained)
    if trained.trained_on_synthetic:
        warn_synthetic(trained.description)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
    )
    try:
        graph = staging / output.name
        export_onnx(module, graph, trained.class_names, trained.trained_on_synthetic)
        difference = max_difference_onnxruntime(module, graph, CHECK_ROWS)
        if not difference <= tolerance:
            raise EmotionError(
                f"the ONNX graph differs from torch by {difference:.2e} > {tolerance:.0e}; "
                "not kept",
                "report this as a bug (opset or onnxruntime version)",
            )
        info = sidecar(trained, output, difference, tolerance, graph_bytes=graph.stat().st_size)
        if with_torch_export:
            pt2 = output.with_suffix(".pt2")
            export_torch(module, staging / pt2.name)
            info["torch_export"] = str(pt2)
            info["torch_export_bytes"] = (staging / pt2.name).stat().st_size
            os.replace(staging / pt2.name, pt2)
        os.replace(graph, output)
        write_json_atomic(output.with_suffix(".json"), info)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info


def check_writable(output: Path) -> None:
    """Refuse, before the export's work, an output folder that cannot be written."""
    problem = write_problem(output.parent)
    if problem:
        raise EmotionError(
            f"cannot write --output {output}: {problem}",
            "choose a folder you can write to (--output DIR/model.onnx), or make this one writable",
        )


def sidecar(
    trained: FaceModel,
    output: Path,
    difference: float,
    tolerance: float,
    graph_bytes: int | None = None,
) -> dict[str, Any]:
    """`<model>.json`: what the graph takes and gives, what it was made from, its check."""
    ensemble = trained.is_ensemble
    inputs = {name: INPUTS[name] for name in input_names(deployable(trained))}
    return {
        "checkpoint": trained.description,
        "ensemble": [str(path) for path in trained.checkpoints] if ensemble else None,
        "temperature": [member.temperature for member in members_of(trained)],
        "onnx": str(output),
        "onnx_bytes": output.stat().st_size if graph_bytes is None else graph_bytes,
        "opset": OPSET,
        "class_names": trained.class_names,
        "trained_on_synthetic": trained.trained_on_synthetic,
        "inputs": inputs,
        "output": "probabilities float32 (N, C), softmax, in class_names order"
        + (" (the mean over the ensemble's members)" if ensemble else "")
        + (NO_REFERENCE if trained.preprocessing.uses_baseline else ""),
        "normalization": trained.normalization,
        "aspect_correction": trained.aspect_correction,
        "baseline": trained.preprocessing.to_record(),
        "check": {
            "runtime": "onnxruntime CPUExecutionProvider",
            "rows": CHECK_ROWS,
            "max_abs_difference": difference,
            "tolerance": tolerance,
        },
    }
