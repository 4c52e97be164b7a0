"""The `.partial` store of a run in progress: its rows, and the progress written beside them
(tasks done, rows, counts so far, the run's fingerprint), so a rerun resumes exactly where the
last checkpoint left off; and the report read back from a finished store.

A crash or a full disk can damage the rows of the last checkpoint: they share an HDF5 chunk
with rows written after it. So each checkpoint also records an earlier one whose rows all lie
in whole chunks, which are never written again, and a rerun that cannot read the last one
back salvages that one instead of starting over.
"""

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
from emotion.store.files import DamagedStore, open_partial, partial_path_for, refuse_link
from emotion.store.schema import read_field
from emotion.store.writer import StoreWriter

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
ATTR_SAFE = "extract_safe_checkpoint"  # JSON: an earlier checkpoint in whole chunks


@dataclass
class Batch:
    """Rows not yet written, with the processing counts that go with them."""

    landmarks: list[np.ndarray] = field(default_factory=list)
    label: list[int] = field(default_factory=list)
    subject: list[str] = field(default_factory=list)
    split: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    image_size: list[tuple[int, int]] = field(default_factory=list)
    blendshapes: list[np.ndarray] = field(default_factory=list)
    pose: list[np.ndarray] = field(default_factory=list)
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
            self.blendshapes.append(face.blendshapes)
            self.pose.append(face.pose)
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
            "blendshapes": np.stack(self.blendshapes).astype(np.float32),
            "pose": np.stack(self.pose).astype(np.float32),
        }


@dataclass(frozen=True)
class Checkpoint:
    """What a `.partial` holds at one moment: tasks done, rows written, the counts so far."""

    tasks_done: int
    rows: int
    processing: str  # Tally JSON, as ATTR_PROCESSING holds it

    def to_json(self) -> str:
        return json.dumps(
            {"tasks_done": self.tasks_done, "rows": self.rows, "processing": self.processing}
        )

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        value = json.loads(text)
        return cls(int(value["tasks_done"]), int(value["rows"]), str(value["processing"]))


class Checkpoints:
    """Writes each checkpoint beside the rows it counts, after them, so a crash in between
    loses nothing; and keeps the latest earlier one whose rows end in a whole chunk."""

    def __init__(self, writer: StoreWriter, known: list[Checkpoint]) -> None:
        self.writer = writer
        self.pending = sorted(known, key=lambda checkpoint: checkpoint.rows)
        self.safe = Checkpoint(0, 0, json.dumps(Tally().to_json()))
        self.latest = self.pending[-1] if self.pending else self.safe  # the last one on disk

    def write(self, tasks_done: int, processing: Tally) -> None:
        text = json.dumps(processing.to_json(), ensure_ascii=False)
        latest = Checkpoint(tasks_done, self.writer.rows, text)
        if self.pending and self.pending[-1].rows == latest.rows:
            self.pending.pop()  # same rows, fewer tasks: the new one supersedes it
        self.pending.append(latest)
        whole = latest.rows - latest.rows % self.writer.chunk_rows  # rows in whole chunks
        while self.pending and self.pending[0].rows <= whole:
            self.safe = self.pending.pop(0)
        self.writer.update_attrs(
            {
                ATTR_TASKS_DONE: tasks_done,
                ATTR_ROWS: latest.rows,
                ATTR_PROCESSING: text,
                ATTR_SAFE: self.safe.to_json(),
            }
        )
        self.writer.flush()
        self.latest = latest


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
) -> tuple[StoreWriter, Checkpoints, int, Tally]:
    """A resumed writer when a matching `.partial` is there, else a fresh one; with its
    checkpoints, the tasks already done and their counts."""
    store_path = settings.store_path
    partial = partial_path_for(store_path)
    refuse_link(partial)
    if partial.exists() and not settings.overwrite:
        resumed = _resume(partial, store_path, fingerprint)
        if resumed is not None:
            return resumed
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
    writer.update_attrs(
        {
            ATTR_FINGERPRINT: fingerprint,
            ATTR_SHARD: json.dumps(shard),
            ATTR_INVENTORY: json.dumps(plan.inventory.to_json(), ensure_ascii=False),
            ATTR_ARCHIVES: json.dumps(plan.archive_info, ensure_ascii=False),
            ATTR_VOTES: json.dumps(plan.votes, ensure_ascii=False),
        }
    )
    processing = Tally()
    checkpoints = Checkpoints(writer, [])
    checkpoints.write(0, processing)
    return writer, checkpoints, 0, processing


def _resume(
    partial: Path, store_path: Path, fingerprint: str
) -> tuple[StoreWriter, Checkpoints, int, Tally] | None:
    """Continue from the last checkpoint whose rows read back whole: the latest, else the
    earlier one in whole chunks. None (start over, said in a warning) when neither does."""
    progress = read_progress(partial)
    if progress is None:
        log.warning("%s cannot be read (damaged); starting over", partial)
        return None
    stored, latest, safe = progress
    if stored != fingerprint:
        log.warning("%s is from other data or settings; starting over", partial)
        return None
    candidates = [latest] + ([safe] if safe is not None and safe.rows < latest.rows else [])
    for checkpoint in candidates:
        try:
            writer = StoreWriter.resume(store_path, checkpoint.rows)
        except DamagedStore as error:
            log.warning("%s is damaged: %s", partial, error.problem)
            continue
        if checkpoint != latest:
            log.warning(
                "salvaged %d of the %d tasks done in %s (the rows of its last checkpoint "
                "cannot be read back); the other %d are done again",
                checkpoint.tasks_done,
                latest.tasks_done,
                partial,
                latest.tasks_done - checkpoint.tasks_done,
            )
        checkpoints = Checkpoints(writer, [c for c in (safe, checkpoint) if c is not None])
        processing = Tally.from_json(json.loads(checkpoint.processing))
        checkpoints.write(checkpoint.tasks_done, processing)
        return writer, checkpoints, checkpoint.tasks_done, processing
    log.warning("nothing in %s can be salvaged; starting over", partial)
    return None


def read_progress(partial: Path) -> tuple[str, Checkpoint, Checkpoint | None] | None:
    """The fingerprint, the last checkpoint and the earlier safe one (stores written before
    there was one have none); None when the file or its attributes cannot be read."""
    try:
        with open_partial(partial) as handle:
            attrs = handle.attrs
            latest = Checkpoint(
                int(attrs[ATTR_TASKS_DONE]), int(attrs[ATTR_ROWS]), str(attrs[ATTR_PROCESSING])
            )
            Tally.from_json(json.loads(latest.processing))  # readable, or start over
            safe = Checkpoint.from_json(attrs[ATTR_SAFE]) if ATTR_SAFE in attrs else None
            return str(attrs[ATTR_FINGERPRINT]), latest, safe
    except (DamagedStore, OSError, RuntimeError, KeyError, ValueError, TypeError):
        return None


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
        subject = read_field(handle, "subject", store_path)
        split = read_field(handle, "split", store_path)
        label = read_field(handle, "label", store_path)
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
