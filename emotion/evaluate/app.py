"""`emotion-eval`: a thin Hydra wrapper around `emotion.evaluate.evaluation.evaluate(cfg)`.

    emotion-eval outputs/train/runs/default                  # the same as run_dir=...
    emotion-eval run_dir=outputs/train/runs/default threshold.target_recall=0.9
    emotion-eval ckpt_path=path/to/best.ckpt data.path=data/other.h5 output_dir=eval/other
    emotion-eval "run_dir='outputs/train/multiruns/seeds/*'"   # an ensemble

The model is given positionally, as for emotion-predict and emotion-export, or as run_dir= /
ckpt_path=. Torch is imported only once Hydra has composed the config.
"""

from __future__ import annotations

import sys
from typing import Any

import hydra
from omegaconf import DictConfig

from emotion import CONFIG_DIR
from emotion.cli import positional_paths_as_override
from emotion.errors import exit_on_user_error


@exit_on_user_error
def run(cfg: DictConfig) -> dict[str, Any]:
    from emotion.evaluate.evaluation import evaluate

    return evaluate(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def hydra_main(cfg: DictConfig) -> None:
    run(cfg)


def main() -> None:
    """`emotion-eval RUN_DIR ...`; run_dir= and ckpt_path= work too."""
    sys.argv = [sys.argv[0], *positional_paths_as_override(sys.argv[1:], "run_dir")]
    hydra_main()


if __name__ == "__main__":
    main()
