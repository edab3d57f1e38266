"""The pose analyzer with the real MoveNet MultiPose model on real photos, plus its pure rules."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from feedlens.analyzers.pose import STRIDE, ModelInput, PoseAnalyzer, decode_person, fit
from feedlens.analyzers.pose_rules import activity_cues, clean
from feedlens.core.results import Box
from feedlens.core.results.base import ResultSchemaError
from feedlens.core.results.pose import KEYPOINTS, Activity, Keypoint, PersonPose, PoseResult
from feedlens.images import ImageDecoder
from feedlens.services.factory import Services

FLOOR = 0.3


@pytest.fixture(scope="module")
def pose(services: Services) -> PoseAnalyzer:
    return PoseAnalyzer(services.store, services.settings)


def load(decoder: ImageDecoder, path: Path) -> Image.Image:
    return decoder.decode(path, min_side=PoseAnalyzer.input_size).image


# --- the real model on real photos ---------------------------------------------------------------------


def point(person: PersonPose, name: str) -> Keypoint:
    found = person.keypoint(name)
    assert found.score >= FLOOR, f"{name} not visible ({found.score})"
    return found


@pytest.mark.parametrize("photo", ["astronaut.png", "grace_hopper.jpg"])
def test_portraits_have_one_person_with_sane_keypoints(
    pose: PoseAnalyzer, decoder: ImageDecoder, sample_dir: Path, photo: str
) -> None:
    [result] = pose([load(decoder, sample_dir / photo)])
    assert result.count == 1
    person = result.people[0]
    nose, left_eye, right_eye = (point(person, n) for n in ("nose", "left_eye", "right_eye"))
    # both face the camera: the person's left eye is on the image's right
    assert right_eye.x < nose.x < left_eye.x
    eyes_y = max(left_eye.y, right_eye.y)
    assert nose.y > min(left_eye.y, right_eye.y) - 0.02
    for name in ("left_shoulder", "right_shoulder"):
        assert point(person, name).y > eyes_y + 0.1  # shoulders well below the eyes
    assert point(person, "left_shoulder").x > point(person, "right_shoulder").x
    assert person.box.x0 <= nose.x <= person.box.x1 and person.box.y0 <= nose.y <= person.box.y1
    # upper-body portraits: no hips or knees, so no cue that needs them is guessed
    assert not {"standing", "sitting", "lying_down", "running_jumping"} & set(person.activities)


@pytest.mark.parametrize("photo", ["coffee.png", "chelsea.png"])
def test_photos_without_people_have_none(
    pose: PoseAnalyzer, decoder: ImageDecoder, sample_dir: Path, photo: str
) -> None:
    [result] = pose([load(decoder, sample_dir / photo)])
    assert result.count == 0 and result.people == ()
    assert result == PoseResult.empty()


def test_a_batch_gives_what_single_images_give(
    pose: PoseAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    images = [load(decoder, sample_dir / n) for n in ("astronaut.png", "coffee.png", "grace_hopper.jpg")]
    assert pose(images) == [pose([im])[0] for im in images]


@pytest.mark.parametrize("size", [(1, 1), (5, 3), (16, 2000), (2000, 16), (640, 480)])
def test_odd_and_blank_images_give_a_valid_result(pose: PoseAnalyzer, size: tuple[int, int]) -> None:
    [result] = pose([Image.new("RGB", size, (255, 255, 255))])
    assert isinstance(result, PoseResult)
    assert result.count == 0  # nothing there
    assert PoseResult.from_dict(result.to_dict()) == result


def test_results_round_trip_through_their_dict(
    pose: PoseAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    [result] = pose([load(decoder, sample_dir / "astronaut.png")])
    data = result.to_dict()
    assert data["schema"] == "feedlens.pose/1"
    assert [k["name"] for k in data["people"][0]["keypoints"]] == list(KEYPOINTS)
    assert PoseResult.from_dict(data) == result
    assert PoseResult.from_dict(json.loads(json.dumps(data))) == result  # as stored: lists, plain strings
    schema = PoseAnalyzer.json_schema()
    assert schema["$id"] == "feedlens.pose/1" and {"people", "count"} <= set(schema["properties"])
    with pytest.raises(ResultSchemaError):
        PoseResult.from_dict({**data, "schema": "feedlens.pose/0"})


def test_coordinates_map_back_through_the_padding() -> None:
    """A wide image: 320 x 80 content padded to 320 x 96; the model's fractions are of the padded input."""
    model_input = fit(Image.new("RGB", (1000, 250)), 320)
    assert model_input.pixels.shape == (1, 96, 320, 3)
    assert (model_input.width, model_input.height) == (320, 80)
    row = np.zeros(56, dtype=np.float32)
    row[0:3] = (40 / 96, 160 / 320, 0.9)  # nose at the content's centre
    row[51:56] = (0.0, 0.25, 80 / 96, 0.75, 0.8)  # the box: full content height, middle half
    person = decode_person(row, model_input, 1000, 250, FLOOR)
    nose = person.keypoint("nose")
    assert nose.x == pytest.approx(0.5) and nose.y == pytest.approx(0.5)
    assert person.box == Box(0.25, 0.0, 0.75, 1.0) and person.score == pytest.approx(0.8)


