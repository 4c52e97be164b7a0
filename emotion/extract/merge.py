"""`emotion-extract-merge`: join the shard files of one run into one store.

Shards must come from the same run (same fingerprint: data and settings), and their task
ranges must tile the whole task list exactly: no shard missing, none twice, no overlap.
Rows are copied in shard order, which is the order of an unsharded run.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from emotion.errors import EmotionError
from emotion.extract.lock import store_lock
from emotion.extract.partial import (
    ATTR_ARCHIVES,
    ATTR_FINGERPRINT,
    ATTR_INVENTORY,
    ATTR_PROCESSING,
    ATTR_ROWS,
    ATTR_SHARD,
    ATTR_TASKS_DONE,
    ATTR_VOTES,
    TOOL,
    report_from_store,
)
from emotion.extract.report import Tally, summary_lines, write_report
from emotion.extract.settings import report_path
from emotion.store.io import open_store
from emotion.store.schema import (
    describe_extractor,
    extractor_of,
    read_columns,
    read_field,
    same_extractor,
)
from emotion.store.writer import StoreWriter

log = logging.getLogger(__name__)
COPY_ROWS = 8192


def find_shards(output: Path) -> list[Path]:
    """`data/x.h5` -> every `data/x.shard-NN-of-M.h5` beside it."""
    pattern = re.compile(
        re.escape(output.stem) + r"\.shard-\d+-of-\d+" + re.escape(output.suffix) + "$"
    )
    return sorted(p for p in output.parent.glob(f"{output.stem}.shard-*") if pattern.match(p.name))


def _shard_attrs(path: Path) -> dict[str, Any]:
    try:
        with open_store(path) as handle:
            attrs = handle.attrs
            return {
                "path": path,
                "fingerprint": str(attrs[ATTR_FINGERPRINT]),
                "shard": json.loads(attrs[ATTR_SHARD]),
                "rows": int(handle["label"].shape[0]),
                "extractor": extractor_of(attrs),
                "sources": set(read_field(handle, "source", path).tolist()),
            }
    except KeyError as error:
        raise EmotionError(
            f"{path} is not an emotion-extract shard (attribute {error} is missing)",
            "merge only the shard files one sharded emotion-extract run wrote",
        ) from error


def check_shards(shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The shards in index order; fails when they overlap, miss a part or mix runs."""
    fix = "rerun the missing or failed shards with the same command and shard.index, then merge"
    first = shards[0]
    for shard in shards[1:]:
        if not same_extractor(first["extractor"], shard["extractor"]):
            raise EmotionError(
                f"{first['path']} holds faces of {describe_extractor(first['extractor'])}, "
                f"{shard['path']} of {describe_extractor(shard['extractor'])}: their landmarks "
                "are not interchangeable",
                "extract every shard again with this version (same command and shard.index), "
                "then merge",
            )
    fingerprints = {shard["fingerprint"] for shard in shards}
    if len(fingerprints) > 1:
        raise EmotionError(
            "the shards come from different runs (data or settings differ)",
            "merge shards of one run only; rerun the odd ones with the same settings",
        )
    counts = {shard["shard"]["count"] for shard in shards}
    if len(counts) > 1:
        raise EmotionError(f"the shards disagree on shard.count: {sorted(counts)}", fix)
    count = counts.pop()
    indices = [shard["shard"]["index"] for shard in shards]
    twice = sorted({index for index in indices if indices.count(index) > 1})
    if twice:
        raise EmotionError(f"shard index {twice} given more than once (overlap)", fix)
    missing = sorted(set(range(count)) - set(indices))
    if missing:
        raise EmotionError(f"shards {missing} of {count} are missing", fix)
    ordered = sorted(shards, key=lambda shard: shard["shard"]["index"])
    position = 0
    for shard in ordered:
        start, stop = shard["shard"]["start"], shard["shard"]["stop"]
        if start != position:
            raise EmotionError(
                f"{shard['path']} covers tasks {start}..{stop}, expected to start at {position}",
                fix,
            )
        position = stop
    if position != ordered[0]["shard"]["total_tasks"]:
        raise EmotionError(
            f"the shards cover {position} of {ordered[0]['shard']['total_tasks']} tasks", fix
        )
    seen: set[str] = set()
    for shard in ordered:
        overlap = seen & shard["sources"]
        if overlap:
            raise EmotionError(
                f"{shard['path']} repeats {len(overlap)} photos of earlier shards, "
                f"e.g. {sorted(overlap)[0]}",
                fix,
            )
        seen |= shard["sources"]
    return ordered


