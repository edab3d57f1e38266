"""Face descriptors for identity (compare, collections, people): HSE FaceRes (`faceres-onnx`) on a face
crop levelled by the eyes, L2-normalised. Only the descriptor is read: the model's age and gender outputs
are discarded (nothing here says who a person is or guesses their gender).

Facts used (docs/models.md "faceres-onnx"): input `input_1:0` (N, 224, 224, 3) float32 RGB 0..255, a square
crop 1.4x the detector's box around its centre; output `global_pooling/Mean` (N, 1024), not normalised.
Measured there: the same face under a mirror, a shifted crop or a blur keeps cosine 0.91-0.97, two different
people 0.37-0.40; on 100 LFW identities AUC 0.981, equal-error rate 8% (shared/MODELS.md; not re-measured
here: no identity-labelled face set is available offline).

This is not a pipeline analyzer: descriptors are biometric data, computed only for a workspace that switched
face identity on (services/faces/identity.py), never at ingest by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from feedlens.core.results.faces import Face
from feedlens.runtime.sessions import InferenceSession, open_session
from feedlens.runtime.store import ModelStore

MODEL = "faceres-onnx"
VERSION = "faceres-1"  # model + crop; stored with every vector so a change is never mixed with old ones
INPUT = "input_1:0"
SIZE = 224
DIMENSIONS = 1024
ENLARGE = 1.4  # crop side / the box's longer side (Human's blazeface -> faceres crop)
DECODE_SIDE = 1024  # decoded shorter side for crops: small faces in group photos keep their pixels
CHUNK = 16  # crops per run: bounds memory for crowd photos

# Cosine -> Rekognition's Similarity (0..100), piecewise linear through (COS_ZERO, 0), (COS_AT_THRESHOLD,
# SIMILARITY_THRESHOLD) and (1, 100). SIMILARITY_THRESHOLD is AWS's default (80) and stands for cosine 0.62:
# between the different-people cosines measured on the sample portraits (0.34-0.43) and the same face under
# edits (0.78-0.99; docs/benchmarks.md "Face identity"). Not calibrated on an identity set (none offline):
# a hand-set scale whose only measured property is that it separates those pairs.
COS_ZERO = 0.2
COS_AT_THRESHOLD = 0.62
SIMILARITY_THRESHOLD = 80.0


@dataclass(frozen=True, slots=True)
class Crop:
    """Where a face's square crop lies in the image: centre and side in image pixels, and the angle
    (radians, image coordinates) that levels the eyes."""

    cx: float
    cy: float
    side: float
    angle: float


def face_crop(face: Face, width: int, height: int) -> Crop:
    """The crop of `face` in a `width` x `height` image: 1.4x the box's longer side around its centre,
    turned so that the line between the eyes is level when both eyes are known."""
    box = face.box
    left, top, right, bottom = box.x0 * width, box.y0 * height, box.x1 * width, box.y1 * height
    angle = 0.0
    marks = face.landmarks or {}
    if "right_eye" in marks and "left_eye" in marks:
        # the person's right eye is on the image's left in a face looking at the camera
        a, b = marks["right_eye"], marks["left_eye"]
        angle = math.atan2((b.y - a.y) * height, (b.x - a.x) * width)
    side = ENLARGE * max(right - left, bottom - top)
    return Crop((left + right) / 2, (top + bottom) / 2, max(side, 1.0), angle)


def cut(image: Image.Image, crop: Crop) -> np.ndarray:
    """(224, 224, 3) float32 RGB 0..255: the crop, rotated and resized bilinearly (black past the border).
    Large faces are first shrunk by an integer factor so the resize does not alias."""
    scale = crop.side / SIZE  # image pixels per crop pixel
    factor = max(1, int(scale))
    source = image.reduce(factor) if factor > 1 else image
    scale, cx, cy = scale / factor, crop.cx / factor, crop.cy / factor
    cos, sin = math.cos(crop.angle) * scale, math.sin(crop.angle) * scale
    half = SIZE / 2
    # output (u, v) -> input (x, y): rotate by the eye angle around the crop centre, then scale
    coefficients = (cos, -sin, cx - cos * half + sin * half, sin, cos, cy - sin * half - cos * half)
    out = source.transform((SIZE, SIZE), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR)
    return np.asarray(out.convert("RGB"), dtype=np.float32)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, D) float32 rows of unit length (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def similarity(cosine: np.ndarray | float) -> np.ndarray:
    """Cosine of two unit descriptors -> Rekognition-style Similarity 0..100 (see COS_AT_THRESHOLD)."""
    return np.asarray(
        np.interp(cosine, (COS_ZERO, COS_AT_THRESHOLD, 1.0), (0.0, SIMILARITY_THRESHOLD, 100.0)),
        dtype=np.float64,
    )


def cosine_for(threshold: float) -> float:
    """The cosine a Similarity threshold (0..100) stands for; at 0 every pair matches."""
    if threshold <= 0:
        return -1.0
    return float(np.interp(threshold, (0.0, SIMILARITY_THRESHOLD, 100.0), (COS_ZERO, COS_AT_THRESHOLD, 1.0)))


class FaceEmbedder:
    """faceres on face crops. Thread-safe for concurrent `embed` calls (ONNX Runtime sessions are)."""

    version = VERSION

    def __init__(self, store: ModelStore, threads: int) -> None:
        self._session: InferenceSession = open_session(store.path(MODEL), threads)

    def embed(self, image: Image.Image, faces: Sequence[Face]) -> np.ndarray:
        """RGB image and its faces -> (len(faces), 1024) float32 unit descriptors."""
        if not faces:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        width, height = image.size
        crops = [cut(image, face_crop(f, width, height)) for f in faces]
        return self.embed_crops(np.stack(crops))

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, 224, 224, 3) RGB 0..255 -> (N, 1024) unit descriptors."""
        parts = []
        for start in range(0, len(crops), CHUNK):
            outputs = self._session.run({INPUT: crops[start : start + CHUNK]})
            parts.append(next(o for o in outputs if o.ndim == 2 and o.shape[1] == DIMENSIONS))
        return normalise(np.concatenate(parts).astype(np.float32))
