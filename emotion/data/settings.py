"""Every data setting of a run as one typed, checked object (`emotion/conf/data/*.yaml` keys)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from enum import Enum
from typing import TYPE_CHECKING, Any

from emotion.data.splits import DEFAULT_FOLD, DEFAULT_NUM_FOLDS, SplitStrategy
from emotion.errors import EmotionError
from emotion.features.choices import Baseline, BaselineFeatures, Features, Normalization, values

if TYPE_CHECKING:
    from emotion.features.preprocessing import Preprocessing

# Where the data module keeps its tensors while a Trainer runs (docs/gpu.md).
RESIDENT_CHOICES = ("auto", "true", "false")
# The settings with a fixed set of values, and their Enum: the config schema
# (emotion.data.config) types them so, and __post_init__ turns either back into plain strings.
CHOICES: dict[str, type[Enum]] = {
    "normalization": Normalization,
    "split_strategy": SplitStrategy,
    "baseline": Baseline,
    "baseline_features": BaselineFeatures,
    "features": Features,
}


@dataclass(frozen=True)
class DataSettings:
    """What the data module reads, how it splits, batches and augments it."""

    path: str
    synthetic: dict[str, Any] | None = None  # the synthetic default's generator settings
    normalization: str = "nose_unit"
    aspect_correction: bool = False
    # What of a face the model reads: landmarks | blendshapes | landmarks+blendshapes.
    features: str = "landmarks"
    split_strategy: str = "official"
    val_fraction: float = 0.15
    # Carve a validation split only when it holds at least this many people; with fewer,
    # they train (and the final epoch is kept: select=auto). 0 (here): always carve; the
    # training configs set 10 (emotion/conf/data/synthetic.yaml).
    min_val_subjects: int = 0
    drop_overlap: bool = True
    fold: int = DEFAULT_FOLD
    num_folds: int = DEFAULT_NUM_FOLDS
    split_seed: int = 0
    noise_std: float = 0.0
    batch_size: int = 256
    eval_batch_size: int = 1024
    seed: int = 0
    pin_memory: bool = False
    # Keep the feature, label and row-index tensors on the trainer's device for the whole run,
    # so no batch is copied host-to-device per step: auto (only when that device is CUDA),
    # true (always, CPU included) or false (never; batches cross per step as before).
    resident: str | bool = "auto"
    # Debugging: train on this many fixed batches and validate on the same rows. Done by the
    # data module, not with Trainer(overfit_batches), which swaps in a per-sample sampler.
    overfit_batches: int = 0
    # Training-only augmentation of head pose and face size (emotion.features.augment).
    rotation_aug_deg: float = 0.0
    scale_aug_std: float = 0.0
    # Drop classes with no rows in the whole store (e.g. 'hurt' in a sample without it).
    drop_empty_classes: bool = False
    # The personal baseline (emotion.features.baseline): none | enrolled | session.
    baseline: str = "none"
    enroll_per_subject: int = 1
    baseline_features: str = "difference"  # difference | both (the difference and the photo)
    # enrolled: draw the training people's reference photos afresh every epoch (augmentation;
    # validation and test keep theirs).
    baseline_resample: bool = False

    def __post_init__(self) -> None:
        for setting, choice in CHOICES.items():
            object.__setattr__(self, setting, plain_choice(setting, getattr(self, setting), choice))
        if str(self.resident).lower() not in RESIDENT_CHOICES:
            raise EmotionError(
                f"data.resident={self.resident!r} is not known",
                f"choose one of {list(RESIDENT_CHOICES)}",
            )
        if self.split_strategy == "official" and (self.fold, self.num_folds) != (
            DEFAULT_FOLD,
            DEFAULT_NUM_FOLDS,
        ):
            raise EmotionError(
                f"data.fold={self.fold} and data.num_folds={self.num_folds} only apply to "
                "data.split_strategy=kfold; with official they would be silently ignored",
                "add data.split_strategy=kfold, or leave data.fold and data.num_folds out",
            )
        if self.baseline_resample and self.baseline != "enrolled":
            raise EmotionError(
                f"data.baseline_resample=true redraws enrolled reference photos, but "
                f"data.baseline={self.baseline}",
                "use it with data.baseline=enrolled, or leave it out",
            )
        if self.enroll_per_subject < 1:
            raise EmotionError(
                f"data.enroll_per_subject={self.enroll_per_subject}", "use 1 or more photos"
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise EmotionError(
                f"data.val_fraction={self.val_fraction} must lie in [0, 1)",
                "use e.g. data.val_fraction=0.15, or 0 for no validation split (with select=last)",
            )
        if not (math.isfinite(self.noise_std) and self.noise_std >= 0):
            raise EmotionError(
                f"data.noise_std={self.noise_std} is not a finite, non-negative number",
                "use 0 for no noise, or a small positive number, e.g. data.noise_std=0.002",
            )
        if self.features != "landmarks" and (self.rotation_aug_deg > 0 or self.scale_aug_std > 0):
            raise EmotionError(
                f"data.rotation_aug_deg and data.scale_aug_std turn and scale landmarks, but "
                f"data.features={self.features} also holds blendshape scores",
                "leave them at 0 with blendshapes, or use data.features=landmarks",
            )
        if self.batch_size < 2:
            raise EmotionError(
                f"data.batch_size={self.batch_size}; BatchNorm needs at least 2 rows per batch"
            )

    @classmethod
    def names(cls) -> set[str]:
        """The setting names: what a saved run config's `data` may pass on."""
        return {field.name for field in fields(cls)}

    @property
    def resident_choice(self) -> str:
        """auto | true | false, whether Hydra passed a YAML boolean or a string."""
        return str(self.resident).lower()

    @property
    def preprocessing(self) -> Preprocessing:
        from emotion.features.preprocessing import Preprocessing

        return Preprocessing(
            self.normalization,
            self.aspect_correction,
            self.baseline,
            self.enroll_per_subject,
            self.baseline_features,
            self.features,
        )


def plain_choice(setting: str, value: Any, choice: type[Enum]) -> str:
    """One choice setting as its plain string, whether the schema gave an Enum member or a
    saved config a string; anything else is named with the values it may take."""
    member = value.value if isinstance(value, Enum) else value
    try:
        return str(choice(member).value)
    except ValueError:
        raise EmotionError(
            f"data.{setting}={value!r} is not known",
            f"choose one of {list(values(choice))}",
        ) from None
