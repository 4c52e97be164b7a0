"""Console commands run the way users run them: as a subprocess, from a chosen directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "model.width=16",
    "model.depth=1",
    "model.head_width=8",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "data.batch_size=64",
]


def emotion(
    module: str, *args: str, cwd: Path, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    """`python -m <module> <args>` with this checkout importable, output captured as text."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def unwritable(tmp_path: Path) -> Path:
    """A folder this process cannot write into: read-only, or (root ignores permission bits)
    a path under a regular file, which no one can make a folder of."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if not os.access(folder, os.W_OK):
        return folder
    folder.chmod(0o755)
    (tmp_path / "file.txt").write_text("a file, not a folder\n")
    return tmp_path / "file.txt"


def in_runs(root: Path, pattern: str = "") -> list[Path]:
    """`root/outputs/train/runs/<run>/<pattern>` of each run folder, the `latest` link left out
    (it points at one of them)."""
    runs = root / "outputs" / "train" / "runs"
    if not runs.is_dir():
        return []
    folders = sorted(path for path in runs.iterdir() if path.is_dir() and not path.is_symlink())
    if not pattern:
        return folders
    return sorted(found for folder in folders for found in folder.glob(pattern))
