"""Whole batches straight from in-memory tensors: one index tensor per batch, no per-sample
`__getitem__` and no collate. DataLoader still drives the loop, so Lightning's hooks work.

When the tensors live on an accelerator (`data.resident`), the sampler's index tensors live
there too, so a batch is gathered on the device and nothing crosses from the host per step."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class TensorRows(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """One stage's rows of the shared feature and label tensors, indexed a batch at a time.

    Stages keep index tensors into the one in-memory copy of the data instead of copies.
    """

    def __init__(
        self, features: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor | None = None
    ) -> None:
        self.all_features = features
        self.all_labels = labels
        self.rows = torch.arange(len(labels)) if rows is None else rows

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def __getitem__(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        index = self.rows[batch]
        return self.all_features[index], self.all_labels[index]

    @property
    def features(self) -> torch.Tensor:
        """This stage's features as one tensor (a copy)."""
        return self.all_features[self.rows]

    @property
    def labels(self) -> torch.Tensor:
        return self.all_labels[self.rows]


class BatchIndices(Sampler[torch.Tensor]):
    """Yields one index tensor per batch; shards rows across DDP ranks itself.

    Training shuffles with `seed + epoch` (Lightning calls `set_epoch`) and gives every rank
    the same number of batches, as DDP requires. Evaluation keeps order and strides rows
    over ranks, so each row is scored exactly once. With `device`, the epoch's order is made
    on the host exactly as without it and moved there once, so the batches are the same.
    """

    def __init__(
        self,
        num_rows: int,
        batch_size: int,
        *,
        shuffle: bool,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | None = None,
    ) -> None:
        self.num_rows = num_rows
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.device = device
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _rows(self) -> torch.Tensor:
        rows = self._rows_on_host()
        return rows if self.device is None else rows.to(self.device)

    def _rows_on_host(self) -> torch.Tensor:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_rows, generator=generator)
            per_rank = self.num_rows // self.world_size
            return order[self.rank * per_rank : (self.rank + 1) * per_rank]
        return torch.arange(self.rank, self.num_rows, self.world_size)

    def _num_rows_here(self) -> int:
        if self.shuffle:
            return self.num_rows // self.world_size
        return len(range(self.rank, self.num_rows, self.world_size))

    def __len__(self) -> int:
        rows = self._num_rows_here()
        return rows // self.batch_size if self.drop_last else -(-rows // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        rows = self._rows()
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            if self.drop_last and len(batch) < self.batch_size:
                return
            yield batch


def stages_on_device(
    stages: Mapping[str, TensorRows], device: torch.device
) -> dict[str, TensorRows]:
    """Every stage's rows with its tensors on `device`. The stages share one feature and one
    label tensor on the host; on the device they share one copy too."""
    moved: dict[int, torch.Tensor] = {}

    def to_device(tensor: torch.Tensor) -> torch.Tensor:
        if id(tensor) not in moved:
            moved[id(tensor)] = tensor.to(device)
        return moved[id(tensor)]

    return {
        name: TensorRows(
            to_device(rows.all_features), to_device(rows.all_labels), rows.rows.to(device)
        )
        for name, rows in stages.items()
    }


def batch_loader(
    rows: TensorRows, sampler: BatchIndices, *, pin_memory: bool = False
) -> DataLoader:
    """A DataLoader whose every item is already a batch (batch_size=None)."""
    return DataLoader(rows, sampler=sampler, batch_size=None, num_workers=0, pin_memory=pin_memory)
