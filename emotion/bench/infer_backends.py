"""The model-speed half of the inference benchmark (emotion.bench.infer): the deployable model
in torch eager, torch.compile and onnxruntime, single-sample latency and batch throughput.

Kept apart from the command line and the end-to-end predict rate so each module stays small.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotion.export.onnx import deployable, example_inputs, export_onnx
from emotion.inference.trained import load_trained

TorchRunner = Callable[[Callable[[torch.Tensor], torch.Tensor]], dict[str, Any]]


def reference_checkpoint(path: Path, baseline: str = "none") -> Path:
    """A reference-size checkpoint with random weights and the default preprocessing (with
    `baseline`, a personal-baseline model of the same size)."""
    from emotion.checkpoint import DATA_SETTINGS_KEY, PREPROCESSING_KEY
    from emotion.facemesh.landmarker import extractor_identity
    from emotion.models.classifier import LandmarkClassifier
    from emotion.store.schema import SCHEMA_VERSION

    torch.manual_seed(0)
    model = LandmarkClassifier(["neutral", "anxious"])
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            PREPROCESSING_KEY: {
                "store_schema_version": SCHEMA_VERSION,
                "normalization": "nose_unit",
                "aspect_correction": False,
                "baseline": baseline,
            },
            # Random weights, but faces of today's extractor: predict and serve read photos.
            DATA_SETTINGS_KEY: {"extractor": extractor_identity()},
        },
        path,
    )
    return path


def latency(call: Callable[[], Any], iterations: int, warmup: int = 50) -> dict[str, float]:
    """Per-call wall time in milliseconds: p50, p99, mean."""
    for _ in range(warmup):
        call()
    times = np.empty(iterations)
    for index in range(iterations):
        started = time.perf_counter_ns()
        call()
        times[index] = time.perf_counter_ns() - started
    times /= 1e6
    return {
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
        "mean_ms": float(times.mean()),
        "iterations": iterations,
    }


def throughput(call: Callable[[], Any], rows: int, iterations: int) -> dict[str, float]:
    """Rows per second over `iterations` calls on a batch of `rows`, after one warm-up call."""
    call()
    started = time.perf_counter()
    for _ in range(iterations):
        call()
    seconds = time.perf_counter() - started
    return {"rows_per_s": rows * iterations / seconds, "batch": rows, "iterations": iterations}


def bench_backends(
    ckpt: Path,
    workdir: Path,
    single_iterations: int,
    batch: int,
    batch_iterations: int,
    compile_model: bool,
) -> dict[str, Any]:
    """Latency and throughput of the checkpoint's deployable model in each backend."""
    trained = load_trained(ckpt)
    module = deployable(trained)
    one = example_inputs(module, 1)["landmarks"]
    many = example_inputs(module, batch)["landmarks"]
    results: dict[str, Any] = {}

    def torch_runner(model: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, Any]:
        with torch.inference_mode():
            return {
                "single": latency(lambda: model(one), single_iterations),
                "batch": throughput(lambda: model(many), batch, batch_iterations),
            }

    results["torch_eager"] = torch_runner(module)
    if compile_model:
        results["torch_compiled"] = _bench_compiled(module, one, many, torch_runner)
    else:
        results["torch_compiled"] = {"skipped": "--no-compile"}
    results["onnxruntime"] = _bench_onnxruntime(
        module,
        trained.class_names,
        workdir,
        one,
        many,
        single_iterations,
        batch,
        batch_iterations,
    )
    return results


def _bench_compiled(
    module: torch.nn.Module, one: torch.Tensor, many: torch.Tensor, torch_runner: TorchRunner
) -> dict[str, Any]:
    """The torch.compile'd module (compile time included), or why compiling failed."""
    try:
        started = time.perf_counter()
        compiled = torch.compile(module, dynamic=False)
        with torch.inference_mode():
            compiled(one)
            compiled(many)
        compile_s = time.perf_counter() - started
        return {**torch_runner(compiled), "compile_s": compile_s}
    except Exception as error:  # inductor needs a working C compiler and more
        return {"skipped": f"{type(error).__name__}: {error}"[:300]}


def _bench_onnxruntime(
    module: torch.nn.Module,
    class_names: list[str],
    workdir: Path,
    one: torch.Tensor,
    many: torch.Tensor,
    single_iterations: int,
    batch: int,
    batch_iterations: int,
) -> dict[str, Any]:
    """The module exported to ONNX, on onnxruntime's CPU provider; skipped if not installed."""
    try:
        import onnxruntime
    except ImportError:
        return {"skipped": "onnxruntime is not installed (pip install -e '.[export]')"}
    onnx_path = workdir / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(module, onnx_path, class_names)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(onnx_path), options, providers=["CPUExecutionProvider"]
    )
    one_np, many_np = one.numpy(), many.numpy()
    return {
        "single": latency(lambda: session.run(None, {"landmarks": one_np}), single_iterations),
        "batch": throughput(
            lambda: session.run(None, {"landmarks": many_np}), batch, batch_iterations
        ),
        "onnx_bytes": onnx_path.stat().st_size,
        "version": onnxruntime.__version__,
    }


def bench_baseline_graph(
    workdir: Path, iterations: int, rounds: int = 5, references: int = 1
) -> dict[str, Any]:
    """Deployment cost of the personal baseline: single-sample onnxruntime latency of the
    enrolled graph (the photo and `references` reference photos in, both normalised in the
    graph) against the single-photo graph, the same reference-size network, alternating
    rounds in one process. The figure is the ratio of the medians of the rounds' p50s."""
    try:
        import onnxruntime
    except ImportError:
        return {"skipped": "onnxruntime is not installed (pip install -e '.[export]')"}
    sessions, feeds = {}, {}
    for name, baseline in (("single_photo", "none"), ("enrolled", "enrolled")):
        path = reference_checkpoint(workdir / f"{name}.ckpt", baseline=baseline)
        module = deployable(load_trained(path))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(module, workdir / f"{name}.onnx", ["neutral", "anxious"])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        sessions[name] = onnxruntime.InferenceSession(
            str(workdir / f"{name}.onnx"), options, providers=["CPUExecutionProvider"]
        )
        inputs = example_inputs(module, 1, references=references)
        feeds[name] = {key: value.numpy() for key, value in inputs.items()}
    p50: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, session in sessions.items():
            timed = latency(lambda s=session, f=feeds[name]: s.run(None, f), iterations)
            p50[name].append(timed["p50_ms"])
    medians = {name: float(np.median(values)) for name, values in p50.items()}
    return {
        "references_per_row": references,
        "rounds": rounds,
        "iterations_per_round": iterations,
        "p50_ms_per_round": p50,
        "p50_ms_median": medians,
        "enrolled_x_single_photo": medians["enrolled"] / medians["single_photo"],
    }
