"""`python -m emotion.bench live`: does the live page's score move from a real person's
neutral face to their anxious face, once calibrated? The README's first screen promises it
(`make live`), so this checks it as a user meets it: `emotion-serve` on loopback, headless
Chromium with a fake camera, the page's own landmarker, its Calibrate button.

For each person of the real-face sample (AI Hub's layout; skipped when absent) with at least
two neutral photos and one anxious photo, three camera sessions in one browser profile's
storage: the first neutral photo while the page calibrates (its rest face is kept by the
page, as across reloads), then the second neutral photo, then the first anxious photo, each
scored for a few seconds (the median of the page's scores). The same faces through the
Python API (`emotion.load`, `enroll`, `predict`) cross-check the page, and the run that reads
each face alone (`make train`'s) is the baseline measured in the same run: the score a user
saw before calibration existed.

The people are the sample's; their photos never leave this machine and are not written out
(only their sources and scores are).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emotion.bench.chromium import CHROMEDRIVER, CHROMIUM, chromium, still_camera, wait_until
from emotion.bench.serve_server import Server, load_average

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "emotion" / "serve" / "static" / "vendor" / "versions.json"
DEFAULT_ROOT = ROOT.parent / "shared" / "data" / "aihub_sample"
DEFAULT_OUTPUT = Path("outputs/bench/live.json")
STORE_KEY = "emotion.reference"
PERSON = re.compile(r"^([^_]+)_")
LOOK = """
return {...(window.emotionState || {}),
  calibrate_enabled: !document.getElementById('calibrate').disabled,
  stored: localStorage.getItem('emotion.reference')};
"""


@dataclass
class Person:
    """One person's photos by class, sorted by source: (source, RGB)."""

    name: str
    neutral: list[tuple[str, np.ndarray]] = field(default_factory=list)
    anxious: list[tuple[str, np.ndarray]] = field(default_factory=list)


def people(root: Path) -> list[Person]:
    """Everyone with two neutral photos and an anxious one, read as the extractor reads them
    (AI Hub's archives, class from the archive's name, person from the file name)."""
    from emotion.extract.labels import emotion_of_path
    from emotion.extract.sources import ContainerError, aihub_containers, list_members
    from emotion.facemesh.decode import UndecodableImage, decode_upright

    found: dict[str, Person] = {}
    for container in aihub_containers(root):
        emotion = emotion_of_path(container.name)
        if container.kind != "zip" or emotion not in ("neutral", "anxious"):
            continue
        try:
            members = [m for m in list_members(container) if m.kind == "image"]
        except ContainerError:
            continue
        with zipfile.ZipFile(container.path) as archive:
            for member in members:
                match = PERSON.match(member.file_name)
                if not match:
                    continue
                try:
                    rgb = decode_upright(archive.read(member.key), "auto")[0]
                except UndecodableImage:
                    continue
                person = found.setdefault(match.group(1), Person(match.group(1)))
                getattr(person, emotion).append((f"{container.name}::{member.name}", rgb))
    chosen = []
    for person in sorted(found.values(), key=lambda p: p.name):
        person.neutral.sort(key=lambda item: item[0])
        person.anxious.sort(key=lambda item: item[0])
        if len(person.neutral) >= 2 and person.anxious:
            chosen.append(person)
    return chosen


def _look(driver: Any) -> dict[str, Any]:
    return driver.execute_script(LOOK)


def _wait(driver: Any, test: Any, what: str, timeout: float = 60.0) -> dict[str, Any]:
    return wait_until(driver, _look, test, what, timeout)


def _watch(driver: Any, seconds: float) -> list[float]:
    """The page's per-frame scores over `seconds` (one per reply)."""
    scores, last_frame, end = [], -1, time.monotonic() + seconds
    while time.monotonic() < end:
        shown = _look(driver)
        if shown.get("frames") != last_frame and shown.get("lastScore") is not None:
            scores.append(float(shown["lastScore"]))
            last_frame = shown["frames"]
        time.sleep(0.05)
    return scores


def calibrate(url: str, video: Path) -> tuple[str, list[float]]:
    """Open the page on `video`, press Calibrate, wait for the rest face; returns what the
    page keeps of it, and the scores of the calibrated face itself."""
    with chromium(video) as driver:
        driver.get(url)
        _wait(
            driver,
            lambda s: (
                s.get("mode") == "landmarks"
                and s.get("status") == "no_reference"
                and s["calibrate_enabled"]
            ),
            "a face to calibrate on",
            120,
        )
        driver.execute_script("document.getElementById('calibrate').click();")
        shown = _wait(driver, lambda s: s["calibrated"] and s["stored"], "a rest face", 30)
        return shown["stored"], _watch(driver, 3.0)


