"""Face crops for MediaPipe Face Mesh and Iris, and their outputs back on the image.

Facts used (docs/models.md "facemesh-onnx", "iris-onnx"): Face Mesh takes (N, 192, 192, 3) RGB in 0..1, a
square crop 1.4x the detector's box around its centre, and returns 468 (x, y, z) points in crop pixels and
a face probability ("face flag"); Iris takes (N, 64, 64, 3) RGB in 0..1, a square eye crop 2.3x the
distance between the eye's corners, the person's left eye mirrored, and returns 71 eye-contour points then
the iris centre and four iris-edge points, (x, y, z) in crop pixels.

Crops are cut from the decoded image with PIL (crop boxes may reach past the border: black there, as in
Human's cropAndResize) and resized with PIL's antialiased bilinear filter, so a face 1000 px wide does not
alias into the 192 px crop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from PIL import Image, ImageOps

from feedlens.core.results import Box

MESH_SIZE = 192
IRIS_SIZE = 64
MESH_ENLARGE = 1.4  # crop side / detector box's longer side (Human's blazeface -> facemesh crop)
IRIS_ENLARGE = 2.3  # eye crop side / eye-corner distance (Human's iris.ts)
MESH_POINTS = 468
IRIS_POINTS = 76  # 71 eye-region points, then the iris centre and four points on its edge
IRIS_CENTRE = 71

# Eye corners in mesh indices, (outer, inner); "right"/"left" are the person's own (right = image left on a
# face looking at the camera).
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (263, 362)
# Iris-model contour points on the eyelids (docs/models.md; Human's MESH_TO_IRIS_INDICES_MAP): lower lid
# 0..8 (outer corner .. inner corner), upper lid 9..15 (outer .. inner). Their middles face each other.
IRIS_LOWER_LID = tuple(range(0, 9))
IRIS_UPPER_LID = tuple(range(9, 16))

# The documented small set of landmarks kept from the 468 (MediaPipe topology; left / right are the
# person's own). Names follow what the cloud APIs report so compat mappers can pick them by name.
LANDMARKS: Mapping[str, int] = MappingProxyType(
    {
        "right_eye_outer": 33,
        "right_eye_inner": 133,
        "right_eye_top": 159,
        "right_eye_bottom": 145,
        "left_eye_inner": 362,
        "left_eye_outer": 263,
        "left_eye_top": 386,
        "left_eye_bottom": 374,
        "right_eyebrow_outer": 70,
        "right_eyebrow_top": 105,
        "right_eyebrow_inner": 107,
        "left_eyebrow_inner": 336,
        "left_eyebrow_top": 334,
        "left_eyebrow_outer": 300,
        "between_eyes": 168,
        "nose_tip": 1,
        "nose_bottom": 2,
        "nose_right": 98,
        "nose_left": 327,
        "mouth_right": 61,
        "mouth_left": 291,
        "upper_lip": 0,
        "lower_lip": 17,
        "forehead": 151,
        "chin": 152,
        "right_cheek": 205,
        "left_cheek": 425,
        "right_face_side": 234,
        "left_face_side": 454,
        "right_jaw": 172,
        "left_jaw": 397,
    }
)
# Derived points: eye centres (mean of the two corners, or the iris centre when the iris model ran) and
# the mouth centre (mean of the inner lips' middles, 13 and 14).
DERIVED = ("right_eye", "left_eye", "mouth_center")
PUPILS = ("right_pupil", "left_pupil")


@dataclass(frozen=True, slots=True)
class Square:
    """A square crop of the image: top-left (x0, y0) and side, in decoded-image pixels (may reach past
    the border)."""

    x0: float
    y0: float
    side: float

    @classmethod
    def around(cls, cx: float, cy: float, side: float) -> Square:
        return cls(cx - side / 2, cy - side / 2, max(side, 1.0))

    def pixel_box(self) -> tuple[int, int, int, int]:
        return round(self.x0), round(self.y0), round(self.x0 + self.side), round(self.y0 + self.side)

    def cut(self, image: Image.Image, size: int) -> np.ndarray:
        """(size, size, 3) float32 RGB in 0..1; black where the square reaches past the image. Only the part
        inside the image is cropped and resized, so memory stays at the image's and the output's size
        however far a (wrong) box reaches."""
        out = np.zeros((size, size, 3), dtype=np.float32)
        x0, y0, x1, y1 = self.pixel_box()
        left, top = max(0, x0), max(0, y0)
        right, bottom = min(image.width, x1), min(image.height, y1)
        if right <= left or bottom <= top or x1 <= x0:
            return out
        scale = size / (x1 - x0)
        # Where the inside part lands in the output, rounded outward by at most a pixel.
        ox0, oy0 = round((left - x0) * scale), round((top - y0) * scale)
        ox1, oy1 = max(ox0 + 1, round((right - x0) * scale)), max(oy0 + 1, round((bottom - y0) * scale))
        ox1, oy1 = min(size, ox1), min(size, oy1)
        if ox1 <= ox0 or oy1 <= oy0:
            return out
        part = image.crop((left, top, right, bottom)).resize(
            (ox1 - ox0, oy1 - oy0), Image.Resampling.BILINEAR
        )
        out[oy0:oy1, ox0:ox1] = np.asarray(part, dtype=np.float32) / 255.0
        return out

    def to_image(self, points: np.ndarray, size: int) -> np.ndarray:
        """(K, 3) crop-pixel points (x, y, z) -> (K, 3) image pixels (z scaled like x)."""
        scale = self.side / size
        return np.stack(
            [self.x0 + points[:, 0] * scale, self.y0 + points[:, 1] * scale, points[:, 2] * scale], axis=1
        )


def mesh_square(box: Box, width: int, height: int) -> Square:
    """The Face Mesh crop for a detector's box on a `width` x `height` image."""
    x0, y0, x1, y1 = box.x0 * width, box.y0 * height, box.x1 * width, box.y1 * height
    return Square.around((x0 + x1) / 2, (y0 + y1) / 2, MESH_ENLARGE * max(x1 - x0, y1 - y0))


