"""The faces analyzer with the real NudeNet and FER models on real photos, plus its pure logic."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from pydantic import TypeAdapter

from feedlens.analyzers.body_regions import BodyRegionsAnalyzer
from feedlens.analyzers.faces import (
    TILE,
    Detection,
    FacesAnalyzer,
    emotion_crop,
    merge,
    tile_grid,
    to_fer_input,
)
from feedlens.core.results import Box
from feedlens.core.results.faces import EMOTIONS, EmotionSummary, Face, FacesResult, Sentiment
from feedlens.images import ImageDecoder
from feedlens.services.factory import Services

ASTRONAUT_FACE = (173, 82, 274, 180)  # hairline to chin, px in the 512x512 photo (hand-checked)
GRACE_FACE = (169, 142, 359, 341)  # in the 512x600 photo


@pytest.fixture(scope="module")
def detect(services: Services) -> BodyRegionsAnalyzer:
    return BodyRegionsAnalyzer(services.store, services.settings)


@pytest.fixture(scope="module")
def faces(services: Services) -> FacesAnalyzer:
    return FacesAnalyzer(services.store, services.settings.model_copy(update={"faces_tiling": True}))


def run(faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, images: list[Image.Image]) -> list[FacesResult]:
    return faces(images, {"body_regions": detect(images)})


def load(decoder: ImageDecoder, path: Path) -> Image.Image:
    return decoder.decode(path, min_side=FacesAnalyzer.input_size).image


def covers(box: Box, face: tuple[int, int, int, int], width: int, height: int, slack: float = 0.1) -> bool:
    """The box covers the face up to `slack` of the face's size on each side (redaction needs the whole)."""
    x0, y0, x1, y1 = box.to_pixels(width, height)
    fx0, fy0, fx1, fy1 = face
    dx, dy = slack * (fx1 - fx0), slack * (fy1 - fy0)
    return x0 <= fx0 + dx and y0 <= fy0 + dy and x1 >= fx1 - dx and y1 >= fy1 - dy


