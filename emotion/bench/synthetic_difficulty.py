"""How hard is the SYNTHETIC default data? Subject-disjoint accuracy of the reference MLP.

Trains the reference residual MLP (and a logistic-regression baseline) on the "train" subjects
of a synthetic store, after nose_unit normalisation, and evaluates on the held-out "test"
subjects. The generator is calibrated so the MLP lands near 85-95 %, not 100 %.

    python -m emotion.bench.synthetic_difficulty --output outputs/difficulty.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from emotion.features.preprocessing import normalize
from emotion.synthetic.generate import generate
from emotion.synthetic.settings import SyntheticSettings


class ResidualBlock(nn.Module):
    """Two Linear-BN-GELU-Dropout layers with a skip connection."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(2):
            layers += [
                nn.Linear(width, width),
                nn.BatchNorm1d(width),
                nn.GELU(),
                nn.Dropout(dropout),
            ]
        self.body = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.body(features)


def reference_mlp(inputs: int, classes: int = 2, width: int = 512) -> nn.Module:
    """The reference classifier of the project, reproduced here so the figure is standalone."""
    return nn.Sequential(
        nn.Linear(inputs, width),
        nn.BatchNorm1d(width),
        nn.GELU(),
        nn.Dropout(0.3),
        *(ResidualBlock(width, 0.3) for _ in range(3)),
        nn.Linear(width, 256),
        nn.GELU(),
        nn.Dropout(0.2),
        nn.Linear(256, classes),
    )


def features(landmarks: np.ndarray, image_size: np.ndarray, aspect: bool) -> np.ndarray:
    normalised = normalize(landmarks, image_size, method="nose_unit", aspect=aspect)
    return normalised.reshape(len(normalised), -1)


def accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(batch).argmax(1) for batch in inputs.split(4096)])
    return float((predictions == labels).float().mean())


def train(
    model: nn.Module,
    data: dict[str, tuple[torch.Tensor, torch.Tensor]],
    epochs: int,
    seed: int,
    input_noise_std: float = 0.002,
    batch_size: int = 256,
) -> dict[str, Any]:
    """AdamW, cosine LR, label smoothing and Gaussian input noise, as in the reference recipe."""
    torch.manual_seed(seed)
    inputs, labels = data["train"]
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(labels) / batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs * steps_per_epoch)
    loss_function = nn.CrossEntropyLoss(label_smoothing=0.05)
    history = []
    for epoch in range(epochs):
        model.train()
        for batch in torch.randperm(len(labels)).split(batch_size):
            if len(batch) < 2:
                continue
            noisy = inputs[batch] + input_noise_std * torch.randn_like(inputs[batch])
            loss = loss_function(model(noisy), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        if (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            test = accuracy(model, *data["test"])
            history.append({"epoch": epoch + 1, "test_accuracy": round(test, 4)})
            print(f"  epoch {epoch + 1:3d}: test accuracy {test:.4f}", flush=True)
    return {
        "train_accuracy": accuracy(model, *data["train"]),
        "test_accuracy": accuracy(model, *data["test"]),
        "history": history,
    }


def split_tensors(store: Any, aspect: bool) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Normalised features and labels per split; subjects never cross splits."""
    table = features(store.landmarks, store.image_size, aspect)
    data = {}
    for split in ("train", "test"):
        rows = store.split == split
        data[split] = (torch.from_numpy(table[rows]), torch.from_numpy(store.label[rows]))
    train_subjects, test_subjects = (
        set(store.subject[store.split == s]) for s in ("train", "test")
    )
    assert not train_subjects & test_subjects, "a subject is in both splits"
    return data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    parser.add_argument("--train-seed", type=int, default=0)
    parser.add_argument("--subjects", type=int, default=SyntheticSettings.num_subjects)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--baseline-epochs", type=int, default=80)
    parser.add_argument("--aspect", action="store_true", help="aspect-correct before nose_unit")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None, help="write the result as JSON")
    parser.add_argument("--set", nargs="*", default=[], help="setting=value overrides (floats)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = {key: float(value) for key, value in (item.split("=") for item in args.set)}
    settings = SyntheticSettings(num_subjects=args.subjects, seed=args.seed, **overrides)
    started = time.perf_counter()
    store = generate(settings)
    generation_s = time.perf_counter() - started
    print(f"SYNTHETIC store: {len(store)} rows, generated in {generation_s:.1f} s", flush=True)
    data = split_tensors(store, args.aspect)
    inputs = data["train"][0].shape[1]
    print("reference MLP:", flush=True)
    mlp = train(reference_mlp(inputs), data, args.epochs, args.train_seed)
    print("logistic regression:", flush=True)
    logistic = train(nn.Linear(inputs, 2), data, args.baseline_epochs, args.train_seed)
    result = {
        "data": "SYNTHETIC (emotion.synthetic), not real faces",
        "settings": asdict(settings),
        "normalisation": {"method": "nose_unit", "aspect": args.aspect},
        "rows": {split: int(len(data[split][1])) for split in data},
        "generation_s": round(generation_s, 2),
        "epochs": args.epochs,
        "mlp": mlp,
        "logistic_regression": logistic,
        "seconds": round(time.perf_counter() - started, 1),
    }
    summary = {
        name: round(result[name]["test_accuracy"], 4) for name in ("mlp", "logistic_regression")
    }
    print(json.dumps({"test_accuracy": summary}))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
