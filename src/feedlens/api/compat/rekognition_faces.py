"""AWS Rekognition `DetectFaces` (JSON 1.1) from a feedlens `faces` result: pure functions.

What is filled (docs/compat.md "DetectFaces"): the DEFAULT attributes as AWS defines them (BoundingBox,
Confidence, Pose, Quality, Landmarks) always; with `ALL` or by name, `Emotions`, `Smile`, `EyesOpen`,
`MouthOpen`. `AgeRange`, `Gender`, `Beard`, `Mustache`, `Eyeglasses`, `Sunglasses`, `EyeDirection` and
`FaceOccluded` have no measured source here and are left out, never guessed. A face stored before
`feedlens.faces/2` has no landmarks, pose or quality: those fields are then left out too.
(Owned by the faces work; face identity operations live in `rekognition_identity`.)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any

from feedlens.api.compat.rekognition import bounding_box, percent
from feedlens.core.results.faces import Attribute, Face, FacesResult

MAX_FACES = 100  # DetectFaces returns the 100 largest faces
DEFAULT_ATTRIBUTES = frozenset({"BoundingBox", "Confidence", "Pose", "Quality", "Landmarks"})
# Request names (DetectFaces `Attributes`) -> the FaceDetail fields feedlens can fill for them.
ATTRIBUTE_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "EMOTIONS": ("Emotions",),
        "SMILE": ("Smile",),
        "EYES_OPEN": ("EyesOpen",),
        "MOUTH_OPEN": ("MouthOpen",),
    }
)
# FER2013's seven classes onto Rekognition's emotion types; Rekognition's CONFUSED has no source (0).
EMOTION_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "happy": "HAPPY", "sad": "SAD", "angry": "ANGRY", "disgust": "DISGUSTED", "surprise": "SURPRISED",
        "fear": "FEAR", "neutral": "CALM",
    }
)  # fmt: skip
# Rekognition landmark type -> feedlens landmark. Rekognition's left / right are the viewer's (its
# `eyeLeft` is the eye on the image's left, as in AWS's example responses), feedlens's are the person's
# own, so on a face looking at the camera `eyeLeft` is the person's right eye.
LANDMARKS: Mapping[str, str] = MappingProxyType(
    {
        "eyeLeft": "right_eye", "eyeRight": "left_eye",
        "mouthLeft": "mouth_right", "mouthRight": "mouth_left", "nose": "nose_tip",
        "leftEyeBrowLeft": "right_eyebrow_outer", "leftEyeBrowRight": "right_eyebrow_inner",
        "leftEyeBrowUp": "right_eyebrow_top",
        "rightEyeBrowLeft": "left_eyebrow_inner", "rightEyeBrowRight": "left_eyebrow_outer",
        "rightEyeBrowUp": "left_eyebrow_top",
        "leftEyeLeft": "right_eye_outer", "leftEyeRight": "right_eye_inner",
        "leftEyeUp": "right_eye_top", "leftEyeDown": "right_eye_bottom",
        "rightEyeLeft": "left_eye_inner", "rightEyeRight": "left_eye_outer",
        "rightEyeUp": "left_eye_top", "rightEyeDown": "left_eye_bottom",
        "noseLeft": "nose_right", "noseRight": "nose_left",
        "mouthUp": "upper_lip", "mouthDown": "lower_lip",
        "leftPupil": "right_pupil", "rightPupil": "left_pupil",
        "upperJawlineLeft": "right_face_side", "midJawlineLeft": "right_jaw", "chinBottom": "chin",
        "midJawlineRight": "left_jaw", "upperJawlineRight": "left_face_side",
    }
)  # fmt: skip
# With the DEFAULT attributes Rekognition gives these five landmarks, in this order (its example
# responses); the other 25 come after them with ALL.
DEFAULT_LANDMARKS = ("eyeLeft", "eyeRight", "mouthLeft", "mouthRight", "nose")


def wanted_fields(attributes: Collection[str]) -> frozenset[str]:
    """DetectFaces `Attributes` (validated names; empty means DEFAULT) -> the FaceDetail fields to fill.
    The DEFAULT set always comes (AWS: "will always be returned"); ALL adds every field feedlens has."""
    fields = set(DEFAULT_ATTRIBUTES)
    every = "ALL" in attributes
    for name, found in ATTRIBUTE_FIELDS.items():
        if every or name in attributes:
            fields.update(found)
    if every:
        fields.add("AllLandmarks")
    return frozenset(fields)


def emotions(face: Face) -> list[dict[str, Any]]:
    """The seven FER probabilities as Rekognition emotions (percent, most likely first), CONFUSED at 0."""
    found = {EMOTION_TYPES[name]: percent(p) for name, p in face.emotions.items() if name in EMOTION_TYPES}
    found.setdefault("CONFUSED", 0.0)
    return [{"Type": kind, "Confidence": score} for kind, score in sorted(found.items(), key=lambda e: -e[1])]


def landmarks(face: Face, every: bool) -> list[dict[str, Any]]:
    """The face's landmarks as Rekognition's, in Rekognition's order; missing ones are left out."""
    points = face.landmarks or {}
    names = LANDMARKS if every else DEFAULT_LANDMARKS
    out = []
    for kind in names:
        point = points.get(LANDMARKS[kind])
        if point is not None:
            out.append({"Type": kind, "X": round(point.x, 6), "Y": round(point.y, 6)})
    return out


def yes_no(attribute: Attribute) -> dict[str, Any]:
    return {"Value": attribute.value, "Confidence": percent(attribute.confidence)}


def face_detail(face: Face, fields: frozenset[str]) -> dict[str, Any]:
    """One FaceDetail with the `fields` asked for that this face has."""
    detail: dict[str, Any] = {"BoundingBox": bounding_box(face.box), "Confidence": percent(face.confidence)}
    if face.landmarks is not None:
        detail["Landmarks"] = landmarks(face, "AllLandmarks" in fields)
    if face.head_pose is not None:
        pose = face.head_pose
        detail["Pose"] = {"Roll": pose.roll, "Yaw": pose.yaw, "Pitch": pose.pitch}
    if face.quality is not None:
        detail["Quality"] = {
            "Brightness": percent(face.quality.brightness),
            "Sharpness": percent(face.quality.sharpness),
        }
    if "Emotions" in fields:
        detail["Emotions"] = emotions(face)
    readings = {"Smile": face.smile, "EyesOpen": face.eyes_open, "MouthOpen": face.mouth_open}
    for name, attribute in readings.items():
        if name in fields and attribute is not None:
            detail[name] = yes_no(attribute)
    return detail


def detect_faces(faces: FacesResult, attributes: Collection[str]) -> dict[str, Any]:
    """The DetectFaces response: the `MAX_FACES` largest faces (in the result's order, most confident
    first), each with the fields `attributes` asks for (validated request names, empty for DEFAULT)."""
    fields = wanted_fields(attributes)
    largest = set(sorted(range(len(faces.faces)), key=lambda k: -faces.faces[k].box.area)[:MAX_FACES])
    return {"FaceDetails": [face_detail(face, fields) for k, face in enumerate(faces.faces) if k in largest]}
