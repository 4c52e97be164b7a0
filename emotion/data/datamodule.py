"""LightningDataModule over a landmark store.

Where the data enters: `setup` reads the whole store once (`read_store`), drops rows with
non-finite landmarks, normalises the geometry and turns it into one float32 tensor of
(N, D) features (1434 for landmarks; with `data.features`, the 52 blendshape scores beside
or instead of them). Batches are index tensors into it (`emotion.data.batches`). Gaussian
noise (and, when configured, a random head rotation and face scale) is added in
`on_after_batch_transfer`, on the batch's device, during training only.
With `data.resident` (by default on CUDA), the first loader request copies the tensors to the
trainer's device once and batches are gathered there; the host tensors stay for `rows()`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from emotion.data.batches import BatchIndices, TensorRows, batch_loader, stages_on_device
from emotion.data.describe import describe, log_split
from emotion.data.protocol import Protocol, apply_protocol, read_stage
from emotion.data.record import (
    DATA_SETTINGS_KEY,
    PREPROCESSING_KEY,
    check_same_people,
    check_same_preprocessing,
    data_record,
    preprocessing_record,
)
from emotion.data.select import drop_empty_classes, drop_non_finite, split_store
from emotion.data.settings import DataSettings
from emotion.data.splits import check_scored_classes, check_split
from emotion.errors import EmotionError
from emotion.features.augment import random_pose
from emotion.features.preprocessing import Preprocessing
from emotion.store.io import read_store
from emotion.store.schema import LandmarkStore

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test")


def check_store_has(store: LandmarkStore, preprocessing: Preprocessing, path: Path) -> None:
    """Refuse a recipe that reads what the store lacks: blendshapes or pose (version 1
    stores, SYNTHETIC data), rather than train on NaN."""
    wanted = [
        (preprocessing.uses_blendshapes, store.has_blendshapes, "blendshape scores",
         f"data.features={preprocessing.feature_set}", "data.features=landmarks"),
        (preprocessing.uses_pose, store.has_pose, "head-pose matrices",
         "data.normalization=pose", "data.normalization=nose_unit"),
    ]  # fmt: skip
    for used, held, what, setting, other in wanted:
        if used and not held:
            kind = "SYNTHETIC data" if store.synthetic else f"faces of {store.extractor['name']}"
            raise EmotionError(
                f"{setting} reads FaceLandmarker's {what}, and the store {path} ({kind}) "
                "does not hold them",
                f"extract real photos with this version (emotion-extract), or use {other}",
            )


class LandmarkDataModule(L.LightningDataModule):
    """Subject-disjoint train/val/test batches of normalised landmarks, held in memory."""

    def __init__(self, path: str, **settings: Any) -> None:
        """`path` and the other keys of `DataSettings` (as Hydra passes `emotion/conf/data`)."""
        super().__init__()
        self.settings = DataSettings(path=str(path), **settings)
        self.path = Path(path)
        self.class_names: list[str] = []
        self.is_synthetic = False
        self.extractor: dict[str, Any] = {}
        self.summary: dict[str, Any] = {}
        self._rows: dict[str, TensorRows] = {}
        # The same rows on the trainer's device (data.resident), made on first use.
        self._resident_rows: dict[str, TensorRows] = {}
        self._resident_device: torch.device | None = None
        self._subjects: dict[str, np.ndarray] = {}
        self._sources: dict[str, np.ndarray] = {}
        # With a baseline: per stage, per person, the sources of the reference photos.
        self.reference_sources: dict[str, dict[str, list[str]]] = {}
        # data.baseline_resample: what redrawing the training references needs.
        self._redraw: tuple[Protocol, np.ndarray, LandmarkStore, np.ndarray] | None = None

    # -- into memory ----------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if self._rows:
            return
        store, dropped = self._read()
        preprocessing = self.settings.preprocessing
        check_store_has(store, preprocessing, self.path)
        vectors = preprocessing.vectors(
            store.landmarks, store.image_size, store.blendshapes, store.pose, inplace=True
        )
        indices = split_store(store, self.settings)
        check_split(indices, store.subject, store.label, self.class_names)
        scored = indices.as_dict()
        protocol = None
        if preprocessing.uses_baseline:
            protocol = apply_protocol(
                vectors, store, indices, preprocessing, self.class_names, self.settings.split_seed
            )
            features, scored = torch.from_numpy(protocol.features), protocol.scored
            check_scored_classes(  # stages the split left empty (split_strategy=none) score nothing
                {stage: rows for stage, rows in scored.items() if len(indices.as_dict()[stage])},
                store.label,
                self.class_names,
                self.settings.baseline,
                self.settings.enroll_per_subject,
            )
        else:
            features = torch.from_numpy(vectors)
        labels = torch.from_numpy(store.label)
        for name, rows in scored.items():
            self._rows[name] = TensorRows(features, labels, torch.from_numpy(rows))
            self._subjects[name] = store.subject[rows]
            self._sources[name] = store.source[rows]
        self.summary = describe(store, indices, scored, dropped, str(self.path), self.class_names)
        if protocol is not None and self.settings.baseline_resample:
            self._redraw = (protocol, vectors, store, indices.train)
        if protocol is not None:
            self.summary["baseline"] = protocol.summary(store, preprocessing)
            self.reference_sources = {
                stage: {person: store.source[rows].tolist() for person, rows in found.rows.items()}
                for stage, found in protocol.references.items()
            }
        log_split(self.summary, indices, self.settings.drop_overlap)

    def _read(self) -> tuple[LandmarkStore, int]:
        """The store, without non-finite rows (and empty classes, when asked)."""
        store, dropped = drop_non_finite(read_store(self.path))
        if len(store) == 0:
            raise EmotionError(
                f"the store {self.path} holds no rows"
                + (f" with finite landmarks ({dropped} dropped)" if dropped else ""),
                "extract photos with faces into it; its .report.json says what was found",
            )
        if self.settings.drop_empty_classes:
            store = drop_empty_classes(store)
        self.class_names = list(store.class_names)
        self.is_synthetic = store.synthetic
        self.extractor = dict(store.extractor)
        if self.is_synthetic:
            log.info("data %s is SYNTHETIC (generated landmarks, not real faces)", self.path)
        return store, dropped

    # -- properties the model needs -------------------------------------------------------

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_dim(self) -> int:
        return int(self._rows["train"].features.shape[1])

    def rows(self, stage: str) -> TensorRows:
        return self._rows[stage]

    def record(self) -> dict[str, Any]:
        """The data record of `emotion.data.record`: settings, geometry, people per stage."""
        return data_record(
            self.settings,
            input_dim=self.input_dim,
            class_names=self.class_names,
            synthetic=self.is_synthetic,
            extractor=self.extractor,
            subjects={
                stage: [str(person) for person in self.subjects(stage).tolist()] for stage in STAGES
            },
        )

    def state_dict(self) -> dict[str, Any]:
        """What Lightning saves of the data module in every checkpoint: the data record and
        the landmark preprocessing, plain values (read back by `emotion.checkpoint`)."""
        if not self._rows:
            return {}
        return {
            DATA_SETTINGS_KEY: self.record(),
            PREPROCESSING_KEY: preprocessing_record(self.settings.preprocessing),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """On resume: the checkpoint's features must be made as this run makes them, and
        its people split as this run splits them (the same run_name on another store
        would otherwise resume silently)."""
        if not self._rows:
            return
        check_same_preprocessing(state_dict.get(PREPROCESSING_KEY), self.settings.preprocessing)
        check_same_people(state_dict.get(DATA_SETTINGS_KEY), self.record(), str(self.path))

    def subjects(self, stage: str) -> np.ndarray:
        return self._subjects[stage]

    def sources(self, stage: str) -> np.ndarray:
        """Each scored row's source (photo) name, in row order."""
        return self._sources[stage]

    # -- loaders --------------------------------------------------------------------------

    def resident_device(self) -> torch.device | None:
        """Where the loaders' tensors live; None: on the host, each batch copied per step.
        `auto` is the trainer's device only when it is CUDA, so CPU runs stay as they were."""
        choice = self.settings.resident_choice
        if choice == "false" or self.trainer is None:
            return None
        device = self.trainer.strategy.root_device
        if choice == "auto" and device.type != "cuda":
            return None
        return device

    def _loader_rows(self, stage: str, device: torch.device | None) -> TensorRows:
        """A stage's rows on `device`, every stage copied there once (None: the host rows)."""
        if device is None:
            return self._rows[stage]
        if self._resident_device != device:
            self._resident_rows = stages_on_device(self._rows, device)
            self._resident_device = device
            log.info("data resident on %s: no host-to-device copy per step", device)
        return self._resident_rows[stage]

    def _loader(self, stage: str, *, shuffle: bool, batch_size: int) -> Any:
        device = self.resident_device()
        rows = self._loader_rows(stage, device)
        if self.settings.overfit_batches > 0:
            train = self._loader_rows("train", device)
            kept = train.rows[: self.settings.overfit_batches * self.settings.batch_size]
            rows = TensorRows(train.all_features, train.all_labels, kept)
            shuffle, batch_size = False, self.settings.batch_size
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
            seed=self.settings.seed,
            rank=rank,
            world_size=world_size,
            device=device,
        )
        # Pinning is for host tensors on their way to a GPU; resident ones are already there.
        return batch_loader(rows, sampler, pin_memory=self.settings.pin_memory and device is None)

    def train_dataloader(self) -> Any:
        if self._redraw is not None and self.trainer is not None:
            self._redraw_training_references(self.trainer.current_epoch)
        return self._loader("train", shuffle=True, batch_size=self.settings.batch_size)

    def _redraw_training_references(self, epoch: int) -> None:
        """data.baseline_resample: the epoch's own reference photos for every training person
        (epoch 0 keeps the first draw); the rows they leave become training rows again."""
        if epoch == 0:
            return
        protocol, vectors, store, rows = self._redraw
        preprocessing, seed = self.settings.preprocessing, (self.settings.split_seed, epoch)
        read_stage(protocol, "train", rows, vectors, store, preprocessing, self.class_names, seed)
        train = protocol.scored["train"]
        features = self._rows["train"].all_features
        self._rows["train"] = TensorRows(features, self._rows["train"].all_labels, train)
        self._subjects["train"] = store.subject[train]
        self._sources["train"] = store.source[train]
        self._resident_device = None  # device copies, if any, are made again

    def val_dataloader(self) -> Any:
        return self._loader("val", shuffle=False, batch_size=self.settings.eval_batch_size)

    def test_dataloader(self) -> Any:
        return self._loader("test", shuffle=False, batch_size=self.settings.eval_batch_size)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Coordinate noise and pose augmentation, on the batch's device, training batches only."""
        if self.trainer is None or not self.trainer.training:
            return batch
        features, labels = batch
        if self.settings.rotation_aug_deg > 0 or self.settings.scale_aug_std > 0:
            features = random_pose(
                features, self.settings.rotation_aug_deg, self.settings.scale_aug_std
            )
        if self.settings.noise_std > 0:
            features = features + torch.randn_like(features) * self.settings.noise_std
        return features, labels
