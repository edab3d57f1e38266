"""What a face's landmarks say: head angles, eyes and mouth open, smile; and how good the face crop is.

All inputs are image-pixel points (x right, y down, z away from the camera, in x's units, as Face Mesh
gives them). Thresholds were read off hand-labelled real faces (benchmarks/faces_quality.py prints the
measurements and docs/analyzers.md "faces" the numbers).

Angles: the head's axes come from four mesh points: down the face from the forehead top (10) to the chin
(152), and across it from the right face side (234) to the left (454), made orthogonal; the face points
along f = -(across x down). `roll`: the down axis's tilt in the image, positive when the face is turned
clockwise as displayed; with that roll undone, `yaw` = asin(f_x), positive when the face turns toward the
image's right (the person's own left), and `pitch` = atan2(-f_y, -f_z), positive when the face tilts up.
Degrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from feedlens.analyzers.face_mesh import (
    IRIS_LOWER_LID,
    IRIS_UPPER_LID,
    LEFT_EYE_CORNERS,
    RIGHT_EYE_CORNERS,
)
from feedlens.core.results.faces import Attribute

# Mesh indices
FACE_RIGHT, FACE_LEFT, FOREHEAD_TOP, CHIN = 234, 454, 10, 152
LIP_INNER_TOP, LIP_INNER_BOTTOM = 13, 14
MOUTH_RIGHT, MOUTH_LEFT = 61, 291
RIGHT_LIDS, LEFT_LIDS = (159, 145), (386, 374)  # (upper, lower) lid middles

QUALITY_SIDE = 64  # the face box is measured at this size: sharpness does not depend on the face's size


@dataclass(frozen=True, slots=True)
class Measures:
    """Raw landmark ratios of one face (scale-free), before any threshold."""

    eye_opening: float  # lid gap / eye width, mean of both eyes (iris contours when the iris model ran)
    mouth_opening: float  # inner-lip gap / mouth width
    mouth_width: float  # mouth-corner distance / eye-centre distance
    corner_lift: float  # how far the mouth corners sit above the lips' middle, / mouth width


def head_angles(mesh: np.ndarray) -> tuple[float, float, float]:
    """(468, 3) image-pixel mesh -> (roll, yaw, pitch) in degrees (conventions in the module doc).

    The head's rotation is taken as R = roll (about the camera axis) . pitch . yaw, so roll is the tilt of
    the face's down axis in the image, and yaw and pitch are read from the facing direction once that roll
    is undone. Mirroring the image maps (roll, yaw, pitch) to (-roll, -yaw, pitch) exactly."""
    down = mesh[CHIN] - mesh[FOREHEAD_TOP]
    down = down / (np.linalg.norm(down) or 1.0)
    across = mesh[FACE_LEFT] - mesh[FACE_RIGHT]
    across = across - down * float(across @ down)  # orthogonal to `down`
    across = across / (np.linalg.norm(across) or 1.0)
    facing = -np.cross(across, down)  # out of the face, towards the camera when frontal
    roll = math.atan2(-float(down[0]), float(down[1]))
    c, s = math.cos(roll), math.sin(roll)
    fx, fy, fz = c * facing[0] + s * facing[1], -s * facing[0] + c * facing[1], float(facing[2])
    yaw = math.asin(min(1.0, max(-1.0, float(fx))))
    pitch = math.atan2(-float(fy), -fz)
    return math.degrees(roll), math.degrees(yaw), math.degrees(pitch)


def _gap(upper: np.ndarray, lower: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance between two lid (or lip) points over the corner distance, 2-D."""
    width = float(np.linalg.norm(a[:2] - b[:2]))
    return float(np.linalg.norm(upper[:2] - lower[:2])) / width if width > 0 else 0.0


