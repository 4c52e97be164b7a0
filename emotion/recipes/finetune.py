"""Fine-tune from a pre-trained checkpoint: load its trunk, keep a fresh head.

`experiment=finetune_binary init_from=<ckpt>` adds `TrunkFromCheckpoint`. Before training it
reads the checkpoint with `weights_only=True`, refuses when the input geometry differs or
when the pre-training saw people that are now in the test set, copies the trunk's weights
(and BatchNorm statistics) into the new model, and leaves the freshly initialised head alone.
With `freeze_trunk_epochs > 0` the trunk is frozen (BatchNorm keeps adapting) for that many
epochs, so the new head settles before the trunk's features move: Lightning's BaseFinetuning.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BaseFinetuning
from torch.optim import Optimizer

from emotion.checkpoint import GEOMETRY_KEYS, data_record_of, read_checkpoint
from emotion.errors import EmotionError
from emotion.store.schema import LEGACY_EXTRACTOR, describe_extractor, same_extractor

log = logging.getLogger(__name__)
TRUNK_PREFIX = "model.trunk."


def check_geometry(recorded: dict[str, Any] | None, current: dict[str, Any], path: str) -> None:
    """Refuse a trunk trained on features made differently from the current ones."""
    if recorded is None:
        raise EmotionError(
            f"{path} does not record its data settings, so its input geometry is unknown",
            "pre-train with this version of emotion-train, which records them in every checkpoint",
        )
    differ = {
        key: (recorded.get(key), current[key])
        for key in GEOMETRY_KEYS
        if recorded.get(key) != current[key]
    }
    extractor = recorded.get("extractor") or LEGACY_EXTRACTOR
    if not same_extractor(extractor, current["extractor"]):
        differ["extractor"] = (
            describe_extractor(extractor),
            describe_extractor(current["extractor"]),
        )
    if differ:
        shown = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in differ.items())
        raise EmotionError(
            f"init_from checkpoint used another input geometry ({shown})",
            "fine-tune with the same data.normalization, data.aspect_correction and "
            "data.features as the pre-training, on a store of the same extractor, or "
            "pre-train again",
        )


def check_no_test_leak(recorded: dict[str, Any], current: dict[str, Any], path: str) -> None:
    """Refuse when people now tested on were trained or validated on during pre-training."""
    seen = set(recorded["subjects"]["train"]) | set(recorded["subjects"]["val"])
    leaked = sorted(seen & set(current["subjects"]["test"]))
    if leaked:
        raise EmotionError(
            f"{len(leaked)} test subjects of this run were in the pre-training of {path}, "
            f"e.g. {leaked[:3]}",
            "pre-train on the same subject folds (same data.split_strategy, data.num_folds, "
            "data.fold, data.split_seed over the same people)",
        )


def trunk_state(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The trunk's parameters and buffers, with the `model.trunk.` prefix removed."""
    state = {
        key[len(TRUNK_PREFIX) :]: value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(TRUNK_PREFIX)
    }
    if not state:
        raise EmotionError("the init_from checkpoint holds no model.trunk weights")
    return state


def load_trunk(pl_module: L.LightningModule, checkpoint: dict[str, Any], path: str) -> None:
    """Copy the trunk into `pl_module.model.trunk`; shapes must match (same width and depth)."""
    try:
        pl_module.model.trunk.load_state_dict(trunk_state(checkpoint), strict=True)
    except RuntimeError as error:
        hparams = checkpoint.get("hyper_parameters", {})
        shown = {k: hparams.get(k) for k in ("input_dim", "width", "depth")}
        raise EmotionError(
            f"the trunk of {path} does not fit this model ({shown}): {error}".splitlines()[0],
            "use the same model.width and model.depth as the pre-training",
        ) from None


class TrunkFromCheckpoint(BaseFinetuning):
    """Initialise the trunk from `checkpoint`; optionally freeze it for the first epochs."""

    def __init__(
        self,
        checkpoint: str,
        freeze_trunk_epochs: int = 0,
        allow_subject_overlap: bool = False,
    ) -> None:
        super().__init__()
        self.checkpoint = str(checkpoint)
        self.freeze_trunk_epochs = int(freeze_trunk_epochs)
        self.allow_subject_overlap = allow_subject_overlap

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Runs before Lightning restores a resumed run, so resuming keeps the trained weights.
        if stage == "fit":
            source = read_checkpoint(
                self.checkpoint,
                "point init_from at a .ckpt written by emotion-train (e.g. experiment=pretrain7)",
            )
            recorded = data_record_of(source) or None
            current = trainer.datamodule.record()
            check_geometry(recorded, current, self.checkpoint)
            if not self.allow_subject_overlap:
                check_no_test_leak(recorded, current, self.checkpoint)
            load_trunk(pl_module, source, self.checkpoint)
            log.info("trunk initialised from %s; the head is new", self.checkpoint)
        super().setup(trainer, pl_module, stage)

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        if self.freeze_trunk_epochs > 0:
            self.freeze(pl_module.model.trunk, train_bn=True)

    def finetune_function(
        self, pl_module: L.LightningModule, epoch: int, optimizer: Optimizer
    ) -> None:
        # configure_optimizers holds every parameter, so unfreezing is all it takes; `>=` so a
        # run resumed after the unfreeze epoch unfreezes too (making trainable is idempotent).
        if self.freeze_trunk_epochs > 0 and epoch >= self.freeze_trunk_epochs:
            self.make_trainable(pl_module.model.trunk)
            if epoch == self.freeze_trunk_epochs:
                log.info("epoch %d: trunk unfrozen", epoch)
