"""The residual MLP: the reference's exact size, shapes, and checkpoint-only rebuilding."""

from __future__ import annotations

import torch

from emotion.models.classifier import LandmarkClassifier
from emotion.models.residual_mlp import ResidualMLP, count_parameters


def reference_parameter_count(
    inputs: int = 1434, width: int = 512, depth: int = 3, head: int = 256, classes: int = 2
) -> int:
    """Counted by hand from the reference description, independently of the code."""
    linear = lambda i, o: i * o + o  # noqa: E731
    batchnorm = 2 * width
    stem = linear(inputs, width) + batchnorm
    block = 2 * (linear(width, width) + batchnorm)
    return stem + depth * block + linear(width, head) + linear(head, classes)


def test_seed_reference_has_the_reference_parameter_count(train_config, tmp_path) -> None:
    cfg = train_config(["experiment=seed_reference", f"paths.run_dir={tmp_path}"])
    assert cfg.trainer.max_epochs == 200 and cfg.data.noise_std == 0.002
    model = LandmarkClassifier(
        class_names=["neutral", "anxious"],
        **{k: v for k, v in cfg.model.items() if not k.startswith("_")},
    )
    assert model.num_parameters == reference_parameter_count() == 2_449_666
    assert 9.0 < model.num_parameters * 4 / 2**20 < 10.0  # "about 10 MB" as float32


def test_forward_gives_one_logit_per_class() -> None:
    model = ResidualMLP(num_classes=7, width=64, depth=2, head_width=32).eval()
    assert model(torch.randn(5, 1434)).shape == (5, 7)
    assert count_parameters(model.trunk) + count_parameters(model.head) == count_parameters(model)


def test_hyperparameters_are_plain_values() -> None:
    model = LandmarkClassifier(class_names=["neutral", "anxious"], width=32, depth=1)
    for key, value in model.hparams.items():
        assert isinstance(value, (int, float, str, list)), key


def test_the_model_schema_matches_the_classifiers_arguments() -> None:
    """emotion/models/config.py writes the arguments out (no torch before composing): the
    same names, annotations and defaults as LandmarkClassifier takes from the config."""
    import dataclasses
    import inspect

    from emotion.models.classifier import LandmarkClassifier
    from emotion.models.config import ModelConfig

    arguments = {
        name: (str(parameter.annotation), parameter.default)
        for name, parameter in inspect.signature(LandmarkClassifier.__init__).parameters.items()
        if name not in ("self", "class_names", "input_dim")
    }
    schema = {
        item.name: (str(item.type), item.default)
        for item in dataclasses.fields(ModelConfig)
        if item.name != "_target_"
    }
    assert schema == arguments