def eye_opening(mesh: np.ndarray, eyes: tuple[np.ndarray, np.ndarray] | None) -> float:
    """Mean over both eyes of lid gap / eye width. With the iris model's (76, 3) contours the lids are its
    middle upper (12) and lower (4) points, else the mesh's (159/145, 386/374)."""
    ratios = []
    if eyes is not None:
        up, low = IRIS_UPPER_LID[len(IRIS_UPPER_LID) // 2], IRIS_LOWER_LID[len(IRIS_LOWER_LID) // 2]
        for eye in eyes:
            ratios.append(_gap(eye[up], eye[low], eye[IRIS_LOWER_LID[0]], eye[IRIS_LOWER_LID[-1]]))
    else:
        for (upper, lower), (outer, inner) in (
            (RIGHT_LIDS, RIGHT_EYE_CORNERS),
            (LEFT_LIDS, LEFT_EYE_CORNERS),
        ):
            ratios.append(_gap(mesh[upper], mesh[lower], mesh[outer], mesh[inner]))
    return float(np.mean(ratios))


def measures(mesh: np.ndarray, eyes: tuple[np.ndarray, np.ndarray] | None) -> Measures:
    """The scale-free ratios the attributes are read from."""
    right, left = mesh[MOUTH_RIGHT, :2], mesh[MOUTH_LEFT, :2]
    width = float(np.linalg.norm(left - right)) or 1.0
    eye_r = mesh[list(RIGHT_EYE_CORNERS), :2].mean(axis=0)
    eye_l = mesh[list(LEFT_EYE_CORNERS), :2].mean(axis=0)
    eyes_apart = float(np.linalg.norm(eye_l - eye_r)) or 1.0
    middle = mesh[[LIP_INNER_TOP, LIP_INNER_BOTTOM], :2].mean(axis=0)
    # "Up" in the face's own frame: perpendicular to the eye line, so a tilted head reads the same.
    along = (eye_l - eye_r) / eyes_apart
    up = np.array([along[1], -along[0]])
    lift = float(((right + left) / 2 - middle) @ up) / width
    return Measures(
        eye_opening=eye_opening(mesh, eyes),
        mouth_opening=_gap(mesh[LIP_INNER_TOP], mesh[LIP_INNER_BOTTOM], right, left),
        mouth_width=width / eyes_apart,
        corner_lift=lift,
    )


def logistic(value: float, centre: float, scale: float) -> float:
    """P(attribute) from a ratio: 0.5 at `centre`, steeper for a smaller `scale`."""
    return 1.0 / (1.0 + math.exp(-(value - centre) / scale))


def quality(image: Image.Image, box: tuple[int, int, int, int]) -> tuple[float, float]:
    """(brightness, sharpness), each 0..1, of the face box (px) on the decoded image.

    Brightness: mean luma / 255. Sharpness: the box resized to 64x64 (a face smaller than that is
    upscaled, so it reads blurry, as it is), then the Laplacian's standard deviation over the grey
    crop's own standard deviation (contrast cancels out), squashed by x / (x + 1)."""
    x0, y0, x1, y1 = box
    if x1 - x0 < 1 or y1 - y0 < 1:
        return 0.0, 0.0
    gray = np.asarray(
        image.crop(box).convert("L").resize((QUALITY_SIDE, QUALITY_SIDE), Image.Resampling.BILINEAR)
    )
    values = gray.astype(np.float32)
    spread = float(values.std())
    if spread < 1.0:  # a flat patch: no detail to be sharp
        return float(values.mean()) / 255.0, 0.0
    detail = float(cv2.Laplacian(values, cv2.CV_32F, ksize=3)[1:-1, 1:-1].std()) / spread
    return float(values.mean()) / 255.0, detail / (detail + 1.0)


# Attribute readings: P(yes) = logistic((ratio - centre) / scale). Centres sit between the hand-labelled
# yes and no faces (benchmarks/faces_quality.py; docs/benchmarks.md "faces-quality"); a reading is left out
# (None) where the head is turned further than `max_yaw`: an eye or a mouth corner is then hidden.
@dataclass(frozen=True, slots=True)
class Rule:
    centre: float
    scale: float
    max_yaw: float


# Iris eyelid gap / eye width: closed 0.18-0.19, open 0.31-0.45 on the labelled faces (the mesh's own lids
# overlapped, 0.24-0.51 for both, so no reading without the iris model).
EYES_OPEN = Rule(centre=0.25, scale=0.02, max_yaw=40.0)
# Inner-lip gap / mouth width: closed <= 0.061, open 0.060-0.28 (teeth showing counts as open).
MOUTH_OPEN = Rule(centre=0.07, scale=0.015, max_yaw=45.0)
# Smile: FER's P(happy) read 22 of 24 labelled faces right, the mouth-corner lift 18 and their mean 20, so
# the smile is FER's reading, made only for faces turned less than this.
SMILE_MAX_YAW = 45.0


@dataclass(frozen=True, slots=True)
class Readings:
    smile: Attribute | None
    eyes_open: Attribute | None
    mouth_open: Attribute | None


def read(rule: Rule, value: float, yaw: float) -> float | None:
    """P(yes) by `rule`, or None when the head is turned too far to read it."""
    return logistic(value, rule.centre, rule.scale) if abs(yaw) <= rule.max_yaw else None


def read_attributes(m: Measures, yaw: float, happy: float, has_iris: bool) -> Readings:
    """Smile, eyes open, mouth open from a face's ratios, yaw and FER's P(happy). Eyes need the iris
    model's eyelid contours (the mesh's lids barely move when eyes close)."""
    eyes = read(EYES_OPEN, m.eye_opening, yaw) if has_iris else None
    mouth = read(MOUTH_OPEN, m.mouth_opening, yaw)
    smile = happy if abs(yaw) <= SMILE_MAX_YAW else None
    return Readings(
        smile=None if smile is None else Attribute.of(smile),
        eyes_open=None if eyes is None else Attribute.of(eyes),
        mouth_open=None if mouth is None else Attribute.of(mouth),
    )
