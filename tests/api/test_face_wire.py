"""The `faces` result on the wire: Rekognition DetectFaces and Google Cloud Vision FACE_DETECTION, from
requests shaped exactly as the official clients send them to responses parsed as the official clients do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.serialize import create_serializer
from google.cloud import vision
from google.protobuf import json_format

from feedlens.api.compat import gcv, gcv_annotate
from feedlens.api.compat import rekognition_requests as rq
from feedlens.api.compat.gcv import Likelihood
from feedlens.api.compat.gcv_annotate import SafetyLevels
from feedlens.api.compat.gcv_faces import LANDMARKS as GCV_LANDMARKS
from feedlens.api.compat.gcv_faces import LandmarkType, blurred_likelihood
from feedlens.api.compat.rekognition_faces import LANDMARKS, detect_faces
from feedlens.core.results import Box, Face, FacesResult
from feedlens.core.results.faces import LANDMARK_NAMES, Attribute, FaceQuality, HeadPose, Point
from feedlens.services.factory import Services
from tests.support.botocore_shapes import conforms, output

MODEL = botocore.session.get_session().get_service_model("rekognition")
CALM = {"angry": 0.0, "disgust": 0.0, "fear": 0.0, "happy": 0.1, "sad": 0.0, "surprise": 0.0, "neutral": 0.9}
LEVELS = SafetyLevels(0.3, 0.6, 0.3)


def boto3_params(**kwargs: Any) -> dict[str, Any]:
    """The DetectFaces body boto3 would send for these arguments (botocore's own serializer)."""
    serialised = create_serializer("json").serialize_to_request(kwargs, MODEL.operation_model("DetectFaces"))
    body: dict[str, Any] = json.loads(serialised["body"])
    return body


def gcv_response(faces: FacesResult, width: int, height: int, as_int: bool) -> vision.AnnotateImageResponse:
    """FACE_DETECTION of a request made with the official types, parsed strictly like the client does."""
    official = vision.AnnotateImageRequest(
        image=vision.Image(content=b"x"), features=[vision.Feature(type_=vision.Feature.Type.FACE_DETECTION)]
    )
    raw = json.dumps({"requests": [json.loads(vision.AnnotateImageRequest.to_json(official))]}).encode()
    (request,) = gcv.parse_body(raw)
    out = gcv_annotate.annotate(request, width, height, {"faces": faces}, LEVELS)
    message = vision.AnnotateImageResponse.pb()()
    json_format.Parse(json.dumps(gcv.encode_enums(out, as_int)), message, ignore_unknown_fields=False)
    wrapped: vision.AnnotateImageResponse = vision.AnnotateImageResponse.wrap(message)
    return wrapped


def full_face() -> Face:
    """A face looking at the camera: its right eye (the person's) on the image's left."""
    points = {name: Point(0.5, 0.5) for name in LANDMARK_NAMES}
    points.update(right_eye=Point(0.4, 0.4), left_eye=Point(0.6, 0.4), mouth_right=Point(0.42, 0.7))
    return Face(
        box=Box(0.3, 0.2, 0.7, 0.8),
        confidence=0.9,
        detector="blazeface",
        emotions=CALM,
        dominant_emotion="neutral",
        face_score=0.98,
        landmarks=points,
        head_pose=HeadPose(5.0, -10.0, 3.5),
        quality=FaceQuality(0.6, 0.3),
        smile=Attribute(False, 0.8),
        eyes_open=Attribute(True, 0.95),
        mouth_open=None,  # not read: stays absent
    )


def old_face() -> Face:
    """A face stored as `feedlens.faces/1`: box and emotions only."""
    stored = {
        "schema": "feedlens.faces/1",
        "faces": [
            {
                "box": {"x0": 0.1, "y0": 0.1, "x1": 0.3, "y1": 0.4},
                "confidence": 0.7,
                "detector": "nudenet",
                "emotions": CALM,
                "dominant_emotion": "neutral",
            }
        ],
        "count": 1,
        "emotion_summary": {
            "distribution": CALM,
            "dominant": "neutral",
            "sentiment": "neutral",
            "sentiment_score": 0.1,
        },
    }
    return FacesResult.from_dict(stored).faces[0]


# ---- Rekognition ------------------------------------------------------------------------------------


def test_default_attributes_are_awss_default_set() -> None:
    response = detect_faces(
        FacesResult.of([full_face()]), rq.face_attributes(boto3_params(Image={"Bytes": b"x"}))
    )
    conforms(response, output("DetectFaces"))
    (detail,) = response["FaceDetails"]
    assert set(detail) == {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"}
    assert [m["Type"] for m in detail["Landmarks"]] == [
        "eyeLeft",
        "eyeRight",
        "mouthLeft",
        "mouthRight",
        "nose",
    ]
    assert detail["Pose"] == {"Roll": 5.0, "Yaw": -10.0, "Pitch": 3.5}
    assert detail["Quality"] == {"Brightness": 60.0, "Sharpness": 30.0}


def test_all_gives_every_measured_attribute_and_nothing_invented() -> None:
    params = boto3_params(Image={"Bytes": b"x"}, Attributes=["ALL"])
    (detail,) = detect_faces(FacesResult.of([full_face()]), rq.face_attributes(params))["FaceDetails"]
    conforms({"FaceDetails": [detail]}, output("DetectFaces"))
    assert detail["Smile"] == {"Value": False, "Confidence": 80.0}
    assert detail["EyesOpen"] == {"Value": True, "Confidence": 95.0}
    assert "MouthOpen" not in detail  # not read for this face
    for absent in ("AgeRange", "Gender", "Beard", "Mustache", "Eyeglasses", "Sunglasses", "EyeDirection"):
        assert absent not in detail
    assert len(detail["Landmarks"]) == 30 == len(LANDMARKS)
    where = {m["Type"]: (m["X"], m["Y"]) for m in detail["Landmarks"]}
    assert where["eyeLeft"] == (0.4, 0.4) and where["eyeRight"] == (0.6, 0.4)  # the viewer's left and right
    assert where["mouthLeft"] == (0.42, 0.7)
    assert detail["Emotions"][0] == {"Type": "CALM", "Confidence": 90.0}


def test_attributes_by_name_add_to_the_default_set() -> None:
    params = boto3_params(Image={"Bytes": b"x"}, Attributes=["SMILE", "AGE_RANGE"])
    (detail,) = detect_faces(FacesResult.of([full_face()]), rq.face_attributes(params))["FaceDetails"]
    assert set(detail) == {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality", "Smile"}
    assert len(detail["Landmarks"]) == 5


def test_faces_stored_before_landmarks_still_map() -> None:
    (detail,) = detect_faces(FacesResult.of([old_face()]), {"ALL"})["FaceDetails"]
    conforms({"FaceDetails": [detail]}, output("DetectFaces"))
    assert set(detail) == {"BoundingBox", "Confidence", "Emotions"}


def test_only_the_100_largest_faces_are_returned() -> None:
    faces = [
        Face(Box(0, 0, 0.001 * (k + 1), 0.001 * (k + 1)), 0.5 + k / 400, "d", CALM, "neutral")
        for k in range(105)
    ]
    details = detect_faces(FacesResult.of(faces), {"DEFAULT"})["FaceDetails"]
    assert len(details) == 100 and min(d["BoundingBox"]["Width"] for d in details) == pytest.approx(0.006)


# ---- Google Cloud Vision ---------------------------------------------------------------------------


def test_landmark_numbers_are_googles() -> None:
    official = {t.name: t.value for t in vision.FaceAnnotation.Landmark.Type}
    assert all(official[t.name] == t.value for t in LandmarkType)
    assert set(GCV_LANDMARKS.values()) <= set(LANDMARK_NAMES)


@pytest.mark.parametrize("as_int", [True, False])
def test_gcv_face_has_landmarks_angles_and_measured_likelihoods(as_int: bool) -> None:
    response = gcv_response(FacesResult.of([full_face()]), 1000, 500, as_int)
    (face,) = response.face_annotations
    marks = {int(m.type_): (m.position.x, m.position.y) for m in face.landmarks}
    assert len(marks) == 33
    assert marks[LandmarkType.LEFT_EYE] == (400.0, 200.0)  # the viewer's left
    assert marks[LandmarkType.RIGHT_EYE] == (600.0, 200.0)
    assert (face.roll_angle, face.pan_angle, face.tilt_angle) == (5.0, -10.0, 3.5)
    assert face.landmarking_confidence == pytest.approx(0.98)
    assert face.blurred_likelihood == vision.Likelihood.LIKELY  # sharpness 0.3
    assert face.headwear_likelihood == vision.Likelihood.UNKNOWN
    assert face.under_exposed_likelihood == vision.Likelihood.UNKNOWN
    assert face.sorrow_likelihood == vision.Likelihood.VERY_UNLIKELY


def test_gcv_faces_stored_before_landmarks_still_map() -> None:
    (face,) = gcv_response(FacesResult.of([old_face()]), 100, 100, True).face_annotations
    assert not face.landmarks and face.roll_angle == 0 and face.landmarking_confidence == 0
    assert face.blurred_likelihood == vision.Likelihood.UNKNOWN


def test_blur_bands() -> None:
    levels = [blurred_likelihood(s) for s in (0.7, 0.5, 0.4, 0.3, 0.1, None)]
    assert levels == [
        Likelihood.VERY_UNLIKELY,
        Likelihood.UNLIKELY,
        Likelihood.POSSIBLE,
        Likelihood.LIKELY,
        Likelihood.VERY_LIKELY,
        Likelihood.UNKNOWN,
    ]


# ---- real photo ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def astronaut(services: Services, sample_dir: Path) -> tuple[int, int, FacesResult]:
    report = services.pipeline(["faces"]).analyze_one((sample_dir / "astronaut.png").read_bytes())
    assert report.ok and report.width and report.height, report.error
    faces = report.results["faces"]
    assert isinstance(faces, FacesResult)
    return report.width, report.height, faces


def test_astronaut_on_both_wires(astronaut: tuple[int, int, FacesResult]) -> None:
    width, height, faces = astronaut
    params = boto3_params(Image={"Bytes": b"x"}, Attributes=["ALL"])
    response = detect_faces(faces, rq.face_attributes(params))
    conforms(response, output("DetectFaces"))
    (detail,) = response["FaceDetails"]
    assert detail["Smile"]["Value"] and detail["EyesOpen"]["Value"] and detail["MouthOpen"]["Value"]
    assert abs(detail["Pose"]["Yaw"]) < 20 and abs(detail["Pose"]["Roll"]) < 20
    where = {m["Type"]: m["X"] for m in detail["Landmarks"]}
    assert where["eyeLeft"] < where["nose"] < where["eyeRight"]  # she faces the camera
    assert 0 < detail["Quality"]["Sharpness"] <= 100 and 0 < detail["Quality"]["Brightness"] <= 100
    (face,) = gcv_response(faces, width, height, True).face_annotations
    marks = {int(m.type_): m.position.x for m in face.landmarks}
    assert marks[LandmarkType.LEFT_EYE] < marks[LandmarkType.NOSE_TIP] < marks[LandmarkType.RIGHT_EYE]
    assert face.landmarking_confidence > 0.5 and face.blurred_likelihood != vision.Likelihood.UNKNOWN
