"""`emotion/conf/eval.yaml` composed with a command line's overrides, the model set apart."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from emotion import CONFIG_DIR
from emotion.compose import did_you_mean
from emotion.errors import EmotionError
from emotion.evaluate.config import check_eval_config

# Where the composed config holds the model; set from the command's first argument only.
MODEL_KEYS = ("run_dir", "ckpt_path")


def compose_eval_config(model: str | None, overrides: list[str]) -> DictConfig:
    """The evaluation settings; `model` (a path or glob) becomes `run_dir` as it is. A bad
    override is a user error naming it, not Hydra's traceback."""
    given = [item for item in overrides if item.split("=", 1)[0].lstrip("+~") in MODEL_KEYS]
    if given:
        raise EmotionError(
            f"{given[0]!r}: the model is emotion-eval's first argument, not a setting",
            "emotion-eval RUN_DIR_OR_CKPT [KEY=VALUE ...] (a quoted glob or a sweep folder for "
            "an ensemble)",
        )
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name="eval", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as error:
        hint = did_you_mean("eval", list(overrides), f"{error}\n{error.__cause__ or ''}")
        raise EmotionError(
            f"the settings {' '.join(overrides)!r} do not fit emotion/conf/eval.yaml: "
            f"{str(error).splitlines()[0]}",
            f"{hint}give settings as KEY=VALUE with keys of eval.yaml (split=val, data.path=..., "
            "threshold.target_recall=0.9); emotion-eval MODEL --print-config shows them all",
        ) from None
    check_eval_config(cfg)
    # Plain strings for the choices (the schema's Enums), open for the model's keys.
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, enum_to_str=True))
    if model is not None:
        with open_dict(cfg):
            cfg.run_dir = model
    return cfg
