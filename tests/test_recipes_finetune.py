"""Pre-train, then fine-tune through the checkpoint alone: the trunk transfers, the head is new."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emotion.checkpoint import read_checkpoint
from emotion.errors import EmotionError
from emotion.models.classifier import LandmarkClassifier
from emotion.recipes.finetune import load_trunk
from emotion.training.train import train
from tests.conftest import small_overrides

KFOLD = ("data.split_strategy=kfold", "data.num_folds=3", "data.fold=0")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory, tiny_store_path: Path) -> Path:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    from tests.conftest import CONF_DIR

    run_dir = tmp_path_factory.mktemp("pretrain") / "run"
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", small_overrides(tiny_store_path, run_dir, *KFOLD))
    with open_dict(cfg):
        cfg.run_name = "pretrain"
    train(cfg)
    return run_dir / "checkpoints" / "last.ckpt"


def _finetune(train_config, store: Path, run_dir: Path, ckpt: Path, *extra: str) -> dict:
    overrides = small_overrides(store, run_dir, "experiment=finetune_binary", *KFOLD, *extra)
    return train(train_config([*overrides, f"init_from={ckpt}"]))


def test_load_trunk_copies_the_trunk_and_leaves_the_head(pretrained: Path) -> None:
    checkpoint = read_checkpoint(pretrained)  # weights_only=True inside
    hparams = {**checkpoint["hyper_parameters"], "class_names": ["a", "b", "c"]}
    model = LandmarkClassifier(**hparams)
    head_before = {k: v.clone() for k, v in model.model.head.state_dict().items()}
    load_trunk(model, checkpoint, str(pretrained))
    for key, value in model.model.trunk.state_dict().items():
        torch.testing.assert_close(value, checkpoint["state_dict"][f"model.trunk.{key}"])
    for key, value in model.model.head.state_dict().items():
        torch.testing.assert_close(value, head_before[key])
    assert model.model.head[-1].out_features == 3  # a new head for a new class set


def test_frozen_trunk_keeps_its_weights_and_the_head_trains(
    train_config, tiny_store_path: Path, tmp_path: Path, pretrained: Path
) -> None:
    result = _finetune(
        train_config, tiny_store_path, tmp_path / "ft", pretrained, "freeze_trunk_epochs=5"
    )
    tuned = torch.load(result["best_checkpoint"], weights_only=True)["state_dict"]
    source = read_checkpoint(pretrained)["state_dict"]
    linear = [k for k in source if k.startswith("model.trunk.") and k.endswith("0.weight")]
    assert linear
    for key in linear:  # Linear layers frozen (BatchNorm may adapt)
        torch.testing.assert_close(tuned[key], source[key])
    head = [k for k in source if k.startswith("model.head.")]
    assert any(not torch.equal(tuned[k], source[k]) for k in head)
    assert 0.0 <= result["test"]["test/bal_acc"] <= 1.0


def test_other_geometry_is_refused(
    train_config, tiny_store_path: Path, tmp_path: Path, pretrained: Path
) -> None:
    with pytest.raises(EmotionError, match="geometry"):
        _finetune(
            train_config, tiny_store_path, tmp_path / "g", pretrained, "data.normalization=none"
        )


def test_pretraining_on_test_people_is_refused(
    train_config, tiny_store_path: Path, tmp_path: Path, pretrained: Path
) -> None:
    with pytest.raises(EmotionError, match="test subjects"):
        _finetune(train_config, tiny_store_path, tmp_path / "leak", pretrained, "data.fold=1")
