"""Progress: a tqdm bar in a terminal, plain log lines otherwise (Slurm logs, CI)."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter

log = logging.getLogger(__name__)


class Progress:
    """Shows images/s, faces found and failures while tasks complete."""

    def __init__(self, total: int, done: int, mode: str = "auto", every_s: float = 10.0) -> None:
        self.total = total
        self.done = done
        self.counts: Counter[str] = Counter()
        self.started = time.perf_counter()
        self.started_done = done
        self.every_s = every_s
        self._last_line = self.started
        self.first_at: float | None = None  # the first result: start-up (workers, graphs) ends
        self.last_at: float | None = None
        use_bar = mode == "bar" or (mode == "auto" and sys.stderr.isatty())
        self.lines = mode in ("lines", "auto") and not use_bar
        self.bar = None
        if use_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="img", dynamic_ncols=True)

    def update(self, faces: int, no_face: int, undecodable: int) -> None:
        self.done += 1
        self.last_at = time.perf_counter()
        if self.first_at is None:
            self.first_at = self.last_at
        self.counts.update(faces=faces, no_face=no_face, undecodable=undecodable)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(
                faces=self.counts["faces"],
                no_face=self.counts["no_face"],
                failed=self.counts["undecodable"],
                refresh=False,
            )
        elif self.lines and time.perf_counter() - self._last_line >= self.every_s:
            self._last_line = time.perf_counter()
            log.info("%s", self.line())

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.started
        return (self.done - self.started_done) / elapsed if elapsed > 0 else 0.0

    def timing(self) -> dict[str, float | None]:
        """Seconds until the first result, and the rate after it (start-up excluded)."""
        if self.first_at is None or self.last_at is None:
            return {"seconds_to_first_result": None, "steady_images_per_s": None}
        steady = self.last_at - self.first_at
        after_first = self.done - self.started_done - 1
        return {
            "seconds_to_first_result": round(self.first_at - self.started, 3),
            "steady_images_per_s": round(after_first / steady, 2) if steady > 0 else None,
        }

    def line(self) -> str:
        return (
            f"{self.done}/{self.total} images, {self.rate():.1f} images/s, "
            f"faces {self.counts['faces']}, no face {self.counts['no_face']}, "
            f"undecodable {self.counts['undecodable']}"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.lines:
            log.info("%s", self.line())
