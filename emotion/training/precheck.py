"""What `emotion-train` checks before Hydra writes anything: the command line composes, the
names are names, and the run directory is free; then the run directory stays locked.

Hydra's main creates the run directory, writes `.hydra/` and opens `train.log` before any of
our code runs. A refused run must leave another run's directory as it was, and a config
that cannot compose is a user error (`error:`/`fix:`, exit 2) like any other, so a single
run is composed once here first (0.2 s, no torch). Multiruns are checked per job, in
`train()`.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from emotion import compose
from emotion.errors import EmotionError
from emotion.training import config as _train_schema  # noqa: F401  (registers the schemas)
from emotion.training.ranges import check_train_config
from emotion.training.resume import (
    plan_resume,
    run_directory_lock,
    run_results,
    stale_events,
)
from emotion.training.run_name import SWEEP_KEYS
from emotion.training.study import prepare_storage

# Environment variables that make this process a DDP or Slurm worker other than rank 0.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")
# Settings that become one folder name each.
NAMES = ("run_name", "sweep_name", "task_name")
QUOTES = "\"'`"


def is_worker() -> bool:
    """A DDP child (Lightning sets LOCAL_RANK) reruns the command: rank 0 holds the lock."""
    return any(os.environ.get(name, "0") != "0" for name in RANK_VARIABLES)


def check_names(cfg: DictConfig) -> None:
    """A run name is one folder under outputs/, never a path: `run_name=../..` would write
    (and with overwrite=true delete) outside it. Nor a name a shell or a file system trips
    on: control characters (a newline, a tab) and quotes, or longer than a folder name may
    be, which the file system would refuse only once Hydra writes."""
    for key in NAMES:
        if OmegaConf.is_interpolation(cfg, key):
            continue  # made from the overrides (emotion.training.run_name): a name
        value = OmegaConf.select(cfg, key, throw_on_missing=False)
        if not isinstance(value, str):
            continue
        if value in ("", ".", "..") or "/" in value or "\\" in value or "\0" in value:
            raise EmotionError(
                f"{key}={value!r} is not a folder name",
                f"give {key} a name without '/' and other than '.' or '..', e.g. {key}=baseline",
            )
        if value == "latest" and key != "task_name":
            raise EmotionError(
                f"{key}=latest is the link to the last one started, not a name of its own",
                f"give {key} another name, e.g. {key}=baseline",
            )
        odd = sorted(
            {char for char in value if unicodedata.category(char)[0] == "C"}
            | (set(value) & set(QUOTES))
        )
        if odd:
            raise EmotionError(
                f"{key}={value!r} holds {', '.join(repr(char) for char in odd)}: control "
                "characters and quotes make a folder name no shell or script reads back safely",
                f"give {key} letters, digits and '-_.,=+' only, e.g. {key}=baseline",
            )
        size, limit = len(value.encode()), name_max()
        if size > limit:
            raise EmotionError(
                f"{key} is {size} bytes long, and a folder name may be at most {limit} here",
                f"give {key} a shorter name, e.g. {key}=baseline (or leave run_name out: the "
                "name made from the overrides is kept short)",
            )


def name_max(folder: str = ".") -> int:
    """The longest file name, in bytes, the file system under `folder` takes (255 on Linux)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def composed(overrides: list[str]) -> DictConfig:
    """train.yaml with the command's overrides and Hydra's own node (`emotion.compose`)."""
    return compose.composed(
        "train",
        overrides,
        "check the key and its value against the schema (emotion-train --cfg job prints the "
        "composed config); a Lightning argument the trainer schema leaves out goes in as "
        "+trainer.NAME=VALUE",
    )


@contextmanager
def sweep_keys(keys: list[str]) -> Iterator[None]:
    """Name the keys a sweep varies for its jobs' folder names (emotion.training.run_name),
    in the environment, which the launchers' worker processes and Slurm jobs inherit."""
    previous = os.environ.get(SWEEP_KEYS)
    os.environ[SWEEP_KEYS] = ",".join(keys)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(SWEEP_KEYS, None)
        else:
            os.environ[SWEEP_KEYS] = previous


def user_error(error: BaseException) -> bool:
    """An EmotionError, or the exit status 2 that `exit_on_user_error` turned one into."""
    return isinstance(error, EmotionError) or (isinstance(error, SystemExit) and error.code == 2)


def missing_folders(run_dir: Path) -> list[Path]:
    """The run directory and the folders above it that do not exist yet, deepest first."""
    return [folder for folder in (run_dir, *run_dir.parents) if not os.path.lexists(folder)]


def remove_made(folder: Path, created: list[Path]) -> None:
    """Remove `folder`, then the folders above it that this command made (`created`, deepest
    first after `folder` itself) while they are empty."""
    shutil.rmtree(folder, ignore_errors=True)
    for parent in created[1:]:
        try:
            parent.rmdir()  # only while empty
        except OSError:
            break


