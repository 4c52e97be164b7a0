"""Extraction settings as one typed object, so the pipeline does not depend on Hydra."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from emotion.errors import EmotionError
from emotion.extract.config import LabelSource, Layout, Sampling, SubjectMatchOn
from emotion.facemesh.decode import MAX_BYTES, MAX_PIXELS, MIN_SHORT_SIDE, parse_reduce
from emotion.facemesh.landmarker import extractor_identity
from emotion.features.choices import values
from emotion.store.classes import CLASS_SETS, class_map_key

LAYOUTS = values(Layout)
LABEL_SOURCES = values(LabelSource)
SAMPLING_METHODS = values(Sampling)
SUBJECT_MATCH_ON = values(SubjectMatchOn)
# classes=found: every class the data names, known only once the plan is made.
FOUND_CLASSES = "found"
# Settings that change which rows a run writes; the rest (workers, progress, ...) do not.
# Shards are left out: every shard of a run, and their merge, share one fingerprint.
RESULT_KEYS = (
    "layout",
    "classes",
    "class_map",
    "labels_source",
    "subject_regex",
    "subject_match_on",
    "class_regex",
    "zip_encoding",
    "video_stride",
    "video_max_frames",
    "max_per_archive",
    "sampling",
    "seed",
    "reduce",
    "min_short_side",
    "max_bytes",
    "max_pixels",
)

# Result keys added later, with the default that earlier stores were written under.
LATER_KEYS: dict[str, Any] = {
    "class_map": {},
    "subject_match_on": "file_name",
    "max_bytes": MAX_BYTES,
    "max_pixels": MAX_PIXELS,
}
_UNSET = object()


@dataclass(frozen=True)
class ExtractSettings:
    """Everything `extract` needs; built from the Hydra config by `from_config`."""

    root: Path
    output: Path
    layout: str = "auto"
    # "binary", "seven", "found" or an explicit tuple of class names (order kept).
    classes: str | tuple[str, ...] = "binary"
    # Folder name or class_regex group -> class, keys as `class_map_key` gives them.
    class_map: Mapping[str, str] = field(default_factory=dict)
    labels_source: str = "folder"
    subject_regex: str = r"^([^_]+)_"
    subject_match_on: str = "file_name"
    class_regex: str | None = None
    zip_encoding: str = "cp949"
    video_stride: int = 30
    video_max_frames: int = 1000
    max_per_archive: int = 5000
    sampling: str = "uniform"
    seed: int = 0
    reduce: int | str = "auto"
    min_short_side: int = MIN_SHORT_SIDE
    max_bytes: int = MAX_BYTES
    max_pixels: int = MAX_PIXELS
    workers: int = 1
    shard_index: int = 0
    shard_count: int = 1
    chunk_tasks: int = 128
    progress: str = "auto"
    overwrite: bool = False

    def __post_init__(self) -> None:
        parse_reduce(self.reduce)
        # Frozen: normalised values are set the way dataclasses set them.
        object.__setattr__(self, "classes", parse_classes(self.classes))
        object.__setattr__(self, "class_map", parse_class_map(self.class_map))
        checks = [
            (self.layout in LAYOUTS, f"source.layout={self.layout}", f"one of {LAYOUTS}"),
            (
                self.subject_match_on in SUBJECT_MATCH_ON,
                f"subject.match_on={self.subject_match_on}",
                f"one of {SUBJECT_MATCH_ON}",
            ),
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
            (self.max_bytes >= 1, f"decode.max_bytes={self.max_bytes}", "1 or more (bytes)"),
            (
                self.max_pixels >= 1,
                f"decode.max_pixels={self.max_pixels}",
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
    def fixed_class_names(self) -> tuple[str, ...] | None:
        """The classes, in label order, when the settings alone fix them; None for `found`,
        whose classes are those the plan finds (`emotion.extract.plan.Plan.class_names`)."""
        if isinstance(self.classes, tuple):
            return self.classes
        return None if self.classes == FOUND_CLASSES else CLASS_SETS[self.classes]

    @property
    def store_path(self) -> Path:
        """The file this run writes: the output itself, or its shard file."""
        return shard_path(self.output, self.shard_index, self.shard_count)

    def result_settings(self) -> dict[str, Any]:
        values = asdict(self)
        return {key: values[key] for key in RESULT_KEYS}

    def fingerprint(self, task_sources: list[str], class_names: list[str]) -> str:
        """Identifies what a run writes: settings that matter, the classes in label order
        (`found` learns them from the data), the exact task list and the extractor (a store
        of another extractor's faces is extracted again, not taken as up to date).

        Settings added after stores were first written count only when they differ from
        their default, so rerunning an older store's own command still finds it complete."""
        settings = {
            key: value
            for key, value in self.result_settings().items()
            if LATER_KEYS.get(key, _UNSET) != value
        }
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
        extractor = extractor_identity()
        digest.update(f"{extractor['name']}:{extractor['model_sha256']}\0".encode())
        if self.classes == FOUND_CLASSES:
            digest.update(json.dumps(class_names).encode() + b"\0")
        for source in task_sources:
            digest.update(source.encode("utf-8") + b"\0")
        return digest.hexdigest()

    @classmethod
    def from_config(cls, cfg: Any) -> ExtractSettings:
        """From the `emotion/conf/extract.yaml` tree (a DictConfig or a plain nested dict)."""
        if isinstance(cfg, DictConfig):  # the schema's Enum members as their plain names
            cfg = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
        if cfg["source"]["root"] in (None, "", "???"):
            raise EmotionError(
                "source.root is not set",
                "name the data folder: emotion-extract source.root=/data/aihub82 output=...",
            )
        decode = cfg["decode"]
        return cls(
            root=Path(str(cfg["source"]["root"])).expanduser(),
            output=Path(str(cfg["output"])).expanduser(),
            layout=str(cfg["source"]["layout"]),
            classes=cfg["classes"],
            class_map=cfg["source"].get("class_map") or {},
            labels_source=str(cfg["labels"]["source"]),
            subject_regex=str(cfg["subject"]["regex"]),
            subject_match_on=str(cfg["subject"].get("match_on", "file_name")),
            class_regex=cfg["source"]["class_regex"],
            zip_encoding=str(cfg["source"]["zip_encoding"]),
            video_stride=int(cfg["source"]["video_stride"]),
            video_max_frames=int(cfg["source"]["video_max_frames"]),
            max_per_archive=int(cfg["max_per_archive"]),
            sampling=str(cfg["sampling"]),
            seed=int(cfg["seed"]),
            reduce=parse_reduce(decode["reduce"]),
            min_short_side=int(decode.get("min_short_side", MIN_SHORT_SIDE)),
            max_bytes=int(decode.get("max_bytes", MAX_BYTES)),
            max_pixels=int(decode.get("max_pixels", MAX_PIXELS)),
            workers=int(cfg["workers"]),
            shard_index=int(cfg["shard"]["index"]),
            shard_count=int(cfg["shard"]["count"]),
            chunk_tasks=int(cfg["chunk_tasks"]),
            progress=str(cfg["progress"]),
            overwrite=bool(cfg["overwrite"]),
        )


def parse_classes(value: Any) -> str | tuple[str, ...]:
    """A `classes` setting: a set's name, `found`, or a list of class names (order kept)."""
    if isinstance(value, str) or not isinstance(value, Iterable) or isinstance(value, Mapping):
        value = str(value)
        if value in CLASS_SETS or value == FOUND_CLASSES:
            return value
        raise EmotionError(
            f"classes={value} is not allowed",
            f"use one of {(*CLASS_SETS, FOUND_CLASSES)} or a list: classes=[neutral,anxious,happy]",
        )
    names = tuple(unicodedata.normalize("NFC", str(name).strip()) for name in value)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if not names or repeated or "" in names:
        problem = "is empty" if not names else f"repeats {repeated}" if repeated else "has ''"
        raise EmotionError(
            f"classes={list(names)} {problem}",
            "list each class once, in label order: classes=[neutral,anxious,happy]",
        )
    return names


def parse_class_map(value: Any) -> dict[str, str]:
    """`source.class_map` with its keys as `class_map_key` compares them (NFC, case-folded)."""
    if not isinstance(value, Mapping):
        raise EmotionError(
            f"source.class_map={value} is not a mapping",
            "map names or codes to classes: source.class_map={FE:anxious,NE:neutral}",
        )
    mapped: dict[str, str] = {}
    for key, target in value.items():
        name = unicodedata.normalize("NFC", str(target if target is not None else "").strip())
        normalised = class_map_key(str(key))
        if not name:
            raise EmotionError(
                f"source.class_map maps {key!r} to no class",
                "give every key a class name: source.class_map={FE:anxious}",
            )
        if mapped.get(normalised, name) != name:
            raise EmotionError(
                f"source.class_map maps {key!r} to both {mapped[normalised]!r} and {name!r} "
                "(keys are compared ignoring case)",
                "keep one of the two keys",
            )
        mapped[normalised] = name
    return mapped


def shard_path(output: Path, index: int, count: int) -> Path:
    """`data/x.h5` -> `data/x.shard-03-of-16.h5`; unsharded runs write `output` itself."""
    if count == 1:
        return output
    width = len(str(count - 1))
    return output.with_name(f"{output.stem}.shard-{index:0{width}d}-of-{count}{output.suffix}")


def report_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".report.json")
