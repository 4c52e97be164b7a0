"""SYNTHETIC default data: FaceMesh-like landmarks of invented people, neutral or anxious (fear).

Nothing here is a real face. The generator starts from one real FaceMesh result (the NASA
astronaut portrait, see `emotion.data.template`) and, fully vectorised in numpy:

1. puts the template into a face-centred metric frame (millimetres, x right, y down, z away
   from the camera, as in MediaPipe);
2. gives every synthetic subject its own face shape (anisotropic scale, eye spacing, jaw width,
   face length, nose, mouth width, brow height and a smooth low-order random deformation);
3. adds facial actions as smooth displacement fields anchored on FaceMesh landmarks: the fear
   actions AU1, AU2, AU4, AU5, AU20 and AU26 (strong in anxious frames, weak "leak" in neutral
   ones), a per-subject resting expression, and nuisance actions of both classes (smile, blink);
4. turns the head (yaw, pitch, roll: per-subject mean plus per-frame jitter), moves the irises
   (gaze), adds FaceMesh-like landmark noise, and projects with a pinhole camera into a phone
   photo of realistic size, writing MediaPipe's raw coordinates (x/width, y/height, z/width).

Same settings and seed give identical arrays. See docs/synthetic.md.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from emotion.data.classes import BINARY
from emotion.data.schema import NUM_COORDS, NUM_LANDMARKS, LandmarkStore, write_store
from emotion.data.template import load_template

log = logging.getLogger(__name__)

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

# FaceMesh landmark indices. "Right" is the subject's right, which is on the image's left.
NOSE_TIP = 1
OUTER_EYE_CORNERS = (33, 263)
RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS = (33, 133), (263, 362)
INNER_BROWS = (55, 65, 107, 66, 285, 295, 336, 296)
OUTER_BROWS = (46, 53, 70, 63, 276, 283, 300, 293)
BROWS = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107, 276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
UPPER_LIDS = (246, 161, 160, 159, 158, 157, 173, 466, 388, 387, 386, 385, 384, 398)
MOUTH_CORNERS = (61, 291)
UPPER_LIP_INNER, LOWER_LIP_INNER = 13, 14
LOWER_LIP_AND_JAW = (
    17, 84, 314, 181, 405, 91, 321, 146, 375, 152, 148, 176, 149, 150, 136, 172, 58, 132,
    377, 400, 378, 379, 365, 397, 288, 361,
)  # fmt: skip
IRISES = tuple(range(468, 478))

FEAR_ACTIONS = (
    "AU1_inner_brow_raise",
    "AU2_outer_brow_raise",
    "AU4_brow_lowerer",
    "AU5_upper_lid_raise",
    "AU20_lip_stretch",
    "AU26_jaw_drop",
)
NUISANCE_ACTIONS = ("AU12_lip_corner_pull", "AU45_blink")

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
        if self.num_subjects < 2:
            raise ValueError("num_subjects must be at least 2 (one train, one test subject)")
        if self.frames_per_subject < 2:
            raise ValueError("frames_per_subject must be at least 2 (one frame per class)")
        if self.num_frames is not None and self.num_frames < 2 * self.num_subjects:
            raise ValueError("num_frames must give every subject at least 2 frames")
        if not 0.0 < self.anxious_fraction < 1.0:
            raise ValueError("anxious_fraction must lie strictly between 0 and 1")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError("test_fraction must lie strictly between 0 and 1")
        self.photo_sizes = [(int(width), int(height)) for width, height in self.photo_sizes]


# --- the template in a metric, face-centred frame -------------------------------------------


@dataclass(frozen=True)
class FaceModel:
    """The template face in millimetres plus the displacement fields built on it."""

    neutral: np.ndarray  # (478, 3) mm, centroid at the origin, x right, y down, z away
    actions: dict[str, np.ndarray]  # name -> (478, 3) mm displacement at intensity 1
    shape_modes: np.ndarray  # (M, 478, 3) mm displacement per unit shape coefficient
    provenance: dict[str, Any]


def template_in_millimetres(raw: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Undo MediaPipe's per-axis normalisation, centre the face and scale it to millimetres."""
    width, height = image_size
    pixels = raw.astype(np.float64) * np.array([width, height, width])
    pixels -= pixels.mean(axis=0)
    eye_a, eye_b = OUTER_EYE_CORNERS
    canthal_pixels = np.linalg.norm(pixels[eye_a, :2] - pixels[eye_b, :2])
    return pixels * (OUTER_CANTHAL_WIDTH_MM / canthal_pixels)


