"""`emotion/conf/extract.yaml`'s typed schema, registered in Hydra's ConfigStore as
`extract_schema`: Hydra checks every value's type and each choice at compose time and names
the key (`full_key: source.video_stride`). `ExtractSettings` keeps the rules between values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


class Layout(str, Enum):
    auto = "auto"
    aihub = "aihub"
    folders = "folders"


class LabelSource(str, Enum):
    folder = "folder"
    annotators = "annotators"


class Sampling(str, Enum):
    random = "random"
    uniform = "uniform"


class SubjectMatchOn(str, Enum):
    file_name = "file_name"
    path = "path"


@dataclass
class SourceConfig:
    root: str = MISSING
    layout: Layout = Layout.auto
    zip_encoding: str = "cp949"
    class_regex: str | None = None
    class_map: Any = None  # {folder name or code: class}
    video_stride: int = 30
    video_max_frames: int = 1000


@dataclass
class LabelsConfig:
    source: LabelSource = LabelSource.folder


@dataclass
class SubjectConfig:
    regex: str = "^([^_]+)_"
    match_on: SubjectMatchOn = SubjectMatchOn.file_name


@dataclass
class DecodeConfig:
    reduce: Any = "auto"  # auto, or 1, 2, 4, 8
    min_short_side: int = 480
    max_bytes: int = 64 * 2**20
    max_pixels: int = 100_000_000


@dataclass
class ShardConfig:
    index: int = 0
    count: int = 1


@dataclass
class ExtractConfig:
    source: SourceConfig = field(default_factory=SourceConfig)
    output: str = MISSING
    classes: Any = "binary"  # a class set's name, found, or a list of names
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    subject: SubjectConfig = field(default_factory=SubjectConfig)
    max_per_archive: int = 5000
    sampling: Sampling = Sampling.uniform
    seed: int = 0
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    workers: int = 1
    shard: ShardConfig = field(default_factory=ShardConfig)
    chunk_tasks: int = 128
    progress: str = "auto"
    overwrite: bool = False


ConfigStore.instance().store(name="extract_schema", node=ExtractConfig)
