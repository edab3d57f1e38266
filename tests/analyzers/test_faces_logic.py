"""The faces analyzer's pure logic, without models: tiles, BlazeFace decoding, merging, crops, angle maths,
attribute readings, quality, and the result types (old stored results included)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from feedlens.analyzers.face_attributes import (
    CHIN,
    FACE_LEFT,
    FACE_RIGHT,
    FOREHEAD_TOP,
    Measures,
    head_angles,
    quality,
    read_attributes,
)
from feedlens.analyzers.face_detect import (
    BLAZE_SIZE,
    Detection,
    anchors,
    blaze_input,
    combine,
    decode_blaze,
    merge,
    tile_grid,
)
from feedlens.analyzers.face_emotions import emotion_crop, to_fer_input
from feedlens.analyzers.face_mesh import LANDMARKS, PUPILS, Square, named_points
from feedlens.analyzers.face_tiling import people_areas, person_boxes, tiles_near
from feedlens.core.results import Box
from feedlens.core.results.faces import (
    EMOTIONS,
    LANDMARK_NAMES,
    Attribute,
    EmotionSummary,
    Face,
    FaceQuality,
    FacesResult,
    HeadPose,
    Point,
    Sentiment,
)
from feedlens.core.results.objects import DetectedObject, ObjectsResult
from feedlens.core.results.regions import BodyRegionsResult, Region


def dist(**kw: float) -> dict[str, float]:
    return {e: kw.get(e, 0.0) for e in EMOTIONS}


# --- tiles and BlazeFace decoding -------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1280, 960), (4000, 16), (16, 75000), (600, 600), (1000, 3000), (640, 480)])
def test_tiles_cover_the_image_with_overlap(size: tuple[int, int]) -> None:
    grid = tile_grid(*size)
    assert len(grid) <= 4  # cost is bounded: at most 4 more BlazeFace runs, whatever the shape
    covered = np.zeros(size[::-1], dtype=bool)
    for x0, y0, x1, y1 in grid:
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    if len({t[0] for t in grid}) == 2:  # two columns overlap by >= 0.1 of the longer side
        (_, _, a1, _), (b, _, _, _) = grid[0], grid[1]
        assert a1 - b >= 0.1 * max(size) - 1


def test_small_images_are_not_tiled() -> None:
    assert tile_grid(599, 400) == [] and tile_grid(16, 16) == [] and tile_grid(512, 512) == []


def test_anchors_follow_the_model_row_order() -> None:
    grid = anchors()
    assert grid.shape == (896, 2)
    assert tuple(grid[0]) == tuple(grid[1]) == (8.0, 8.0)  # stride 16, 2 anchors per cell
    assert tuple(grid[2]) == (24.0, 8.0)
    assert tuple(grid[512]) == (16.0, 16.0) and tuple(grid[-1]) == (240.0, 240.0)  # stride 32, 6 per cell


def fake_outputs(row: int, logit: float, centre: tuple[float, float], size: float) -> list[np.ndarray]:
    """BlazeFace's four outputs with one anchor firing: a face of `size` px at `centre` (input px)."""
    scores = np.full((1, 896, 1), -10.0, dtype=np.float32)
    regress = np.zeros((1, 896, 16), dtype=np.float32)
    scores[0, row, 0] = logit
    ax, ay = anchors()[row]
    regress[0, row, :4] = (centre[0] - ax, centre[1] - ay, size, size)
    regress[0, row, 4:6] = (centre[0] - size / 4 - ax, centre[1] - size / 6 - ay)  # the first eye
    # The ONNX file's order: (1,512,1), (1,512,16), (1,384,16), (1,384,1)
    return [scores[:, :512], regress[:, :512], regress[:, 512:], scores[:, 512:]]


