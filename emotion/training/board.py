"""TensorBoard as a run's viewer reads it: no `epoch` card above the curves, and yes/no
settings in HPARAMS that read true/false."""

from __future__ import annotations

from argparse import Namespace
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only


class TensorBoard(TensorBoardLogger):
    """Lightning's TensorBoard logger with two viewer-facing changes.

    Lightning adds the epoch number to every metric it logs; TensorBoard then draws it as a
    step-vs-epoch line, the first card on the page, above every curve. The other loggers keep
    it (a CSV row wants its epoch). And torch writes a bool hyperparameter as the number 1.0
    (its int test comes before its bool test), so HPARAMS shows `1.0000`; here it is the text
    true/false."""

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        super().log_metrics({k: v for k, v in metrics.items() if k != "epoch"}, step)

    @rank_zero_only
    def log_hyperparams(
        self,
        params: dict[str, Any] | Namespace,
        metrics: dict[str, Any] | None = None,
        step: int | None = None,
    ) -> None:
        if isinstance(params, dict):
            params = {k: _text(v) for k, v in params.items()}
        super().log_hyperparams(params, metrics=metrics, step=step)


def _text(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, bool) else value