def anchored_weights(face: np.ndarray, anchors: tuple[int, ...], radius_mm: float) -> np.ndarray:
    """Smooth weight per landmark: 1 on the anchors, falling off as a Gaussian of distance."""
    distances = np.linalg.norm(face[:, None, :] - face[None, list(anchors), :], axis=-1)
    return np.exp(-0.5 * (distances.min(axis=1) / radius_mm) ** 2)


def soft_step(values: np.ndarray, edge: float, width: float) -> np.ndarray:
    """0 well below `edge`, 1 well above, smooth in between."""
    return 1.0 / (1.0 + np.exp(-(values - edge) / width))


def lateral_sign(face: np.ndarray) -> np.ndarray:
    """-1 on the image's left half of the face, +1 on the right, smooth across the midline."""
    return np.tanh((face[:, 0] - face[NOSE_TIP, 0]) / 4.0)


def without_irises(weights: np.ndarray) -> np.ndarray:
    """Lid and brow actions leave the eyeballs where they are."""
    weights = weights.copy()
    weights[list(IRISES)] = 0.0
    return weights


def displacement(weights: np.ndarray, dx: Any = 0.0, dy: Any = 0.0, dz: Any = 0.0) -> np.ndarray:
    """A (478, 3) field from per-landmark weights and per-axis amounts (scalars or arrays)."""
    field_mm = np.zeros((NUM_LANDMARKS, NUM_COORDS))
    field_mm[:, 0], field_mm[:, 1], field_mm[:, 2] = weights * dx, weights * dy, weights * dz
    return field_mm


def eye_line_y(face: np.ndarray) -> float:
    return float(face[list(RIGHT_EYE_CORNERS + LEFT_EYE_CORNERS), 1].mean())


def mouth_line_y(face: np.ndarray) -> float:
    return float(face[[UPPER_LIP_INNER, LOWER_LIP_INNER], 1].mean())


def brow_zone(face: np.ndarray) -> np.ndarray:
    """1 on the brows and forehead, fading out before the lid margins and eye corners."""
    brow_y = float(face[list(BROWS), 1].mean())
    return soft_step(-face[:, 1], -(0.5 * brow_y + 0.5 * eye_line_y(face)), 1.5)


def upper_lid_weights(face: np.ndarray) -> np.ndarray:
    """The upper lid margins; the eye corners and the eyeballs stay put."""
    above_eyes = soft_step(-face[:, 1], -eye_line_y(face), 1.0)
    corners = anchored_weights(face, RIGHT_EYE_CORNERS + LEFT_EYE_CORNERS, 3.0)
    lids = anchored_weights(face, UPPER_LIDS, 2.5) * above_eyes * (1.0 - corners)
    return without_irises(lids)