@pytest.mark.parametrize(("size", "shape"), [((512, 512), (320, 320)), ((600, 512), (288, 320)),
                                             ((16, 2000), (320, 32)), ((1, 1), (320, 320))])  # fmt: skip
def test_fit_keeps_the_aspect_and_pads_to_multiples_of_32(
    size: tuple[int, int], shape: tuple[int, int]
) -> None:
    model_input = fit(Image.new("RGB", size, (9, 9, 9)), 320)
    assert model_input.pixels.shape[1:3] == shape and model_input.pixels.dtype == np.int32
    assert all(s % STRIDE == 0 for s in model_input.pixels.shape[1:3])
    assert max(model_input.width, model_input.height) == 320
    assert ModelInput is type(model_input)


# --- the rules on keypoint sets built by hand (x, y in pixels, y down; the person faces the camera) -----

STAND = {
    "nose": (100, 20), "left_eye": (105, 15), "right_eye": (95, 15), "left_ear": (110, 18),
    "right_ear": (90, 18), "left_shoulder": (120, 50), "right_shoulder": (80, 50), "left_elbow": (125, 90),
    "right_elbow": (75, 90), "left_wrist": (127, 125), "right_wrist": (73, 125), "left_hip": (112, 130),
    "right_hip": (88, 130), "left_knee": (112, 200), "right_knee": (88, 200), "left_ankle": (112, 270),
    "right_ankle": (88, 270),
}  # fmt: skip
# Seen from the side, facing right: thighs forward, shins down.
SIT_SIDE = {**STAND, "left_shoulder": (105, 50), "right_shoulder": (95, 50), "left_hip": (104, 130),
            "right_hip": (96, 130), "left_knee": (170, 135), "right_knee": (165, 140),
            "left_ankle": (172, 205), "right_ankle": (168, 207)}  # fmt: skip
# Seen from the front: the thighs point at the camera, so they look short.
SIT_FRONT = {**STAND, "left_knee": (118, 160), "right_knee": (82, 160), "left_ankle": (118, 230),
             "right_ankle": (82, 230)}  # fmt: skip
# The standing body turned flat: head to the left, feet to the right.
LYING = {name: (20 + y, 200 + 0.3 * (x - 100)) for name, (x, y) in STAND.items()}
ARMS_UP = {**STAND, "left_elbow": (130, 20), "right_elbow": (70, 20), "left_wrist": (132, -15),
           "right_wrist": (68, -15)}  # fmt: skip
# Mid-stride from the side: front thigh 53 deg forward, back thigh 18 deg back.
RUNNING = {**STAND, "left_shoulder": (108, 50), "right_shoulder": (100, 50), "left_hip": (104, 130),
           "right_hip": (96, 130), "left_knee": (150, 165), "left_ankle": (140, 230),
           "right_knee": (75, 195), "right_ankle": (40, 215)}  # fmt: skip


def keypoints(pose: Mapping[str, tuple[float, float]], hidden: tuple[str, ...] = ()) -> np.ndarray:
    """(17, 3) rows (x, y, score): 0.9 for the given points, 0.05 for `hidden` and the missing ones."""
    rows = np.zeros((17, 3))
    for i, name in enumerate(KEYPOINTS):
        if name in pose:
            rows[i] = (*pose[name], 0.05 if name in hidden else 0.9)
    return rows


def cues(pose: Mapping[str, tuple[float, float]], hidden: tuple[str, ...] = ()) -> dict[str, float]:
    return activity_cues(clean(keypoints(pose, hidden), FLOOR), FLOOR)


