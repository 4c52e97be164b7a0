"""Known, harmless notices of the libraries we build on, silenced narrowly by their text.

Each one was read and understood; anything else (a real warning) still shows.
"""

from __future__ import annotations

import logging
import warnings

# (message regex, why it is harmless)
WARNINGS = (
    # torch's pytree deprecation inside Lightning and torch.export; nothing we call.
    (r".*isinstance\(treespec, LeafSpec\).*", "library-internal deprecation"),
    (r".*smaller than the logging interval.*", "short runs log once per epoch anyway"),
    # Resuming writes into the run's own checkpoints/: exactly what resume expects.
    (r"Checkpoint directory .* exists and is not empty", "resume writes into its own folder"),
    # The export gives landmarks and image_size one batch dimension, and the reference photos'
    # landmarks and sizes one reference dimension, on purpose.
    (r".*axis name: (batch|references) will not be used.*", "shared axes, on purpose"),
)
# (logger, message prefix, why)
LOG_LINES = (
    # Lightning advertises its cloud logger on every run (rank_zero_info logs here).
    ("lightning.pytorch.utilities.rank_zero", "💡 Tip", "advertisement"),
    ("torch.onnx._internal.exporter._registration", "torchvision is not installed", "unused ops"),
)


class _DropPrefix(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefix)


def silence_known_notices() -> None:
    """Install the filters (idempotent): warnings by message, log lines by logger and prefix.

    Also: `lightning` gives its own logger a console handler on import. Imported after Hydra
    has set up logging (the commands import it lazily), Lightning's records then reach both
    that handler and Hydra's: every line twice. Hydra's handlers (console and the run's log
    file) are kept, Lightning's own is dropped."""
    for pattern, _ in WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    if logging.getLogger().handlers:
        lightning = logging.getLogger("lightning")
        for handler in list(lightning.handlers):
            if type(handler) is logging.StreamHandler:
                lightning.removeHandler(handler)
    for name, prefix, _ in LOG_LINES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropPrefix) and f.prefix == prefix for f in logger.filters):
            logger.addFilter(_DropPrefix(prefix))
