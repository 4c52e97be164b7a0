"""Command-line conveniences shared by the console scripts."""

from __future__ import annotations

import glob
from pathlib import Path

# Hydra's own flags that take a value: the token after them is not an override.
HYDRA_VALUE_FLAGS = frozenset(
    {"-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir", "-c", "--cfg"}
    | {"-p", "--package", "--experimental-rerun"}
)


def hydra_quote(text: str) -> str:
    """A value Hydra's override grammar reads back verbatim: run folders hold '=' and ','."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def names_a_path(token: str) -> bool:
    return Path(token).exists() or bool(glob.glob(token))


def positional_paths_as_override(argv: list[str], key: str) -> list[str]:
    """`emotion-eval RUN [RUN ...] k=v` as Hydra wants it: `k=v key=RUN` or `key=[RUN,...]`.

    A token is a model path when it is not a flag and holds no '=', or when it names an
    existing file or folder (or a glob matching some): run folders are named after their
    overrides, so they may hold '=' themselves."""
    kept: list[str] = []
    paths: list[str] = []
    takes_value = False
    for token in argv:
        if takes_value or token.startswith("-"):
            kept.append(token)
            takes_value = token in HYDRA_VALUE_FLAGS
            continue
        if "=" not in token or names_a_path(token):
            paths.append(token)
        else:
            kept.append(token)
    if not paths:
        return kept
    if len(paths) == 1:
        return [*kept, f"{key}={hydra_quote(paths[0])}"]
    return [*kept, f"{key}=[{','.join(hydra_quote(path) for path in paths)}]"]
