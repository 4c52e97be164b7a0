"""A run directory: its layout, finding a run's files in it, and writing them safely.

    <run_dir>/checkpoints/best-epochNNN.ckpt, last.ckpt
    <run_dir>/tensorboard/        events
    <run_dir>/metrics.json        the finished run's results, config and data summary
    <run_dir>/.hydra/config.yaml  the composed config
    <run_dir>/.lock               held while emotion-train runs in it

Training writes this layout (`emotion.training`); evaluation, prediction, export and the
sweep summaries read it. Files are found relative to the run directory itself, so a copied
or moved run is read as itself.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from emotion.errors import EmotionError

CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
METRICS_FILE = "metrics.json"
LOCK_FILE = ".lock"
LAST_FILE = "last.ckpt"  # written by emotion.training.checkpoints.LastCheckpoint
HYDRA_CONFIG = Path(".hydra") / "config.yaml"


def resolve_checkpoint(ckpt_path: str | None, run_dir: str | None) -> Path:
    """`ckpt_path`, or the checkpoint a run directory tested (metrics.json, else its best)."""
    if ckpt_path:
        path = Path(ckpt_path)
        if not path.is_file():
            raise EmotionError(
                f"checkpoint {path} does not exist",
                "pass a .ckpt file that exists, or the run directory outputs/train/runs/<run_name>",
            )
        return path
    if not run_dir:
        raise EmotionError(
            "no model given", "pass a run directory (outputs/train/runs/<run_name>) or a .ckpt"
        )
    folder = Path(run_dir)
    if not folder.is_dir():
        raise EmotionError(f"run directory {folder} does not exist", "check the path")
    metrics = folder / METRICS_FILE
    if metrics.is_file():
        # The checkpoint the run tested (best on val, or last: `select`); only the file name,
        # so a copied or moved run directory scores its own checkpoint, not the one at the
        # absolute path its metrics.json still names.
        result = json.loads(metrics.read_text())
        chosen = result.get("tested_checkpoint") or result.get("best_checkpoint")
        if chosen and (folder / CHECKPOINT_DIR / Path(chosen).name).is_file():
            return folder / CHECKPOINT_DIR / Path(chosen).name
    best_files = sorted((folder / CHECKPOINT_DIR).glob("best-*.ckpt"))
    if best_files:
        return best_files[-1]
    raise EmotionError(
        f"{folder} holds no best checkpoint ({CHECKPOINT_DIR}/best-*.ckpt), and no "
        "metrics.json naming the one it tested",
        "finish training that run first, or name a checkpoint file (<run>/checkpoints/NAME.ckpt) "
        "in place of the run directory",
    )


def run_dir_of(ckpt_path: Path) -> Path | None:
    """The run directory a checkpoint belongs to: <run_dir>/checkpoints/<file>.ckpt."""
    folder = ckpt_path.resolve().parent.parent
    if (folder / METRICS_FILE).is_file() or (folder / HYDRA_CONFIG).is_file():
        return folder
    return None


def saved_run_config(run_dir: Path | None) -> dict[str, Any]:
    """The run's fully resolved config: metrics.json `config`, else .hydra/config.yaml."""
    if run_dir is None:
        return {}
    metrics = run_dir / METRICS_FILE
    if metrics.is_file():
        config = json.loads(metrics.read_text()).get("config")
        if config:
            return dict(config)
    hydra_config = run_dir / HYDRA_CONFIG
    if hydra_config.is_file():
        from omegaconf import OmegaConf

        return dict(resolved_where_possible(OmegaConf.load(hydra_config)))
    return {}


def resolved_where_possible(node: Any) -> Any:
    """A config as plain values, each interpolation resolved where it can be outside a run
    (`data.path: ${.synthetic.output}`); those of Hydra's runtime (`${hydra:...}`) are kept
    as written. Resolving the whole config at once fails on the first of those, which left
    every path as its unresolved `${...}` placeholder."""
    from omegaconf import Container, OmegaConf

    if not isinstance(node, Container):
        return node
    raw = OmegaConf.to_container(node, resolve=False)
    keys = list(range(len(raw))) if isinstance(raw, list) else list(raw)
    values = []
    for key in keys:
        try:
            values.append(resolved_where_possible(node[key]))
        except Exception:  # noqa: BLE001 (any resolver's error: keep the value as written)
            values.append(raw[key])  # type: ignore[index]
    return values if isinstance(raw, list) else dict(zip(keys, values, strict=True))


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON to a temporary file and rename it, so no half-written file is ever seen.

    The temporary file is created like any other file (mode 0666 less the umask), not with
    mkstemp's private 0600, so the result is as readable as everything else in the run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(handle, "w") as stream:
            json.dump(payload, stream, indent=2, ensure_ascii=False, default=str)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def fresh_name(path: Path, suffix: str) -> Path:
    """A name beside `path` that no other process picks: `<name>.<pid>.<8 hex><suffix>`."""
    return path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{suffix}")


def create_beside(path: Path, suffix: str = ".partial") -> tuple[int, Path]:
    """A new empty file beside `path`, open for writing, under a name of its own (`fresh_name`).

    Two runs writing the same output each get their own file, so neither truncates nor renames
    the other's. O_EXCL: never an existing file, and a link planted at the name is refused,
    not followed. Created like any other file (0666 less the umask), as write_json_atomic."""
    for _ in range(16):
        candidate = fresh_name(path, suffix)
        try:
            return os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def make_dir_beside(path: Path, suffix: str = ".partial") -> Path:
    """A new empty folder beside `path` under a name of its own (0777 less the umask); mkdir
    fails on any existing name, a planted link included."""
    for _ in range(16):
        candidate = fresh_name(path, suffix)
        try:
            candidate.mkdir(0o777)
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def write_problem(folder: Path) -> str | None:
    """Why files cannot be written into `folder` (made with its parents when missing), or None.

    Found by trying, in the nearest folder that exists, to create (and remove) a file:
    permission bits alone mislead (root ignores them; ACLs and read-only mounts do not show
    in them). Nothing is left behind, so a command can check before its work starts."""
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    probe = fresh_name(existing / ".write-check", ".tmp")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as error:
        return f"{existing} cannot be written to ({error.strerror or error})"
    probe.unlink(missing_ok=True)
    return None
