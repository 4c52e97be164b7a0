"""How many torch threads a command may ask for: a bound, so a typo (`--threads 100000`) is a
clear error rather than OpenMP's `libgomp: Out of memory` as it makes that many threads."""

from __future__ import annotations

from typing import Any

from emotion.training.threads import cores

# Past a few threads per core nothing runs faster; far past it each thread's stack runs out.
THREADS_PER_CORE = 4


def most_threads() -> int:
    """The most threads a command takes: THREADS_PER_CORE per core this process may use."""
    return THREADS_PER_CORE * cores()


def threads_check(option: str, value: int) -> tuple[str, Any, bool, str]:
    """`check_ranges`' check of a thread count option: 1 to `most_threads()`."""
    limit = most_threads()
    return (
        option,
        value,
        1 <= value <= limit,
        f"1 to {limit} ({THREADS_PER_CORE} per core of the {cores()} this process may use)",
    )