@contextmanager
def removed_on_user_error(run_dir: Path, created: list[Path]) -> Iterator[None]:
    """A run refused for a user error (no GPU, no store, a bad value found once Hydra ran)
    leaves no folder behind: the run directory, and the empty folders above it, that this
    command created (`created`, found before it made them) are removed, so long as no
    checkpoint, event or metrics.json was written. A folder that was there before is left as
    it was. Entered with the run directory locked, so a command refused because another
    holds the directory never removes it."""
    try:
        yield
    except BaseException as error:
        if created and user_error(error) and not run_results(run_dir) and not stale_events(run_dir):
            remove_made(run_dir, created)
        raise


def sweep_folder(fixed: list[str]) -> Path | None:
    """Where a sweep's jobs go (hydra.sweep.dir), from the overrides that are not swept; None
    when that cannot be told before Hydra runs (the jobs are checked one by one anyway)."""
    try:
        cfg = composed(fixed)
        return Path(str(OmegaConf.select(cfg, "hydra.sweep.dir")))
    except (EmotionError, HydraException, ValueError, TypeError):
        return None


@contextmanager
def sweep_removed_on_user_error(sweep_dir: Path | None, created: list[Path]) -> Iterator[None]:
    """A sweep whose job is refused for a user error (no GPU, no store) leaves no folder
    behind, as a single run does: the sweep folder this command created, and the empty
    folders above it, once no job in it wrote a checkpoint, an event file or metrics.json
    (a sweep that trained some jobs before one was refused keeps all of it); a `latest`
    link left pointing at it goes too."""
    try:
        yield
    except BaseException as error:
        if sweep_dir is not None and created and user_error(error) and sweep_dir.is_dir():
            jobs = [sweep_dir, *(path for path in sweep_dir.iterdir() if path.is_dir())]
            if not any(run_results(job) or stale_events(job) for job in jobs):
                remove_made(sweep_dir, created)
                latest = sweep_dir.parent / "latest"
                if latest.is_symlink() and not latest.exists():
                    latest.unlink()
        raise


@contextmanager
def checked_run(argv: list[str]) -> Iterator[None]:
    """Compose, check and lock a single run's directory; Hydra's main runs inside. A
    multirun names the keys it varies for its jobs' folders; each job is checked in train()."""
    if is_worker() or compose.hydra_flag(argv):
        yield
        return
    overrides = [arg for arg in argv if not arg.startswith("-")]
    if "-m" in argv or "--multirun" in argv:
        try:
            parsed = OverridesParser.create().parse_overrides(overrides)
        except HydraException as error:
            raise EmotionError(
                f"the settings do not parse: {str(error).splitlines()[0]}",
                "give each as KEY=VALUE, a sweep as KEY=A,B or KEY=range(N)",
            ) from None
        varied = [item.key_or_group for item in parsed if item.is_sweep_override()]
        named = {
            item.key_or_group: item.value()
            for item in parsed
            if item.key_or_group in NAMES and not item.is_sweep_override()
        }
        check_names(OmegaConf.create({key: str(value) for key, value in named.items()}))
        for item in parsed:
            if item.key_or_group == "hydra.sweeper.storage" and not item.is_sweep_override():
                prepare_storage(item.value())
        fixed = [
            arg for arg, item in zip(overrides, parsed, strict=True) if not item.is_sweep_override()
        ]
        sweep_dir = sweep_folder(fixed)
        created = missing_folders(sweep_dir) if sweep_dir else []
        with sweep_keys(varied), sweep_removed_on_user_error(sweep_dir, created):
            yield
        return
    cfg = composed(overrides)
    check_names(cfg)
    if cfg.hydra.mode is not None and str(cfg.hydra.mode.name) == "MULTIRUN":
        # hparams_search=optuna and the like: the sweep is in the config
        params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
        prepare_storage(OmegaConf.select(cfg, "hydra.sweeper.storage"))
        with sweep_keys([str(key) for key in params]):
            yield
        return
    check_train_config(cfg)
    HydraConfig.instance().set_config(cfg)
    run_dir = Path(str(cfg.hydra.run.dir))
    created = missing_folders(run_dir)
    with run_directory_lock(run_dir), removed_on_user_error(run_dir, created):
        # Refuse now what train() would refuse, before Hydra rewrites the directory's files;
        # is_global_zero=False, decide_only: decide, delete and read nothing.
        plan_resume(
            run_dir,
            resume=str(cfg.resume.value),
            ckpt_path=cfg.ckpt_path,
            overwrite=cfg.overwrite,
            is_global_zero=False,
            decide_only=True,
        )
        yield
