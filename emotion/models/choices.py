"""The network a `LandmarkClassifier` is built around, as the typed schema's Enum (no torch
here, so the config composes before torch loads). Member names are the values, as configs
and checkpoints spell them."""

from __future__ import annotations

from enum import Enum


class Architecture(str, Enum):
    residual_mlp = "residual_mlp"  # the reference network (emotion/models/residual_mlp.py)
    linear = "linear"  # logistic regression: one Linear layer on the same features


# Checkpoints written before `architecture` was a hyperparameter hold a residual MLP.
DEFAULT_ARCHITECTURE = Architecture.residual_mlp
