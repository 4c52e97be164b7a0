"""The `data` config group's typed schema, registered in Hydra's ConfigStore as `data/schema`
(emotion/conf/data/synthetic.yaml, and so store.yaml, build on it).

Derived from `DataSettings`, so the keys, their types and defaults live in one place: Hydra
checks every value's type at compose time, and each choice against its Enum, and names the
key (`full_key: data.normalization`) when one is wrong. `DataSettings` keeps the rules that
span several settings. Importing this module registers the schema; it loads no torch, so a
mistyped override is still reported at once.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from emotion.data.settings import CHOICES, DataSettings

TARGET = "emotion.data.datamodule.LandmarkDataModule"
PLAIN_TYPES = (int, float, bool, str)


@dataclass
class SyntheticConfig:
    """`data.synthetic`: which SYNTHETIC store is the default, and the generator settings its
    file name holds (emotion-synth sets the others)."""

    output: str = MISSING
    num_subjects: int = 240
    seed: int = 0


def schema_field(setting: dataclasses.Field, hint: Any) -> tuple[str, Any, Any]:
    """(name, type, field) of one setting: its Enum for a choice, its own type for plain
    values, Any for the rest (data.resident: a boolean or "auto")."""
    if setting.name == "synthetic":
        return setting.name, SyntheticConfig | None, dataclasses.field(default=None)
    if setting.name in CHOICES:
        choice = CHOICES[setting.name]
        return setting.name, choice, dataclasses.field(default=choice(setting.default))
    kind = hint if hint in PLAIN_TYPES else Any
    if setting.default is dataclasses.MISSING:
        return setting.name, kind, dataclasses.field(default="???")
    return setting.name, kind, dataclasses.field(default=setting.default)


def data_schema() -> type:
    hints = typing.get_type_hints(DataSettings)
    settings = [schema_field(item, hints[item.name]) for item in dataclasses.fields(DataSettings)]
    instantiation = [
        ("_target_", str, dataclasses.field(default=TARGET)),
        ("_convert_", str, dataclasses.field(default="all")),
    ]
    return dataclasses.make_dataclass("DataConfig", instantiation + settings)


DataConfig = data_schema()
ConfigStore.instance().store(group="data", name="schema", node=DataConfig)
