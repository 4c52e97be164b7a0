"""`python -m emotion.bench cv`: a small store's cross-validation, end to end, against the
bare loop.

The framework runs a 5-fold x 1-seed `experiment=seed_reference` cross-validation through one
`emotion-train -m ... launcher=joblib` command; the bare loop is
`../shared/tools/reference_recipe.py cv` on the same store (every non-test person trains 200
epochs, the final model is kept). Both are timed as a user meets them, start-up included,
in the same run, alternating. Also timed: a 4-job sweep (folds 0-3) through the joblib and the
basic launcher (one job after another), for what the parallel launcher buys. The store is
the real-face sample, extracted first (not timed), when `../shared/data/aihub_sample` is
there; else a SYNTHETIC one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
SAMPLE = SHARED / "data" / "aihub_sample"
REFERENCE = SHARED / "tools" / "reference_recipe.py"
FOLDS = 5
SWEEP_JOBS = 4
TARGET = 1.5
SWEEP_TARGET = 0.75


def console(name: str) -> str:
    """A console script of this environment."""
    return str(Path(sys.executable).parent / name)


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command[:4])} ... failed:\n{done.stderr[-3000:]}")
    return seconds


def make_store(work: Path) -> tuple[Path, str]:
    """The store both sides read, and what it is."""
    store = work / "store.h5"
    if SAMPLE.is_dir():
        command = [console("emotion-extract"), f"source.root={SAMPLE}", f"output={store}"]
        timed(command, work)
        return store, "the real-face sample (../shared/data/aihub_sample), extracted"
    timed([console("emotion-synth"), "--subjects", "10", "--output", str(store)], work)
    return store, "SYNTHETIC (10 invented people): ../shared is absent"


def framework(store: Path, work: Path, launcher: str, round_: int, jobs: int = FOLDS) -> float:
    sweep = f"{launcher}-{jobs}-{round_}"
    command = [
        console("emotion-train"),
        "-m",
        *([f"launcher={launcher}"] if launcher != "basic" else ["threads=1"]),
        "experiment=seed_reference",
        "data=store",
        f"data.path={store}",
        "data.split_strategy=kfold",
        f"data.num_folds={FOLDS}",
        f"data.fold={','.join(str(fold) for fold in range(jobs))}",
        "seed=1",
        "progress_bar=none",
        f"sweep_name={sweep}",
    ]
    seconds = timed(command, work)
    found = list((work / "outputs" / "train" / "multiruns" / sweep).glob("*/metrics.json"))
    if len(found) != jobs:
        raise SystemExit(f"error: the {launcher} sweep wrote {len(found)} of {jobs} runs")
    return seconds


def reference(store: Path, work: Path) -> float:
    command = [sys.executable, str(REFERENCE), "cv", str(store), "--folds", str(FOLDS)]
    return timed([*command, "--seeds", "1"], work)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median_s": round(statistics.median(values), 2),
        "rounds_s": [round(v, 2) for v in values],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emotion.bench cv", description=__doc__)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (median)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench/cv.json"))
    parser.add_argument("--no-basic", action="store_true", help="skip the 4-job comparison")
    args = parser.parse_args(argv)
    if not REFERENCE.is_file():
        print(f"skipped: no bare loop at {REFERENCE}", file=sys.stderr)
        return
    load_at_start = os.getloadavg()
    times: dict[str, list[float]] = {"reference": [], "joblib": [], "joblib4": [], "basic4": []}
    with tempfile.TemporaryDirectory(prefix="bench-cv-") as folder:
        work = Path(folder)
        store, data = make_store(work)
        for round_ in range(args.rounds):
            times["reference"].append(reference(store, work))
            times["joblib"].append(framework(store, work, "joblib", round_))
            if not args.no_basic:
                times["joblib4"].append(framework(store, work, "joblib", round_, SWEEP_JOBS))
                times["basic4"].append(framework(store, work, "basic", round_, SWEEP_JOBS))
    medians = {name: statistics.median(values) for name, values in times.items() if values}
    ratio = medians["joblib"] / medians["reference"]
    result: dict[str, Any] = {
        "benchmark": "cv",
        "data": data,
        "sweep": f"{FOLDS} folds x 1 seed, experiment=seed_reference (200 epochs)",
        "reference": summary(times["reference"]),
        "framework_joblib": summary(times["joblib"]),
        "joblib_vs_bare_loop": round(ratio, 3),
        "target": f"<= {TARGET}x the bare loop",
        "met": ratio <= TARGET,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": [round(load, 2) for load in load_at_start],
            "load_average_at_end": [round(load, 2) for load in os.getloadavg()],
        },
    }
    if times["basic4"]:
        sweep_ratio = medians["joblib4"] / medians["basic4"]
        result["sweep_4_jobs"] = {
            "joblib": summary(times["joblib4"]),
            "basic": summary(times["basic4"]),
            "joblib_vs_basic": round(sweep_ratio, 3),
            "target": f"<= {SWEEP_TARGET}x the basic launcher",
            "met": sweep_ratio <= SWEEP_TARGET,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
