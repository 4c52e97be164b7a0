"""LightningDataModule over a schema-v1 landmark store.

Where the data enters: `setup` reads the whole store once (`read_store`), drops rows with
non-finite landmarks, normalises the geometry and turns it into one float32 tensor of
(N, 1434) features. Batches are index tensors into it (`emotion.data.batches`). Gaussian
noise (and, when configured, a random head rotation and face scale) is added in
`on_after_batch_transfer`, on the batch's device, during training only.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from emotion.data.augment import random_pose
from emotion.data.batches import BatchIndices, TensorRows, batch_loader
from emotion.data.geometry import NORMALISATIONS, normalise
from emotion.data.schema import LandmarkStore, read_store
from emotion.data.splits import (
    SPLIT_STRATEGIES,
    SplitIndices,
    check_split,
    kfold_split,
    official_split,
)
from emotion.errors import EmotionError

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test")


class LandmarkDataModule(L.LightningDataModule):
    """Subject-disjoint train/val/test batches of normalised landmarks, held in memory."""

    def __init__(
        self,
        path: str,
        synthetic: dict[str, Any] | None = None,
        normalization: str = "nose_unit",
        aspect_correction: bool = False,
        split_strategy: str = "official",
        val_fraction: float = 0.15,
        drop_overlap: bool = True,
        fold: int = 0,
        num_folds: int = 5,
        split_seed: int = 0,
        noise_std: float = 0.0,
        batch_size: int = 256,
        eval_batch_size: int = 1024,
        seed: int = 0,
        pin_memory: bool = False,
        overfit_batches: int = 0,
        rotation_aug_deg: float = 0.0,
        scale_aug_std: float = 0.0,
        drop_empty_classes: bool = False,
    ) -> None:
        super().__init__()
        if normalization not in NORMALISATIONS:
            raise EmotionError(
                f"data.normalization={normalization!r} is not known",
                f"choose one of {list(NORMALISATIONS)}",
            )
        if split_strategy not in SPLIT_STRATEGIES:
            raise EmotionError(
                f"data.split_strategy={split_strategy!r} is not known",
                f"choose one of {list(SPLIT_STRATEGIES)}",
            )
        if split_strategy == "official" and (fold, num_folds) != (0, 5):
            raise EmotionError(
                f"data.fold={fold} and data.num_folds={num_folds} only apply to "
                "data.split_strategy=kfold; with official they would be silently ignored",
                "add data.split_strategy=kfold, or leave data.fold and data.num_folds out",
            )
        if noise_std < 0:
            raise EmotionError(f"data.noise_std={noise_std} is negative", "use 0 for no noise")
        if batch_size < 2:
            raise EmotionError(
                f"data.batch_size={batch_size}; BatchNorm needs at least 2 rows per batch"
            )
        self.path = Path(path)
        self.synthetic = dict(synthetic) if synthetic else None
        self.normalization = normalization
        self.aspect_correction = aspect_correction
        self.split_strategy = split_strategy
        self.val_fraction = val_fraction
        self.drop_overlap = drop_overlap
        self.fold = fold
        self.num_folds = num_folds
        self.split_seed = split_seed
        self.noise_std = float(noise_std)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.seed = seed
        self.pin_memory = pin_memory
        # Debugging: train on this many fixed batches and validate on the same rows. Done here,
        # not with Trainer(overfit_batches), which swaps in a per-sample sampler.
        self.overfit_batches = overfit_batches
        # Training-only augmentation of head pose and face size (emotion/data/augment.py).
        self.rotation_aug_deg = float(rotation_aug_deg)
        self.scale_aug_std = float(scale_aug_std)
        # Drop classes with no rows in the whole store (e.g. 'hurt' in a sample without it).
        self.drop_empty_classes = drop_empty_classes
        self.class_names: list[str] = []
        self.is_synthetic = False
        self.summary: dict[str, Any] = {}
        self._rows: dict[str, TensorRows] = {}
        self._subjects: dict[str, np.ndarray] = {}

    # -- data on disk ---------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Create the synthetic default store when it is the configured path and missing."""
        if self.path.exists():
            return
        if self.synthetic is not None and self._is_synthetic_default():
            from emotion.data.synthetic import SyntheticSettings, generate_store

            settings = {k: v for k, v in self.synthetic.items() if k != "output"}
            log.info("no store at %s: generating the SYNTHETIC default data set", self.path)
            generate_store(self.path, SyntheticSettings(**settings))
            return
        read_store(self.path)  # raises a StoreError that names the command creating one

    def _is_synthetic_default(self) -> bool:
        output = self.synthetic.get("output") if self.synthetic else None
        return output is not None and Path(output).resolve() == self.path.resolve()

    # -- into memory ----------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if self._rows:
            return
        self.prepare_data()
        store = read_store(self.path)
        store, dropped = drop_non_finite(store)
        if len(store) == 0:
            raise EmotionError(
                f"the store {self.path} holds no rows"
                + (f" with finite landmarks ({dropped} dropped)" if dropped else ""),
                "extract photos with faces into it; its .report.json says what was found",
            )
        if self.drop_empty_classes:
            store = drop_empty_classes(store)
        self.class_names = list(store.class_names)
        self.is_synthetic = store.synthetic
        if self.is_synthetic:
            log.info(
                "training data %s is SYNTHETIC (generated landmarks, not real faces)", self.path
            )
        points = normalise(
            store.landmarks,
            store.image_size,
            method=self.normalization,
            aspect=self.aspect_correction,
            inplace=True,
        )
        indices = self._split(store)
        check_split(indices, store.subject, store.label, self.class_names)
        neutral_counts: dict[str, int] = {}
        if self.normalization == "subject_neutral":
            points, neutral_counts = self._subtract_subject_neutral(points, store, indices)
        features = torch.from_numpy(points.reshape(len(store), -1))
        labels = torch.from_numpy(store.label)
        for name, rows in indices.as_dict().items():
            self._rows[name] = TensorRows(features, labels, torch.from_numpy(rows))
            self._subjects[name] = store.subject[rows]
        self.summary = self._describe(store, indices, dropped)
        if neutral_counts:
            self.summary["subject_neutral"] = neutral_counts
            log.info("subject_neutral: %s", neutral_counts)
        for name in STAGES:
            counts = self.summary["stages"][name]
            log.info(
                "%s: %d rows, %d subjects, per class %s",
                name,
                counts["rows"],
                counts["subjects"],
                counts["rows_per_class"],
            )
        if indices.overlap_subjects:
            log.warning(
                "%d test subjects also appear in training%s",
                len(indices.overlap_subjects),
                f"; dropped their {indices.dropped_test_rows} test rows"
                if self.drop_overlap
                else " (data.drop_overlap=false: the test set is not subject-disjoint)",
            )

    def _subtract_subject_neutral(
        self, points: np.ndarray, store: LandmarkStore, indices: SplitIndices
    ) -> tuple[np.ndarray, dict[str, int]]:
        """Leak-free: references come from training rows and training labels only."""
        from emotion.data.subject_neutral import subtract_subject_neutral

        if "neutral" not in self.class_names:
            raise EmotionError(
                "data.normalization=subject_neutral needs a 'neutral' class",
                f"this store has {self.class_names}; choose another data.normalization",
            )
        return subtract_subject_neutral(
            points, store.subject, store.label, indices.train, self.class_names.index("neutral")
        )

    def _split(self, store: LandmarkStore) -> SplitIndices:
        if self.split_strategy == "kfold":
            return kfold_split(
                store.subject,
                store.label,
                fold=self.fold,
                num_folds=self.num_folds,
                val_fraction=self.val_fraction,
                seed=self.split_seed,
            )
        return official_split(
            store.subject,
            store.label,
            store.split,
            val_fraction=self.val_fraction,
            drop_overlap=self.drop_overlap,
            seed=self.split_seed,
        )

    def _describe(
        self, store: LandmarkStore, indices: SplitIndices, dropped: int
    ) -> dict[str, Any]:
        stages = {}
        for name, rows in indices.as_dict().items():
            counts = np.bincount(store.label[rows], minlength=len(self.class_names))
            stages[name] = {
                "rows": int(len(rows)),
                "subjects": int(len(set(store.subject[rows].tolist()))),
                "rows_per_class": dict(zip(self.class_names, counts.tolist(), strict=True)),
            }
        return {
            "path": str(self.path),
            "synthetic": self.is_synthetic,
            "class_names": self.class_names,
            "rows": len(store),
            "non_finite_rows_dropped": dropped,
            "test_subjects_seen_in_training": len(indices.overlap_subjects),
            "test_rows_dropped_for_overlap": indices.dropped_test_rows,
            "stages": stages,
        }

    # -- properties the model needs -------------------------------------------------------

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_dim(self) -> int:
        return int(self._rows["train"].features.shape[1])

    def rows(self, stage: str) -> TensorRows:
        return self._rows[stage]

    def subjects(self, stage: str) -> np.ndarray:
        return self._subjects[stage]

    # -- loaders --------------------------------------------------------------------------

    def _loader(self, stage: str, *, shuffle: bool, batch_size: int) -> Any:
        rows = self._rows[stage]
        if self.overfit_batches > 0:
            train = self._rows["train"]
            kept = train.rows[: self.overfit_batches * self.batch_size]
            rows = TensorRows(train.all_features, train.all_labels, kept)
            shuffle, batch_size = False, self.batch_size
        rank, world_size = 0, 1
        if self.trainer is not None:
            rank, world_size = self.trainer.global_rank, self.trainer.world_size
        per_rank = len(rows) // world_size if shuffle else len(rows)
        sampler = BatchIndices(
            len(rows),
            batch_size,
            shuffle=shuffle,
            # A final batch of one row cannot be trained on with BatchNorm.
            drop_last=shuffle and per_rank % batch_size == 1,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
        )
        return batch_loader(rows, sampler, pin_memory=self.pin_memory)

    def train_dataloader(self) -> Any:
        return self._loader("train", shuffle=True, batch_size=self.batch_size)

    def val_dataloader(self) -> Any:
        return self._loader("val", shuffle=False, batch_size=self.eval_batch_size)

    def test_dataloader(self) -> Any:
        return self._loader("test", shuffle=False, batch_size=self.eval_batch_size)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Coordinate noise and pose augmentation, on the batch's device, training batches only."""
        if self.trainer is None or not self.trainer.training:
            return batch
        features, labels = batch
        if self.rotation_aug_deg > 0 or self.scale_aug_std > 0:
            features = random_pose(features, self.rotation_aug_deg, self.scale_aug_std)
        if self.noise_std > 0:
            features = features + torch.randn_like(features) * self.noise_std
        return features, labels