def test_decode_maps_a_face_back_onto_the_image() -> None:
    where = blaze_input(np.zeros((512, 1024, 3), dtype=np.uint8))  # scale 4: 1024 px -> 256, padded below
    found = decode_blaze(fake_outputs(600, 3.0, (64.0, 32.0), 20.0), where, 1024, 512, 0.5, "blazeface")
    [face] = found
    assert face.detector == "blazeface" and face.score == pytest.approx(1 / (1 + math.exp(-3)), abs=1e-6)
    assert face.box.to_pixels(1024, 512) == (216, 88, 296, 168)  # (54..74, 22..42) x 4
    assert face.points[0] == pytest.approx(((64 - 5) * 4 / 1024, (32 - 20 / 6) * 4 / 512), abs=1e-4)
    assert decode_blaze(fake_outputs(600, -3.0, (64.0, 32.0), 20.0), where, 1024, 512, 0.5, "x") == []


def test_a_face_cut_by_an_inner_tile_edge_is_left_to_the_neighbour() -> None:
    tile = blaze_input(
        np.zeros((1400, 1400, 3), dtype=np.uint8), (0, 0, 770, 770)
    )  # right and bottom edges inside the image
    edge = fake_outputs(10, 3.0, (250.0, 100.0), 20.0)  # reaches x 260 > 256: cut by the right edge
    assert decode_blaze(edge, tile, 1400, 1400, 0.5, "blazeface-tile") == []
    left = fake_outputs(10, 3.0, (8.0, 100.0), 20.0)  # at the left edge, which is the image's own
    assert len(decode_blaze(left, tile, 1400, 1400, 0.5, "blazeface-tile")) == 1


def test_blaze_input_resizes_before_padding() -> None:
    where = blaze_input(np.full((75000, 16, 3), 255, dtype=np.uint8))
    assert where.pixels.shape == (BLAZE_SIZE, BLAZE_SIZE, 3) and where.side == 75000
    assert where.pixels[:, 0].max() == 1.0 and where.pixels[:, 1:].max() == -1.0  # 1 px wide, black pad


def test_merge_and_combine_keep_one_box_per_face() -> None:
    whole = Detection(Box(0.1, 0.1, 0.3, 0.3), 0.9, "nudenet")
    part = Detection(Box(0.1, 0.1, 0.2, 0.3), 0.95, "nudenet")  # half of the same face, scored higher
    other = Detection(Box(0.6, 0.6, 0.8, 0.8), 0.5, "nudenet")
    assert merge([whole, part, other]) == [part, other]
    blaze = Detection(Box(0.11, 0.09, 0.29, 0.3), 0.99, "blazeface", ((0.15, 0.15),) * 6)
    new = Detection(Box(0.4, 0.0, 0.45, 0.05), 0.6, "blazeface-tile")
    kept = combine([whole, other], [blaze], [new])
    assert [d.detector for d in kept] == ["nudenet", "nudenet", "blazeface-tile"]  # priority, not score
    assert kept[0].box == whole.box and kept[0].points == blaze.points  # borrows BlazeFace's points


def test_crops_reaching_past_the_border_are_black_there() -> None:
    image = Image.new("RGB", (100, 50), (255, 255, 255))
    crop = Square(-50.0, -25.0, 100.0).cut(image, 64)  # the top-left quarter lies outside
    assert crop.shape == (64, 64, 3) and crop.dtype == np.float32
    assert crop[:14, :30].max() == 0.0 and crop[50:, :].max() == 0.0 and crop[18:46, 34:].min() == 1.0
    huge = Square(-40000.0, -40000.0, 80000.0).cut(Image.new("RGB", (16, 16), (255, 0, 0)), 192)
    assert huge.shape == (192, 192, 3) and huge[:, :, 0].max() <= 1.0  # no 80000 px canvas on the way
    assert Square(200.0, 200.0, 10.0).cut(image, 8).max() == 0.0  # wholly outside


def test_emotion_crop_pads_faces_at_the_border() -> None:
    gray = np.full((100, 200), 40, dtype=np.uint8)
    gray[:30, :30] = 220
    crop = emotion_crop(gray, Box(0.0, 0.0, 0.1, 0.25))
    assert crop.shape == (64, 64) and crop.dtype == np.uint8
    assert crop[0, 0] == 220  # edge-repeated, not black
    batch = to_fer_input([crop, crop])
    assert batch.shape == (2, 64, 64, 1) and batch.dtype == np.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0