def fear_actions(face: np.ndarray) -> dict[str, np.ndarray]:
    """The facial actions of fear at full intensity, as displacement fields in mm."""
    side = lateral_sign(face)
    below_mouth = soft_step(face[:, 1], mouth_line_y(face), 2.0)
    inner_brows = without_irises(anchored_weights(face, INNER_BROWS, 11.0)) * brow_zone(face)
    outer_brows = without_irises(anchored_weights(face, OUTER_BROWS, 11.0)) * brow_zone(face)
    brows = without_irises(anchored_weights(face, BROWS, 9.0)) * brow_zone(face)
    upper_lids = upper_lid_weights(face)
    mouth_corners = anchored_weights(face, MOUTH_CORNERS, 7.0)
    chin_distance = np.clip(face[:, 1] - mouth_line_y(face), 0.0, None)
    jaw = soft_step(face[:, 1], mouth_line_y(face), 1.0) * np.clip(
        0.55 + chin_distance / 60.0, 0.0, 1.0
    )
    jaw *= anchored_weights(face, LOWER_LIP_AND_JAW, 25.0)
    return {
        "AU1_inner_brow_raise": displacement(inner_brows, dy=-7.0),
        "AU2_outer_brow_raise": displacement(outer_brows, dy=-6.0),
        "AU4_brow_lowerer": displacement(brows, dx=-3.0 * side, dy=1.5),
        "AU5_upper_lid_raise": displacement(upper_lids, dy=-2.5),
        "AU20_lip_stretch": displacement(mouth_corners, dx=5.0 * side, dy=1.0 * below_mouth),
        "AU26_jaw_drop": displacement(jaw, dy=11.0, dz=2.0),
    }


def nuisance_actions(face: np.ndarray) -> dict[str, np.ndarray]:
    """Actions unrelated to fear that appear in both classes: a smile and a blink."""
    side = lateral_sign(face)
    upper_lids = upper_lid_weights(face)
    mouth_corners = anchored_weights(face, MOUTH_CORNERS, 7.0)
    return {
        "AU12_lip_corner_pull": displacement(mouth_corners, dx=3.5 * side, dy=-4.0, dz=1.0),
        "AU45_blink": displacement(upper_lids, dy=4.5),
    }


def shape_modes(face: np.ndarray) -> np.ndarray:
    """Directions in which faces differ, in mm per unit coefficient (std 1 across subjects)."""
    side = lateral_sign(face)
    centred = face - face[NOSE_TIP]
    radius = np.abs(centred).max()
    below_nose = soft_step(face[:, 1], face[NOSE_TIP, 1], 6.0)
    eyes = anchored_weights(face, RIGHT_EYE_CORNERS + LEFT_EYE_CORNERS + IRISES, 14.0)
    named = [
        displacement(eyes, dx=2.5 * side),  # eye spacing
        displacement(below_nose, dx=0.07 * centred[:, 0]),  # jaw width
        displacement(below_nose, dy=0.07 * centred[:, 1]),  # lower-face length
        displacement(anchored_weights(face, (NOSE_TIP,), 12.0), dy=1.5, dz=-3.0),  # nose
        displacement(anchored_weights(face, MOUTH_CORNERS, 7.0), dx=2.0 * side),  # mouth width
        displacement(without_irises(anchored_weights(face, BROWS, 10.0)), dy=-2.5),  # brow height
    ]
    u, v, w = (centred[:, axis] / radius for axis in range(3))
    smooth_terms = [u, v, w, u * v, u * u - v * v, v * v, u * w, v * w]  # low-order field
    smooth = [
        displacement(np.ones(NUM_LANDMARKS), **{axis: 1.5 * term})
        for term in smooth_terms
        for axis in ("dx", "dy", "dz")
    ]
    return np.stack(named + smooth)


def build_face_model() -> FaceModel:
    """Load the shipped template and derive every displacement field from its geometry."""
    raw, image_size, provenance = load_template()
    neutral = template_in_millimetres(raw, image_size)
    actions = {**fear_actions(neutral), **nuisance_actions(neutral)}
    return FaceModel(neutral, actions, shape_modes(neutral), provenance)


# --- who is in the data set ------------------------------------------------------------------


