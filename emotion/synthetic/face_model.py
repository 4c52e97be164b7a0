"""The template face in millimetres and the facial actions and face shapes built on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from emotion.features.template import load_template
from emotion.store.schema import NUM_COORDS, NUM_LANDMARKS
from emotion.synthetic.settings import OUTER_CANTHAL_WIDTH_MM

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
