"""`extract(settings)`: plan, run FaceMesh over the tasks, write the store and the report.

Results are written in task order and checkpointed in chunks inside `<output>.partial`
(rows written + tasks done + counts so far), so rerunning the same command after Ctrl-C or
kill -9 continues from the last checkpoint and ends with exactly the rows of a clean run.
A photo that fails is a finished task too (counted under its reason), so it is not retried.
One run at a time writes a store: `<output>.lock` is held for the whole run.
A worker process that dies (the out-of-memory killer, kill -9) or a write that fails (a full
disk) ends the run with error:/fix: after keeping what the last checkpoint holds.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections import deque
from collections.abc import Generator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from pathlib import Path
from typing import Any

from emotion.errors import EmotionError
from emotion.extract.lock import store_lock
from emotion.extract.partial import (
    TOOL,
    Batch,
    Checkpoints,
    open_writer,
    report_from_store,
    stored_fingerprint,
)
from emotion.extract.plan import Plan, Task, make_plan, shard_range
from emotion.extract.progress import Progress
from emotion.extract.report import (
    Tally,
    summary_lines,
    write_report,
)
from emotion.extract.settings import ExtractSettings, report_path
from emotion.extract.stop import StopRequest
from emotion.facemesh.landmarker import extractor_identity
from emotion.facemesh.media import Outcome
from emotion.facemesh.runner import FaceMeshRunner, init_worker, run_in_worker
from emotion.store.files import WriteFailed, check_writable, partial_path_for
from emotion.store.io import open_store
from emotion.store.schema import StoreError, describe_extractor, extractor_of, same_extractor
from emotion.store.writer import StoreWriter

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 10.0
AHEAD_PER_WORKER = 4  # tasks queued per worker process, so none waits for the next


def check_output_writable(path: Path) -> None:
    """Fail before any work when the output cannot be written."""
    check_writable(
        path, "choose an output path in a folder you can write, e.g. output=data/aihub82.h5"
    )


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
        earlier = earlier_extractor(store_path)
        if earlier is not None and not same_extractor(earlier, extractor_identity()):
            raise EmotionError(
                f"{store_path} exists and holds faces of {describe_extractor(earlier)}, an "
                "older landmark extractor than this version's FaceLandmarker",
                "pass overwrite=true to extract the photos again with this version (models "
                "trained on the old store must be retrained), or choose another output",
            )
        raise EmotionError(
            f"{store_path} exists and was written from other data or settings",
            "pass overwrite=true to replace it, or choose another output",
        )
    writer, checkpoints, done, processing = open_writer(settings, plan, fingerprint, shard)
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
    timing = _process(settings, tasks, done, writer, checkpoints, processing)
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
    # concurrent.futures, not multiprocessing.Pool: Pool replaces a worker that dies (the
    # OOM killer, kill -9) and waits forever for the task it held; the executor fails every
    # pending future with BrokenProcessPool instead.
    pool = ProcessPoolExecutor(
        settings.workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker,
        initargs=(options,),
    )
    queued = iter(tasks)
    try:
        ahead: deque[Future[Outcome]] = deque(
            pool.submit(run_in_worker, task)
            for task in islice(queued, settings.workers * AHEAD_PER_WORKER)
        )
        while ahead:
            outcome = ahead.popleft().result()  # in task order
            following = next(queued, None)
            if following is not None:
                ahead.append(pool.submit(run_in_worker, following))
            yield outcome
        pool.shutdown()  # all done: the workers exit
    finally:
        _stop_workers(pool)  # stopped early: end them now (nothing left after a shutdown)
        pool.shutdown(cancel_futures=True)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the workers now (Ctrl-C, a dead worker, an error), not after their photo: they
    ignore SIGINT, and a video can take minutes. Python 3.14 has terminate_workers(); before
    it, the executor's own process table is the only handle on them."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())  # None after shutdown
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


def _process(
    settings: ExtractSettings,
    tasks: list[Task],
    done: int,
    writer: StoreWriter,
    checkpoints: Checkpoints,
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
        checkpoints.write(progress.done, processing)
        batch = Batch()
        last_checkpoint = time.perf_counter()

    outcomes: Generator[Outcome, None, None] = _outcomes(settings, tasks[done:])
    stop = StopRequest()
    try:
        with stop:
            try:
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
            except BrokenProcessPool:
                if stop.requested:  # SIGTERM to the whole job: the workers went first
                    raise KeyboardInterrupt(stop.requested) from None
                raise _worker_died(settings, tasks, progress.done) from None
            flush()
    except BaseException as error:
        # Ctrl-C or a crash: keep every finished result, leave the .partial for a rerun. After
        # a failed write nothing more is written: the last checkpoint is what a rerun keeps.
        outcomes.close()
        try:
            if not writer.failed:
                flush()
        finally:
            writer.abort()
            progress.close()
        if isinstance(error, WriteFailed):
            raise _write_failed(error, checkpoints, len(tasks), writer.path) from None
        raise
    outcomes.close()
    progress.close()
    return progress.timing()


def _worker_died(settings: ExtractSettings, tasks: list[Task], finished: int) -> EmotionError:
    """The error for a worker process that died; the tasks it may have held are named."""
    in_flight = tasks[finished : finished + settings.workers * AHEAD_PER_WORKER]
    example = in_flight[0].source if in_flight else "none"
    return EmotionError(
        f"a FaceMesh worker process died (killed: the out-of-memory killer, kill -9, or it "
        f"crashed) after {finished} of {len(tasks)} tasks; the tasks in flight from {example} "
        f"on were not finished. The {finished} finished ones are kept in "
        f"{partial_path_for(settings.store_path)}",
        "rerun the same command: it resumes after the finished tasks and retries the others; "
        f"if a worker dies again, use fewer workers (workers={max(settings.workers // 2, 1)}) "
        "or a lower decode.max_pixels, and check `dmesg` for the out-of-memory killer",
    )


def _write_failed(
    error: WriteFailed, checkpoints: Checkpoints, total: int, store_path: Path
) -> EmotionError:
    """The error for a failed write: what it was and how much the rerun keeps."""
    return EmotionError(
        f"{error.problem}; {partial_path_for(store_path).name} keeps its last checkpoint, "
        f"{checkpoints.latest.tasks_done} of {total} tasks, and nothing written after it counts "
        "as done",
        f"free space on that disk (df -h {store_path.parent}), or choose an output on another "
        "one, then rerun the same command: it checks the file and resumes from there",
    )


def earlier_extractor(path: Path) -> dict[str, Any] | None:
    """The extractor of an existing complete store (None when it cannot be read as one)."""
    try:
        with open_store(path) as handle:
            return extractor_of(handle.attrs)
    except StoreError:
        return None


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
    write_report(report, path)  # an EmotionError when it cannot be written
    for line in summary_lines(report):
        log.info("%s", line)
    log.info("wrote %s (%d rows) and %s", store_path, report["rows"], path)
    return report
