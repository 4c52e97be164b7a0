"""Training on a GPU: device-resident data, fused AdamW, bf16, and checkpoints that travel.

The first tests run on the CPU: a data module forced resident (`data.resident=true`, the
device being the CPU) yields exactly the batches of a host one, and CPU runs keep the default
optimiser. The `gpu` tests need CUDA and skip without it (docs/gpu.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from emotion.data.batches import BatchIndices, TensorRows, stages_on_device
from emotion.data.datamodule import LandmarkDataModule
from emotion.errors import EmotionError
from emotion.evaluate.evaluation import evaluate
from emotion.models.classifier import LandmarkClassifier
from emotion.store.io import write_store
from emotion.synthetic.generate import generate
from emotion.synthetic.settings import SyntheticSettings
from tests.trained_run import eval_config, train_tiny

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
ON_GPU = ("trainer=gpu", "trainer.accelerator=gpu")  # small_overrides asks for the CPU first


def _trainer(accelerator: str = "cpu") -> L.Trainer:
    return L.Trainer(
        accelerator=accelerator,
        devices=1,
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def _data_module(store: Path, resident: str, trainer: L.Trainer) -> LandmarkDataModule:
    data = LandmarkDataModule(
        str(store), batch_size=64, eval_batch_size=100, seed=7, resident=resident
    )
    data.setup()
    data.trainer = trainer
    return data


def _batches(data: LandmarkDataModule, epochs: int = 2) -> list[tuple[Any, ...]]:
    """Every training batch of `epochs` shuffled epochs, then every validation batch."""
    batches = []
    for epoch in range(epochs):
        loader = data.train_dataloader()
        loader.sampler.set_epoch(epoch)
        batches += [(epoch, *batch) for batch in loader]
    return batches + [("val", *batch) for batch in data.val_dataloader()]


def test_resident_batches_are_the_host_batches(tiny_store_path: Path) -> None:
    trainer = _trainer()
    host = _data_module(tiny_store_path, "false", trainer)
    resident = _data_module(tiny_store_path, "true", trainer)
    assert host.resident_device() is None
    assert resident.resident_device() == trainer.strategy.root_device
    expected, got = _batches(host), _batches(resident)
    assert len(got) == len(expected) > 4
    for (stage, features, labels), (got_stage, got_features, got_labels) in zip(
        expected, got, strict=True
    ):
        assert stage == got_stage
        assert torch.equal(features, got_features) and torch.equal(labels, got_labels)
        assert got_features.device == trainer.strategy.root_device
    indices = next(iter(resident.train_dataloader().sampler))
    assert indices.device == trainer.strategy.root_device


def test_auto_leaves_cpu_runs_on_the_host(tiny_store_path: Path) -> None:
    data = _data_module(tiny_store_path, "auto", _trainer())
    assert data.resident_device() is None
    assert data.rows("train").features.device.type == "cpu"


def test_unknown_resident_choice_is_a_user_error(tiny_store_path: Path) -> None:
    with pytest.raises(EmotionError, match="data.resident"):
        LandmarkDataModule(str(tiny_store_path), resident="gpu")


def test_sampler_indices_live_on_the_requested_device() -> None:
    """`meta` stands in for an accelerator: the order is made on the host, then moved."""
    host = BatchIndices(10, 4, shuffle=True, seed=3)
    moved = BatchIndices(10, 4, shuffle=True, seed=3, device=torch.device("meta"))
    for expected, got in zip(host, moved, strict=True):
        assert got.device.type == "meta" and got.shape == expected.shape


def test_stages_share_one_copy_on_the_device() -> None:
    features, labels = torch.randn(6, 3), torch.arange(6)
    stages = {"train": TensorRows(features, labels, torch.arange(4))}
    stages["val"] = TensorRows(features, labels, torch.arange(4, 6))
    moved = stages_on_device(stages, torch.device("meta"))
    assert moved["train"].all_features is moved["val"].all_features
    assert moved["val"].rows.device.type == "meta"


def test_cpu_keeps_the_default_adamw_and_compile_is_checked() -> None:
    model = LandmarkClassifier(["neutral", "anxious"], width=16, depth=1, head_width=8)
    model.trainer = _trainer()
    optimizer = model.configure_optimizers()["optimizer"]
    assert not optimizer.defaults.get("fused")
    assert "compile" not in model.hparams
    with pytest.raises(EmotionError, match="compile_mode"):
        LandmarkClassifier(["neutral", "anxious"], compile=True, compile_mode="fastest")


def test_a_resident_run_trains_exactly_as_a_host_run(tiny_store_path: Path, tmp_path: Path) -> None:
    host = train_tiny(tiny_store_path, tmp_path / "host", "data.resident=false")
    resident = train_tiny(tiny_store_path, tmp_path / "resident", "data.resident=true")
    assert resident["test"] == host["test"] and resident["val"] == host["val"]


# -- on a GPU -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpu_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Large enough that validation balanced accuracy is not one person's coin flip."""
    path = tmp_path_factory.mktemp("gpu") / "store.h5"
    write_store(path, generate(SyntheticSettings(num_subjects=120, frames_per_subject=20, seed=5)))
    return path