def refined_square(mesh: np.ndarray, enlarge: float) -> Square:
    """The crop for a second Face Mesh pass: `enlarge` x the (468, 3) mesh's extent, around its centre."""
    low, high = mesh[:, :2].min(axis=0), mesh[:, :2].max(axis=0)
    centre = (low + high) / 2
    return Square.around(float(centre[0]), float(centre[1]), enlarge * float((high - low).max()))


def mesh_inputs(image: Image.Image, squares: Sequence[Square]) -> np.ndarray:
    """Crops -> (N, 192, 192, 3) float32 in 0..1."""
    if not squares:
        return np.zeros((0, MESH_SIZE, MESH_SIZE, 3), dtype=np.float32)
    return np.stack([s.cut(image, MESH_SIZE) for s in squares])


def mesh_points(raw: np.ndarray, square: Square) -> np.ndarray:
    """One face's `output_mesh` row (1404,) -> (468, 3) image pixels."""
    return square.to_image(raw.reshape(MESH_POINTS, 3), MESH_SIZE)


def eye_squares(mesh: np.ndarray) -> tuple[Square, Square]:
    """(468, 3) image-pixel mesh -> the Iris crops of the (right, left) eye."""
    out = []
    for outer, inner in (RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS):
        a, b = mesh[outer, :2], mesh[inner, :2]
        centre = (a + b) / 2
        out.append(
            Square.around(float(centre[0]), float(centre[1]), IRIS_ENLARGE * float(np.abs(a - b).max()))
        )
    return out[0], out[1]


def iris_inputs(image: Image.Image, eyes: Sequence[tuple[Square, Square]]) -> np.ndarray:
    """Per face its (right, left) eye crops -> (2N, 64, 64, 3) float32 in 0..1, right then left per face;
    left eyes mirrored (the model sees one eye side)."""
    crops = []
    for right, left in eyes:
        crops.append(right.cut(image, IRIS_SIZE))
        crops.append(left.cut(image, IRIS_SIZE)[:, ::-1])
    if not crops:
        return np.zeros((0, IRIS_SIZE, IRIS_SIZE, 3), dtype=np.float32)
    return np.ascontiguousarray(np.stack(crops))


def iris_points(raw: np.ndarray, square: Square, mirrored: bool) -> np.ndarray:
    """One eye's output (228,) -> (76, 3) image pixels (un-mirroring the left eye's x)."""
    points = raw.reshape(IRIS_POINTS, 3).copy()
    if mirrored:
        points[:, 0] = IRIS_SIZE - points[:, 0]
    return square.to_image(points, IRIS_SIZE)


def mirror(image: Image.Image) -> Image.Image:
    """The image flipped left-right (for tests and the mirror check of the angles)."""
    return ImageOps.mirror(image)


def named_points(
    mesh: np.ndarray, eyes: tuple[np.ndarray, np.ndarray] | None, width: int, height: int
) -> dict[str, tuple[float, float]]:
    """The documented landmark set, normalised (0..1, clipped to the image) from a (468, 3) image-pixel
    mesh and, when the iris model ran, the (76, 3) points of the (right, left) eye."""
    pixels: dict[str, np.ndarray] = {name: mesh[i, :2] for name, i in LANDMARKS.items()}
    pixels["right_eye"] = mesh[list(RIGHT_EYE_CORNERS), :2].mean(axis=0)
    pixels["left_eye"] = mesh[list(LEFT_EYE_CORNERS), :2].mean(axis=0)
    pixels["mouth_center"] = mesh[[13, 14], :2].mean(axis=0)
    if eyes is not None:
        pixels["right_pupil"] = eyes[0][IRIS_CENTRE, :2]
        pixels["left_pupil"] = eyes[1][IRIS_CENTRE, :2]
    return {
        name: (min(max(float(p[0]) / width, 0.0), 1.0), min(max(float(p[1]) / height, 0.0), 1.0))
        for name, p in pixels.items()
    }
