"""`emotion-train`: a thin Hydra wrapper around `emotion.training.train.train(cfg)`.

    emotion-train                                   # synthetic default data, generated if missing
    emotion-train experiment=seed_reference         # the reference recipe, 200 epochs
    emotion-train -m model.depth=2,4 data.noise_std=0,0.002
    emotion-train data=store data.path=data/aihub82.h5

Torch and Lightning are imported only once Hydra has composed the config (its schema in
emotion/training/config.py) and its ranges are checked, so a typo or an impossible value is
reported at once.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from emotion import CONFIG_DIR
from emotion.errors import exit_on_user_error
from emotion.training.config import check_train_config
from emotion.training.precheck import checked_run


@exit_on_user_error
def run(cfg: DictConfig) -> float | None:
    """Train; return `optimized_metric` for a sweeper (Optuna maximises it)."""
    check_train_config(cfg)
    from emotion.training.train import train

    result = train(cfg)
    metric = cfg.get("optimized_metric")
    if not metric:
        return None
    stage = metric.split("/")[0]
    return result.get(stage, {}).get(metric)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    return run(cfg)


@exit_on_user_error
def main() -> float | None:
    """`emotion-train`: checked and its run directory locked before Hydra writes into it."""
    with checked_run(sys.argv[1:]):
        return hydra_main()


if __name__ == "__main__":
    main()
