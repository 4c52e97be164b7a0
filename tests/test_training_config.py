"""The training schemas (emotion/training/config.py) against what they configure: every key
of the trainer and checkpoint schemas is an argument of Lightning's class, with its default."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from hydra.utils import get_class
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from emotion.training.board import TensorBoard
from emotion.training.config import CheckpointConfig, TensorBoardConfig, TrainerConfig


@pytest.mark.parametrize(
    ("schema", "target"),
    [
        (TrainerConfig, Trainer),
        (CheckpointConfig, ModelCheckpoint),
        (TensorBoardConfig, TensorBoard),
    ],
)
def test_each_key_is_an_argument_with_lightnings_default(schema: type, target: type) -> None:
    parameters = inspect.signature(target.__init__).parameters
    for setting in dataclasses.fields(schema):
        if setting.name == "_target_":
            assert get_class(setting.default) is target
            continue
        assert setting.name in parameters, setting.name
        default = parameters[setting.name].default
        if default is inspect.Parameter.empty:
            continue
        assert setting.default == default, setting.name