@dataclass(frozen=True)
class Subjects:
    """Per-subject draws; arrays are indexed by subject."""

    frame_counts: np.ndarray  # (S,)
    is_test: np.ndarray  # (S,) bool
    faces: np.ndarray  # (S, 478, 3) mm, neutral face of each subject
    axis_scale: np.ndarray  # (S, 3) anisotropic scale, also applied to expressions
    expressiveness: np.ndarray  # (S,)
    fear_profile: np.ndarray  # (S, 6) how much each fear action takes part
    resting_actions: np.ndarray  # (S, 8) resting offsets of all actions
    mean_pose_deg: np.ndarray  # (S, 3) yaw, pitch, roll
    photo_size: np.ndarray  # (S, 2) width, height
    camera_distance_mm: np.ndarray  # (S,)


def frame_counts(settings: SyntheticSettings, rng: np.random.Generator) -> np.ndarray:
    """Frames per subject: 75 %..125 % of the mean, or an exact total when num_frames is set."""
    mean = settings.frames_per_subject
    counts = rng.integers(int(0.75 * mean), int(1.25 * mean) + 1, settings.num_subjects)
    counts = np.maximum(counts, 2)
    if settings.num_frames is None:
        return counts
    scaled = counts / counts.sum() * settings.num_frames
    exact = np.maximum(np.floor(scaled).astype(np.int64), 2)
    shortfall = settings.num_frames - int(exact.sum())
    order = np.argsort(-(scaled - np.floor(scaled)), kind="stable")
    for index in np.resize(order, abs(shortfall)):
        exact[index] += int(np.sign(shortfall))
    return exact


def test_subjects(settings: SyntheticSettings, rng: np.random.Generator) -> np.ndarray:
    """Whole subjects held out for testing."""
    count = int(round(settings.num_subjects * settings.test_fraction))
    count = min(max(count, 1), settings.num_subjects - 1)
    is_test = np.zeros(settings.num_subjects, dtype=bool)
    is_test[rng.permutation(settings.num_subjects)[:count]] = True
    return is_test


def draw_subjects(
    model: FaceModel, settings: SyntheticSettings, rng: np.random.Generator
) -> Subjects:
    """Every subject's face shape, expression habits, pose habit, camera and photo size."""
    count = settings.num_subjects
    coefficients = rng.standard_normal((count, len(model.shape_modes))) * settings.shape_scale
    axis_scale = np.exp(rng.normal(0.0, [0.05, 0.06, 0.08], (count, 3)) * settings.shape_scale)
    faces = model.neutral + np.einsum("sm,mlc->slc", coefficients, model.shape_modes)
    faces *= axis_scale[:, None, :]
    pose_std = settings.head_pose_deg * np.array([1.0, 1.0, 0.5])
    photo_choice = rng.integers(0, len(settings.photo_sizes), count)
    return Subjects(
        frame_counts=frame_counts(settings, rng),
        is_test=test_subjects(settings, rng),
        faces=faces,
        axis_scale=axis_scale,
        expressiveness=np.exp(rng.normal(0.0, settings.expressiveness_spread, count)),
        fear_profile=rng.uniform(0.4, 1.4, (count, len(FEAR_ACTIONS))),
        resting_actions=rng.normal(
            0.0, settings.resting_expression_std, (count, len(model.actions))
        ),
        mean_pose_deg=rng.normal(0.0, 1.0, (count, 3)) * pose_std,
        photo_size=np.array(settings.photo_sizes, dtype=np.int32)[photo_choice],
        camera_distance_mm=rng.uniform(300.0, 700.0, count),
    )


# --- what happens in each frame --------------------------------------------------------------


@dataclass(frozen=True)
class Frames:
    """Per-frame draws; arrays are indexed by row."""

    subject: np.ndarray  # (N,) subject index
    frame: np.ndarray  # (N,) frame index within the subject
    label: np.ndarray  # (N,)
    action_intensity: np.ndarray  # (N, 8) fear actions then nuisance actions
    pose_deg: np.ndarray  # (N, 3) yaw, pitch, roll
    gaze_mm: np.ndarray  # (N, 2)
    face_width_px: np.ndarray  # (N,) face width in the photo
    face_centre_px: np.ndarray  # (N, 2) where the face sits in the photo


