"""Temperature scaling fitted on the validation set: calibrated probabilities, same decisions.

Softmax outputs of a network trained with label smoothing and early stopping are rarely
calibrated. One scalar T, fitted by minimising the validation negative log-likelihood of
logits / T, fixes most of that without changing any prediction (argmax, and for two classes
the ranking, so accuracy, balanced accuracy and AUROC stay the same).

When testing starts (on the best checkpoint) the callback fits T on the validation rows,
logs `test/temperature`, the test NLL and expected calibration error before and after
(`test/nll_raw`, `test/nll_calibrated`, `test/ece_raw`, `test/ece_calibrated`; all land in
metrics.json), and writes `temperature` into the tested checkpoint file.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning as L
import torch
from torch.nn import functional as F
from torchmetrics.classification import MulticlassCalibrationError

from emotion.checkpoint import write_temperature

log = logging.getLogger(__name__)
# A validation set the model separates perfectly (or gets all wrong) drives the NLL-optimal T to
# 0 (or infinity); tiny validation sets do that. T is kept inside these bounds, with a warning.
TEMPERATURE_BOUNDS = (0.05, 20.0)


@torch.no_grad()
def collect_logits(model: L.LightningModule, loader: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of every batch, in eval mode."""
    was_training = model.training
    model.eval()
    logits, labels = [], []
    for features, target in loader:
        logits.append(model(features.to(model.device)).float().cpu())
        labels.append(target.cpu())
    model.train(was_training)
    return torch.cat(logits), torch.cat(labels)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 100) -> float:
    """The T > 0 minimising the NLL of logits / T (optimised as log T with L-BFGS).

    Lightning tests under inference mode; this fit needs autograd, on detached copies."""
    with torch.inference_mode(False), torch.enable_grad():
        fitted = _fit_log_temperature(logits.clone(), labels.clone(), steps)
    low, high = TEMPERATURE_BOUNDS
    bounded = min(max(fitted, low), high) if math.isfinite(fitted) else high
    if bounded != fitted:
        log.warning(
            "temperature fit on %d validation rows gave T=%.3g; kept at %.3g "
            "(too few or perfectly separated validation rows to calibrate on)",
            len(labels),
            fitted,
            bounded,
        )
    return bounded


def _fit_log_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int) -> float:
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def calibration(logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> dict[str, float]:
    scaled = logits / temperature
    ece = MulticlassCalibrationError(num_classes=logits.shape[1], n_bins=15, norm="l1")
    return {
        "nll": float(F.cross_entropy(scaled, labels)),
        "ece": float(ece(scaled.softmax(dim=1), labels)),
    }


class TemperatureScaling(L.Callback):
    """Fit T on validation when testing starts; report calibration on the test rows."""

    def __init__(self) -> None:
        self.temperature: float | None = None

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if len(trainer.datamodule.rows("val")) == 0:
            log.warning("calibration=temperature needs validation rows; there are none: skipped")
            return
        logits, labels = collect_logits(pl_module, trainer.datamodule.val_dataloader())
        self.temperature = fit_temperature(logits, labels)
        log.info("temperature fitted on %d validation rows: T=%.4f", len(labels), self.temperature)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.temperature is None:
            return
        logits, labels = collect_logits(pl_module, trainer.datamodule.test_dataloader())
        raw = calibration(logits, labels, 1.0)
        calibrated = calibration(logits, labels, self.temperature)
        pl_module.log("test/temperature", self.temperature)
        for name in ("nll", "ece"):
            pl_module.log(f"test/{name}_raw", raw[name])
            pl_module.log(f"test/{name}_calibrated", calibrated[name])

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        path = trainer.ckpt_path
        if self.temperature is None or not path or not trainer.is_global_zero:
            return
        write_temperature(path, self.temperature)
