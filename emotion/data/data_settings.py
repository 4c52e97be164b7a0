"""Record, inside every checkpoint, how its inputs were made and which people it saw.

LandmarkClassifier.on_save_checkpoint writes it, so no config can leave it out.

A trunk is only reusable on features made the same way (normalisation, aspect correction,
input size), and a fine-tuned model is only honestly tested on people its pre-training never
saw. Both checks need this record, and it must travel with the checkpoint alone.
"""

from __future__ import annotations

from typing import Any

CHECKPOINT_KEY = "data_settings"
# Settings that change what a feature vector means; a trunk only transfers when they match.
GEOMETRY_KEYS = ("normalization", "aspect_correction", "input_dim")


def data_settings(datamodule: Any) -> dict[str, Any]:
    """Plain values only, so `torch.load(weights_only=True)` still reads the checkpoint."""
    return {
        "normalization": str(datamodule.normalization),
        "aspect_correction": bool(datamodule.aspect_correction),
        "input_dim": int(datamodule.input_dim),
        "class_names": [str(name) for name in datamodule.class_names],
        "path": str(datamodule.path),
        "synthetic": bool(datamodule.is_synthetic),
        "split_strategy": str(datamodule.split_strategy),
        "val_fraction": float(datamodule.val_fraction),
        "drop_overlap": bool(datamodule.drop_overlap),
        "fold": int(datamodule.fold),
        "num_folds": int(datamodule.num_folds),
        "split_seed": int(datamodule.split_seed),
        "subjects": {
            stage: sorted({str(person) for person in datamodule.subjects(stage).tolist()})
            for stage in ("train", "val", "test")
        },
    }