def merge(output: Path, shard_paths: list[Path] | None = None, overwrite: bool = False) -> dict:
    """Write `output` from its shards and return the merged report."""
    started = time.perf_counter()
    paths = shard_paths or find_shards(output)
    if not paths:
        raise EmotionError(
            f"no shard files found beside {output} ({output.stem}.shard-*-of-*{output.suffix})",
            "run emotion-extract with shard.index/shard.count first, or name the shards",
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    with store_lock(output, "emotion-extract-merge"):
        return _merge_locked(output, paths, overwrite, started)


def _merge_locked(output: Path, paths: list[Path], overwrite: bool, started: float) -> dict:
    if output.exists() and not overwrite:
        raise EmotionError(f"{output} exists", "remove it or pass --overwrite")
    ordered = check_shards([_shard_attrs(path) for path in paths])
    first = ordered[0]["path"]
    with h5py.File(first, "r") as handle:
        attrs = dict(handle.attrs)
    provenance = json.loads(attrs["provenance"])
    provenance.pop("shard", None)
    provenance["merged_from"] = [str(shard["path"]) for shard in ordered]
    writer = StoreWriter(
        output,
        json.loads(attrs["class_names"]),
        synthetic=False,
        provenance=provenance,
        tool=TOOL,
        extractor=ordered[0]["extractor"],
    )
    processing = Tally()
    try:
        for shard in ordered:
            with h5py.File(shard["path"], "r") as handle:
                processing.add(Tally.from_json(json.loads(handle.attrs[ATTR_PROCESSING])))
                for begin in range(0, shard["rows"], COPY_ROWS):
                    writer.append(**_rows(handle, shard["path"], begin, begin + COPY_ROWS))
        total = ordered[0]["shard"]["total_tasks"]
        writer.update_attrs(
            {
                ATTR_FINGERPRINT: ordered[0]["fingerprint"],
                ATTR_SHARD: json.dumps(
                    {"index": 0, "count": 1, "start": 0, "stop": total, "total_tasks": total}
                ),
                **{key: attrs[key] for key in (ATTR_INVENTORY, ATTR_ARCHIVES, ATTR_VOTES)},
                ATTR_PROCESSING: json.dumps(processing.to_json(), ensure_ascii=False),
                ATTR_TASKS_DONE: total,
                ATTR_ROWS: writer.rows,
            }
        )
        writer.finalize()
    except BaseException:
        writer.abort()
        raise
    report = report_from_store(
        output,
        json.loads(attrs[ATTR_ARCHIVES]),
        Tally.from_json(json.loads(attrs[ATTR_INVENTORY])),
        json.loads(attrs[ATTR_VOTES]),
    )
    report["run"] = {"merged_shards": len(ordered), "seconds": time.perf_counter() - started}
    write_report(report, report_path(output))
    for line in summary_lines(report):
        log.info("%s", line)
    log.info("merged %d shards into %s (%d rows)", len(ordered), output, report["rows"])
    return report


def _rows(handle: h5py.File, path: Path, begin: int, end: int) -> dict[str, np.ndarray]:
    """Rows begin..end of a shard; a chunk that fails its checksum names the shard."""
    return read_columns(handle, path, slice(begin, end))
