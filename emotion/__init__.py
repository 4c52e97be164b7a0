"""emotion: tell an anxious face from a neutral one by its FaceMesh geometry."""

__version__ = "0.1.0"

from pathlib import Path

# The configs ship inside the package (and its wheel). Absolute, because Hydra reads a relative
# config_path as a package path when started from an installed console script.
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")
