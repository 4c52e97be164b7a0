"""Per-video tracks: an exponential moving average over frames and a per-video summary.

Frame-wise scores flicker with blinks and small head turns; the smoothed track is what a
screening display should show. Frames without a face leave the average where it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class VideoTrack:
    """EMA of class probabilities with weight `alpha` on the newest frame."""

    class_names: list[str]
    alpha: float
    smoothed: np.ndarray | None = None
    frames: int = 0
    faces: int = 0
    unreadable: int = 0
    probability_sum: np.ndarray | None = None
    label_counts: dict[str, int] = field(default_factory=dict)
    peak_smoothed: np.ndarray | None = None

    def update(self, probabilities: np.ndarray | None, status: str) -> np.ndarray | None:
        """Add one frame; returns the smoothed probabilities after it (None before any face)."""
        self.frames += 1
        if status == "unreadable":
            self.unreadable += 1
        if probabilities is None:
            return self.smoothed
        self.faces += 1
        if self.smoothed is None:
            self.smoothed = probabilities.astype(np.float64)
            self.probability_sum = np.zeros_like(self.smoothed)
            self.peak_smoothed = np.zeros_like(self.smoothed)
        else:
            self.smoothed = self.alpha * probabilities + (1 - self.alpha) * self.smoothed
        self.probability_sum += probabilities
        self.peak_smoothed = np.maximum(self.peak_smoothed, self.smoothed)
        label = self.class_names[int(np.argmax(probabilities))]
        self.label_counts[label] = self.label_counts.get(label, 0) + 1
        return self.smoothed

    def summary(self) -> dict[str, Any]:
        """Frames, faces, mean probabilities over face frames, share of frames per label."""
        result: dict[str, Any] = {
            "frames": self.frames,
            "frames_with_face": self.faces,
            "frames_unreadable": self.unreadable,
            "ema_alpha": self.alpha,
        }
        if self.faces and self.probability_sum is not None and self.peak_smoothed is not None:
            mean = self.probability_sum / self.faces
            result["mean_probabilities"] = dict(
                zip(self.class_names, mean.round(6).tolist(), strict=True)
            )
            result["label"] = self.class_names[int(np.argmax(mean))]
            result["frame_share_per_label"] = {
                name: round(self.label_counts.get(name, 0) / self.faces, 6)
                for name in self.class_names
            }
            result["peak_smoothed_probabilities"] = dict(
                zip(self.class_names, self.peak_smoothed.round(6).tolist(), strict=True)
            )
        else:
            result["label"] = None
        return result
