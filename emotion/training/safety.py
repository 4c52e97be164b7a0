"""What every training run carries, whatever its config: checkpoints that are whole or absent,
a resume that continues the same random streams, and a stop when the loss stops being a
number. Not options: without them a run can look finished and be wrong."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from emotion.errors import EmotionError

# The errors a full disk or quota raises, wherever in the stack they surface.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Each checkpoint goes to a temporary file in its own folder, is synced, then renamed
    over the old one: a full disk or a kill leaves the previous checkpoint whole. (Lightning
    writes through fsspec, whose temporary file lives in the system temporary folder: on
    another file system its final copy is not atomic, and a full disk leaves a truncated
    last.ckpt under the final name.)"""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".partial"
        )
        try:
            with os.fdopen(handle, "wb") as stream:
                torch.save(checkpoint, stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


class RandomState(L.Callback):
    """The torch, CUDA, numpy and Python random states in every checkpoint, restored on
    resume, so the coordinate noise, dropout and augmentation after a resume are the draws an
    uninterrupted run makes. (The batch order is already `seed + epoch`.) Stored as tensors
    and plain numbers, so checkpoints still load with weights_only=True."""

    def state_dict(self) -> dict[str, Any]:
        name, keys, position, has_gauss, gauss = np.random.get_state()
        state: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": {
                "name": str(name),
                "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                "position": int(position),
                "has_gauss": int(has_gauss),
                "gauss": float(gauss),
            },
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        saved = state_dict["numpy"]
        keys = saved["keys"].numpy().astype(np.uint32)
        np.random.set_state(
            (saved["name"], keys, saved["position"], saved["has_gauss"], saved["gauss"])
        )
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class FiniteLoss(L.Callback):
    """Stop with an error when the training loss is NaN or infinite: from there on every
    weight is NaN, and the run would be reported finished. Checked every
    `log_every_n_steps` steps and on each epoch's last batch, before its checkpoint, so a
    device run pays one sync per logging step, not per step."""

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        last = batch_idx + 1 >= trainer.num_training_batches
        if not (last or trainer.global_step % max(trainer.log_every_n_steps, 1) == 0):
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None or bool(torch.isfinite(loss.detach()).all()):
            return
        raise EmotionError(
            f"the training loss became {float(loss.detach())} at epoch {trainer.current_epoch}, "
            f"step {trainer.global_step}: the weights are no longer numbers, so the run stops "
            "unfinished (the checkpoints from before are kept)",
            "lower model.lr, or data.noise_std and the augmentation; check the store for "
            "extreme landmarks (emotion-extract's report)",
        )


def disk_full(error: BaseException) -> OSError | None:
    """The full-disk OSError behind an exception, however a library wrapped it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL:
            return current
        current = current.__cause__ or current.__context__
    return None


def disk_full_error(cause: OSError, run_dir: Path) -> EmotionError:
    where = f" ({cause.filename})" if cause.filename else ""
    return EmotionError(
        f"the disk holding {run_dir} is full{where}: the run stopped, and no checkpoint is "
        "left half-written",
        f"free space there (df -h {run_dir}), then rerun the same command: it resumes from "
        "the newest checkpoint in checkpoints/ when there is one",
    )
