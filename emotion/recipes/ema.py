"""An exponential moving average of the weights that is also what gets TESTED.

Lightning's EMAWeightAveraging validates and checkpoints the averaged weights (so the best
checkpoint is chosen by, and holds, EMA weights), but when the same Trainer later runs
`test(ckpt_path=best)` its `on_load_checkpoint` reloads the raw `current_model_state` over
them: the test would score weights that were never selected. Outside fitting this subclass
keeps the checkpoint's `state_dict`, i.e. the averaged weights.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn


class EMAWeights(EMAWeightAveraging):
    """EMAWeightAveraging whose validated, checkpointed and tested weights are the same."""

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