def _train_on_gpu(store: Path, run_dir: Path, precision: str, seed: int = 1) -> dict[str, Any]:
    """A small model trained long enough on `gpu_store` to be far from chance."""
    return train_tiny(
        store,
        run_dir,
        *ON_GPU,
        f"trainer.precision={precision}",
        f"seed={seed}",
        "trainer.max_epochs=8",
        "model.width=128",
        "model.head_width=64",
        "data.batch_size=128",
    )


def _val_bal_acc(store: Path, run_dir: Path, precision: str, seed: int) -> float:
    return _train_on_gpu(store, run_dir, precision, seed)["val"]["val/bal_acc"]


@pytest.mark.gpu
@needs_cuda
def test_bf16_reaches_the_accuracy_of_fp32(gpu_store: Path, tmp_path: Path) -> None:
    """bf16-mixed against fp32 on the same seed, within the spread of two fp32 seeds."""
    bf16 = _val_bal_acc(gpu_store, tmp_path / "bf16", "bf16-mixed", seed=1)
    fp32 = _val_bal_acc(gpu_store, tmp_path / "fp32", "32-true", seed=1)
    fp32_other_seed = _val_bal_acc(gpu_store, tmp_path / "fp32_seed2", "32-true", seed=2)
    seed_noise = abs(fp32 - fp32_other_seed)
    assert fp32 > 0.6, "the model should learn on this store"
    assert abs(bf16 - fp32) <= max(0.03, 2 * seed_noise), (bf16, fp32, fp32_other_seed)


@pytest.mark.gpu
@needs_cuda
def test_gpu_runs_keep_the_data_resident_and_use_fused_adamw(tiny_store_path: Path) -> None:
    trainer = _trainer("gpu")
    data = _data_module(tiny_store_path, "auto", trainer)
    assert data.resident_device().type == "cuda"
    features, labels = next(iter(data.train_dataloader()))
    assert features.is_cuda and labels.is_cuda
    assert next(iter(data.train_dataloader().sampler)).is_cuda
    model = LandmarkClassifier(["neutral", "anxious"], width=16, depth=1, head_width=8).cuda()
    model.trainer = trainer
    assert model.configure_optimizers()["optimizer"].defaults["fused"] is True


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["bf16-mixed", "32-true"])
def test_a_gpu_checkpoint_evaluates_on_the_cpu_as_training_reported(
    gpu_store: Path, tmp_path: Path, precision: str
) -> None:
    """emotion-eval runs on the CPU in float32: equal to training's GPU test in float32; with
    bf16 (training tested under autocast) within two rows of the smaller class."""
    run_dir = tmp_path / "run"
    trained = _train_on_gpu(gpu_store, run_dir, precision)
    assert trained["test"]["test/bal_acc"] > 0.6, "a model at chance would prove little"
    result = evaluate(eval_config(f"run_dir={run_dir}", "bootstrap.resamples=20"))
    rows_per_class = trained["data"]["stages"]["test"]["rows_per_class"].values()
    tolerance = 1e-6 if precision == "32-true" else 2 / min(rows_per_class)
    for key in ("test/acc", "test/bal_acc", "test/recall_anxious", "test/precision_neutral"):
        assert result["metrics"][key] == pytest.approx(trained["test"][key], abs=tolerance), key
    assert result["metrics"]["test/auroc"] == pytest.approx(
        trained["test"]["test/auroc"], abs=max(tolerance, 0.01)
    )
