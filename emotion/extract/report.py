"""The extraction report: every member accounted for, per archive and class, with examples."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from emotion.errors import EmotionError
from emotion.store.files import refuse_link

EXAMPLES_KEPT = 5
# Per-archive counters, in report order.
COUNT_KEYS = (
    "members",
    "non_images",
    "not_regular_files",
    "seen",
    "no_vote",
    "no_majority",
    "other_emotion",
    "sampled",
    "faces",
    "no_face",
    "undecodable",
    "video_frames",
)
PROBLEM_HELP = {
    "undecodable": "corrupt or truncated image",
    "empty_file": "empty file (0 bytes)",
    "too_large": "over decode.max_bytes or decode.max_pixels; refused before reading or decoding",
    "unsupported_format": "not a JPEG, PNG, TIFF, BMP or WebP (its size unknown before decoding)",
    "too_many_scans": "JPEG of more than 100 scans (decoding time grows with each); refused",
    "corrupt_archive_member": "zip member that cannot be decompressed (bad data, CRC, truncated)",
    "unreadable_file": "file the system refused to read (permissions, I/O error, gone)",
    "failed": "unexpected error on this photo (type and message in the example); run went on",
    "not_a_regular_file": "FIFO, socket, device, broken link or link loop; skipped, unopened",
    "folder_link_not_followed": "link to a folder; not followed (no loops), skipped",
    "class_without_photos": "class of the chosen set that no planned photo has; it has no rows",
    "no_face": "FaceMesh found no face",
    "non_image": "not an image or video, skipped",
    "empty_archive": "archive or folder without photos",
    "broken_zip": "zip that cannot be opened",
    "unreadable_folder": "folder that cannot be listed",
    "no_emotion_in_name": "archive or folder name names no known emotion; skipped",
    "emotion_not_in_class_set": "emotion outside the chosen class set; skipped",
    "no_vote": "photo missing from the [라벨] label archives; dropped",
    "no_majority": "annotators disagree (no 2-of-3 majority); dropped",
    "broken_label_archive": "[라벨] archive that cannot be read",
}


class Tally:
    """Counters per archive plus problems with their first few examples; JSON round-trips."""

    def __init__(self) -> None:
        self.archives: dict[str, Counter[str]] = defaultdict(Counter)
        self.problems: dict[str, dict[str, Any]] = {}

    def count(self, archive: str, key: str, amount: int = 1) -> None:
        self.archives[archive][key] += amount

    def problem(self, kind: str, example: str, amount: int = 1) -> None:
        entry = self.problems.setdefault(kind, {"count": 0, "examples": []})
        entry["count"] += amount
        if len(entry["examples"]) < EXAMPLES_KEPT:
            entry["examples"].append(example)

    def add(self, other: Tally) -> None:
        for archive, counts in other.archives.items():
            self.archives[archive].update(counts)
        for kind, entry in other.problems.items():
            mine = self.problems.setdefault(kind, {"count": 0, "examples": []})
            mine["count"] += entry["count"]
            room = EXAMPLES_KEPT - len(mine["examples"])
            mine["examples"].extend(entry["examples"][: max(room, 0)])

    def to_json(self) -> dict[str, Any]:
        return {
            "archives": {name: dict(counts) for name, counts in self.archives.items()},
            "problems": self.problems,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tally:
        tally = cls()
        for name, counts in data.get("archives", {}).items():
            tally.archives[name].update(counts)
        tally.problems = {kind: dict(entry) for kind, entry in data.get("problems", {}).items()}
        return tally


def people_summary(
    subject: np.ndarray, label: np.ndarray, split: np.ndarray, class_names: list[str]
) -> dict[str, Any]:
    """People per class and split, and the people found in both train and test."""
    per_class: dict[str, dict[str, int]] = {}
    for index, name in enumerate(class_names):
        rows = label == index
        per_class[name] = {
            part: len(set(subject[rows & (split == part)].tolist())) for part in ("train", "test")
        }
    train = set(subject[split == "train"].tolist())
    test = set(subject[split == "test"].tolist())
    both = sorted(train & test)
    return {
        "per_class_and_split": per_class,
        "train": len(train),
        "test": len(test),
        "in_both_train_and_test": len(both),
        "in_both_examples": both[:EXAMPLES_KEPT],
        "only_in_test": len(test - train),
    }


def build_report(
    *,
    archive_info: dict[str, dict[str, Any]],
    inventory: Tally,
    processing: Tally,
    votes: dict[str, Any] | None,
    rows_per_class_split: dict[str, dict[str, int]],
    people: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Join the planning counts (what was found) with the processing counts (what came out)."""
    combined = Tally()
    combined.add(inventory)
    combined.add(processing)
    archives = {}
    per_class: dict[str, Counter[str]] = defaultdict(Counter)
    for name, info in archive_info.items():
        counts = combined.archives.get(name, Counter())
        archives[name] = {**info, **{key: int(counts.get(key, 0)) for key in COUNT_KEYS}}
        per_class[f"{info.get('class') or 'unknown'}/{info['split']}"].update(counts)
    totals: Counter[str] = Counter()
    for counts in per_class.values():
        totals.update(counts)
    problems = {
        kind: {"meaning": PROBLEM_HELP.get(kind, kind), **entry}
        for kind, entry in sorted(combined.problems.items())
    }
    return {
        **extra,
        "totals": {key: int(totals.get(key, 0)) for key in COUNT_KEYS},
        "rows_per_class_and_split": rows_per_class_split,
        "people": people,
        "per_class": {
            key: {k: int(counts.get(k, 0)) for k in COUNT_KEYS}
            for key, counts in sorted(per_class.items())
        },
        "archives": archives,
        "problems": problems,
        **({"folder_vs_vote": votes} if votes else {}),
    }


def write_report(report: dict[str, Any], path: Path) -> None:
    """Write `<path>.partial`, then rename it: never through a link planted there ("x" is
    O_EXCL), and a full disk is an error:/fix:, not a traceback."""
    partial = path.with_name(path.name + ".partial")
    refuse_link(partial)
    try:
        partial.unlink(missing_ok=True)
        with partial.open("x", encoding="utf-8") as handle:
            handle.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        partial.replace(path)
    except OSError as error:
        raise EmotionError(
            f"cannot write the report {path} ({error.strerror or error})",
            "free space there (or make it writable), then run the same command again",
        ) from None


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A short human summary for the terminal; the JSON has everything."""
    totals = report["totals"]
    lines = [
        f"members {totals['members']}: images seen {totals['seen']}, sampled {totals['sampled']}, "
        f"faces {totals['faces']}, no face {totals['no_face']}, "
        f"undecodable {totals['undecodable']}, non-images {totals['non_images']}",
    ]
    for key, counts in report["per_class"].items():
        lines.append(
            f"  {key:<20} seen {counts['seen']:>6}  sampled {counts['sampled']:>6}  "
            f"faces {counts['faces']:>6}  no face {counts['no_face']:>4}  "
            f"undecodable {counts['undecodable']:>4}"
        )
    people = report["people"]
    lines.append(
        f"people: train {people['train']}, test {people['test']}, "
        f"in both {people['in_both_train_and_test']}"
    )
    for kind, entry in report["problems"].items():
        examples = "; ".join(entry["examples"][:3])
        lines.append(f"  {kind} ({entry['meaning']}): {entry['count']}, e.g. {examples}")
    return lines