# --- angles, attributes, quality ---------------------------------------------------------------------


def rotation(roll: float, yaw: float, pitch: float) -> np.ndarray:
    """The head turned by `yaw` toward the image's right, tilted up by `pitch`, then turned clockwise on
    screen by `roll` (x right, y down, z away from the camera)."""
    r, y, p = (math.radians(a) for a in (roll, yaw, pitch))
    turn = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    tilt = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    spin = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return np.asarray(spin @ tilt @ turn, dtype=np.float64)


def synthetic_mesh(roll: float, yaw: float, pitch: float) -> np.ndarray:
    """A (468, 3) mesh whose four angle points sit on a frontal head, rotated."""
    mesh = np.zeros((468, 3))
    mesh[FACE_RIGHT], mesh[FACE_LEFT] = (-70, 0, 40), (70, 0, 40)
    mesh[FOREHEAD_TOP], mesh[CHIN] = (0, -90, 10), (0, 90, 10)
    return np.asarray(mesh @ rotation(roll, yaw, pitch).T + np.array([300.0, 200.0, 0.0]), dtype=np.float64)


@pytest.mark.parametrize(
    "angles", [(0, 0, 0), (10, 0, 0), (0, 30, 0), (0, -30, 0), (0, 0, 20), (-15, 25, 10)]
)
def test_head_angles_recover_a_known_rotation(angles: tuple[float, float, float]) -> None:
    roll, yaw, pitch = head_angles(synthetic_mesh(*angles))
    assert (roll, yaw, pitch) == pytest.approx(angles, abs=1.5)


def test_mirrored_mesh_flips_yaw_and_roll() -> None:
    mesh = synthetic_mesh(12, 28, -8)
    mirrored = mesh.copy()
    mirrored[:, 0] = -mirrored[:, 0]
    mirrored[[FACE_RIGHT, FACE_LEFT]] = mirrored[[FACE_LEFT, FACE_RIGHT]]  # the person's sides swap
    roll, yaw, pitch = head_angles(mirrored)
    assert (roll, yaw, pitch) == pytest.approx((-12, -28, -8), abs=1.5)


def test_attributes_are_absent_when_the_head_is_turned_away() -> None:
    frontal = read_attributes(Measures(0.4, 0.3, 1.0, 0.15), yaw=5, happy=0.9, has_iris=True)
    assert frontal.eyes_open is not None and frontal.eyes_open.value
    assert frontal.smile is not None and frontal.smile.value
    assert frontal.mouth_open is not None and frontal.mouth_open.value
    closed = read_attributes(Measures(0.1, 0.0, 0.8, -0.02), yaw=-5, happy=0.02, has_iris=True)
    assert closed.eyes_open is not None and not closed.eyes_open.value
    assert closed.smile is not None and not closed.smile.value
    assert closed.mouth_open is not None and not closed.mouth_open.value
    turned = read_attributes(Measures(0.4, 0.3, 1.0, 0.15), yaw=70, happy=0.9, has_iris=True)
    assert turned.smile is None and turned.eyes_open is None and turned.mouth_open is None
    assert read_attributes(Measures(0.4, 0.3, 1.0, 0.15), yaw=0, happy=0.9, has_iris=False).eyes_open is None


