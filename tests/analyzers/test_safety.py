"""`body_regions` (NudeNet on real photos) and `safety` (taxonomy and verdict rules)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import TypeAdapter

from feedlens.analyzers.body_regions import BodyRegionsAnalyzer, decode_yolo, letterbox
from feedlens.analyzers.safety import SafetyAnalyzer
from feedlens.config import load_settings
from feedlens.core.results import Box
from feedlens.core.results.regions import NUDENET_CLASSES, BodyRegionsResult, Region
from feedlens.core.results.safety import SafetyResult, Verdict
from feedlens.images import ImageDecoder
from feedlens.services.factory import Services


@pytest.fixture(scope="module")
def regions(services: Services) -> BodyRegionsAnalyzer:
    return BodyRegionsAnalyzer(services.store, services.settings)


@pytest.fixture(scope="module")
def safety(services: Services) -> SafetyAnalyzer:
    return SafetyAnalyzer(services.store, services.settings)


def _decode(decoder: ImageDecoder, path: Path) -> Image.Image:
    return decoder.decode(path, min_side=BodyRegionsAnalyzer.input_size).image


def test_every_sample_photo_is_safe(
    regions: BodyRegionsAnalyzer, safety: SafetyAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    images = [_decode(decoder, p) for p in sorted(sample_dir.iterdir())]
    found = regions(images)
    verdicts = safety(images, {"body_regions": found})
    assert [v.verdict for v in verdicts] == [Verdict.SAFE] * len(images)
    for v in verdicts:
        TypeAdapter(SafetyResult).validate_python(v)
        assert v.to_dict()["schema"] == "feedlens.safety/1"


def test_faces_are_found_on_portraits(
    regions: BodyRegionsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    astronaut, hopper, cat = (
        regions([_decode(decoder, sample_dir / n)])[0]
        for n in ("astronaut.png", "grace_hopper.jpg", "chelsea.png")
    )
    face = astronaut.faces(0.5)[0]
    # The astronaut's face is in the upper middle of the photo.
    assert 0.25 < (face.box.x0 + face.box.x1) / 2 < 0.6 and (face.box.y0 + face.box.y1) / 2 < 0.45
    assert len(hopper.faces(0.5)) == 1
    assert cat.faces(0.5) == ()


def test_boxes_are_independent_of_decode_size(regions: BodyRegionsAnalyzer, sample_dir: Path) -> None:
    photo = Image.open(sample_dir / "astronaut.png").convert("RGB")
    big, small = regions([photo.resize((1024, 1024)), photo.resize((400, 400))])
    assert big.faces(0.5)[0].box.iou(small.faces(0.5)[0].box) > 0.8


def test_bad_inputs_give_no_regions(regions: BodyRegionsAnalyzer) -> None:
    odd = [
        Image.new("RGB", (16, 16)),
        Image.new("RGB", (16, 2000), (255, 255, 255)),
        Image.new("RGB", (3000, 16)),
        Image.new("RGB", (320, 320), (255, 255, 255)),
    ]
    assert [r.regions for r in regions(odd)] == [(), (), (), ()]


def test_letterbox_pads_right_and_bottom() -> None:
    array, side = letterbox(Image.new("RGB", (200, 100), (255, 255, 255)), 320)
    assert side == 200 and array.shape == (320, 320, 3)
    assert array[:150].min() == 1.0 and array[170:].max() == 0.0  # image on top, black padding below


def test_yolo_decoding_scales_and_suppresses_duplicates() -> None:
    output = np.zeros((4 + len(NUDENET_CLASSES), 3), dtype=np.float32)
    face = NUDENET_CLASSES.index("FACE_MALE")
    output[:4, 0] = [160, 80, 64, 32]  # centre box in 320-px model units
    output[:4, 1] = [162, 81, 64, 32]  # near-duplicate of the first: suppressed
    output[:4, 2] = [40, 300, 20, 20]
    output[4 + face, :] = [0.9, 0.8, 0.1]  # the third is under the floor
    found = decode_yolo(output, side=640.0, width=640, height=480)
    assert len(found) == 1 and found[0].kind == "FACE_MALE" and found[0].score == pytest.approx(0.9)
    assert found[0].box.to_pixels(640, 480) == (256, 128, 384, 192)


def _regions(*items: tuple[str, float]) -> BodyRegionsResult:
    return BodyRegionsResult(regions=tuple(Region(k, s, Box(0.1, 0.1, 0.5, 0.5)) for k, s in items))


@pytest.mark.parametrize(
    ("items", "verdict"),
    [
        ((), Verdict.SAFE),
        ((("FACE_FEMALE", 0.95), ("FEET_EXPOSED", 0.9)), Verdict.SAFE),  # not moderation signals
        ((("FEMALE_BREAST_EXPOSED", 0.8),), Verdict.EXPLICIT),
        ((("MALE_GENITALIA_EXPOSED", 0.45),), Verdict.SAFE),  # under both thresholds
        ((("BUTTOCKS_EXPOSED", 0.48), ("FACE_FEMALE", 0.9)), Verdict.SAFE),
        ((("FEMALE_BREAST_COVERED", 0.7),), Verdict.SUGGESTIVE),
        ((("BELLY_EXPOSED", 0.65), ("FEMALE_GENITALIA_EXPOSED", 0.2)), Verdict.SUGGESTIVE),
    ],
)
def test_verdict_rules(
    safety: SafetyAnalyzer, items: tuple[tuple[str, float], ...], verdict: Verdict
) -> None:
    assert safety.judge(_regions(*items)).verdict is verdict


def test_thresholds_are_configurable(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDLENS_SAFETY_EXPLICIT_THRESHOLD", "0.9")
    strict = SafetyAnalyzer(services.store, load_settings())
    result = strict.judge(_regions(("FEMALE_BREAST_EXPOSED", 0.8)))
    assert result.verdict is Verdict.SUGGESTIVE  # explicit regions under the bar still flag the image
    assert result.scores == {"explicit_nudity": 0.8, "suggestive": 0.0}
    assert result.regions[0].type == "exposed_female_breast"


def test_region_validation() -> None:
    with pytest.raises(ValueError, match="unknown region kind"):
        Region("TAIL_EXPOSED", 0.5, Box(0, 0, 1, 1))
    with pytest.raises(ValueError, match="within"):
        Box(0.0, 0.0, 1.5, 1.0)
