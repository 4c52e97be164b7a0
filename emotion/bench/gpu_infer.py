"""Inference of the exported reference-size model on the benchmark's device: onnxruntime's
CUDA execution provider when onnxruntime offers it, otherwise torch on the device. Latency
is one row per call (host arrays in, probabilities back on the host); throughput a batch."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from emotion.bench.infer_backends import latency, reference_checkpoint, throughput
from emotion.export.onnx import deployable, example_inputs, export_onnx
from emotion.inference.trained import load_trained

CUDA_PROVIDER = "CUDAExecutionProvider"


def onnxruntime_providers() -> list[str]:
    """What the installed onnxruntime can run on (empty when it is not installed)."""
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def bench_inference(
    device: torch.device, workdir: Path, iterations: int, batch: int, batch_iterations: int
) -> dict[str, Any]:
    """Single-row latency (p50, p99) and batch throughput, with the backend that ran them."""
    trained = load_trained(reference_checkpoint(workdir / "reference.ckpt"))
    module = deployable(trained)
    one = example_inputs(module, 1)["landmarks"]
    many = example_inputs(module, batch)["landmarks"]
    providers = onnxruntime_providers()
    if device.type == "cuda" and CUDA_PROVIDER in providers:
        backend, calls = _onnxruntime_cuda(module, trained.class_names, workdir, one, many)
    else:
        backend, calls = _torch_on(device, module, one, many)
    single, batched = calls
    return {
        "backend": backend,
        "onnxruntime_providers": providers,
        "model": "seed_reference size (random weights), raw landmarks in, probabilities out",
        "single": latency(single, iterations),
        "batch": throughput(batched, batch, batch_iterations),
    }


Calls = tuple[Callable[[], Any], Callable[[], Any]]


def _onnxruntime_cuda(
    module: torch.nn.Module,
    class_names: list[str],
    workdir: Path,
    one: torch.Tensor,
    many: torch.Tensor,
) -> tuple[str, Calls]:
    """The exported graph on onnxruntime's CUDA provider (inputs copied from the host)."""
    import onnxruntime

    path = workdir / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(module, path, class_names)
    session = onnxruntime.InferenceSession(str(path), providers=[CUDA_PROVIDER])
    one_np, many_np = one.numpy(), many.numpy()
    return f"onnxruntime {onnxruntime.__version__} {CUDA_PROVIDER}", (
        lambda: session.run(None, {"landmarks": one_np}),
        lambda: session.run(None, {"landmarks": many_np}),
    )


def _torch_on(
    device: torch.device, module: torch.nn.Module, one: torch.Tensor, many: torch.Tensor
) -> tuple[str, Calls]:
    """The same module in torch eager on the device; each call waits for its result."""
    module = module.to(device).eval()

    def run(rows: torch.Tensor) -> Callable[[], Any]:
        def call() -> Any:
            with torch.inference_mode():
                return module(rows.to(device)).cpu()

        return call

    return f"torch {torch.__version__} eager on {device.type}", (run(one), run(many))