def test_quality_reads_blur_and_darkness(sample_image: Image.Image) -> None:
    box = (173, 82, 274, 180)  # the astronaut's face
    bright, sharp = quality(sample_image, box)
    _, blurred = quality(sample_image.filter(ImageFilter.GaussianBlur(3)), box)
    dark, _ = quality(sample_image.point(lambda v: v // 3), box)
    assert 0.3 < bright < 0.9 and dark < bright / 2
    assert blurred < sharp - 0.2
    assert quality(Image.new("RGB", (50, 50), (90, 90, 90)), (0, 0, 50, 50)) == pytest.approx((90 / 255, 0.0))
    assert quality(sample_image, (10, 10, 10, 40)) == (0.0, 0.0)


@pytest.fixture(scope="module")
def sample_image(sample_dir: Path) -> Image.Image:
    return Image.open(sample_dir / "astronaut.png").convert("RGB")


def test_named_points_cover_the_documented_set() -> None:
    mesh = np.random.default_rng(0).uniform(0, 100, (468, 3))
    eyes = (np.full((76, 3), 20.0), np.full((76, 3), 60.0))
    points = named_points(mesh, eyes, 100, 100)
    assert set(points) == set(LANDMARK_NAMES)
    assert points["right_pupil"] == (0.2, 0.2) and points["left_pupil"] == (0.6, 0.6)
    assert set(named_points(mesh, None, 100, 100)) == set(LANDMARK_NAMES) - set(PUPILS)
    assert len(set(LANDMARKS.values())) == len(LANDMARKS)  # no mesh point named twice
    assert all(0 <= v <= 1 for p in named_points(mesh * 3, None, 100, 100).values() for v in p)  # clipped


# --- result types -------------------------------------------------------------------------------------


def full_face(**changes: object) -> Face:
    fields: dict[str, object] = {
        "box": Box(0.1, 0.1, 0.2, 0.2), "confidence": 0.8, "detector": "blazeface",
        "emotions": dist(happy=1.0), "dominant_emotion": "happy", "face_score": 0.99,
        "landmarks": {"nose_tip": Point(0.15, 0.16)}, "head_pose": HeadPose(1.0, -20.0, 5.0),
        "quality": FaceQuality(0.5, 0.6), "smile": Attribute.of(0.9), "eyes_open": Attribute.of(0.2),
        "mouth_open": None,
    }  # fmt: skip
    fields.update(changes)
    return Face(**fields)  # type: ignore[arg-type]


def test_new_fields_validate_and_round_trip() -> None:
    face = full_face()
    assert face.smile == Attribute(True, 0.9) and face.eyes_open == Attribute(False, 0.8)
    result = FacesResult.of([face])
    assert FacesResult.from_dict(result.to_dict()) == result
    with pytest.raises(ValueError, match="unknown landmarks"):
        full_face(landmarks={"third_eye": Point(0.1, 0.1)})
    with pytest.raises(ValueError, match="yaw"):
        full_face(head_pose=HeadPose(0.0, 200.0, 0.0))
    with pytest.raises(ValueError, match="sharpness"):
        full_face(quality=FaceQuality(0.5, 1.5))
    with pytest.raises(ValueError, match=r"at least 0\.5"):
        Attribute(True, 0.3)
    with pytest.raises(ValueError, match="landmark x"):
        Point(1.2, 0.5)


def test_results_stored_before_landmarks_still_load() -> None:
    old = {
        "schema": "feedlens.faces/1",
        "faces": [{"box": {"x0": 0.1, "y0": 0.1, "x1": 0.2, "y1": 0.2}, "confidence": 0.7,
                   "detector": "nudenet", "emotions": dist(sad=1.0), "dominant_emotion": "sad"}],
        "count": 1,
        "emotion_summary": {"distribution": dist(sad=1.0), "dominant": "sad", "sentiment": "negative",
                            "sentiment_score": -1.0},
    }  # fmt: skip
    loaded = FacesResult.from_dict(old)
    face = loaded.faces[0]
    assert face.dominant_emotion == "sad" and face.landmarks is None and face.head_pose is None
    assert face.smile is None and face.face_score is None
    assert loaded.to_dict()["schema"] == "feedlens.faces/2"


def test_summary_maps_emotions_to_sentiment() -> None:
    happy, sad = dist(happy=0.9, neutral=0.1), dist(sad=0.7, angry=0.2, neutral=0.1)
    assert EmotionSummary.of([happy]).sentiment is Sentiment.POSITIVE
    assert EmotionSummary.of([sad]).sentiment is Sentiment.NEGATIVE
    assert EmotionSummary.of([dist(surprise=0.6, neutral=0.4)]).sentiment is Sentiment.NEUTRAL
    both = EmotionSummary.of([happy, sad])
    assert both.distribution["happy"] == pytest.approx(0.45)
    assert both.sentiment_score == pytest.approx(0.45 - 0.45)
    with pytest.raises(ValueError):
        EmotionSummary.of([])


def test_result_validation_refuses_inconsistent_data() -> None:
    box = Box(0.1, 0.1, 0.2, 0.2)
    good = Face(
        box=box, confidence=0.8, detector="nudenet", emotions=dist(happy=1.0), dominant_emotion="happy"
    )
    with pytest.raises(ValueError, match="dominant"):
        Face(box=box, confidence=0.8, detector="nudenet", emotions=dist(happy=1.0), dominant_emotion="sad")
    with pytest.raises(ValueError, match="sum to 1"):
        Face(box=box, confidence=0.8, detector="nudenet", emotions=dist(happy=0.5), dominant_emotion="happy")
    with pytest.raises(ValueError, match="score"):
        Face(box=box, confidence=1.5, detector="nudenet", emotions=dist(happy=1.0), dominant_emotion="happy")
    with pytest.raises(ValueError, match="count"):
        FacesResult(faces=(good,), count=2, emotion_summary=EmotionSummary.of([good.emotions]))
    with pytest.raises(ValueError, match="emotion_summary"):
        FacesResult(faces=(good,), count=1, emotion_summary=None)
    low = Face(box=box, confidence=0.3, detector="nudenet", emotions=dist(sad=1.0), dominant_emotion="sad")
    with pytest.raises(ValueError, match="sorted"):
        FacesResult(faces=(low, good), count=2, emotion_summary=EmotionSummary.of([good.emotions]))
    assert FacesResult.of([low, good]).faces == (good, low)


# --- where tiles pay --------------------------------------------------------------------------------


def test_tiles_go_only_near_small_faces_and_small_people() -> None:
    width, height = 1280, 960
    grid = tile_grid(width, height)
    selfie, small = Box(0.3, 0.2, 0.7, 0.8), Box(0.05, 0.05, 0.1, 0.1)  # 512 px and 64 px faces
    assert people_areas([selfie], [], width, height) == []  # a big face says nothing of small ones
    assert tiles_near(grid, people_areas([small], [], width, height)) == [0]
    tall, short = Box(0.1, 0.0, 0.3, 1.0), Box(0.8, 0.8, 0.85, 0.98)  # 960 px and 173 px tall
    assert people_areas([], [(tall, False)], width, height) == []
    assert tiles_near(grid, people_areas([], [(short, False)], width, height)) == [3]
    assert people_areas([], [(Box(0.0, 0.0, 0.5, 0.5), True)], width, height) == []  # a big body region
    assert tiles_near(grid, []) == []


def test_person_evidence_reads_objects_pose_and_body_regions() -> None:
    person = DetectedObject("person", "Person", "person", 0.8, Box(0.1, 0.1, 0.2, 0.4), 0.7)
    dog = DetectedObject("dog", "Dog", "dog", 0.9, Box(0.5, 0.5, 0.6, 0.6), 0.8, parents=("pet", "animal"))
    faint = DetectedObject("person", "Person", "person", 0.1, Box(0.7, 0.1, 0.8, 0.4), 0.1)
    regions = BodyRegionsResult(
        (
            Region("FACE_FEMALE", 0.9, Box(0.1, 0.1, 0.15, 0.15)),
            Region("FEET_EXPOSED", 0.5, Box(0.3, 0.8, 0.35, 0.85)),
            Region("BELLY_COVERED", 0.1, Box(0.3, 0.5, 0.35, 0.55)),
        )
    )
    found = person_boxes(ObjectsResult((dog, person, faint)), None, regions, 0.3)
    assert found == [(person.box, False), (Box(0.3, 0.8, 0.35, 0.85), True)]
    assert person_boxes(None, None, None, 0.3) == []
