"""A command's Hydra config composed once before Hydra's main runs, so a key that does not
compose (a typo, a wrong type, an unknown choice) is a user error naming it (`error:`/`fix:`,
exit 2) rather than Hydra's raw message and exit status 1. Used by emotion-train and
emotion-extract; 0.2 s, no torch."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from emotion import CONFIG_DIR
from emotion.errors import EmotionError

# Hydra flags after which no run happens, or several do: left to Hydra as they are.
HYDRA_FLAGS = {
    "-h",
    "--help",
    "--hydra-help",
    "--version",
    "-c",
    "--cfg",
    "-i",
    "--info",
    "--shell-completion",
    "-sc",
    "--experimental-rerun",
}
# Lines of Hydra's composition errors that say nothing to a user.
HYDRA_DETAIL = ("object_type", "reference_type", "Set the environment variable HYDRA_FULL_ERROR")


def hydra_flag(argv: list[str]) -> bool:
    """Whether the command line asks Hydra for help, information or a rerun, not a run."""
    return any(arg.split("=")[0] in HYDRA_FLAGS for arg in argv)


def composed(config_name: str, overrides: list[str], fix: str) -> DictConfig:
    """`config_name`.yaml with the command's overrides and Hydra's own node, as Hydra's main
    will compose it; what does not compose is a user error naming the key, with `fix`."""
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as error:
        text = f"{error}\n{error.__cause__ or ''}"
        lines = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
        problem = "; ".join(line for line in lines if not line.startswith(HYDRA_DETAIL))
        raise EmotionError(f"the settings do not compose: {problem}", fix) from None