def frame_labels(subjects: Subjects, settings: SyntheticSettings, rng: np.random.Generator):
    """Subject index, frame index and label per row; every subject shows both classes."""
    subject = np.repeat(np.arange(len(subjects.frame_counts)), subjects.frame_counts)
    starts = np.cumsum(subjects.frame_counts) - subjects.frame_counts
    frame = np.arange(len(subject)) - starts[subject]
    anxious_counts = np.clip(
        np.round(subjects.frame_counts * settings.anxious_fraction), 1, subjects.frame_counts - 1
    )
    # A random order within each subject: rank of a uniform key among the subject's frames.
    order = np.lexsort((rng.random(len(subject)), subject))
    rank = np.empty(len(subject), dtype=np.int64)
    rank[order] = frame
    label = np.where(rank < anxious_counts[subject], ANXIOUS, NEUTRAL).astype(np.int64)
    return subject, frame, label


def fear_intensity(
    subject: np.ndarray,
    label: np.ndarray,
    subjects: Subjects,
    settings: SyntheticSettings,
    rng: np.random.Generator,
) -> np.ndarray:
    """(N, 6) fear action intensities: strong and correlated when anxious, weak leak otherwise."""
    rows, actions = len(subject), len(FEAR_ACTIONS)
    overall = rng.beta(2.0, 2.0, rows)[:, None]
    per_action = np.exp(rng.normal(0.0, 0.3, (rows, actions)))
    anxious = (
        settings.expression_scale
        * subjects.expressiveness[subject, None]
        * subjects.fear_profile[subject]
        * overall
        * per_action
    )
    leak = settings.neutral_leak * rng.beta(1.0, 4.0, (rows, actions))
    return np.where((label == ANXIOUS)[:, None], anxious + 0.5 * leak, leak)


def nuisance_intensity(rows: int, settings: SyntheticSettings, rng: np.random.Generator):
    """(N, 2) smile and blink intensities, independent of the class."""
    smile = rng.beta(0.6, 3.0, rows)
    blink = np.where(rng.random(rows) < 0.08, rng.uniform(0.3, 1.0, rows), 0.0)
    return settings.nuisance_scale * np.stack([smile, blink], axis=1)


def face_placement(subject: np.ndarray, subjects: Subjects, rng: np.random.Generator):
    """Face width and centre in pixels: anywhere in the photo, 20 %..60 % of its short side."""
    photo = subjects.photo_size[subject].astype(np.float64)
    face_width = rng.uniform(0.2, 0.6, len(subject)) * photo.min(axis=1)
    margin = 0.75 * face_width[:, None]
    centre = margin + rng.random((len(subject), 2)) * np.maximum(photo - 2 * margin, 1.0)
    return face_width, centre


def draw_frames(subjects: Subjects, settings: SyntheticSettings, rng: np.random.Generator):
    """Label, expression, pose, gaze and placement of every frame."""
    subject, frame, label = frame_labels(subjects, settings, rng)
    rows = len(subject)
    actions = np.concatenate(
        [
            fear_intensity(subject, label, subjects, settings, rng),
            nuisance_intensity(rows, settings, rng),
        ],
        axis=1,
    )
    actions += subjects.resting_actions[subject]
    pose_std = settings.pose_jitter_deg * np.array([1.0, 1.0, 0.5])
    pose = subjects.mean_pose_deg[subject] + rng.normal(0.0, 1.0, (rows, 3)) * pose_std
    face_width, centre = face_placement(subject, subjects, rng)
    return Frames(
        subject=subject,
        frame=frame,
        label=label,
        action_intensity=actions,
        pose_deg=np.clip(pose, -30.0, 30.0),
        gaze_mm=rng.normal(0.0, settings.gaze_std_mm, (rows, 2)),
        face_width_px=face_width,
        face_centre_px=centre,
    )


# --- from faces to FaceMesh coordinates ------------------------------------------------------


