"""`python -m emotion.bench gpu`: training and inference on one accelerator, in one run.

On one SYNTHETIC store (the default generator), in one process, with the data resident on
the device: samples/s of seed_reference training through the framework against a bare
PyTorch loop (alternating rounds, timed after a warm-up epoch), where a step's time goes,
larger batches at a scaled learning rate, and inference latency and throughput. Every figure
is a rate or a ratio measured in this run; the JSON is rewritten after each section, so a run
cut short still leaves what it measured. docs/gpu.md says what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch

from emotion.bench.gpu_infer import bench_inference
from emotion.bench.gpu_loops import (
    BASE_BATCH,
    bare_run,
    batch_scaling,
    framework_run,
    precision_for,
)
from emotion.bench.gpu_timing import split_summary
from emotion.bench.train import REFERENCE
from emotion.data.batches import stages_on_device
from emotion.data.datamodule import LandmarkDataModule
from emotion.errors import EmotionError, exit_on_user_error
from emotion.store.io import write_store
from emotion.synthetic.generate import generate
from emotion.synthetic.settings import SyntheticSettings

NOISE_STD = 0.002  # seed_reference's coordinate noise
TARGET_RATIO = 0.9  # framework samples/s at least this share of the bare loop's
TARGET_OTHER_SHARE = 0.15  # share of a framework step outside forward/backward/optimizer
SECTIONS = ("training", "step_split", "batch_scaling", "inference")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emotion.bench gpu", description=__doc__)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--samples", type=int, default=100_000, help="synthetic rows generated")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per run and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating framework/bare runs")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[1024, 4096, 16384], help="besides 256"
    )
    parser.add_argument("--scaling-epochs", type=int, default=9, help="timed, after a warm-up")
    parser.add_argument("--lr-cap", type=float, default=8e-3, help="cap of the scaled lr")
    parser.add_argument("--infer-iterations", type=int, default=2000)
    parser.add_argument("--infer-batch", type=int, default=4096)
    parser.add_argument("--infer-batch-iterations", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--output", type=Path, default=Path("outputs/bench/gpu.json"))
    return parser


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    device = chosen_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = header(args, device)
    with tempfile.TemporaryDirectory() as scratch:
        failed = run_sections(args, device, Path(scratch), result)
    print(json.dumps({"targets": result["targets"]}))
    print(f"wrote {args.output}")
    if failed:
        print(f"failed sections: {failed} (their errors are in the JSON)", file=sys.stderr)
        sys.exit(1)


def chosen_device(name: str) -> torch.device:
    """The device asked for; CUDA only when torch can see one."""
    if name == "cuda" and not torch.cuda.is_available():
        raise EmotionError(
            "--device cuda, but torch sees no CUDA device "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})",
            "run it on a machine with an NVIDIA GPU and a CUDA build of torch, "
            "or pass --device cpu to check the script itself",
        )
    return torch.device(name)


def header(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """What was run, on what, and the sections still to come (null until measured)."""
    return {
        "benchmark": "gpu",
        "data": f"SYNTHETIC landmarks (emotion.synthetic default generator, seed 0), "
        f"{args.samples} rows",
        "machine": machine(device),
        "settings": {key: str(value) for key, value in vars(args).items()},
        "model": {"recipe": "experiment=seed_reference", **REFERENCE},
        "precision": precision_for(device),
        "data_resident_on_device": True,
        **{section: None for section in SECTIONS},
        "targets": targets(None, None),
        "seconds": {},
    }


def machine(device: torch.device) -> dict[str, Any]:
    """The device's name, the software, and how busy the host was."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "device": device.type,
        "device_name": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "lightning": L.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": list(os.getloadavg()),
    }


