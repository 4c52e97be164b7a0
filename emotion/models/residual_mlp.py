"""The residual MLP of the reference work, as a plain nn.Module."""

from __future__ import annotations

import torch
from torch import nn

INPUT_DIM = 478 * 3


def _dense(in_features: int, out_features: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, out_features),
        nn.BatchNorm1d(out_features),
        nn.GELU(),
        nn.Dropout(dropout),
    )


class ResidualBlock(nn.Module):
    """Two (Linear-BatchNorm-GELU-Dropout) layers with a skip around them."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(_dense(width, width, dropout), _dense(width, width, dropout))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features + self.layers(features)


class ResidualMLP(nn.Module):
    """Stem to `width`, `depth` residual blocks (the trunk), then a `head_width` head.

    The reference is width 512, depth 3, head 256, dropout 0.3 / 0.2: 2,449,666 parameters.
    """

    def __init__(
        self,
        input_dim: int = INPUT_DIM,
        num_classes: int = 2,
        width: int = 512,
        depth: int = 3,
        head_width: int = 256,
        dropout: float = 0.3,
        head_dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            _dense(input_dim, width, dropout),
            *(ResidualBlock(width, dropout) for _ in range(depth)),
        )
        self.head = nn.Sequential(
            nn.Linear(width, head_width),
            nn.GELU(),
            nn.Dropout(head_dropout),
            nn.Linear(head_width, num_classes),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(features))


def count_parameters(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())