def rotation_matrices(pose_deg: np.ndarray) -> np.ndarray:
    """(N, 3, 3) head rotations from yaw (about y), pitch (about x) and roll (about z)."""
    yaw, pitch, roll = np.radians(pose_deg).T
    zeros, ones = np.zeros_like(yaw), np.ones_like(yaw)

    def stack(rows: list[list[np.ndarray]]) -> np.ndarray:
        return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)

    about_y = stack(
        [
            [np.cos(yaw), zeros, np.sin(yaw)],
            [zeros, ones, zeros],
            [-np.sin(yaw), zeros, np.cos(yaw)],
        ]
    )
    about_x = stack(
        [
            [ones, zeros, zeros],
            [zeros, np.cos(pitch), -np.sin(pitch)],
            [zeros, np.sin(pitch), np.cos(pitch)],
        ]
    )
    about_z = stack(
        [
            [np.cos(roll), -np.sin(roll), zeros],
            [np.sin(roll), np.cos(roll), zeros],
            [zeros, zeros, ones],
        ]
    )
    return about_z @ about_x @ about_y


def expressive_faces(rows: slice, model: FaceModel, subjects: Subjects, frames: Frames):
    """Each row's subject face with its actions (scaled like the face) and gaze, in mm."""
    subject = frames.subject[rows]
    action_fields = np.stack(list(model.actions.values())).reshape(len(model.actions), -1)
    moved = (frames.action_intensity[rows] @ action_fields).reshape(-1, NUM_LANDMARKS, NUM_COORDS)
    faces = subjects.faces[subject] + moved * subjects.axis_scale[subject, None, :]
    faces[:, list(IRISES), :2] += frames.gaze_mm[rows, None, :]
    return faces


def posed_faces(faces: np.ndarray, pose_deg: np.ndarray) -> np.ndarray:
    """Turn each head about its centre."""
    return faces @ rotation_matrices(pose_deg).transpose(0, 2, 1)


def landmark_noise(shape: tuple[int, ...], noise_mm: float, rng: np.random.Generator):
    """FaceMesh's per-landmark jitter: independent, twice as large in depth."""
    return rng.standard_normal(shape) * (noise_mm * np.array([1.0, 1.0, 2.0]))


def project_to_photo(
    faces: np.ndarray,
    camera_distance_mm: np.ndarray,
    face_width_px: np.ndarray,
    face_centre_px: np.ndarray,
    photo_size: np.ndarray,
) -> np.ndarray:
    """Pinhole projection into the photo, as MediaPipe's raw (x/width, y/height, z/width)."""
    pixels_per_mm = (face_width_px / FACE_WIDTH_MM)[:, None]
    perspective = camera_distance_mm[:, None] / (camera_distance_mm[:, None] + faces[..., 2])
    width, height = (photo_size[:, axis, None].astype(np.float64) for axis in (0, 1))
    raw = np.empty(faces.shape, dtype=np.float32)
    raw[..., 0] = (face_centre_px[:, 0, None] + faces[..., 0] * perspective * pixels_per_mm) / width
    raw[..., 1] = (
        face_centre_px[:, 1, None] + faces[..., 1] * perspective * pixels_per_mm
    ) / height
    raw[..., 2] = faces[..., 2] * pixels_per_mm / width
    return raw


def render_landmarks(
    model: FaceModel, subjects: Subjects, frames: Frames, settings: SyntheticSettings
) -> np.ndarray:
    """Raw (N, 478, 3) float32 landmarks, block by block to bound memory."""
    total = len(frames.subject)
    landmarks = np.empty((total, NUM_LANDMARKS, NUM_COORDS), dtype=np.float32)
    for block, start in enumerate(range(0, total, CHUNK_ROWS)):
        rows = slice(start, min(start + CHUNK_ROWS, total))
        noise_rng = np.random.default_rng([settings.seed, 1, block])
        faces = posed_faces(expressive_faces(rows, model, subjects, frames), frames.pose_deg[rows])
        faces += landmark_noise(faces.shape, settings.landmark_noise_mm, noise_rng)
        subject = frames.subject[rows]
        landmarks[rows] = project_to_photo(
            faces,
            subjects.camera_distance_mm[subject],
            frames.face_width_px[rows],
            frames.face_centre_px[rows],
            subjects.photo_size[subject],
        )
    return landmarks