def cpu_name() -> str:
    """The processor's model name where Linux tells it, else what platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def run_sections(
    args: argparse.Namespace, device: torch.device, workdir: Path, result: dict[str, Any]
) -> list[str]:
    """The store, then each section in turn, the JSON rewritten after each. A section that
    fails is recorded as its error and the rest still run; returns the failed sections."""
    started = time.perf_counter()
    store = generate(SyntheticSettings(num_frames=args.samples, seed=0))
    path = write_store(workdir / "bench.h5", store)
    result["seconds"]["generate"] = time.perf_counter() - started
    sections: dict[str, Callable[[], dict[str, Any]]] = {
        "training": lambda: training_sections(args, device, path, workdir),
        "batch_scaling": lambda: scaling_section(args, device, path, workdir),
        "inference": lambda: {
            "inference": bench_inference(
                device,
                workdir,
                args.infer_iterations,
                args.infer_batch,
                args.infer_batch_iterations,
            )
        },
    }
    failed = []
    for name, section in sections.items():
        started = time.perf_counter()
        try:
            result.update(section())
        except Exception as error:  # one broken section must not cost the others' figures
            traceback.print_exc()
            result[name] = {"error": f"{type(error).__name__}: {error}"[:500]}
            failed.append(name)
        result["seconds"][name] = time.perf_counter() - started
        finish(result, device, args.output)
    return failed


def training_sections(
    args: argparse.Namespace, device: torch.device, path: Path, workdir: Path
) -> dict[str, Any]:
    """Framework and bare runs alternating: their samples/s and the step split of each."""
    data = LandmarkDataModule(
        str(path),
        noise_std=NOISE_STD,
        batch_size=BASE_BATCH,
        seed=0,
        val_fraction=0.0,
        resident="true",
    )
    data.setup()
    rows = stages_on_device({"train": data.rows("train")}, device)["train"]
    framework, bare = [], []
    for index in range(args.rounds):
        log_dir = workdir / f"round{index}"
        framework.append(framework_run(data, device, args.epochs, log_dir, seed=index))
        bare.append(
            bare_run(rows, data.num_classes, device, args.epochs, BASE_BATCH, NOISE_STD, index)
        )
        print(
            f"round {index}: framework {framework[-1].samples_per_s:,.0f} samples/s, "
            f"bare {bare[-1].samples_per_s:,.0f}"
        )
    framework_rates = [run.samples_per_s for run in framework]
    bare_rates = [run.samples_per_s for run in bare]
    training = {
        "batch_size": BASE_BATCH,
        "noise_std": NOISE_STD,
        "train_rows": len(rows),
        "timed_epochs_per_run": args.epochs,
        "framework_samples_per_s": framework_rates,
        "bare_samples_per_s": bare_rates,
        "median_framework_samples_per_s": statistics.median(framework_rates),
        "median_bare_samples_per_s": statistics.median(bare_rates),
        "ratio_framework_over_bare": statistics.median(framework_rates)
        / statistics.median(bare_rates),
    }
    step_split = {
        "framework": split_summary([run.split for run in framework]),
        "bare": split_summary([run.split for run in bare]),
        "phases": "forward: the network; backward: loss.backward(); optimizer: AdamW's step; "
        "other: the rest of the epoch (indexing, noise, loss, hooks, logging, metrics, gaps)",
    }
    return {"training": training, "step_split": step_split}


def scaling_section(
    args: argparse.Namespace, device: torch.device, path: Path, workdir: Path
) -> dict[str, Any]:
    """Larger batches on the official split (validation people carved from training)."""
    data = LandmarkDataModule(str(path), noise_std=NOISE_STD, seed=0, resident="true")
    data.setup()
    runs = batch_scaling(
        data, device, args.batch_sizes, args.scaling_epochs, args.lr_cap, workdir / "scaling"
    )
    return {
        "batch_scaling": {
            "lr_rule": f"lr = 1e-3 * batch_size / 256, at most {args.lr_cap:g} (linear scaling "
            "from seed_reference, capped); every other setting as seed_reference",
            "split": "official: validation people carved from training (val_fraction 0.15)",
            "train_rows": len(data.rows("train")),
            "val_rows": len(data.rows("val")),
            "runs": runs,
        }
    }


def targets(
    training: dict[str, Any] | None, step_split: dict[str, Any] | None
) -> dict[str, bool | None]:
    """The issue's targets as booleans; None where the figure was not measured."""
    ratio = (training or {}).get("ratio_framework_over_bare")
    other = (step_split or {}).get("framework", {}).get("other_share")
    return {
        f"framework_at_least_{TARGET_RATIO}x_bare": None
        if ratio is None
        else ratio >= TARGET_RATIO,
        f"framework_other_share_under_{TARGET_OTHER_SHARE}": None
        if other is None
        else other < TARGET_OTHER_SHARE,
    }


def finish(result: dict[str, Any], device: torch.device, output: Path) -> None:
    """Targets, load and peak memory as they stand; the JSON written (atomically)."""
    result["targets"] = targets(result["training"], result["step_split"])
    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    if device.type == "cuda":
        result["machine"]["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".json.partial")
    partial.write_text(json.dumps(result, indent=2) + "\n")
    partial.replace(output)


if __name__ == "__main__":
    main()
