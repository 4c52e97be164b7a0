"""Stopping an extraction between photos: the first Ctrl-C or SIGTERM is a request the loop
honours at the next photo, never inside an HDF5 write or a pool callback."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

log = logging.getLogger("emotion.extract.pipeline")


class StopRequest:
    """Turns the first Ctrl-C (SIGINT) or SIGTERM (Slurm preemption, timeout) into a request
    that the loop honours between photos, so the stop never lands inside an HDF5 write or a
    pool callback. A second signal interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                previous = signal.getsignal(number)
                if previous is not signal.SIG_IGN:
                    self._previous[number] = previous
                    signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: Any) -> None:
        self.requested = signal.Signals(number).name
        self.__exit__()
        log.warning("%s: stopping after the current photo (again to stop now)", self.requested)

    def __exit__(self, *exc: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous.clear()
