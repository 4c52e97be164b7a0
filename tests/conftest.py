"""Shared fixtures: tiny SYNTHETIC stores and composed training configs, all in tmp dirs."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from emotion.store.io import read_store, write_store
from emotion.store.schema import LandmarkStore
from emotion.synthetic.generate import generate
from emotion.synthetic.settings import SyntheticSettings
from emotion.training import config as _train_schema  # noqa: F401  (the schemas, for compose)

CONF_DIR = Path(__file__).resolve().parents[1] / "emotion" / "conf"
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def tiny_synthetic() -> LandmarkStore:
    """A small SYNTHETIC store: 30 subjects, both classes, both splits."""
    return generate(SyntheticSettings(num_subjects=30, frames_per_subject=16, seed=3))


@pytest.fixture(scope="session")
def tiny_store_path(
    tmp_path_factory: pytest.TempPathFactory, tiny_synthetic: LandmarkStore
) -> Path:
    path = tmp_path_factory.mktemp("store") / "tiny.h5"
    write_store(path, tiny_synthetic)
    return path


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[..., Path]:
    """Write a store built from arrays; missing columns get plausible defaults."""

    def _make(
        label: list[int],
        subject: list[str],
        split: list[str] | None = None,
        landmarks: np.ndarray | None = None,
        name: str = "store.h5",
    ) -> Path:
        rows = len(label)
        rng = np.random.default_rng(0)
        store = LandmarkStore(
            landmarks=landmarks
            if landmarks is not None
            else rng.random((rows, 478, 3), dtype=np.float32),
            label=np.asarray(label, dtype=np.int64),
            subject=np.asarray(subject, dtype=object),
            split=np.asarray(split or ["train"] * rows, dtype=object),
            source=np.asarray([f"test::{i}" for i in range(rows)], dtype=object),
            image_size=np.tile(np.array([[1280, 960]], dtype=np.int32), (rows, 1)),
            class_names=["neutral", "anxious"],
            synthetic=True,
            provenance={"made_by": "tests"},
        )
        path = tmp_path / name
        write_store(path, store)
        return path

    return _make


def small_overrides(store: Path, run_dir: Path, *extra: str) -> list[str]:
    """A tiny, fast model on a given store, writing into run_dir."""
    return [
        "data=store",
        f"data.path={store}",
        f"paths.run_dir={run_dir}",
        f"paths.root_dir={run_dir.parent}",
        "model.width=32",
        "model.depth=1",
        "model.head_width=16",
        "data.batch_size=64",
        # The tiny stores validate on 3-4 people: below the default minimum of 10, yet these
        # tests are about what a validation split drives (best checkpoint, val metrics).
        "data.min_val_subjects=0",
        "trainer.max_epochs=1",
        "trainer.log_every_n_steps=1",
        "trainer.accelerator=cpu",
        "progress_bar=none",
        *extra,
    ]


@pytest.fixture
def train_config() -> Callable[..., DictConfig]:
    """Compose conf/train.yaml with overrides, as the CLI would (minus Hydra's run dir)."""

    def _compose(overrides: list[str]) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="train", overrides=overrides)
        with open_dict(cfg):
            cfg.run_name = "test"
        return cfg

    return _compose


@pytest.fixture
def store_reader() -> Callable[[Path], LandmarkStore]:
    return read_store


@pytest.fixture(scope="session")
def photo_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The photo tree of tests/photo_runs.py and its extracted store (real FaceMesh)."""
    pytest.importorskip("mediapipe", reason="the photo tests need the extract extra")
    from tests.photo_runs import build_photo_store

    root = tmp_path_factory.mktemp("people") / "photos"
    store = build_photo_store(root)
    assert len(read_store(store)) == 16  # FaceMesh found every face
    return root, store


@pytest.fixture(scope="session")
def enrolled_run(photo_store: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny data.baseline=enrolled run on the photo store."""
    from tests.trained_run import train_tiny

    run_dir = tmp_path_factory.mktemp("enrolled") / "run"
    train_tiny(photo_store[1], run_dir, "data.baseline=enrolled", "data.min_val_subjects=10")
    return run_dir


@pytest.fixture(scope="session")
def plain_run(photo_store: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run on the photo store that reads each photo alone."""
    from tests.trained_run import train_tiny

    run_dir = tmp_path_factory.mktemp("plain") / "run"
    train_tiny(photo_store[1], run_dir, "data.min_val_subjects=10")
    return run_dir


@pytest.fixture(scope="session")
def synthetic_run(
    tiny_store_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    """One tiny run on tiny_store_path and its metrics.json, trained once for every test that
    only reads such a run; a test that changes a run copies it first (shutil.copytree)."""
    from tests.trained_run import train_tiny

    run_dir = tmp_path_factory.mktemp("synthetic") / "run"
    return run_dir, train_tiny(tiny_store_path, run_dir)


def cli_train_args(store: Path) -> list[str]:
    """The overrides of the `emotion-train` subprocess behind cli_run and cli_rerun."""
    from tests.commands import TINY

    return ["data=store", f"data.path={store}", *TINY]


@pytest.fixture(scope="session")
def cli_first_run(tmp_path_factory: pytest.TempPathFactory, tiny_store_path: Path) -> Path:
    """One tiny run made by `emotion-train` in a subprocess (as a new user makes it), in a
    directory named after its overrides. cli_rerun resumes it in place; tests read cli_run."""
    from tests.commands import emotion

    workdir = tmp_path_factory.mktemp("cli")
    done = emotion("emotion.training", *cli_train_args(tiny_store_path), cwd=workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "litlogger" not in done.stderr + done.stdout
    runs = workdir / "outputs" / "train" / "runs"
    (run_dir,) = (path for path in runs.iterdir() if path.name != "latest")
    assert (runs / "latest").resolve() == run_dir.resolve()
    assert "=" in run_dir.name and "," in run_dir.name
    return run_dir


@pytest.fixture(scope="session")
def cli_run(cli_first_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cli_first_run as it finished (one epoch), for the tests that read a CLI-made run: a copy
    of its working directory taken before cli_rerun resumes the original."""
    original = cli_first_run.parents[3]  # <workdir>/outputs/train/runs/<run_name>
    workdir = tmp_path_factory.mktemp("cli-copy") / original.name
    shutil.copytree(original, workdir, symlinks=True)
    return workdir / cli_first_run.relative_to(original)


@pytest.fixture(scope="session")
def cli_rerun(
    cli_first_run: Path, cli_run: Path, tiny_store_path: Path
) -> subprocess.CompletedProcess[str]:
    """cli_first_run's command again with trainer.max_epochs=2 and the first run's name, from
    the same working directory, as a user extends a finished run: it should resume in the same
    run directory (trainer.max_epochs is part of a run's name, so the name is given). cli_run
    (a parameter here so its copy is taken first) keeps the one-epoch run."""
    from tests.commands import emotion

    return emotion(
        "emotion.training",
        *cli_train_args(tiny_store_path),
        "trainer.max_epochs=2",
        f"run_name='{cli_first_run.name}'",  # quoted: the name holds '=' and ',
        cwd=cli_first_run.parents[3],
    )