def drop_non_finite(store: LandmarkStore) -> tuple[LandmarkStore, int]:
    """Remove rows whose landmarks hold NaN or inf, and say how many went."""
    finite = np.isfinite(store.landmarks).all(axis=(1, 2))
    dropped = int((~finite).sum())
    if dropped:
        examples = store.source[~finite][:3].tolist()
        log.warning(
            "dropped %d of %d rows with NaN or inf landmarks (e.g. %s)",
            dropped,
            len(store),
            examples,
        )
        store = store.select(finite)
    return store, dropped


def drop_empty_classes(store: LandmarkStore) -> LandmarkStore:
    """Remove classes without a single row and renumber the labels, keeping the class order."""
    counts = np.bincount(store.label, minlength=len(store.class_names))
    present = [index for index, count in enumerate(counts) if count > 0]
    if len(present) == len(store.class_names):
        return store
    missing = [name for name, count in zip(store.class_names, counts, strict=True) if count == 0]
    log.warning("data.drop_empty_classes: the store has no rows of %s; dropped them", missing)
    new_label = np.full(len(store.class_names), -1, dtype=np.int64)
    new_label[present] = np.arange(len(present))
    return dataclasses.replace(
        store,
        label=new_label[store.label],
        class_names=[store.class_names[index] for index in present],
    )
