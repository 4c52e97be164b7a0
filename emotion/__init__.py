"""emotion: tell an anxious face from a neutral one by its FaceLandmarker geometry.

The Python API (`emotion.load`, `emotion.load_store`, `Model`, `Prediction`, `Store`) lives in
`emotion.api` and is imported on first use, so `import emotion` stays cheap: no torch, no
mediapipe until a model is loaded.
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emotion.api import Model, Prediction, Store, load, load_store

# The configs ship inside the package (and its wheel). Absolute, because Hydra reads a relative
# config_path as a package path when started from an installed console script.
CONFIG_DIR = str(Path(__file__).resolve().parent / "conf")

API = ("load", "load_store", "Model", "Prediction", "Store")
__all__ = ["CONFIG_DIR", "Model", "Prediction", "Store", "__version__", "load", "load_store"]


def __getattr__(name: str) -> Any:
    """`emotion.load` and the rest of the API, imported when first asked for (PEP 562)."""
    if name in API:
        return getattr(importlib.import_module(f"{__name__}.api"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
