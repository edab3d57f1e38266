"""Google Cloud Vision `faceAnnotations` from a feedlens `faces` result (pure; enums are IntEnums, see
`gcv.encode_enums`).

Filled (docs/compat.md "FACE_DETECTION"): both polys (feedlens has one box), `detectionConfidence`,
`landmarks` (33 of Google's 36 types, in pixels, without depth), `rollAngle` /
`panAngle` / `tiltAngle`, `landmarkingConfidence` (Face Mesh's face probability), the four emotion
likelihoods, and `blurredLikelihood` from the measured sharpness. `underExposedLikelihood` and
`headwearLikelihood` stay UNKNOWN: nothing here measures them. A face stored before `feedlens.faces/2`
has no landmarks, angles or sharpness: those are then left out (UNKNOWN for the likelihood).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType
from typing import Any

from feedlens.api.compat.gcv import Likelihood
from feedlens.api.compat.gcv_layout import Frame, poly
from feedlens.core.results.faces import Face, FacesResult


class LandmarkType(IntEnum):
    """Google's `FaceAnnotation.Landmark.Type` numbers (the ones feedlens fills, plus UNKNOWN)."""

    UNKNOWN_LANDMARK = 0
    LEFT_EYE = 1
    RIGHT_EYE = 2
    LEFT_OF_LEFT_EYEBROW = 3
    RIGHT_OF_LEFT_EYEBROW = 4
    LEFT_OF_RIGHT_EYEBROW = 5
    RIGHT_OF_RIGHT_EYEBROW = 6
    MIDPOINT_BETWEEN_EYES = 7
    NOSE_TIP = 8
    UPPER_LIP = 9
    LOWER_LIP = 10
    MOUTH_LEFT = 11
    MOUTH_RIGHT = 12
    MOUTH_CENTER = 13
    NOSE_BOTTOM_RIGHT = 14
    NOSE_BOTTOM_LEFT = 15
    NOSE_BOTTOM_CENTER = 16
    LEFT_EYE_TOP_BOUNDARY = 17
    LEFT_EYE_RIGHT_CORNER = 18
    LEFT_EYE_BOTTOM_BOUNDARY = 19
    LEFT_EYE_LEFT_CORNER = 20
    RIGHT_EYE_TOP_BOUNDARY = 21
    RIGHT_EYE_RIGHT_CORNER = 22
    RIGHT_EYE_BOTTOM_BOUNDARY = 23
    RIGHT_EYE_LEFT_CORNER = 24
    LEFT_EYEBROW_UPPER_MIDPOINT = 25
    RIGHT_EYEBROW_UPPER_MIDPOINT = 26
    LEFT_EYE_PUPIL = 29
    RIGHT_EYE_PUPIL = 30
    CHIN_GNATHION = 32
    CHIN_LEFT_GONION = 33
    CHIN_RIGHT_GONION = 34
    LEFT_CHEEK_CENTER = 35
    RIGHT_CHEEK_CENTER = 36