def held(found: dict[str, float]) -> set[str]:
    return {name for name, value in found.items() if value >= 0.5}


@pytest.mark.parametrize(
    ("pose", "expected"),
    [
        (STAND, {"standing"}),
        (SIT_SIDE, {"sitting"}),
        (SIT_FRONT, {"sitting"}),
        (LYING, {"lying_down"}),
        (ARMS_UP, {"standing", "arms_raised"}),
        (RUNNING, {"running_jumping"}),
    ],
    ids=["standing", "sitting-side", "sitting-front", "lying", "arms-raised", "running"],
)
def test_rules_read_hand_built_poses(pose: Mapping[str, tuple[float, float]], expected: set[str]) -> None:
    found = cues(pose)
    assert held(found) == expected, found


def test_a_mirrored_pose_reads_the_same() -> None:
    mirrored = {name: (200 - x, y) for name, (x, y) in SIT_SIDE.items()}
    assert held(cues(mirrored)) == {"sitting"}


def test_cues_are_left_out_when_their_keypoints_are_hidden() -> None:
    legs = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
    found = cues(STAND, hidden=legs)  # a head-and-shoulders portrait
    assert set(found) == {"arms_raised"}  # shoulders and wrists show; nothing about the legs is guessed
    assert cues(STAND, hidden=("left_knee", "right_knee", "left_ankle", "right_ankle")).keys() == {
        "lying_down",
        "arms_raised",
    }  # the torso's tilt alone says "not lying"; standing and sitting need a knee
    assert cues({"nose": (1, 1)}) == {}


def test_cleaning_swaps_crossed_limbs_but_keeps_people_seen_from_behind() -> None:
    crossed = {**STAND, "left_knee": (88, 200), "right_knee": (112, 200)}
    fixed = clean(keypoints(crossed), FLOOR)
    assert fixed[KEYPOINTS.index("left_knee"), 0] == 112
    behind = {name: (200 - x, y) for name, (x, y) in STAND.items()}  # every left point on the image's left
    assert np.array_equal(clean(keypoints(behind), FLOOR), keypoints(behind))


def test_cleaning_drops_knees_above_the_shoulders_of_upright_people_only() -> None:
    raised_knee = {**STAND, "left_knee": (112, 30)}
    fixed = clean(keypoints(raised_knee), FLOOR)
    assert fixed[KEYPOINTS.index("left_knee"), 2] == 0.0
    lying = clean(keypoints(LYING), FLOOR)
    assert (lying[:, 2] > 0).all()  # flat bodies keep every point


# --- the result type's checks ---------------------------------------------------------------------------


def person(score: float, activities: dict[str, float] | None = None) -> PersonPose:
    points = tuple(Keypoint(name, 0.5, 0.5, 0.9) for name in KEYPOINTS)
    return PersonPose(Box(0.1, 0.1, 0.9, 0.9), score, points, activities or {})


def test_pose_result_sorts_counts_and_summarises() -> None:
    result = PoseResult.of([person(0.4, {"sitting": 0.9}), person(0.8, {"sitting": 0.2, "standing": 0.7})])
    assert [p.score for p in result.people] == [0.8, 0.4] and result.count == 2
    assert result.activities() == {"standing": 0.7, "sitting": 0.9}
    assert result.to_dict()["activities"] == {"standing": 0.7, "sitting": 0.9}
    assert result.people[0].doing() == ("standing",)
    assert PoseResult.from_dict(result.to_dict()) == result
    assert list(Activity) == [Activity(a) for a in ("standing", "sitting", "lying_down", "arms_raised",
                                                    "running_jumping")]  # fmt: skip


def test_pose_result_refuses_inconsistent_data() -> None:
    with pytest.raises(ValueError, match="sorted"):
        PoseResult(people=(person(0.4), person(0.8)), count=2)
    with pytest.raises(ValueError, match="count"):
        PoseResult(people=(person(0.4),), count=2)
    with pytest.raises(ValueError, match="unknown activity"):
        person(0.5, {"dancing": 0.9})
    with pytest.raises(ValueError, match="keypoints"):
        PersonPose(Box(0, 0, 1, 1), 0.5, (Keypoint("nose", 0.5, 0.5, 0.9),), {})
    with pytest.raises(ValueError, match="within"):
        Keypoint("nose", 1.5, 0.5, 0.9)
