"""Moderation needs a person: regions no face, object box or pose puts a person at are set aside.

Geometry on hand-built results (fast, exact), then the real pipeline on real images: a picture with no one
in it is never flagged however sure NudeNet is, and on real people the evidence is found."""

from __future__ import annotations

import pytest

from feedlens.analyzers.safety import SafetyAnalyzer
from feedlens.analyzers.safety_evidence import PersonEvidence
from feedlens.config import Settings
from feedlens.core.results.faces import EMOTIONS, Face, FacesResult
from feedlens.core.results.geometry import Box
from feedlens.core.results.objects import DetectedObject, ObjectsResult
from feedlens.core.results.pose import KEYPOINTS, Keypoint, PersonPose, PoseResult
from feedlens.core.results.regions import BodyRegionsResult, Region
from feedlens.core.results.safety import Verdict
from feedlens.services.factory import Services

BUTTOCKS = Box(0.40, 0.55, 0.60, 0.70)  # a confidently "exposed" region mid-image
CORNER = Box(0.0, 0.0, 0.05, 0.05)  # a pose's box far from the region


def regions(score: float = 0.9, box: Box = BUTTOCKS) -> BodyRegionsResult:
    return BodyRegionsResult(regions=(Region(kind="BUTTOCKS_EXPOSED", score=score, box=box),))


def person_object(box: Box, score: float = 0.8) -> ObjectsResult:
    return ObjectsResult(objects=(DetectedObject("person", "Person", "person", score, box, score),))


def pose_with(points: dict[str, tuple[float, float]], box: Box = CORNER) -> PoseResult:
    keypoints = tuple(
        Keypoint(name, *points.get(name, (0.01, 0.01)), 0.9 if name in points else 0.0) for name in KEYPOINTS
    )
    return PoseResult.of([PersonPose(box=box, score=0.8, keypoints=keypoints, activities={})])


def face_at(box: Box) -> FacesResult:
    neutral = {e: 1.0 if e == "neutral" else 0.0 for e in EMOTIONS}
    return FacesResult.of([Face(box=box, confidence=0.9, detector="nudenet", emotions=neutral,
                                dominant_emotion="neutral")])  # fmt: skip


@pytest.fixture(scope="module")
def judge(settings: Settings, services: Services) -> SafetyAnalyzer:
    return SafetyAnalyzer(services.store, settings)


def test_without_any_source_the_detector_alone_decides(judge: SafetyAnalyzer) -> None:
    result = judge.judge(regions())
    assert result.verdict is Verdict.EXPLICIT and not result.person_checked
    assert len(result.regions) == 1 and result.set_aside == ()


def test_a_region_with_no_person_near_is_set_aside(judge: SafetyAnalyzer) -> None:
    far_person = person_object(Box(0.0, 0.0, 0.2, 0.3))
    result = judge.judge(regions(), PersonEvidence(objects=far_person, faces=FacesResult.empty()))
    assert result.verdict is Verdict.SAFE and result.person_checked
    assert result.regions == () and len(result.set_aside) == 1
    assert result.scores["explicit_nudity"] == 0.0  # set-aside regions never score


@pytest.mark.parametrize(
    ("evidence", "source"),
    [
        (PersonEvidence(objects=person_object(Box(0.3, 0.1, 0.7, 0.95))), "objects"),
        (PersonEvidence(pose=pose_with({}, Box(0.35, 0.1, 0.65, 0.9))), "pose"),
        (PersonEvidence(pose=pose_with({"left_hip": (0.45, 0.56), "right_hip": (0.55, 0.57)})), "pose"),
        (PersonEvidence(faces=face_at(Box(0.45, 0.10, 0.55, 0.20))), "faces"),  # head above the region
    ],
)
def test_each_source_alone_confirms_a_person(
    judge: SafetyAnalyzer, evidence: PersonEvidence, source: str
) -> None:
    result = judge.judge(regions(), evidence)
    assert result.verdict is Verdict.EXPLICIT
    assert result.regions[0].person == (source,)


@pytest.mark.parametrize(
    "evidence",
    [
        PersonEvidence(objects=person_object(Box(0.3, 0.1, 0.7, 0.95), score=0.1)),  # below the floor
        PersonEvidence(pose=pose_with({"left_hip": (0.45, 0.56)})),  # one keypoint is not a body
        PersonEvidence(faces=face_at(Box(0.45, 0.80, 0.55, 0.90))),  # a face below the region
        PersonEvidence(faces=face_at(Box(0.00, 0.10, 0.04, 0.14))),  # a small face far to the side
        PersonEvidence(objects=person_object(Box(0.55, 0.1, 0.9, 0.95))),  # covers a quarter of it
    ],
)
def test_weak_or_distant_evidence_does_not_count(judge: SafetyAnalyzer, evidence: PersonEvidence) -> None:
    assert judge.judge(regions(), evidence).verdict is Verdict.SAFE


def test_stored_results_without_the_new_fields_still_load() -> None:
    from feedlens.core.results.safety import SafetyResult

    old = {"schema": "feedlens.safety/1", "verdict": "safe", "regions": [],
           "scores": {"explicit_nudity": 0.1, "suggestive": 0.0}}  # fmt: skip
    loaded = SafetyResult.from_dict(old)
    assert loaded.set_aside == () and loaded.person_checked is False


def test_real_pipeline_checks_people_on_real_photos(services: Services, sample_dir: object) -> None:
    from pathlib import Path

    pipeline = services.pipeline(["safety"])  # pulls in faces, objects and pose
    assert {"faces", "objects", "pose"} <= {a.name for a in pipeline.analyzers}
    folder = Path(str(sample_dir))
    for name in ("astronaut.png", "grace_hopper.jpg", "chelsea.png", "coffee.png"):
        report = pipeline.analyze_one((folder / name).read_bytes(), name)
        assert report.ok, report.error
        result = report.results["safety"]
        assert result.person_checked and result.verdict is Verdict.SAFE
        # whatever NudeNet found on the people (a face, a chest) is confirmed where a person is
        people = {"astronaut.png", "grace_hopper.jpg"}
        for region in result.regions:
            assert name in people and region.person


def test_operators_can_let_the_detector_alone_decide(settings: Settings, services: Services) -> None:
    """FEEDLENS_SAFETY_PERSON_EVIDENCE=false: illustrations, where no person is found, are moderated too."""
    off = SafetyAnalyzer(services.store, settings.model_copy(update={"safety_person_evidence": False}))
    upstream = {
        "body_regions": [regions()],
        "faces": [FacesResult.empty()],
        "objects": [None],
        "pose": [None],
    }
    [result] = off.postprocess(None, [], upstream)
    assert result.verdict is Verdict.EXPLICIT and not result.person_checked
    on = SafetyAnalyzer(services.store, settings)
    [checked] = on.postprocess(None, [], upstream)
    assert checked.verdict is Verdict.SAFE and checked.person_checked
