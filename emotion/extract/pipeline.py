"""`extract(settings)`: plan, run FaceMesh over the tasks, write the store and the report.

Results are written in task order and checkpointed in chunks inside `<output>.partial`
(rows written + tasks done + counts so far), so rerunning the same command after Ctrl-C or
kill -9 continues from the last checkpoint and ends with exactly the rows of a clean run.
A photo that fails is a finished task too (counted under its reason), so it is not retried.
One run at a time writes a store: `<output>.lock` is held for the whole run.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import signal
import tempfile
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from emotion.data.schema import StoreWriter, partial_path_for
from emotion.errors import EmotionError
from emotion.extract.landmarks import Outcome, TaskRunner, init_worker, run_in_worker
from emotion.extract.lock import store_lock
from emotion.extract.plan import Plan, Task, make_plan, shard_range
from emotion.extract.progress import Progress
from emotion.extract.report import (
    Tally,
    build_report,
    people_summary,
    summary_lines,
    write_report,
)
from emotion.extract.settings import ExtractSettings, report_path

log = logging.getLogger(__name__)

TOOL = "emotion-extract"
CHECKPOINT_EVERY_S = 10.0
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
        for source, coords, size in outcome.rows:
            self.landmarks.append(coords)
            self.label.append(task.label)
            self.subject.append(task.subject)
            self.split.append(task.split)
            self.source.append(source)
            self.image_size.append(size)
        processing.count(task.archive, "faces", len(outcome.rows))
        processing.count(task.archive, "no_face", len(outcome.no_face))
        processing.count(task.archive, "undecodable", len(outcome.undecodable))
        if task.video:
            processing.count(task.archive, "video_frames", outcome.frames)
        for source in outcome.no_face:
            processing.problem("no_face", source)
        for source, problem, why in outcome.failures():
            processing.problem(problem, f"{source} ({why})")

    def columns(self) -> dict[str, np.ndarray]:
        return {
            "landmarks": np.stack(self.landmarks).astype(np.float32),
            "label": np.asarray(self.label, dtype=np.int64),
            "subject": np.asarray(self.subject, dtype=object),
            "split": np.asarray(self.split, dtype=object),
            "source": np.asarray(self.source, dtype=object),
            "image_size": np.asarray(self.image_size, dtype=np.int32).reshape(-1, 2),
        }


def check_output_writable(path: Path) -> None:
    """Fail before any work when the output cannot be written."""
    fix = "choose an output path in a folder you can write, e.g. output=data/aihub82.h5"
    if path.is_dir():
        raise EmotionError(f"output {path} is a folder", f"name a file; {fix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".write-test-"):
            pass
    except OSError as error:
        raise EmotionError(
            f"output {path} is not writable ({error.strerror or error})", fix
        ) from error


def extract(settings: ExtractSettings) -> dict[str, Any]:
    """Run one extraction (or one shard of it) and return the report."""
    started = time.perf_counter()
    store_path = settings.store_path
    check_output_writable(store_path)
    with store_lock(store_path, TOOL):
        return _extract_locked(settings, started)


def _extract_locked(settings: ExtractSettings, started: float) -> dict[str, Any]:
    store_path = settings.store_path
    plan = make_plan(settings)
    start, stop = shard_range(len(plan.tasks), settings.shard_index, settings.shard_count)
    tasks = plan.tasks[start:stop]
    fingerprint = settings.fingerprint([task.source for task in plan.tasks], plan.class_names)
    shard = {
        "index": settings.shard_index,
        "count": settings.shard_count,
        "start": start,
        "stop": stop,
        "total_tasks": len(plan.tasks),
    }
    if store_path.exists() and not settings.overwrite:
        if _stored_fingerprint(store_path) == fingerprint:
            log.info("%s is already complete for these settings; nothing to do", store_path)
            return _finish(settings, plan, store_path, shard, started, len(tasks), {})
        raise EmotionError(
            f"{store_path} exists and was written from other data or settings",
            "pass overwrite=true to replace it, or choose another output",
        )
    writer, done, processing = _open_writer(settings, plan, fingerprint, shard)
    if done:
        log.info("resuming %s: %d of %d tasks already done", store_path, done, len(tasks))
    log.info(
        "%d photos/videos to process in %s (%s layout, classes %s), %d workers",
        len(tasks) - done,
        settings.root,
        plan.layout,
        ", ".join(plan.class_names),
        settings.workers,
    )
    timing = _process(settings, tasks, done, writer, processing)
    writer.finalize()
    return _finish(settings, plan, store_path, shard, started, done, timing)


def _stored_fingerprint(path: Path) -> str | None:
    try:
        with h5py.File(path, "r") as handle:
            if not bool(handle.attrs.get("complete", False)):
                return None
            value = handle.attrs.get(ATTR_FINGERPRINT)
            return value.decode() if isinstance(value, bytes) else value
    except OSError:
        return None


def _open_writer(
    settings: ExtractSettings, plan: Plan, fingerprint: str, shard: dict[str, int]
) -> tuple[StoreWriter, int, Tally]:
    """A resumed writer when a matching `.partial` is there, else a fresh one."""
    store_path = settings.store_path
    partial = partial_path_for(store_path)
    if partial.exists() and not settings.overwrite:
        checkpoint = _read_checkpoint(partial)
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
    _checkpoint(writer, 0, processing)
    return writer, 0, processing


def _read_checkpoint(partial: Path) -> tuple[str, int, int, Tally] | None:
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


def _checkpoint(writer: StoreWriter, tasks_done: int, processing: Tally) -> None:
    """Record what is on disk; written after the rows so a crash in between loses nothing."""
    writer.attrs[ATTR_TASKS_DONE] = tasks_done
    writer.attrs[ATTR_ROWS] = writer.rows
    writer.attrs[ATTR_PROCESSING] = json.dumps(processing.to_json(), ensure_ascii=False)
    writer.flush()


def _outcomes(settings: ExtractSettings, tasks: list[Task]) -> Generator[Outcome, None, None]:
    """Outcomes in task order: in this process for one worker, else from a process pool."""
    options = {
        "reduce": settings.reduce,
        "min_short_side": settings.min_short_side,
        "video_stride": settings.video_stride,
        "video_max_frames": settings.video_max_frames,
        "max_bytes": settings.max_bytes,
        "max_pixels": settings.max_pixels,
    }
    if not tasks:
        return
    if settings.workers == 1:
        runner = TaskRunner(**options)
        try:
            for task in tasks:
                yield runner.run(task)
        finally:
            runner.close()
        return
    # spawn: a fresh interpreter per worker, never a fork of a process that holds a graph.
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(settings.workers, initializer=init_worker, initargs=(options,))
    try:
        yield from pool.imap(run_in_worker, tasks, chunksize=2)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


class StopRequest:
    """Turns the first Ctrl-C (SIGINT) or SIGTERM (Slurm preemption, timeout) into a request
    that the loop honours between photos, so the stop never lands inside an HDF5 write or a
    pool callback. A second signal interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                previous = signal.getsignal(number)
                if previous is not signal.SIG_IGN:
                    self._previous[number] = previous
                    signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: Any) -> None:
        self.requested = signal.Signals(number).name
        self.__exit__()
        log.warning("%s: stopping after the current photo (again to stop now)", self.requested)

    def __exit__(self, *exc: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous.clear()


def _process(
    settings: ExtractSettings,
    tasks: list[Task],
    done: int,
    writer: StoreWriter,
    processing: Tally,
) -> dict[str, float | None]:
    """Run the tasks, flushing results in chunks; return the progress timing."""
    progress = Progress(len(tasks), done, settings.progress)
    batch = Batch()
    last_checkpoint = time.perf_counter()

    def flush() -> None:
        nonlocal batch, last_checkpoint
        if batch.landmarks:
            writer.append(**batch.columns())
        _checkpoint(writer, progress.done, processing)
        batch = Batch()
        last_checkpoint = time.perf_counter()

    outcomes: Generator[Outcome, None, None] = _outcomes(settings, tasks[done:])
    stop = StopRequest()
    try:
        with stop:
            for task, outcome in zip(tasks[done:], outcomes, strict=True):
                batch.add(task, outcome, processing)
                progress.update(len(outcome.rows), len(outcome.no_face), len(outcome.undecodable))
                if stop.requested:
                    raise KeyboardInterrupt(stop.requested)
                if (
                    batch.tasks >= settings.chunk_tasks
                    or time.perf_counter() - last_checkpoint >= CHECKPOINT_EVERY_S
                ):
                    flush()
            flush()
    except BaseException:
        # Ctrl-C or a crash: keep every finished result, leave the .partial for a rerun.
        outcomes.close()
        try:
            flush()
        finally:
            writer.abort()
            progress.close()
        raise
    outcomes.close()
    progress.close()
    return progress.timing()


def _finish(
    settings: ExtractSettings,
    plan: Plan,
    store_path: Path,
    shard: dict[str, int],
    started: float,
    resumed_from: int,
    timing: dict[str, float | None],
) -> dict[str, Any]:
    """Build the report from the finished store and write it next to it."""
    report = report_from_store(store_path, plan.archive_info, plan.inventory, plan.votes)
    seconds = time.perf_counter() - started
    processed = shard["stop"] - shard["start"] - resumed_from
    report["run"] = {
        "seconds": round(seconds, 2),
        "tasks_processed_now": processed,
        "tasks_resumed": resumed_from,
        "images_per_s": round(processed / seconds, 2) if seconds > 0 else None,
        # Start-up (planning, worker processes, FaceMesh graphs) and the rate after it.
        **timing,
        "workers": settings.workers,
    }
    path = report_path(store_path)
    write_report(report, path)
    for line in summary_lines(report):
        log.info("%s", line)
    log.info("wrote %s (%d rows) and %s", store_path, report["rows"], path)
    return report


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