# --- the store -------------------------------------------------------------------------------


def generate(settings: SyntheticSettings | None = None) -> LandmarkStore:
    """A schema-v1 store of SYNTHETIC landmarks; identical for identical settings and seed."""
    settings = settings or SyntheticSettings()
    model = build_face_model()
    rng = np.random.default_rng([settings.seed, 0])
    subjects = draw_subjects(model, settings, rng)
    frames = draw_frames(subjects, settings, rng)
    landmarks = render_landmarks(model, subjects, frames, settings)
    subject_ids = np.array([f"synth_{index:04d}" for index in range(settings.num_subjects)])
    sources = [
        f"synthetic://subject_{subject:04d}/frame_{frame:03d}"
        for subject, frame in zip(frames.subject.tolist(), frames.frame.tolist(), strict=True)
    ]
    return LandmarkStore(
        landmarks=landmarks,
        label=frames.label,
        subject=subject_ids[frames.subject].astype(object),
        split=np.where(subjects.is_test[frames.subject], "test", "train").astype(object),
        source=np.array(sources, dtype=object),
        image_size=subjects.photo_size[frames.subject].astype(np.int32),
        class_names=list(BINARY),
        synthetic=True,
        provenance=provenance(settings, model),
    )


def provenance(settings: SyntheticSettings, model: FaceModel) -> dict[str, Any]:
    return {
        "synthetic": True,
        "notice": SYNTHETIC_NOTICE,
        "generator": "emotion.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "settings": asdict(settings),
        "fear_actions": list(FEAR_ACTIONS),
        "nuisance_actions": list(NUISANCE_ACTIONS),
        "template": model.provenance,
    }


def generate_store(path: str | Path, settings: SyntheticSettings | None = None) -> Path:
    """Generate and write a SYNTHETIC store atomically; logs that the data is synthetic."""
    settings = settings or SyntheticSettings()
    started = time.perf_counter()
    store = generate(settings)
    written = write_store(path, store, tool="emotion-synth")
    log.warning(
        "%s: wrote %d SYNTHETIC rows (%d subjects, seed %d) to %s in %.1f s",
        SYNTHETIC_NOTICE,
        len(store),
        settings.num_subjects,
        settings.seed,
        written,
        time.perf_counter() - started,
    )
    return written


def main(argv: list[str] | None = None) -> None:
    """`emotion-synth`: write a SYNTHETIC landmark store."""
    defaults = SyntheticSettings()
    parser = argparse.ArgumentParser(description="Write a SYNTHETIC FaceMesh landmark store.")
    parser.add_argument("--output", type=Path, default=Path("data/synthetic.h5"))
    parser.add_argument("--subjects", type=int, default=defaults.num_subjects)
    parser.add_argument("--frames", type=int, default=defaults.frames_per_subject)
    parser.add_argument("--rows", type=int, default=None, help="exact total rows")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    for knob in fields(SyntheticSettings):
        if knob.type == "float":
            parser.add_argument(
                "--" + knob.name.replace("_", "-"), type=float, default=getattr(defaults, knob.name)
            )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    floats = {
        knob.name: getattr(args, knob.name)
        for knob in fields(SyntheticSettings)
        if knob.type == "float"
    }
    settings = SyntheticSettings(
        num_subjects=args.subjects,
        frames_per_subject=args.frames,
        num_frames=args.rows,
        seed=args.seed,
        **floats,
    )
    path = generate_store(args.output, settings)
    print(f"wrote {path}: SYNTHETIC landmarks (not real faces), seed {settings.seed}")


if __name__ == "__main__":
    main()