def scored(url: str, video: Path, stored: str, seconds: float) -> list[float]:
    """The page's scores of `video` with the rest face `stored` already kept, as a reload
    after calibration finds it."""
    keep = f"localStorage.setItem({json.dumps(STORE_KEY)}, {json.dumps(stored)});"
    with chromium(video, keep) as driver:
        driver.get(url)
        _wait(
            driver,
            lambda s: s.get("calibrated") and s.get("status") == "ok",
            "a calibrated score",
            120,
        )
        return _watch(driver, seconds)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def check_person(
    person: Person, url: str, calibrated: Any, plain: Any, workdir: Path, seconds: float
) -> dict[str, Any]:
    """One person: the page's scores after calibration, the API's, and the plain model's."""
    (rest_source, rest), (neutral_source, neutral) = person.neutral[0], person.neutral[1]
    anxious_source, anxious = person.anxious[0]
    stored, on_rest = calibrate(url, still_camera(workdir / "rest.y4m", rest))
    page = {
        "rest_photo": median(on_rest),
        "neutral": median(scored(url, still_camera(workdir / "n.y4m", neutral), stored, seconds)),
        "anxious": median(scored(url, still_camera(workdir / "a.y4m", anxious), stored, seconds)),
    }
    calibrated.enroll([rest])
    api = {
        "neutral": calibrated.predict(neutral).score,
        "anxious": calibrated.predict(anxious).score,
    }
    before = {"neutral": plain.predict(neutral).score, "anxious": plain.predict(anxious).score}
    return {
        "person": person.name[:12],
        "sources": {"rest": rest_source, "neutral": neutral_source, "anxious": anxious_source},
        "page_after_calibration": page,
        "api_after_calibration": api,
        "plain_model": before,
        "moved": _moved(page),
        "moved_plain": _moved(before),
    }


def _moved(scores: dict[str, float | None]) -> float | None:
    if scores["anxious"] is None or scores["neutral"] is None:
        return None
    return float(scores["anxious"]) - float(scores["neutral"])


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import emotion

    chosen = people(args.root)[: args.people]
    if not chosen:
        refuse(
            f"no person with two neutral photos and an anxious one in {args.root}",
            "pass --root with photos in AI Hub's layout (중립 and 불안 archives)",
        )
    calibrated, plain = emotion.load(str(args.run)), emotion.load(str(args.plain))
    load_at_start, started = load_average(), time.monotonic()
    rows = []
    with Server(args.run, "--workers", "1", log=workdir / "serve.log") as server:
        url = f"http://127.0.0.1:{server.port}/"
        for person in chosen:
            rows.append(check_person(person, url, calibrated, plain, workdir, args.seconds))
            print(f"  {rows[-1]['person']}: page {rows[-1]['page_after_calibration']}", flush=True)
    moved = [row["moved"] for row in rows if row["moved"] is not None]
    moved_plain = [row["moved_plain"] for row in rows if row["moved_plain"] is not None]
    up = sum(value > 0 for value in moved)
    return {
        "benchmark": "live",
        "what": "P(anxious) on the served page after calibrating on a neutral photo: another "
        "neutral photo of the same person against an anxious one (real faces, still cameras)",
        "run": str(args.run),
        "plain_run": str(args.plain),
        "people": len(rows),
        "rows": rows,
        "moved_median": median(moved),
        "moved_plain_median": median(moved_plain),
        "people_moved_up": up,
        "seconds": time.monotonic() - started,
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
        "targets": {
            "anxious_above_neutral_for_most_people": {
                "target": "anxious scores above the same person's neutral for more than half "
                "of the people, after calibration",
                "value": f"{up} of {len(moved)}",
                "met": up * 2 > len(moved),
            }
        },
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emotion.bench live", description=__doc__)
    parser.add_argument(
        "--run",
        type=Path,
        default=Path("outputs/train/runs/live"),
        help="the calibrated model (make live's)",
    )
    parser.add_argument(
        "--plain",
        type=Path,
        default=Path("outputs/train/runs/default"),
        help="the model that reads each face alone (make train's)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_ROOT,
        help="photos in AI Hub's layout (default: the real-face sample)",
    )
    parser.add_argument("--people", type=int, default=None, help="at most this many")
    parser.add_argument("--seconds", type=float, default=3.0, help="scored per face")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--require",
        action="store_true",
        help="exit 1 when the target is not met (CI's acceptance check)",
    )
    args = parser.parse_args(argv)
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER, VENDOR) if not path.exists()]
    if missing:
        print(f"skipped: {', '.join(missing)} not found (Chromium, chromedriver, make setup)")
        return
    if not args.root.is_dir():
        print(
            f"skipped: no AI Hub-layout photos at {args.root} (the real-face sample); pass --root"
        )
        return
    for run, made_by in ((args.run, "make live"), (args.plain, "make train")):
        if not run.exists():
            refuse(f"no run at {run}", f"{made_by} first (or pass --run/--plain)")
    with tempfile.TemporaryDirectory(prefix="bench-live-") as scratch:
        result = measure(args, Path(scratch))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    target = result["targets"]["anxious_above_neutral_for_most_people"]
    print(
        f"live page, after calibration: anxious above neutral for {target['value']} people, "
        f"median change {result['moved_median']:+.3f} (plain model: "
        f"{result['moved_plain_median']:+.3f}); target {'met' if target['met'] else 'NOT met'};"
        f" load average {result['load_average_at_start']} -> {result['load_average_at_end']}"
    )
    print(f"wrote {args.output}")
    if args.require and not target["met"]:
        sys.exit(1)


def refuse(problem: str, fix: str) -> None:
    print(f"error: {problem}\nfix: {fix}", file=sys.stderr)
    sys.exit(2)
