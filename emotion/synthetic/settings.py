"""What shapes the SYNTHETIC data: its settings and the constants every part shares."""

from __future__ import annotations

from dataclasses import dataclass, field

from emotion.errors import EmotionError
from emotion.store.classes import BINARY

GENERATOR_VERSION = "1"
SYNTHETIC_NOTICE = "SYNTHETIC data: generated landmarks of invented faces, not real people"

NEUTRAL, ANXIOUS = BINARY.index("neutral"), BINARY.index("anxious")

# Phone photo sizes (width, height); portrait and landscape, so aspect correction matters.
PHOTO_SIZES: tuple[tuple[int, int], ...] = (
    (1280, 960),
    (960, 1280),
    (4032, 3024),
    (3024, 4032),
    (1920, 1080),
    (1080, 1920),
)

OUTER_CANTHAL_WIDTH_MM = 90.0  # adult outer eye-corner distance: sets the metric scale
FACE_WIDTH_MM = 150.0  # rough face width, for placing the face in the photo
CHUNK_ROWS = 4096  # rows per vectorised block; fixed so noise streams do not depend on N


@dataclass
class SyntheticSettings:
    """Everything that shapes the synthetic data; stored whole in the file's provenance."""

    num_subjects: int = 240
    frames_per_subject: int = 40  # mean; each subject gets 75 %..125 % of it
    num_frames: int | None = None  # exact total rows (spread over subjects) when set
    anxious_fraction: float = 0.5
    test_fraction: float = 0.2  # whole subjects go to "test"; no subject is in both splits
    seed: int = 0
    # Difficulty knobs.
    expression_scale: float = 1.4  # fear intensity of anxious frames
    expressiveness_spread: float = 0.45  # log-normal sigma of per-subject expressiveness
    neutral_leak: float = 0.25  # weak fear-like actions in neutral frames (class overlap)
    resting_expression_std: float = 0.15  # per-subject resting action offsets, both classes
    nuisance_scale: float = 1.0  # smile and blink, both classes
    shape_scale: float = 1.0  # between-subject face shape variation
    head_pose_deg: float = 7.0  # std of a subject's mean yaw and pitch (roll is half)
    pose_jitter_deg: float = 4.0  # per-frame std around the subject's mean pose
    landmark_noise_mm: float = 0.6  # FaceMesh jitter in x and y; z gets twice this
    gaze_std_mm: float = 1.0  # iris shift within the eye
    photo_sizes: list[tuple[int, int]] = field(default_factory=lambda: list(PHOTO_SIZES))

    def __post_init__(self) -> None:
        # (setting, its emotion-synth flag, holds, what it must be)
        checks = (
            (
                "num_subjects",
                "--subjects",
                self.num_subjects >= 2,
                "2 or more (one to train, one to test)",
            ),
            (
                "frames_per_subject",
                "--frames",
                self.frames_per_subject >= 2,
                "2 or more (one per class)",
            ),
            (
                "num_frames",
                "--rows",
                self.num_frames is None or self.num_frames >= 2 * self.num_subjects,
                "at least 2 per subject",
            ),
            (
                "anxious_fraction",
                "--anxious-fraction",
                0.0 < self.anxious_fraction < 1.0,
                "in (0, 1)",
            ),
            ("test_fraction", "--test-fraction", 0.0 < self.test_fraction < 1.0, "in (0, 1)"),
        )
        for name, flag, holds, rule in checks:
            if not holds:
                raise EmotionError(
                    f"{name}={getattr(self, name)} must be {rule}",
                    f"emotion-synth {flag} ..., or data.synthetic.{name}=... in training",
                )
        self.photo_sizes = [(int(width), int(height)) for width, height in self.photo_sizes]