L = LandmarkType
# Google's left / right are the viewer's ("LEFT_EYE, typically, is the person's right eye"), feedlens's the
# person's own. The ear tragions (27, 28) and the forehead glabella (31) have no Face Mesh point chosen
# for them and are left out.
LANDMARKS: Mapping[LandmarkType, str] = MappingProxyType(
    {
        L.LEFT_EYE: "right_eye", L.RIGHT_EYE: "left_eye",
        L.LEFT_OF_LEFT_EYEBROW: "right_eyebrow_outer", L.RIGHT_OF_LEFT_EYEBROW: "right_eyebrow_inner",
        L.LEFT_OF_RIGHT_EYEBROW: "left_eyebrow_inner", L.RIGHT_OF_RIGHT_EYEBROW: "left_eyebrow_outer",
        L.MIDPOINT_BETWEEN_EYES: "between_eyes", L.NOSE_TIP: "nose_tip",
        L.UPPER_LIP: "upper_lip", L.LOWER_LIP: "lower_lip",
        L.MOUTH_LEFT: "mouth_right", L.MOUTH_RIGHT: "mouth_left", L.MOUTH_CENTER: "mouth_center",
        L.NOSE_BOTTOM_RIGHT: "nose_left", L.NOSE_BOTTOM_LEFT: "nose_right",
        L.NOSE_BOTTOM_CENTER: "nose_bottom",
        L.LEFT_EYE_TOP_BOUNDARY: "right_eye_top", L.LEFT_EYE_RIGHT_CORNER: "right_eye_inner",
        L.LEFT_EYE_BOTTOM_BOUNDARY: "right_eye_bottom", L.LEFT_EYE_LEFT_CORNER: "right_eye_outer",
        L.RIGHT_EYE_TOP_BOUNDARY: "left_eye_top", L.RIGHT_EYE_RIGHT_CORNER: "left_eye_outer",
        L.RIGHT_EYE_BOTTOM_BOUNDARY: "left_eye_bottom", L.RIGHT_EYE_LEFT_CORNER: "left_eye_inner",
        L.LEFT_EYEBROW_UPPER_MIDPOINT: "right_eyebrow_top",
        L.RIGHT_EYEBROW_UPPER_MIDPOINT: "left_eyebrow_top",
        L.LEFT_EYE_PUPIL: "right_pupil", L.RIGHT_EYE_PUPIL: "left_pupil",
        L.CHIN_GNATHION: "chin", L.CHIN_LEFT_GONION: "right_jaw", L.CHIN_RIGHT_GONION: "left_jaw",
        L.LEFT_CHEEK_CENTER: "right_cheek", L.RIGHT_CHEEK_CENTER: "left_cheek",
    }
)  # fmt: skip
EMOTIONS: Mapping[str, str] = MappingProxyType(
    {
        "joyLikelihood": "happy",
        "sorrowLikelihood": "sad",
        "angerLikelihood": "angry",
        "surpriseLikelihood": "surprise",
    }
)
# Sharpness (0..1) -> blurredLikelihood. The bounds lie between the medians benchmarks/faces_quality.py
# measured on the corpus's faces as they are (0.61) and after a Gaussian blur of 1, 2 and 4 px (0.49,
# 0.41, 0.29): a face as sharp as a typical unblurred one is VERY_UNLIKELY to be blurred.
BLUR_BANDS = (
    (0.55, Likelihood.VERY_UNLIKELY),
    (0.45, Likelihood.UNLIKELY),
    (0.35, Likelihood.POSSIBLE),
    (0.25, Likelihood.LIKELY),
)


def emotion_likelihood(probability: float | None) -> Likelihood:
    """One emotion's probability (of a 7-way distribution) as a Likelihood."""
    if probability is None:
        return Likelihood.UNKNOWN
    for bound, level in (
        (0.8, Likelihood.VERY_LIKELY),
        (0.5, Likelihood.LIKELY),
        (0.25, Likelihood.POSSIBLE),
    ):
        if probability >= bound:
            return level
    return Likelihood.UNLIKELY if probability >= 0.1 else Likelihood.VERY_UNLIKELY


def blurred_likelihood(sharpness: float | None) -> Likelihood:
    """The face crop's sharpness (None: not measured) as a Likelihood that the face is blurred."""
    if sharpness is None:
        return Likelihood.UNKNOWN
    for bound, level in BLUR_BANDS:
        if sharpness >= bound:
            return level
    return Likelihood.VERY_LIKELY


def landmarks(face: Face, frame: Frame) -> list[dict[str, Any]]:
    """The face's landmarks as Google's, in pixels of the image (no depth: `z` is left out)."""
    points = face.landmarks or {}
    out = []
    for kind, name in LANDMARKS.items():
        point = points.get(name)
        if point is not None:
            position = {"x": round(point.x * frame.width, 2), "y": round(point.y * frame.height, 2)}
            out.append({"type": kind, "position": position})
    return out


def face_annotation(face: Face, frame: Frame) -> dict[str, Any]:
    box = poly(*frame.pixels(face.box))
    annotation: dict[str, Any] = {
        "boundingPoly": box,  # feedlens has one box (hairline to chin) for both polys
        "fdBoundingPoly": box,
        "detectionConfidence": float(face.confidence),
    }
    if face.landmarks is not None:
        annotation["landmarks"] = landmarks(face, frame)
    if face.head_pose is not None:
        pose = face.head_pose
        annotation.update(rollAngle=pose.roll, panAngle=pose.yaw, tiltAngle=pose.pitch)
    if face.face_score is not None:
        annotation["landmarkingConfidence"] = float(face.face_score)
    for name, emotion in EMOTIONS.items():
        annotation[name] = emotion_likelihood(face.emotions.get(emotion))
    annotation["underExposedLikelihood"] = Likelihood.UNKNOWN  # no measured source
    annotation["blurredLikelihood"] = blurred_likelihood(face.quality.sharpness if face.quality else None)
    annotation["headwearLikelihood"] = Likelihood.UNKNOWN  # no model for it
    return annotation


def face_annotations(faces: FacesResult, frame: Frame, max_results: int) -> list[dict[str, Any]]:
    """The first `max_results` faces (most confident first) as FaceAnnotations."""
    return [face_annotation(face, frame) for face in faces.faces[:max_results]]
