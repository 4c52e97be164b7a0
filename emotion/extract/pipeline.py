"""`extract(settings)`: plan, run FaceMesh over the tasks, write the store and the report.

Results are written in task order and checkpointed in chunks inside `<output>.partial`
(rows written + tasks done + counts so far), so rerunning the same command after Ctrl-C or
kill -9 continues from the last checkpoint and ends with exactly the rows of a clean run.
A photo that fails is a finished task too (counted under its reason), so it is not retried.
One run at a time writes a store: `<output>.lock` is held for the whole run.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import tempfile
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from emotion.errors import EmotionError
from emotion.extract.lock import store_lock
from emotion.extract.partial import (
    TOOL,
    Batch,
    open_writer,
    report_from_store,
    stored_fingerprint,
    write_progress,
)
from emotion.extract.plan import Plan, Task, make_plan, shard_range
from emotion.extract.progress import Progress
from emotion.extract.report import (
    Tally,
    summary_lines,
    write_report,
)
from emotion.extract.settings import ExtractSettings, report_path
from emotion.facemesh.media import Outcome
from emotion.facemesh.runner import FaceMeshRunner, init_worker, run_in_worker
from emotion.store.io import StoreWriter

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 10.0


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
        if stored_fingerprint(store_path) == fingerprint:
            log.info("%s is already complete for these settings; nothing to do", store_path)
            return _finish(settings, plan, store_path, shard, started, len(tasks), {})
        raise EmotionError(
            f"{store_path} exists and was written from other data or settings",
            "pass overwrite=true to replace it, or choose another output",
        )
    writer, done, processing = open_writer(settings, plan, fingerprint, shard)
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
        runner = FaceMeshRunner(**options)
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
        write_progress(writer, progress.done, processing)
        batch = Batch()
        last_checkpoint = time.perf_counter()

    outcomes: Generator[Outcome, None, None] = _outcomes(settings, tasks[done:])
    stop = StopRequest()
    try:
        with stop:
            for task, outcome in zip(tasks[done:], outcomes, strict=True):
                batch.add(task, outcome, processing)
                progress.update(len(outcome.faces), len(outcome.no_face), len(outcome.failures))
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
