"""logger=csv and logger=mlflow beside TensorBoard: the same metric names and the same
HPARAMS content, read back from what each one wrote (MLflow through its tracking API)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emotion.training.results import HPARAM_KEYS
from tests.trained_run import train_tiny


def test_csv_and_mlflow_log_the_same_metrics_and_hparams(
    tiny_store_path: Path, tmp_path: Path
) -> None:
    loggers = "logger=[tensorboard,csv,mlflow]"
    try:
        import mlflow  # noqa: F401
    except ImportError:
        loggers = "logger=[tensorboard,csv]"
    run_dir = tmp_path / "run"
    result = train_tiny(tiny_store_path, run_dir, loggers, "trainer.max_epochs=2")
    headline = {key for key in (*result["val"], *result["test"])}

    (csv,) = (run_dir / "csv").glob("version_*")
    hparams = yaml.safe_load((csv / "hparams.yaml").read_text())
    assert set(hparams) == {*HPARAM_KEYS, "n_params"}
    assert hparams["width"] == result["config"]["model"]["width"]
    header = (csv / "metrics.csv").read_text().splitlines()[0].split(",")
    assert headline <= set(header) and "train/loss_epoch" in header
    assert {"hp/val_bal_acc", "hp/test_bal_acc"} <= set(header)
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))

    if loggers.endswith("mlflow]"):
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=str(tmp_path / "outputs" / "mlruns"))
        (experiment,) = [e for e in client.search_experiments() if e.name == "train"]
        (run,) = client.search_runs([experiment.experiment_id])
        assert set(run.data.params) == set(hparams)
        assert {key: str(value) for key, value in hparams.items()} == run.data.params
        assert headline <= set(run.data.metrics)
        assert run.data.metrics["test/bal_acc"] == pytest.approx(result["test"]["test/bal_acc"])
    else:
        pytest.skip("csv checked; mlflow needs the `mlflow` extra")
