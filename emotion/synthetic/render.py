"""From invented faces to FaceMesh coordinates: pose, noise and a pinhole camera."""

from __future__ import annotations

import numpy as np

from emotion.store.schema import NUM_COORDS, NUM_LANDMARKS
from emotion.synthetic.face_model import IRISES, FaceModel
from emotion.synthetic.population import Frames, Subjects
from emotion.synthetic.settings import CHUNK_ROWS, FACE_WIDTH_MM, SyntheticSettings


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
