"""The `.partial` store of a run in progress: its rows, and the progress written beside them
(tasks done, rows, counts so far, the run's fingerprint), so a rerun resumes exactly where the
last checkpoint left off; and the report read back from a finished store."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from emotion.extract.plan import Plan, Task
from emotion.extract.report import Tally, build_report, people_summary
from emotion.extract.settings import ExtractSettings
from emotion.facemesh.media import Outcome
from emotion.store.io import StoreWriter, partial_path_for

log = logging.getLogger(__name__)

TOOL = "emotion-extract"
# Root attributes of an extracted store besides schema v1's own.
ATTR_FINGERPRINT = "extract_fingerprint"
ATTR_TASKS_DONE = "extract_tasks_done"
ATTR_ROWS = "extract_rows"
ATTR_PROCESSING = "extract_processing"
ATTR_INVENTORY = "extract_inventory"
ATTR_ARCHIVES = "extract_archives"
ATTR_VOTES = "extract_votes"
ATTR_SHARD = "extract_shard"


@dataclass
class Batch:
    """Rows not yet written, with the processing counts that go with them."""

    landmarks: list[np.ndarray] = field(default_factory=list)
    label: list[int] = field(default_factory=list)
    subject: list[str] = field(default_factory=list)
    split: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    image_size: list[tuple[int, int]] = field(default_factory=list)
    tasks: int = 0

    def add(self, task: Task, outcome: Outcome, processing: Tally) -> None:
        self.tasks += 1
        for face in outcome.faces:
            self.landmarks.append(face.landmarks)
            self.label.append(task.label)
            self.subject.append(task.subject)
            self.split.append(task.split)
            self.source.append(task.source_of(face.frame))
            self.image_size.append(face.image_size)
        processing.count(task.archive, "faces", len(outcome.faces))
        processing.count(task.archive, "no_face", len(outcome.no_face))
        processing.count(task.archive, "undecodable", len(outcome.failures))
        if task.video:
            processing.count(task.archive, "video_frames", outcome.frames)
        for frame in outcome.no_face:
            processing.problem("no_face", task.source_of(frame))
        for failure in outcome.failures:
            processing.problem(failure.problem, f"{task.source_of(failure.frame)} ({failure.why})")

    def columns(self) -> dict[str, np.ndarray]:
        return {
            "landmarks": np.stack(self.landmarks).astype(np.float32),
            "label": np.asarray(self.label, dtype=np.int64),
            "subject": np.asarray(self.subject, dtype=object),
            "split": np.asarray(self.split, dtype=object),
            "source": np.asarray(self.source, dtype=object),
            "image_size": np.asarray(self.image_size, dtype=np.int32).reshape(-1, 2),
        }


def stored_fingerprint(path: Path) -> str | None:
    try:
        with h5py.File(path, "r") as handle:
            if not bool(handle.attrs.get("complete", False)):
                return None
            value = handle.attrs.get(ATTR_FINGERPRINT)
            return value.decode() if isinstance(value, bytes) else value
    except OSError:
        return None


def open_writer(
    settings: ExtractSettings, plan: Plan, fingerprint: str, shard: dict[str, int]
) -> tuple[StoreWriter, int, Tally]:
    """A resumed writer when a matching `.partial` is there, else a fresh one."""
    store_path = settings.store_path
    partial = partial_path_for(store_path)
    if partial.exists() and not settings.overwrite:
        checkpoint = read_progress(partial)
        if checkpoint and checkpoint[0] == fingerprint:
            _, done, rows, processing = checkpoint
            return StoreWriter.resume(store_path, rows), done, processing
        log.warning("%s is from other settings or unreadable; starting over", partial)
    provenance = {
        "root": str(settings.root.resolve()),
        "layout": plan.layout,
        "settings": settings.result_settings(),
        "shard": shard,
    }
    writer = StoreWriter(
        store_path,
        list(plan.class_names),
        synthetic=False,
        provenance=provenance,
        tool=TOOL,
    )
    attrs = writer.attrs
    attrs[ATTR_FINGERPRINT] = fingerprint
    attrs[ATTR_SHARD] = json.dumps(shard)
    attrs[ATTR_INVENTORY] = json.dumps(plan.inventory.to_json(), ensure_ascii=False)
    attrs[ATTR_ARCHIVES] = json.dumps(plan.archive_info, ensure_ascii=False)
    attrs[ATTR_VOTES] = json.dumps(plan.votes, ensure_ascii=False)
    processing = Tally()
    write_progress(writer, 0, processing)
    return writer, 0, processing


def read_progress(partial: Path) -> tuple[str, int, int, Tally] | None:
    try:
        with h5py.File(partial, "r") as handle:
            attrs = handle.attrs
            return (
                str(attrs[ATTR_FINGERPRINT]),
                int(attrs[ATTR_TASKS_DONE]),
                int(attrs[ATTR_ROWS]),
                Tally.from_json(json.loads(attrs[ATTR_PROCESSING])),
            )
    except (OSError, KeyError, ValueError):
        return None


def write_progress(writer: StoreWriter, tasks_done: int, processing: Tally) -> None:
    """Record what is on disk; written after the rows so a crash in between loses nothing."""
    writer.attrs[ATTR_TASKS_DONE] = tasks_done
    writer.attrs[ATTR_ROWS] = writer.rows
    writer.attrs[ATTR_PROCESSING] = json.dumps(processing.to_json(), ensure_ascii=False)
    writer.flush()


def report_from_store(
    store_path: Path,
    archive_info: dict[str, dict[str, Any]],
    inventory: Tally,
    votes: dict[str, Any] | None,
) -> dict[str, Any]:
    """The report of a finished store: its processing counts plus its rows, people and splits."""
    with h5py.File(store_path, "r") as handle:
        attrs = handle.attrs
        class_names = json.loads(attrs["class_names"])
        processing = Tally.from_json(json.loads(attrs[ATTR_PROCESSING]))
        shard = json.loads(attrs.get(ATTR_SHARD, "{}"))
        provenance = json.loads(attrs.get("provenance", "{}"))
        subject = np.asarray(handle["subject"].asstr()[()], dtype=object)
        split = np.asarray(handle["split"].asstr()[()], dtype=object)
        label = handle["label"][()]
    rows = {
        name: {part: int(((label == index) & (split == part)).sum()) for part in ("train", "test")}
        for index, name in enumerate(class_names)
    }
    return build_report(
        archive_info=archive_info,
        inventory=inventory,
        processing=processing,
        votes=votes,
        rows_per_class_split=rows,
        people=people_summary(subject, label, split, class_names),
        extra={
            "store": str(store_path),
            "rows": int(label.shape[0]),
            "class_names": class_names,
            "shard": shard,
            "provenance": provenance,
        },
    )
