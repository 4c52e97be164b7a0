"""A command's Hydra config composed once before Hydra's main runs, so a key that does not
compose (a typo, a wrong type, an unknown choice) is a user error naming it (`error:`/`fix:`,
exit 2) rather than Hydra's raw message and exit status 1. Used by emotion-train and
emotion-extract; 0.2 s, no torch."""

from __future__ import annotations

import difflib
import re

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
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
# Hydra's hint for a key the config lacks, left out when a close key is suggested instead.
APPEND_HINT = "To append to your config use"
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
        hint = did_you_mean(config_name, overrides, text)
        skipped = HYDRA_DETAIL + (APPEND_HINT,) if hint else HYDRA_DETAIL
        problem = "; ".join(line for line in lines if not line.startswith(skipped))
        raise EmotionError(f"the settings do not compose: {problem}", hint + fix) from None


def unknown_key(text: str) -> str | None:
    """The key a composition error names as not in the config, if it names one."""
    found = re.search(r"Could not override '([^']+)'", text) or re.search(
        r"Key '[^']+' not in '[^']+'\s*full_key: (\S+)", text
    )
    return found.group(1) if found else None


def config_keys(config_name: str, overrides: list[str]) -> list[str]:
    """Every dotted key of `config_name` composed with the overrides that compose (the
    groups they choose add keys), else with none."""
    for tried in (overrides, []):
        try:
            with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
                cfg = compose(config_name=config_name, overrides=tried)
            break
        except (HydraException, OmegaConfBaseException):
            continue
    else:
        return []
    keys: list[str] = []

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        keys.append(prefix.rstrip("."))

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return [key for key in keys if key]


def did_you_mean(config_name: str, overrides: list[str], text: str) -> str:
    """`did you mean model.depth? use model.depth=4; otherwise, ` for a key that is not in
    the config but close to one that is (difflib); empty when none is close."""
    key = unknown_key(text)
    if not key:
        return ""
    given = [item for item in overrides if item.split("=", 1)[0].lstrip("+~") == key]
    others = [item for item in overrides if item not in given]
    close = difflib.get_close_matches(key, config_keys(config_name, others), n=1, cutoff=0.75)
    if not close:
        return ""
    value = given[-1].split("=", 1)[1] if given and "=" in given[-1] else None
    example = f" use {close[0]}={value};" if value is not None else ""
    return f"did you mean {close[0]}?{example} otherwise, "
