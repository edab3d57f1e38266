"""The properties analyzer on synthetic images with known answers and on the real sample photos."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from pydantic import TypeAdapter

from feedlens.analyzers.properties import (
    PropertiesAnalyzer,
    colour_name,
    to_lab,
)
from feedlens.core.results.properties import DominantColour, Orientation, PropertiesResult, hamming
from feedlens.images import ImageDecoder
from feedlens.services.factory import Services
from tests.conftest import encode


@pytest.fixture(scope="module")
def props(services: Services) -> PropertiesAnalyzer:
    return PropertiesAnalyzer(services.store, services.settings)


@pytest.fixture(scope="module")
def samples(props: PropertiesAnalyzer, decoder: ImageDecoder, sample_dir: Path) -> dict[str, Image.Image]:
    return {p.name: decoder.decode(p, min_side=props.input_size).image for p in sorted(sample_dir.iterdir())}


def _one(props: PropertiesAnalyzer, image: Image.Image) -> PropertiesResult:
    return props([image])[0]


def _solid(rgb: tuple[int, int, int], size: tuple[int, int] = (300, 200)) -> Image.Image:
    return Image.new("RGB", size, rgb)


def _stripes(width: int = 512, period: int = 64) -> Image.Image:
    """Vertical black/white stripes, half black, half white."""
    x = (np.arange(width) // (period // 2)) % 2 * 255
    return Image.fromarray(np.repeat(np.tile(x, (width, 1))[..., None], 3, axis=2).astype(np.uint8))


def test_solid_red_is_one_red_colour_without_contrast(props: PropertiesAnalyzer) -> None:
    result = _one(props, _solid((255, 0, 0)))
    assert len(result.colours) == 1
    (red,) = result.colours
    assert red.name == "red" and red.hex == "#ff0000" and red.fraction == pytest.approx(1.0)
    assert red.lab == pytest.approx((53.2, 80.1, 67.2), abs=1.0)  # CIELAB of sRGB red (D65)
    assert result.contrast < 0.005 and result.sharpness < 1.0
    assert result.colourfulness > 50  # rg = 255, yb = 127.5 everywhere: 0.3 * |(255, 127.5)| = 85.5


def test_blue_yellow_split_gives_both_fractions(props: PropertiesAnalyzer) -> None:
    image = _solid((0, 0, 255))
    ImageDraw.Draw(image).rectangle((210, 0, 299, 199), fill=(255, 255, 0))  # right 30% yellow
    result = _one(props, image)
    blue, yellow = result.colours[:2]
    assert (blue.name, yellow.name) == ("blue", "yellow")
    assert blue.fraction == pytest.approx(0.7, abs=0.03)
    assert yellow.fraction == pytest.approx(0.3, abs=0.03)
    assert sum(c.fraction for c in result.colours) == pytest.approx(1.0, abs=1e-3)


def test_black_and_white_are_darkest_and_brightest(props: PropertiesAnalyzer) -> None:
    black, white = props([_solid((0, 0, 0)), _solid((255, 255, 255))])
    assert black.brightness == pytest.approx(0.0, abs=1e-3) and white.brightness == pytest.approx(
        1.0, abs=1e-3
    )
    assert [c.name for c in black.colours] == ["black"] and [c.name for c in white.colours] == ["white"]
    assert black.colourfulness < 0.5 and white.colourfulness < 0.5
    assert black.contrast < 1e-3 and white.contrast < 1e-3


def test_mid_gray_is_gray_and_not_colourful(props: PropertiesAnalyzer) -> None:
    result = _one(props, _solid((128, 128, 128)))
    assert [c.name for c in result.colours] == ["gray"]
    assert result.brightness == pytest.approx(0.536, abs=0.01)  # L* of sRGB 128 is 53.6
    assert result.colourfulness < 0.5


def test_stripes_are_sharp_and_blurred_stripes_are_blurry(props: PropertiesAnalyzer) -> None:
    stripes = _stripes()
    sharp, soft = props([stripes, stripes.filter(ImageFilter.GaussianBlur(12))])  # sigma 3 px at 128 px
    # Half L* 0, half L* 100 is 0.5; the antialiased 128 px rendition softens each edge by about a pixel.
    assert sharp.contrast > 0.4 and soft.contrast < sharp.contrast
    assert {c.name for c in sharp.colours[:2]} == {"black", "white"}  # then a little gray from the edges
    assert sum(c.fraction for c in sharp.colours[:2]) > 0.7
    assert sharp.sharpness > 10 * props.settings.properties_blur_threshold and not sharp.blurry
    # Variance of the Laplacian scales with edge contrast: full-contrast stripes 8 px wide need a blur of
    # sigma 3 px (at 128 px) to fall below the threshold; for the sample photos sigma 1.5 px is enough.
    assert soft.sharpness < sharp.sharpness / 50 and soft.blurry


@pytest.mark.parametrize(
    ("size", "orientation", "aspect"),
    [
        ((300, 200), Orientation.LANDSCAPE, 1.5),
        ((200, 300), Orientation.PORTRAIT, 0.6667),
        ((200, 200), Orientation.SQUARE, 1.0),
        ((204, 200), Orientation.SQUARE, 1.02),  # within the tolerance
        ((16, 2000), Orientation.PORTRAIT, 0.008),
        ((2000, 16), Orientation.LANDSCAPE, 125.0),
    ],
)
def test_orientation_and_aspect(
    props: PropertiesAnalyzer, size: tuple[int, int], orientation: Orientation, aspect: float
) -> None:
    result = _one(props, _solid((40, 120, 200), size))
    assert result.orientation == orientation
    assert result.aspect_ratio == pytest.approx(aspect, abs=1e-4)


def test_odd_inputs_do_not_crash(props: PropertiesAnalyzer) -> None:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    odd = [
        _solid((0, 0, 0), (16, 16)),
        _solid((255, 255, 255), (16, 2000)),
        _stripes(16),
        noise,
        Image.new("L", (40, 30), 77),  # not RGB: converted
        Image.new("RGB", (3000, 17), (10, 200, 30)),
    ]
    results = props(odd)
    validator = TypeAdapter(PropertiesResult)
    for result in results:
        assert 1 <= len(result.colours) <= 5
        validator.validate_python(result.to_dict())
    assert not results[3].blurry and results[3].colourfulness > 50  # noise: all detail, all colours
    assert results[4].colours[0].name == "gray"
    assert results[5].colours[0].name == "green"


def test_samples_get_valid_plausible_results(
    props: PropertiesAnalyzer, samples: dict[str, Image.Image]
) -> None:
    results = dict(zip(samples, props(list(samples.values())), strict=True))
    validator = TypeAdapter(PropertiesResult)
    for name, result in results.items():
        data = result.to_dict()
        assert data["schema"] == "feedlens.properties/1"
        validator.validate_python(data)
        json.dumps(data)  # plain JSON types throughout
        assert not result.blurry, name  # the sample photos are all in focus
    assert results["camera.png"].colourfulness < 1.0  # a grayscale photo stored as RGB
    assert results["coffee.png"].colourfulness > 30 and results["flower.jpg"].colourfulness > 30
    assert results["hubble_deep_field.jpg"].brightness < 0.15
    assert results["hubble_deep_field.jpg"].colours[0].name == "black"
    assert results["hubble_deep_field.jpg"].colours[0].fraction > 0.8
    assert results["rocket.jpg"].colours[0].name == "blue"  # the evening sky
    tabby = sum(c.fraction for c in results["chelsea.png"].colours if c.name in ("brown", "beige"))
    assert tabby > 0.7
    assert results["chelsea.png"].orientation == Orientation.LANDSCAPE
    assert results["grace_hopper.jpg"].orientation == Orientation.PORTRAIT


def test_blurred_photos_are_blurry(props: PropertiesAnalyzer, samples: dict[str, Image.Image]) -> None:
    # Gaussian sigma 1.2% of the shorter side: 1.5 px at the 128 px rendition.
    blurred = [im.filter(ImageFilter.GaussianBlur(0.012 * min(im.size))) for im in samples.values()]
    for name, sharp, soft in zip(samples, props(list(samples.values())), props(blurred), strict=True):
        assert soft.blurry, name
        assert soft.sharpness < sharp.sharpness / 3, name


def test_sharpness_does_not_depend_on_decoded_size(
    props: PropertiesAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    for name in ("chelsea.png", "china.jpg", "grace_hopper.jpg"):
        full = _one(props, decoder.decode(sample_dir / name).image)
        reduced = _one(props, decoder.decode(sample_dir / name, min_side=props.input_size).image)
        assert reduced.sharpness == pytest.approx(full.sharpness, rel=0.2), name
        assert reduced.brightness == pytest.approx(full.brightness, abs=0.01)
        assert hamming(reduced.phash, full.phash) <= 2


def test_reencoded_copy_hashes_close_other_photos_far(
    props: PropertiesAnalyzer, decoder: ImageDecoder, sample_dir: Path, samples: dict[str, Image.Image]
) -> None:
    for name in ("chelsea.png", "coffee.png", "hubble_deep_field.jpg"):
        original = Image.open(sample_dir / name).convert("RGB")
        small = original.resize((original.width * 2 // 3, original.height * 2 // 3))
        copy = decoder.decode(encode(small, "JPEG", quality=60), min_side=props.input_size).image
        a, b = props([samples[name], copy])
        assert hamming(a.phash, b.phash) <= 6 and hamming(a.dhash, b.dhash) <= 6, name
    results = props(list(samples.values()))
    for a, b in itertools.combinations(results, 2):
        assert hamming(a.phash, b.phash) > 20
    chelsea, coffee = (results[list(samples).index(n)] for n in ("chelsea.png", "coffee.png"))
    assert hamming(chelsea.dhash, coffee.dhash) > 20


def test_batching_and_repeats_give_identical_results(
    props: PropertiesAnalyzer, samples: dict[str, Image.Image]
) -> None:
    images = list(samples.values())[:4]
    batched = props(images)
    assert batched == [props([im])[0] for im in images]  # k-means is seeded: exactly equal
    assert batched == props(images)


def test_cheap_enough(props: PropertiesAnalyzer, samples: dict[str, Image.Image]) -> None:
    images = list(samples.values())
    props(images)
    start = time.process_time()  # CPU time: robust to other processes sharing the machine
    for _ in range(3):
        props(images)
    per_image_ms = (time.process_time() - start) / (3 * len(images)) * 1000
    assert per_image_ms < 20, per_image_ms  # measured ~3.5 ms; 20 leaves room for slow CI machines


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((255, 0, 0), "red"),
        ((128, 0, 0), "red"),
        ((255, 165, 0), "orange"),
        ((255, 255, 0), "yellow"),
        ((0, 255, 0), "green"),
        ((0, 100, 0), "green"),
        ((0, 128, 128), "teal"),
        ((0, 255, 255), "teal"),
        ((0, 0, 255), "blue"),
        ((0, 0, 128), "blue"),
        ((135, 206, 235), "blue"),
        ((128, 0, 128), "purple"),
        ((128, 0, 255), "purple"),
        ((255, 192, 203), "pink"),
        ((255, 0, 255), "pink"),
        ((139, 69, 19), "brown"),
        ((210, 180, 140), "beige"),
        ((245, 245, 220), "beige"),
        ((178, 152, 143), "beige"),  # taupe: muted, light
        ((166, 126, 96), "brown"),  # tan in shade: muted, dark
        ((224, 172, 105), "orange"),  # saturated enough to be orange
        ((0, 0, 0), "black"),
        ((30, 30, 30), "black"),
        ((128, 128, 128), "gray"),
        ((240, 240, 240), "white"),
    ],
)
def test_colour_names_of_reference_colours(rgb: tuple[int, int, int], name: str) -> None:
    lab = to_lab(np.array([[rgb]], dtype=np.uint8))[0, 0]
    assert colour_name(lab) == name


def test_hamming() -> None:
    assert hamming("0" * 16, "0" * 16) == 0
    assert hamming("f" * 16, "0" * 16) == 64
    assert hamming("8000000000000001", "0000000000000000") == 2
    with pytest.raises(ValueError, match="length"):
        hamming("ff", "fff")


def _colour(**change: object) -> DominantColour:
    fields: dict[str, object] = {"hex": "#ff0000", "lab": (53.2, 80.1, 67.2), "fraction": 1.0, "name": "red"}
    return DominantColour(**(fields | change))  # type: ignore[arg-type]


def _result(**change: object) -> PropertiesResult:
    fields: dict[str, object] = {
        "colours": (_colour(),),
        "brightness": 0.5,
        "contrast": 0.1,
        "sharpness": 300.0,
        "blurry": False,
        "colourfulness": 40.0,
        "orientation": Orientation.LANDSCAPE,
        "aspect_ratio": 1.5,
        "phash": "c2924c5532bddfc8",
        "dhash": "cd8d991d897293a7",
    }
    return PropertiesResult(**(fields | change))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        {"hex": "red"},
        {"hex": "#FF0000"},
        {"name": "vermilion"},
        {"fraction": 1.5},
        {"lab": (120.0, 0.0, 0.0)},
        {"lab": (50.0, float("nan"), 0.0)},
    ],
)
def test_colour_refuses_impossible_values(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _colour(**change)


@pytest.mark.parametrize(
    "change",
    [
        {"colours": ()},
        {"colours": (_colour(fraction=0.5),)},  # does not sum to 1
        {"colours": (_colour(fraction=0.3), _colour(fraction=0.7))},  # not by descending fraction
        {"brightness": 1.2},
        {"contrast": -0.1},
        {"sharpness": float("inf")},
        {"aspect_ratio": 0.0},
        {"orientation": "diagonal"},
        {"phash": "xyz"},
        {"dhash": "C2924C5532BDDFC8"},
    ],
)
def test_result_refuses_impossible_values(change: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _result(**change)


def test_identity_and_schema(props: PropertiesAnalyzer) -> None:
    assert props.version == "properties-1"  # no artifacts: the code version alone
    schema = PropertiesAnalyzer.json_schema()
    assert schema["$id"] == "feedlens.properties/1"
    assert {"colours", "brightness", "sharpness", "phash", "dhash"} <= set(schema["properties"])
