"""The `model` config group's typed schema, registered in Hydra's ConfigStore as
`model/schema` (emotion/conf/model/residual_mlp.yaml and linear.yaml build on it): Hydra
checks every value's type, and `architecture` against its Enum, at compose time and names the
key (`full_key: model.architecture`).

Written out rather than read from `LandmarkClassifier.__init__`, which would load torch
before the config is composed; tests/test_model.py holds the two to the same names, types
and defaults. `class_names` and `input_dim` come from the data at run time, not the config.
"""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

from emotion.models.choices import DEFAULT_ARCHITECTURE, Architecture


@dataclass
class ModelConfig:
    _target_: str = "emotion.models.classifier.LandmarkClassifier"
    architecture: Architecture = DEFAULT_ARCHITECTURE
    width: int = 512
    depth: int = 3
    head_width: int = 256
    dropout: float = 0.3
    head_dropout: float = 0.2
    lr: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    warmup_epochs: int = 0
    min_lr: float = 0.0
    compile: bool = False
    compile_mode: str = "default"


ConfigStore.instance().store(group="model", name="schema", node=ModelConfig)
