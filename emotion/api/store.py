"""A landmark store for notebooks: the arrays, and a table of the rest."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from emotion.store.io import read_store
from emotion.store.schema import LandmarkStore


@dataclass
class Store:
    """A landmark store in memory, one row per face: the arrays (`landmarks` (N, 478, 3),
    `blendshapes` (N, 52), `pose` (N, 4, 4), `image_size` (N, 2), `label` (N,) class
    indices), `labels` (class names), `class_names`, `synthetic`, and `frame()`."""

    data: LandmarkStore

    def __len__(self) -> int:
        return len(self.data)

    def __getattr__(self, name: str) -> Any:
        if name == "data":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.data, name)  # landmarks, label, subject, class_names, ...

    @property
    def labels(self) -> list[str]:
        """Each row's class name."""
        return [self.data.class_names[int(index)] for index in self.data.label]

    def frame(self) -> Any:
        """One row per face (source, subject, split, label, label_index, width, height): a
        pandas DataFrame when pandas is installed (it is optional), else a dict of columns."""
        columns = {
            "source": self.data.source.astype(str).tolist(),
            "subject": self.data.subject.astype(str).tolist(),
            "split": self.data.split.astype(str).tolist(),
            "label": self.labels,
            "label_index": self.data.label.astype(int).tolist(),
            "width": self.data.image_size[:, 0].astype(int).tolist(),
            "height": self.data.image_size[:, 1].astype(int).tolist(),
        }
        try:
            import pandas
        except ImportError:
            return columns
        return pandas.DataFrame(columns)


def load_store(path: str | os.PathLike[str]) -> Store:
    """A store written by emotion-extract (or the synthetic generator), read and checked; a
    missing or damaged one is an EmotionError (StoreError) with its fix."""
    return Store(read_store(path))
