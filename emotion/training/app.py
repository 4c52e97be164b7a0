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
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from emotion import CONFIG_DIR
from emotion.errors import EmotionError, exit_on_user_error
from emotion.training.precheck import checked_run
from emotion.training.ranges import check_train_config


def optuna_sweep() -> bool:
    """Whether this job is an Optuna trial, which needs a number back."""
    if not HydraConfig.initialized():
        return False
    return "optuna" in str(OmegaConf.select(HydraConfig.get(), "sweeper._target_") or "")


@exit_on_user_error
def run(cfg: DictConfig) -> float | None:
    """Train; return `optimized_metric` for a sweeper (Optuna maximises it)."""
    check_train_config(cfg)
    from emotion.training.train import train

    result = train(cfg)
    metric = cfg.get("optimized_metric")
    if not metric:
        return None
    value = result.get(metric.split("/")[0], {}).get(metric)
    if value is None and optuna_sweep():
        raise EmotionError(
            f"optimized_metric={metric} is not among this trial's metrics, so Optuna has "
            f"nothing to maximise ({result.get('data', {}).get('no_validation_split') or ''})",
            "carve a validation split (data.min_val_subjects=0 on a small store), or name a "
            "metric the run reports with optimized_metric=...",
        )
    return value


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