def test_astronaut_has_one_happy_face_covering_the_face(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    image = load(decoder, sample_dir / "astronaut.png")
    [result] = run(faces, detect, [image])
    assert result.count == 1
    face = result.faces[0]
    assert face.dominant_emotion == "happy" and face.emotions["happy"] > 0.8
    assert covers(face.box, ASTRONAUT_FACE, *image.size)
    assert result.emotion_summary is not None
    assert result.emotion_summary.sentiment is Sentiment.POSITIVE
    assert result.emotion_summary.sentiment_score > 0.5


def test_grace_hopper_has_a_face(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    image = load(decoder, sample_dir / "grace_hopper.jpg")
    [result] = run(faces, detect, [image])
    assert result.count == 1
    assert covers(result.faces[0].box, GRACE_FACE, *image.size)
    assert result.faces[0].dominant_emotion != "happy"  # a composed portrait, not a smile


def test_photos_without_people_have_no_face(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    names = ["chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg"]
    for result in run(faces, detect, [load(decoder, sample_dir / n) for n in names]):
        assert result == FacesResult.empty()


def test_batching_does_not_change_results(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    images = [load(decoder, sample_dir / n) for n in ("astronaut.png", "chelsea.png", "grace_hopper.jpg")]
    batched = run(faces, detect, images)
    single = [run(faces, detect, [im])[0] for im in images]
    assert [r.count for r in batched] == [r.count for r in single] == [1, 0, 1]
    for a, b in zip(batched, single, strict=True):
        for fa, fb in zip(a.faces, b.faces, strict=True):
            assert fa.box.iou(fb.box) > 0.99 and fa.dominant_emotion == fb.dominant_emotion


def test_face_touching_the_top_left_border(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    # Cut through the forehead and the left cheek: the face box must reach the image border.
    image = load(decoder, sample_dir / "astronaut.png").crop((190, 100, 512, 512))
    [result] = run(faces, detect, [image])
    assert result.count == 1
    box = result.faces[0].box
    assert box.x0 < 0.02 and box.y0 < 0.02
    assert result.faces[0].dominant_emotion == "happy"


def small_face_scene(sample_dir: Path, face_height: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The astronaut's face, `face_height` px tall, feathered into a 1280x960 copy of the coffee photo."""
    background = Image.open(sample_dir / "coffee.png").convert("RGB").resize((1280, 960))
    x0, y0, x1, y1 = ASTRONAUT_FACE
    fw, fh = x1 - x0, y1 - y0
    head = (
        Image.open(sample_dir / "astronaut.png")
        .convert("RGB")
        .crop((x0 - fw // 2, y0 - fh // 2, x1 + fw // 2, y1 + fh // 2))
    )
    scale = face_height / fh
    head = head.resize((round(head.width * scale), round(head.height * scale)), Image.Resampling.LANCZOS)
    mask = Image.new("L", head.size, 0)
    ImageDraw.Draw(mask).ellipse((0, 0, head.width - 1, head.height - 1), fill=255)
    background.paste(head, (900, 150), mask.filter(ImageFilter.GaussianBlur(head.width / 12)))
    left, top = 900 + (fw // 2) * scale, 150 + (fh // 2) * scale
    return background, (round(left), round(top), round(left + fw * scale), round(top + fh * scale))


def test_small_face_in_a_big_scene_is_found_by_the_tiles(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, sample_dir: Path
) -> None:
    scene, face = small_face_scene(sample_dir, face_height=80)
    assert detect([scene])[0].faces(0.3) == ()  # the shared 320 px pass alone misses it
    [result] = run(faces, detect, [scene])
    assert result.count == 1
    assert result.faces[0].detector == "nudenet-tile"
    assert covers(result.faces[0].box, face, *scene.size, slack=0.15)


@pytest.mark.parametrize(
    "size, color",
    [((16, 16), (128, 128, 128)), ((16, 2000), (30, 60, 90)), ((2000, 16), (200, 10, 10)),
     ((640, 640), (0, 0, 0)), ((640, 640), (255, 255, 255)), ((4000, 40), (0, 0, 0))],
)  # fmt: skip
def test_degenerate_images_have_no_face(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, size: tuple[int, int], color: tuple[int, int, int]
) -> None:
    [result] = run(faces, detect, [Image.new("RGB", size, color)])
    assert result.count == 0 and result.emotion_summary is None


def test_missing_upstream_is_refused(faces: FacesAnalyzer) -> None:
    with pytest.raises(ValueError, match="body_regions"):
        faces([Image.new("RGB", (64, 64))])


def test_result_serialises_and_matches_the_published_schema(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    [result] = run(faces, detect, [load(decoder, sample_dir / "astronaut.png")])
    data = result.to_dict()
    assert data["schema"] == "feedlens.faces/1" and data["count"] == 1
    assert set(data["faces"][0]) == {"box", "confidence", "detector", "emotions", "dominant_emotion"}
    TypeAdapter(FacesResult).validate_python({k: v for k, v in data.items() if k != "schema"})
    schema = FacesAnalyzer.json_schema()
    assert schema["$id"] == "feedlens.faces/1" and {"faces", "count", "emotion_summary"} <= set(
        schema["properties"]
    )
    assert FacesResult.empty().to_dict() == {
        "schema": "feedlens.faces/1",
        "faces": (),
        "count": 0,
        "emotion_summary": None,
    }


def test_version_names_both_models(faces: FacesAnalyzer) -> None:
    assert faces.version.startswith("faces-1+nudenet-320n-onnx@")
    assert "fer-emotion-tflite@" in faces.version


# --- pure logic -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1280, 960), (4000, 16), (801, 801), (1000, 3000)])
def test_tiles_cover_the_image_with_overlap(size: tuple[int, int]) -> None:
    grid = tile_grid(*size)
    covered = np.zeros(size[::-1], dtype=bool)
    for x0, y0, x1, y1 in grid:
        assert x1 - x0 <= TILE and y1 - y0 <= TILE
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    xs = sorted({t[0] for t in grid})
    assert all(b - a <= 0.75 * TILE + 1 for a, b in itertools.pairwise(xs))  # >= 1/4 overlap


def test_small_images_are_not_tiled() -> None:
    assert tile_grid(800, 600) == [] and tile_grid(16, 16) == []


def test_merge_keeps_the_best_of_duplicates_and_distinct_faces() -> None:
    whole = Detection(Box(0.1, 0.1, 0.3, 0.3), 0.9, "nudenet")
    part = Detection(Box(0.1, 0.1, 0.2, 0.3), 0.95, "nudenet-tile")  # half of the same face, scored higher
    other = Detection(Box(0.6, 0.6, 0.8, 0.8), 0.5, "nudenet-tile")
    assert merge([whole, part, other]) == [part, other]
    assert merge([whole, other]) == [whole, other]


def test_emotion_crop_pads_faces_at_the_border() -> None:
    gray = np.full((100, 200), 40, dtype=np.uint8)
    gray[:30, :30] = 220
    crop = emotion_crop(gray, Box(0.0, 0.0, 0.1, 0.25))
    assert crop.shape == (64, 64) and crop.dtype == np.uint8
    assert crop[0, 0] == 220  # edge-repeated, not black
    batch = to_fer_input([crop, crop])
    assert batch.shape == (2, 64, 64, 1) and batch.dtype == np.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0


def dist(**kw: float) -> dict[str, float]:
    return {e: kw.get(e, 0.0) for e in EMOTIONS}


def test_summary_maps_emotions_to_sentiment() -> None:
    happy, sad = dist(happy=0.9, neutral=0.1), dist(sad=0.7, angry=0.2, neutral=0.1)
    assert EmotionSummary.of([happy]).sentiment is Sentiment.POSITIVE
    assert EmotionSummary.of([sad]).sentiment is Sentiment.NEGATIVE
    assert EmotionSummary.of([dist(surprise=0.6, neutral=0.4)]).sentiment is Sentiment.NEUTRAL
    both = EmotionSummary.of([happy, sad])
    assert both.distribution["happy"] == pytest.approx(0.45)
    assert both.sentiment_score == pytest.approx(0.45 - 0.45)
    assert both.dominant == "happy"
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


def test_tiling_is_a_setting_that_raises_the_decode_size(services: Services) -> None:
    plain = FacesAnalyzer(services.store, services.settings)
    tiled = FacesAnalyzer(services.store, services.settings.model_copy(update={"faces_tiling": True}))
    assert not services.settings.faces_tiling  # throughput first by default; redaction always tiles
    assert (plain.decode_side(), tiled.decode_side()) == (320, 640)
    assert services.pipeline(["faces"]).decode_size == 320
    assert services.pipeline(["faces"], settings=tiled.settings).decode_size == 640
