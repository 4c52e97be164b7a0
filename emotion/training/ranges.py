"""The ranges of a training run's settings, checked once before anything is imported, read
or written: what no training can be right with (an empty model, no epochs, a NaN learning
rate), and every float bounded by what its use can hold, so `model.lr=1e308` is an
`error:`/`fix:` naming the key rather than a run that overflows or turns to NaN."""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig, OmegaConf

from emotion.errors import EmotionError, check_ranges
from emotion.models.choices import Architecture

# Float settings: (key, lowest, highest, lowest allowed, highest allowed, what to use).
# The highest values are far past any useful one, below those that overflow or make noise
# of the data: AdamW steps of 10 per weight, coordinate noise larger than a face (features
# are about 1 across), a rotation past a half turn, a scale that flips the face.
FLOAT_RANGES: tuple[tuple[str, float, float, bool, bool, str], ...] = (
    ("model.lr", 0.0, 10.0, False, True, "a positive number up to 10, e.g. 1e-3"),
    ("model.weight_decay", 0.0, 10.0, True, True, "a value in [0, 10], e.g. 1e-4"),
    ("model.dropout", 0.0, 1.0, True, False, "a value in [0, 1)"),
    ("model.head_dropout", 0.0, 1.0, True, False, "a value in [0, 1)"),
    ("model.label_smoothing", 0.0, 1.0, True, False, "a value in [0, 1), e.g. 0.05"),
    ("data.noise_std", 0.0, 1.0, True, True, "a value in [0, 1], e.g. 0.002"),
    ("data.rotation_aug_deg", 0.0, 180.0, True, True, "degrees in [0, 180], e.g. 5"),
    ("data.scale_aug_std", 0.0, 0.5, True, True, "a value in [0, 0.5], e.g. 0.05"),
    ("data.val_fraction", 0.0, 1.0, True, False, "a value in [0, 1), e.g. 0.15"),
    (
        "callbacks.last_checkpoint.every_seconds",
        0.0,
        1e7,
        True,
        True,
        "seconds in [0, 1e7] between last.ckpt writes (0: every epoch), e.g. 300",
    ),
    ("callbacks.ema.decay", 0.0, 1.0, False, False, "a value in (0, 1), e.g. 0.999"),
    ("trainer.gradient_clip_val", 0.0, 1e6, True, True, "a value in [0, 1e6], or null"),
)


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def within(value: Any, low: float, high: float, low_in: bool, high_in: bool) -> bool:
    """Finite, and between the bounds (each one included or not)."""
    if not finite(value):
        return False
    above = value >= low if low_in else value > low
    below = value <= high if high_in else value < high
    return above and below


def float_checks(cfg: DictConfig) -> list[tuple[str, Any, bool, str]]:
    """check_ranges' rows for the float settings this config has (a group left out, e.g.
    callbacks=none or no ema, has none to check)."""
    rows = []
    for key, low, high, low_in, high_in, wanted in FLOAT_RANGES:
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is not None:
            rows.append((key, value, within(value, low, high, low_in, high_in), wanted))
    return rows


def check_architecture(cfg: DictConfig) -> None:
    """A known `model.architecture` (the schema's Enum already refuses others at compose time;
    this covers a config built without it), and no fine-tuning of a network without a trunk."""
    architecture = OmegaConf.select(cfg, "model.architecture", default="residual_mlp")
    name = str(getattr(architecture, "value", architecture))
    known = [member.value for member in Architecture]
    if name not in known:
        raise EmotionError(f"model.architecture={name!r} is not known", f"choose one of {known}")
    init_from = OmegaConf.select(cfg, "init_from", default=None, throw_on_missing=False)
    if name == Architecture.linear.value and init_from:
        raise EmotionError(
            "init_from copies a pre-trained trunk, and model.architecture=linear has none: "
            "logistic regression is one layer on the features",
            "leave out init_from (and experiment=finetune_binary) for model=linear, or "
            "fine-tune the residual MLP",
        )


def check_train_config(cfg: DictConfig) -> None:
    """Every range of a run's settings; the first that does not hold is a user error."""
    check_architecture(cfg)
    model, trainer = cfg.model, cfg.trainer
    check_ranges(
        [
            ("seed", cfg.seed, 0 <= cfg.seed < 2**32, "an integer in [0, 2**32)"),
            (
                "threads",
                cfg.get("threads"),
                cfg.get("threads") is None or cfg.threads >= 1,
                "1 or more torch threads, or null for torch's default",
            ),
            ("model.width", model.width, model.width >= 1, "1 or more units, e.g. 512"),
            ("model.depth", model.depth, model.depth >= 1, "1 or more residual blocks, e.g. 3"),
            ("model.head_width", model.head_width, model.head_width >= 1, "1 or more, e.g. 256"),
            *float_checks(cfg),
            ("model.warmup_epochs", model.warmup_epochs, model.warmup_epochs >= 0, "0 or more"),
            (
                "model.min_lr",
                model.min_lr,
                finite(model.min_lr) and 0 <= model.min_lr <= model.lr,
                "a value in [0, model.lr]",
            ),
            (
                "trainer.max_epochs",
                trainer.max_epochs,
                trainer.max_epochs is None or trainer.max_epochs >= 1,
                "1 or more epochs",
            ),
        ]
    )
