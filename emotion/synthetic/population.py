"""Who is in the SYNTHETIC data set and what each frame shows: people, labels, expressions,
head pose and placement in the photo."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emotion.synthetic.face_model import FEAR_ACTIONS, FaceModel
from emotion.synthetic.settings import ANXIOUS, NEUTRAL, SyntheticSettings


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
