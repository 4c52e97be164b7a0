"""User-facing errors: say what is wrong and how to fix it, without a traceback."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class EmotionError(Exception):
    """An error the user can fix. `problem` says what is wrong, `fix` how to fix it."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        return self.problem if not self.fix else f"{self.problem}\n  fix: {self.fix}"


def check_ranges(checks: Iterable[tuple[str, Any, bool, str]]) -> None:
    """(option, value, holds, what to use instead) for each option: the first that does not
    hold is a user error naming it."""
    for option, value, holds, wanted in checks:
        if not holds:
            raise EmotionError(f"{option} {value} is out of range", f"use {wanted}")


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`1 run`, `2 runs`, `1 person`/`3 people` (`plural` for nouns that do not add an s)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def report_user_error(error: EmotionError) -> None:
    """`error: ...` / `fix: ...` once on stderr; a run's log file (Hydra's `<job>.log`) gets the
    same record, so a run directory still says why it stopped, without a second console copy."""
    print(f"error: {error}", file=sys.stderr)
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s", (error,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def exit_on_user_error(func: F) -> F:
    """Turn an EmotionError into a two-line message and exit status 2, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EmotionError as error:
            report_user_error(error)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
