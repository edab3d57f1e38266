"""Logo matching on real photos (scikit-image's samples) with logos drawn here and pasted at moderate
transformations: found where they are, not in untouched photos nor where a look-alike is; bad references
refused with typed errors; features survive serialisation."""

from __future__ import annotations

import io
import math
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from skimage import data

from feedlens.analyzers.logo_features import MASK_MARGIN, REF_SIDE
from feedlens.analyzers.logo_matcher import (
    LogoDetection,
    LogoFeaturesError,
    LogoIndex,
    LogoNoFeaturesError,
    LogoTooSmallError,
    LogoUnreadableError,
    ReferenceLogo,
    quad_iou,
)

FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def draw_logo(word: str, badge: tuple[int, int, int] | None = (250, 250, 250)) -> Image.Image:
    """A mountain icon and a word, on a badge or (badge None) transparent, cropped to the logo."""
    font = ImageFont.truetype(str(FONTS / "DejaVuSans-Bold.ttf"), 80)
    x0, y0, x1, y1 = (int(v) for v in font.getbbox(word))
    width, height = 190 + x1 - x0, 170
    image = Image.new("RGBA", (width, height), (*badge, 255) if badge else (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.polygon([(10, 160), (75, 20), (140, 160)], fill=(20, 40, 110))
    draw.polygon([(80, 160), (120, 80), (160, 160)], fill=(100, 150, 220))
    draw.polygon([(58, 57), (75, 20), (92, 57)], fill=(255, 255, 255) if badge else (200, 200, 200))
    draw.text((170 - x0, (height - (y1 - y0)) // 2 - y0), word, font=font, fill=(20, 40, 110))
    return image.crop(image.getbbox())


def photo(name: str) -> np.ndarray:
    """A scikit-image sample as (H, W, 3) uint8, scaled to 1000 px on its longer side."""
    rgb = Image.fromarray(getattr(data, name)()).convert("RGB")
    scale = 1000 / max(rgb.size)
    return np.asarray(
        rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BICUBIC)
    )


def quad_at(
    centre: tuple[float, float], width: float, logo: Image.Image, angle: float, tilt: float
) -> np.ndarray:
    """(4, 2) TL, TR, BR, BL px: the logo `width` px wide, rotated by `angle` degrees, its right side
    shortened by `tilt` (perspective)."""
    h = width * logo.height / logo.width
    rect = np.array(
        [
            [-width / 2, -h / 2],
            [width / 2, -h / 2 * (1 - tilt)],
            [width / 2, h / 2 * (1 - tilt)],
            [-width / 2, h / 2],
        ]
    )
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.asarray(rect @ rot.T + np.array(centre))


def paste(canvas: np.ndarray, logo: Image.Image, quad: np.ndarray) -> np.ndarray:
    """The RGBA logo warped onto a copy of the (H, W, 3) canvas at quad."""
    small = logo.copy()
    small.thumbnail((round(np.ptp(quad[:, 0]) * 1.2),) * 2, Image.Resampling.LANCZOS)
    src = np.array([[0, 0], [small.width, 0], [small.width, small.height], [0, small.height]], np.float32)
    m = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    warped = cv2.warpPerspective(np.asarray(small, np.float32), m, (canvas.shape[1], canvas.shape[0]))
    alpha = warped[..., 3:] / 255
    return np.clip(canvas * (1 - alpha) + warped[..., :3] * alpha + 0.5, 0, 255).astype(np.uint8)


def camera(canvas: np.ndarray, blur: float = 0.8, quality: int = 80) -> Image.Image:
    """Blur and JPEG round trip, as a phone and a network would."""
    out = io.BytesIO()
    Image.fromarray(canvas).filter(ImageFilter.GaussianBlur(blur)).save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def iou(detection: LogoDetection, quad: np.ndarray, image: Image.Image) -> float:
    return quad_iou(np.array(detection.quad) * np.array(image.size), quad)


@pytest.fixture(scope="module")
def logos() -> dict[str, Image.Image]:
    return {
        "Nordwind": draw_logo("NORDWIND"),
        "Kestrel": draw_logo("Kestrel Co", badge=(255, 230, 120)),
        "look-alike": draw_logo("GLACIER"),  # Nordwind's icon and colours, another word; not registered
    }


@pytest.fixture(scope="module")
def index(logos: dict[str, Image.Image]) -> LogoIndex:
    refs = [(name, f"{name}-1", ReferenceLogo.from_image(logos[name])) for name in ("Nordwind", "Kestrel")]
    return LogoIndex(refs)


def test_found_at_moderate_transformation(index: LogoIndex, logos: dict[str, Image.Image]) -> None:
    base = photo("astronaut")
    for angle, tilt, width in ((20, 0.15, 300), (-25, 0.2, 220)):
        quad = quad_at((480, 620), width, logos["Nordwind"], angle, tilt)
        image = camera(paste(base, logos["Nordwind"], quad))
        found = index.detect(image)
        assert [d.brand for d in found] == ["Nordwind"], found
        assert iou(found[0], quad, image) > 0.5
        assert found[0].reference == "Nordwind-1"
        assert found[0].inliers >= 10 and 0.5 < found[0].score <= 1
        assert len(found[0].quad) == 4 and all(0 <= v <= 1 for p in found[0].quad for v in p)


def test_nothing_in_untouched_photos(index: LogoIndex) -> None:
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "page", "text", "coins"):
        assert index.detect(camera(photo(name), blur=0.1, quality=90)) == [], name


def test_look_alike_is_not_the_brand(index: LogoIndex, logos: dict[str, Image.Image]) -> None:
    quad = quad_at((500, 300), 320, logos["look-alike"], 10, 0.1)
    image = camera(paste(photo("coffee"), logos["look-alike"], quad))
    assert index.detect(image) == []


def test_several_instances_and_brands(index: LogoIndex, logos: dict[str, Image.Image]) -> None:
    canvas = photo("rocket")
    quads = {
        "Nordwind": [
            quad_at((250, 150), 280, logos["Nordwind"], 8, 0.1),
            quad_at((700, 520), 260, logos["Nordwind"], -15, 0.1),
        ],
        "Kestrel": [quad_at((650, 200), 300, logos["Kestrel"], 0, 0.15)],
    }
    for name, places in quads.items():
        for quad in places:
            canvas = paste(canvas, logos[name], quad)
    image = camera(canvas)
    found = index.detect(image)
    assert sorted(d.brand for d in found) == ["Kestrel", "Nordwind", "Nordwind"], found
    for name, places in quads.items():
        for quad in places:
            assert any(d.brand == name and iou(d, quad, image) > 0.5 for d in found), (name, found)
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)


def test_transparent_logo_keypoints_stay_on_the_logo(logos: dict[str, Image.Image]) -> None:
    logo = draw_logo("NORDWIND", badge=None)  # transparent between the letters
    ref = ReferenceLogo.from_image(logo)
    alpha = np.asarray(logo.resize(ref.frame, Image.Resampling.NEAREST))[..., 3] >= 128
    away = cv2.distanceTransform((~alpha).astype(np.uint8), cv2.DIST_L2, 3)  # px to the nearest opaque one
    x, y = np.clip(ref.points.round().astype(int), 0, [ref.frame[0] - 1, ref.frame[1] - 1]).T
    assert np.mean(away[y, x] <= MASK_MARGIN * 2 + 1) > 0.95  # up to the mask margin, 4x scale rounding
    assert max(ref.frame) == REF_SIDE and (ref.width, ref.height) == logo.size
    assert set(np.unique(ref.levels)) == {0, 1, 2}  # a pyramid of the reference


def test_bad_references_give_typed_errors() -> None:
    with pytest.raises(LogoUnreadableError) as unreadable:
        ReferenceLogo.from_bytes(b"this is not an image")
    assert unreadable.value.code == "logo_unreadable"
    with pytest.raises(LogoTooSmallError) as small:
        ReferenceLogo.from_image(draw_logo("NORDWIND").resize((40, 12)))
    assert small.value.code == "logo_too_small"
    flat = Image.new("RGB", (300, 120), (200, 30, 30))
    with pytest.raises(LogoNoFeaturesError) as plain:
        ReferenceLogo.from_image(flat)
    assert plain.value.code == "logo_no_features"
    with pytest.raises(LogoNoFeaturesError):
        ReferenceLogo.from_image(Image.new("RGBA", (300, 120), (0, 0, 0, 0)))


def test_features_round_trip(index: LogoIndex, logos: dict[str, Image.Image]) -> None:
    png = io.BytesIO()
    logos["Kestrel"].save(png, "PNG")
    ref = ReferenceLogo.from_bytes(png.getvalue())
    back = ReferenceLogo.from_bytes_features(ref.to_bytes())
    assert (back.kind, back.width, back.height, back.frame) == (ref.kind, ref.width, ref.height, ref.frame)
    for name in ("points", "sizes", "angles", "levels", "descriptors"):
        assert np.array_equal(getattr(back, name), getattr(ref, name)), name
    quad = quad_at((500, 400), 300, logos["Kestrel"], 12, 0.1)
    image = camera(paste(photo("chelsea"), logos["Kestrel"], quad))
    assert LogoIndex([("Kestrel", "k", back)]).detect(image) == LogoIndex([("Kestrel", "k", ref)]).detect(
        image
    )
    with pytest.raises(LogoFeaturesError):
        ReferenceLogo.from_bytes_features(ref.to_bytes()[:100])


def test_empty_index_and_array_inputs(index: LogoIndex) -> None:
    assert LogoIndex([]).detect(photo("coffee")) == []
    gray = cv2.cvtColor(photo("coffee"), cv2.COLOR_RGB2GRAY)
    assert index.detect(gray) == [] and index.detect(photo("coffee")) == []
