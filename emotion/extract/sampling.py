"""Which photos of an archive to keep: at most `cap`, chosen the same way on every run."""

from __future__ import annotations

import zlib

import numpy as np


def sample_positions(count: int, cap: int, method: str, seed: int, key: str) -> list[int]:
    """Sorted positions of the kept items among `count`.

    `uniform` takes evenly spaced items; `random` draws without replacement from a generator
    seeded by `seed` and the archive name, so each archive's choice is independent of which
    other archives (or shards) a run sees.
    """
    if count <= cap:
        return list(range(count))
    if method == "uniform":
        return sorted({int(round(x)) for x in np.linspace(0, count - 1, cap)})
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    return sorted(int(x) for x in rng.choice(count, size=cap, replace=False))
