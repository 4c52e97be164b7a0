"""Extraction settings as one typed object, so the pipeline does not depend on Hydra."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from emotion.data.classes import CLASS_SETS
from emotion.errors import EmotionError
from emotion.extract.decode import MIN_SHORT_SIDE, parse_reduce

LAYOUTS = ("auto", "aihub", "folders")
LABEL_SOURCES = ("folder", "annotators")
SAMPLING_METHODS = ("random", "uniform")
# Settings that change which rows a run writes; the rest (workers, progress, ...) do not.
# Shards are left out: every shard of a run, and their merge, share one fingerprint.
RESULT_KEYS = (
    "layout",
    "classes",
    "labels_source",
    "subject_regex",
    "class_regex",
    "zip_encoding",
    "video_stride",
    "video_max_frames",
    "max_per_archive",
    "sampling",
    "seed",
    "reduce",
    "min_short_side",
)


@dataclass(frozen=True)
class ExtractSettings:
    """Everything `extract` needs; built from the Hydra config by `from_config`."""

    root: Path
    output: Path
    layout: str = "auto"
    classes: str = "binary"
    labels_source: str = "folder"
    subject_regex: str = r"^([^_]+)_"
    class_regex: str | None = None
    zip_encoding: str = "cp949"
    video_stride: int = 30
    video_max_frames: int = 1000
    max_per_archive: int = 5000
    sampling: str = "uniform"
    seed: int = 0
    reduce: int | str = "auto"
    min_short_side: int = MIN_SHORT_SIDE
    workers: int = 1
    shard_index: int = 0
    shard_count: int = 1
    chunk_tasks: int = 128
    progress: str = "auto"
    overwrite: bool = False

    def __post_init__(self) -> None:
        parse_reduce(self.reduce)
        checks = [
            (self.layout in LAYOUTS, f"source.layout={self.layout}", f"one of {LAYOUTS}"),
            (self.classes in CLASS_SETS, f"classes={self.classes}", f"one of {tuple(CLASS_SETS)}"),
            (
                self.labels_source in LABEL_SOURCES,
                f"labels.source={self.labels_source}",
                f"one of {LABEL_SOURCES}",
            ),
            (
                self.sampling in SAMPLING_METHODS,
                f"sampling={self.sampling}",
                f"one of {SAMPLING_METHODS}",
            ),
            (
                self.min_short_side >= 1,
                f"decode.min_short_side={self.min_short_side}",
                "1 or more (pixels)",
            ),
            (self.workers >= 1, f"workers={self.workers}", "1 or more"),
            (self.max_per_archive >= 1, f"max_per_archive={self.max_per_archive}", "1 or more"),
            (self.video_stride >= 1, f"source.video_stride={self.video_stride}", "1 or more"),
            (self.shard_count >= 1, f"shard.count={self.shard_count}", "1 or more"),
            (
                0 <= self.shard_index < self.shard_count,
                f"shard.index={self.shard_index}",
                f"0..{self.shard_count - 1} (shard.count={self.shard_count})",
            ),
        ]
        for ok, setting, allowed in checks:
            if not ok:
                raise EmotionError(f"{setting} is not allowed", f"use {allowed}")

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_SETS[self.classes]

    @property
    def store_path(self) -> Path:
        """The file this run writes: the output itself, or its shard file."""
        return shard_path(self.output, self.shard_index, self.shard_count)

    def result_settings(self) -> dict[str, Any]:
        values = asdict(self)
        return {key: values[key] for key in RESULT_KEYS}

    def fingerprint(self, task_sources: list[str]) -> str:
        """Identifies what a run writes: settings that matter plus the exact task list."""
        digest = hashlib.sha256(json.dumps(self.result_settings(), sort_keys=True).encode())
        for source in task_sources:
            digest.update(source.encode("utf-8") + b"\0")
        return digest.hexdigest()

    @classmethod
    def from_config(cls, cfg: Any) -> ExtractSettings:
        """From the `conf/extract.yaml` tree (a DictConfig or a plain nested dict)."""
        if cfg["source"]["root"] in (None, "", "???"):
            raise EmotionError(
                "source.root is not set",
                "name the data folder: emotion-extract source.root=/data/aihub82 output=...",
            )
        return cls(
            root=Path(str(cfg["source"]["root"])).expanduser(),
            output=Path(str(cfg["output"])).expanduser(),
            layout=str(cfg["source"]["layout"]),
            classes=str(cfg["classes"]),
            labels_source=str(cfg["labels"]["source"]),
            subject_regex=str(cfg["subject"]["regex"]),
            class_regex=cfg["source"]["class_regex"],
            zip_encoding=str(cfg["source"]["zip_encoding"]),
            video_stride=int(cfg["source"]["video_stride"]),
            video_max_frames=int(cfg["source"]["video_max_frames"]),
            max_per_archive=int(cfg["max_per_archive"]),
            sampling=str(cfg["sampling"]),
            seed=int(cfg["seed"]),
            reduce=parse_reduce(cfg["decode"]["reduce"]),
            min_short_side=int(cfg["decode"].get("min_short_side", MIN_SHORT_SIDE)),
            workers=int(cfg["workers"]),
            shard_index=int(cfg["shard"]["index"]),
            shard_count=int(cfg["shard"]["count"]),
            chunk_tasks=int(cfg["chunk_tasks"]),
            progress=str(cfg["progress"]),
            overwrite=bool(cfg["overwrite"]),
        )


def shard_path(output: Path, index: int, count: int) -> Path:
    """`data/x.h5` -> `data/x.shard-03-of-16.h5`; unsharded runs write `output` itself."""
    if count == 1:
        return output
    width = len(str(count - 1))
    return output.with_name(f"{output.stem}.shard-{index:0{width}d}-of-{count}{output.suffix}")


def report_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".report.json")
