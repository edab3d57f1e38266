"""Logo detection quality and speed (issue "brands"): precision and recall of `LogoIndex.detect` on composites
of real photos with reference logos pasted in, per brand and per difficulty, false positives on untouched
photos and on photos with look-alike (unregistered) logos, and ms per 1 MP image with 10 and 100 brands.
ORB and SIFT are both measured; the module's DEFAULT_KIND is the one chosen here.

Logos: no logo data set is available offline, so most are drawn here with PIL (matplotlib's DejaVu, STIX
and Computer Modern fonts, shapes, colours): 10 registered brands, two of them a look-alike pair (SOLARIS /
POLARIS: same sun, similar word), plus two real logos that pinned packages ship (matplotlib's
`sample_data/logo2.png`, scikit-image's `data/logo.png`). Unregistered decoys share shapes and colours with
registered brands but not their words. For the 100-brand timing, 88 more logos are generated at random.
Photos: the real photos scikit-image, scikit-learn and matplotlib ship, scaled to 1200 px on the longer side
(about 1 MP); composites paste 1-2 instances with a random homography, occlusion, blur, lighting and JPEG
per difficulty, all seeded.

Run: `benchmarks/brands_quality.py --out docs/benchmarks.md --doc docs/brands.md` (`--quick` for fewer).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import faiss
import matplotlib
import numpy as np
import skimage
import sklearn.datasets
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).parent))
from run import write_section

from feedlens.analyzers.logo_matcher import (
    FLAT_MAX,
    FeatureKind,
    LogoDetection,
    LogoIndex,
    MatchParams,
    ReferenceLogo,
    quad_iou,
)

START, END = "<!-- bench:brands:start -->", "<!-- bench:brands:end -->"
FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
SIDE = 1200  # composites' longer side: about 1 MP at 4:3
MATCH_IOU = 0.5
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class LogoSpec:
    """A synthetic logo: an icon and a word. `badge` None: transparent background."""

    name: str
    text: str
    font: str
    fg: RGB
    accent: RGB
    icon: str
    badge: RGB | None = None
    layout: str = "left"


REGISTERED = (
    LogoSpec(
        "Nordwind",
        "NORDWIND",
        "DejaVuSans-Bold.ttf",
        (20, 40, 110),
        (120, 170, 230),
        "mountain",
        (255, 255, 255),
    ),
    LogoSpec("Kaffe Oslo", "Kaffe Oslo", "DejaVuSerif-Bold.ttf", (90, 50, 20), (200, 140, 60), "cup"),
    LogoSpec("Zephyra", "ZEPHYRA", "DejaVuSansMono-Bold.ttf", (110, 30, 140), (240, 190, 40), "star"),
    LogoSpec(
        "Bluefin",
        "bluefin",
        "DejaVuSans-BoldOblique.ttf",
        (255, 255, 255),
        (150, 220, 255),
        "waves",
        (10, 80, 170),
        "top",
    ),
    LogoSpec(
        "Ortega & Sons",
        "Ortega & Sons",
        "DejaVuSerif-BoldItalic.ttf",
        (20, 100, 50),
        (200, 170, 60),
        "diamond",
    ),
    LogoSpec("Voltex", "VOLTEX", "DejaVuSans-Bold.ttf", (250, 220, 0), (255, 255, 255), "bolt", (20, 20, 20)),
    LogoSpec(
        "Pixelmint", "pixelmint", "DejaVuSansMono.ttf", (60, 200, 160), (230, 250, 240), "grid", (30, 40, 50)
    ),
    LogoSpec("Solaris", "SOLARIS", "STIXGeneralBol.ttf", (230, 110, 0), (250, 190, 30), "sun"),
    LogoSpec("Polaris", "POLARIS", "STIXGeneralBol.ttf", (230, 110, 0), (250, 190, 30), "sun"),
    LogoSpec("Hexacore", "Hexacore", "DejaVuSans.ttf", (200, 30, 40), (60, 60, 60), "hexagon", None, "top"),
)
DECOYS = (  # unregistered: a registered brand's icon and colours with another word
    LogoSpec(
        "decoy Nordwand",
        "NORDWAND",
        "DejaVuSans-Bold.ttf",
        (20, 40, 110),
        (120, 170, 230),
        "mountain",
        (255, 255, 255),
    ),
    LogoSpec(
        "decoy Kaffe Bergen", "Kaffe Bergen", "DejaVuSerif-Bold.ttf", (90, 50, 20), (200, 140, 60), "cup"
    ),
    LogoSpec(
        "decoy Voltage",
        "VOLTAGE",
        "DejaVuSans-Bold.ttf",
        (250, 220, 0),
        (255, 255, 255),
        "bolt",
        (20, 20, 20),
    ),
    LogoSpec(
        "decoy Hexagram", "Hexagram", "DejaVuSans.ttf", (200, 30, 40), (60, 60, 60), "hexagon", None, "top"
    ),
    LogoSpec("decoy Zephyr", "ZEPHYR", "DejaVuSansMono-Bold.ttf", (110, 30, 140), (240, 190, 40), "star"),
)
REAL = {  # real logos shipped by pinned packages: (package, path inside it)
    "matplotlib": ("matplotlib", "mpl-data/sample_data/logo2.png"),
    "scikit-image": ("skimage", "data/logo.png"),
}
ICONS = ("mountain", "cup", "star", "waves", "diamond", "bolt", "grid", "sun", "hexagon", "rings", "leaf")
RANDOM_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSerif-Italic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "cmb10.ttf",
    "cmss10.ttf",
    "cmr10.ttf",
)


def _icon(draw: ImageDraw.ImageDraw, icon: str, size: int, fg: RGB, accent: RGB) -> None:
    """Draw one icon in the (0, 0, size, size) square."""
    s, c = size, size / 2
    if icon == "mountain":
        draw.polygon([(0, s), (0.45 * s, 0.1 * s), (0.9 * s, s)], fill=fg)
        draw.polygon([(0.45 * s, s), (0.72 * s, 0.4 * s), (s, s)], fill=accent)
        draw.polygon([(0.34 * s, 0.35 * s), (0.45 * s, 0.1 * s), (0.56 * s, 0.35 * s)], fill=(255, 255, 255))
    elif icon == "cup":
        draw.ellipse((0.05 * s, 0.3 * s, 0.75 * s, s), outline=fg, width=s // 10)
        draw.arc((0.6 * s, 0.45 * s, 0.95 * s, 0.8 * s), -90, 90, fill=fg, width=s // 14)
        for x in (0.25, 0.4, 0.55):
            draw.line(
                [(x * s, 0.05 * s), (x * s + 0.06 * s, 0.15 * s), (x * s, 0.25 * s)],
                fill=accent,
                width=s // 20,
            )
    elif icon == "star":
        pts = [
            (
                c + (0.5 if i % 2 == 0 else 0.2) * s * math.sin(i * math.pi / 5),
                c - (0.5 if i % 2 == 0 else 0.2) * s * math.cos(i * math.pi / 5),
            )
            for i in range(10)
        ]
        draw.polygon(pts, fill=fg)
        draw.ellipse((c - 0.1 * s, c - 0.1 * s, c + 0.1 * s, c + 0.1 * s), fill=accent)
    elif icon == "waves":
        for k in range(3):
            pts = [
                (x, (0.3 + 0.22 * k) * s + 0.08 * s * math.sin(x / s * 2 * math.pi * 1.5)) for x in range(s)
            ]
            draw.line(pts, fill=fg if k % 2 == 0 else accent, width=s // 12)
    elif icon == "diamond":
        for k, col in enumerate((fg, accent, fg)):
            r = (0.5 - 0.14 * k) * s
            draw.polygon([(c, c - r), (c + r, c), (c, c + r), (c - r, c)], fill=col)
    elif icon == "bolt":
        draw.polygon(
            [
                (0.55 * s, 0),
                (0.15 * s, 0.55 * s),
                (0.45 * s, 0.55 * s),
                (0.3 * s, s),
                (0.85 * s, 0.4 * s),
                (0.55 * s, 0.4 * s),
                (0.75 * s, 0),
            ],
            fill=fg,
        )
        draw.line([(0.8 * s, 0.6 * s), (0.95 * s, 0.75 * s), (0.8 * s, 0.9 * s)], fill=accent, width=s // 14)
    elif icon == "grid":
        for i in range(9):
            if i != 5:
                x, y = (i % 3) * s / 3, (i // 3) * s / 3
                draw.rectangle((x + 4, y + 4, x + s / 3 - 4, y + s / 3 - 4), fill=fg if i % 2 else accent)
    elif icon == "sun":
        draw.ellipse((c - 0.25 * s, c - 0.25 * s, c + 0.25 * s, c + 0.25 * s), fill=fg)
        for i in range(12):
            a = i * math.pi / 6
            draw.line(
                [
                    (c + 0.32 * s * math.cos(a), c + 0.32 * s * math.sin(a)),
                    (c + 0.48 * s * math.cos(a), c + 0.48 * s * math.sin(a)),
                ],
                fill=accent,
                width=s // 16,
            )
    elif icon == "hexagon":
        hexagon = [
            (c + 0.48 * s * math.cos(a), c + 0.48 * s * math.sin(a)) for a in np.arange(6) * math.pi / 3
        ]
        draw.polygon(hexagon, fill=fg)
        for a in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3):
            draw.line(
                [(c, c), (c + 0.4 * s * math.cos(a), c + 0.4 * s * math.sin(a))], fill=accent, width=s // 12
            )
    elif icon == "rings":
        for k, col in enumerate((fg, accent, fg, accent)):
            r = (0.48 - 0.1 * k) * s
            draw.ellipse((c - r, c - r, c + r, c + r), outline=col, width=s // 18)
        draw.rectangle((c - 0.05 * s, 0, c + 0.05 * s, c), fill=accent)
    else:  # leaf
        draw.ellipse((0.1 * s, 0.25 * s, 0.9 * s, 0.75 * s), fill=fg)
        draw.line([(0.1 * s, c), (0.95 * s, 0.3 * s)], fill=accent, width=s // 16)
        for x in (0.3, 0.5, 0.7):
            draw.line([(x * s, c - 0.02 * s), (x * s + 0.1 * s, 0.3 * s)], fill=accent, width=s // 30)


def make_logo(spec: LogoSpec) -> Image.Image:
    """RGBA logo cropped to its opaque pixels: icon beside (or above) the word, on a badge or transparent."""
    font = ImageFont.truetype(str(FONTS / spec.font), 90)
    x0, y0, x1, y1 = (int(v) for v in font.getbbox(spec.text))
    icon_side = 150
    pad = 24 if spec.badge else 0
    if spec.layout == "left":
        width, height = icon_side + 20 + (x1 - x0) + 2 * pad, max(icon_side, y1 - y0) + 2 * pad
        icon_at, text_at = (
            (pad, (height - icon_side) // 2),
            (pad + icon_side + 20 - x0, (height - (y1 - y0)) // 2 - y0),
        )
    else:
        width, height = max(icon_side, x1 - x0) + 2 * pad, icon_side + 16 + (y1 - y0) + 2 * pad
        icon_at, text_at = (
            ((width - icon_side) // 2, pad),
            ((width - (x1 - x0)) // 2 - x0, pad + icon_side + 16 - y0),
        )
    canvas = Image.new("RGBA", (width, height), (*spec.badge, 255) if spec.badge else (0, 0, 0, 0))
    icon = Image.new("RGBA", (icon_side, icon_side), (0, 0, 0, 0))
    _icon(ImageDraw.Draw(icon), spec.icon, icon_side, spec.fg, spec.accent)
    canvas.alpha_composite(icon, icon_at)
    ImageDraw.Draw(canvas).text(text_at, spec.text, font=font, fill=(*spec.fg, 255))
    return canvas.crop(canvas.getbbox())


def real_logo(package: str, path: str) -> Image.Image:
    root = {"matplotlib": Path(matplotlib.__file__).parent, "skimage": Path(skimage.__file__).parent}[package]
    with Image.open(root / path) as im:
        rgba = im.convert("RGBA")
    return rgba.crop(rgba.getchannel("A").point(lambda a: 255 if a >= 128 else 0).getbbox())


def random_specs(n: int, seed: int = 7) -> list[LogoSpec]:
    """n more brands for the 100-brand index: random words, icons, fonts and colours."""
    rng = np.random.default_rng(seed)
    syllables = [
        "ka",
        "lo",
        "mi",
        "tr",
        "ven",
        "or",
        "zu",
        "pa",
        "ne",
        "ux",
        "qui",
        "ra",
        "st",
        "el",
        "bo",
        "dri",
    ]

    def colour() -> RGB:
        return (int(rng.integers(0, 220)), int(rng.integers(0, 220)), int(rng.integers(0, 220)))

    out = []
    for i in range(n):
        word = "".join(rng.choice(syllables, int(rng.integers(2, 4)))).capitalize()
        text = word.upper() if rng.random() < 0.5 else word
        badge = (250, 250, 245) if rng.random() < 0.3 else None
        layout = "left" if rng.random() < 0.7 else "top"
        spec = LogoSpec(
            f"r{i:02d} {word}",
            text,
            str(rng.choice(RANDOM_FONTS)),
            colour(),
            colour(),
            str(rng.choice(ICONS)),
            badge,
            layout,
        )
        out.append(spec)
    return out


@dataclass(frozen=True)
class Level:
    """A difficulty: ranges the random transformations are drawn from."""

    size: tuple[float, float]  # logo's longer side / image's longer side
    rotation: float  # degrees, +-
    perspective: float  # corner jitter / logo's longer side, +-
    occlusion: float  # largest covered fraction of the logo's box
    blur: float  # largest Gaussian sigma, px
    light: float  # logo gain 1 +- this
    noise: float  # Gaussian noise sigma
    jpeg: tuple[int, int]


LEVELS = {
    "easy": Level((0.25, 0.4), 10, 0.03, 0.0, 0.0, 0.1, 0.0, (88, 95)),
    "moderate": Level((0.14, 0.25), 30, 0.08, 0.15, 1.0, 0.25, 2.0, (70, 85)),
    "hard": Level((0.08, 0.14), 60, 0.15, 0.3, 1.6, 0.4, 4.0, (50, 70)),
}
PHOTOS = {  # real photos shipped by pinned packages: (package, file)
    "skimage": [
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
        "rocket.jpg",
        "motorcycle_left.png",
        "camera.png",
        "hubble_deep_field.jpg",
        "coins.png",
        "page.png",
        "text.png",
        "retina.jpg",
        "moon.png",
        "brick.png",
        "grass.png",
        "gravel.png",
        "ihc.png",
        "motorcycle_right.png",
    ],
    "sklearn": ["china.jpg", "flower.jpg"],
    "matplotlib": ["grace_hopper.jpg"],
}


def load_photos() -> list[tuple[str, np.ndarray]]:
    """(name, (H, W, 3) uint8 RGB) with the longer side scaled to SIDE."""
    roots = {
        "skimage": Path(skimage.__file__).parent / "data",
        "sklearn": Path(sklearn.datasets.__file__).parent / "images",
        "matplotlib": Path(matplotlib.get_data_path()) / "sample_data",
    }
    out = []
    for package, names in PHOTOS.items():
        for name in names:
            with Image.open(roots[package] / name) as im:
                rgb = im.convert("RGB")
            scale = SIDE / max(rgb.size)
            rgb = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.BICUBIC)
            out.append((name.split(".")[0], np.asarray(rgb)))
    return out


@dataclass
class Sample:
    """One test image (JPEG bytes) and its ground truth: (brand, (4, 2) quad px) per pasted instance."""

    jpeg: bytes
    group: str  # "positive", "untouched" or "decoy"
    level: str
    truth: list[tuple[str, np.ndarray]] = field(default_factory=list)


def random_quad(
    rng: np.random.Generator, wh: tuple[int, int], level: Level, shape: tuple[int, ...]
) -> np.ndarray:
    """(4, 2) px corners (TL, TR, BR, BL of the logo) inside an image of `shape`."""
    height, width = shape[:2]
    scale = rng.uniform(*level.size) * max(width, height) / max(wh)
    w, h = wh[0] * scale, wh[1] * scale
    a = math.radians(rng.uniform(-level.rotation, level.rotation))
    rect = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    quad = rect @ rot.T + rng.uniform(-level.perspective, level.perspective, (4, 2)) * max(w, h)
    lo, hi = quad.min(axis=0), quad.max(axis=0)
    centre = [rng.uniform(-lo[i] + 4, max(-lo[i] + 5, (width, height)[i] - hi[i] - 4)) for i in (0, 1)]
    return np.asarray(quad + np.array(centre))


def paste(
    canvas: np.ndarray, logo: Image.Image, quad: np.ndarray, rng: np.random.Generator, level: Level
) -> None:
    """Warp an RGBA logo onto the (H, W, 3) uint8 canvas at quad, with lighting and occlusion."""
    side = float(np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1).max())
    small = logo.copy()
    small.thumbnail((round(side * 1.2), round(side * 1.2)), Image.Resampling.LANCZOS)  # no aliasing in warp
    rgba = np.asarray(small).astype(np.float32)
    src = np.array([[0, 0], [small.width, 0], [small.width, small.height], [0, small.height]], np.float32)
    m = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    warped = cv2.warpPerspective(rgba, m, (canvas.shape[1], canvas.shape[0]), flags=cv2.INTER_LINEAR)
    alpha = warped[..., 3:] / 255
    lit = np.clip(warped[..., :3] * rng.uniform(1 - level.light, 1 + level.light), 0, 255)
    canvas[:] = np.clip(canvas * (1 - alpha) + lit * alpha + 0.5, 0, 255).astype(np.uint8)
    if level.occlusion > 0:  # a patch of the photo from elsewhere over a corner of the logo's box
        x0, y0 = quad.min(axis=0).astype(int)
        x1, y1 = quad.max(axis=0).astype(int)
        frac = rng.uniform(0, level.occlusion)
        ow, oh = int((x1 - x0) * math.sqrt(frac)), int((y1 - y0) * math.sqrt(frac))
        if ow > 2 and oh > 2:
            ox, oy = (x0 if rng.random() < 0.5 else x1 - ow), (y0 if rng.random() < 0.5 else y1 - oh)
            sx, sy = int(rng.integers(0, canvas.shape[1] - ow)), int(rng.integers(0, canvas.shape[0] - oh))
            canvas[oy : oy + oh, ox : ox + ow] = canvas[sy : sy + oh, sx : sx + ow].copy()


def finish(canvas: np.ndarray, rng: np.random.Generator, level: Level) -> bytes:
    """Whole-image blur, noise and JPEG, as the camera and the network would."""
    image = canvas.astype(np.float32)
    sigma = rng.uniform(0, level.blur)
    if sigma > 0.2:
        image = np.asarray(cv2.GaussianBlur(image, (0, 0), sigma))
    if level.noise:
        image += rng.normal(0, level.noise, image.shape).astype(np.float32)
    out = io.BytesIO()
    quality = int(rng.integers(level.jpeg[0], level.jpeg[1] + 1))
    Image.fromarray(np.clip(image + 0.5, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=quality)
    return out.getvalue()


def composite(
    photo: np.ndarray, logos: Sequence[tuple[str, Image.Image]], level: str, rng: np.random.Generator
) -> tuple[bytes, list[tuple[str, np.ndarray]]]:
    """Paste each (brand, logo) at a random place not overlapping the others'."""
    canvas, lv = photo.copy(), LEVELS[level]
    truth: list[tuple[str, np.ndarray]] = []
    for brand, logo in logos:
        for _ in range(50):
            quad = random_quad(rng, logo.size, lv, canvas.shape)
            if all(quad_iou(quad, q) == 0 for _, q in truth):
                break
        paste(canvas, logo, quad, rng, lv)
        truth.append((brand, quad))
    return finish(canvas, rng, lv), truth


def make_samples(
    photos: list[tuple[str, np.ndarray]],
    brands: dict[str, Image.Image],
    decoys: dict[str, Image.Image],
    reps: int,
    seed: int = 0,
) -> list[Sample]:
    """Per brand and level `reps` composites (a third with a second instance: same or another brand);
    every photo untouched and two random crops of it; per decoy `reps` moderate composites."""
    rng = np.random.default_rng(seed)
    names = sorted(brands)
    samples = []
    for level in LEVELS:
        for brand in names:
            for _ in range(reps):
                photo = photos[int(rng.integers(len(photos)))][1]
                logos = [(brand, brands[brand])]
                if rng.random() < 1 / 3:
                    other = brand if rng.random() < 0.5 else names[int(rng.integers(len(names)))]
                    logos.append((other, brands[other]))
                jpeg, truth = composite(photo, logos, level, rng)
                samples.append(Sample(jpeg, "positive", level, truth))
    for _, photo in photos:
        h, w = photo.shape[:2]
        views = [photo]
        for _ in range(2):
            cw, ch = int(w * rng.uniform(0.5, 0.8)), int(h * rng.uniform(0.5, 0.8))
            x, y = int(rng.integers(0, w - cw)), int(rng.integers(0, h - ch))
            crop = Image.fromarray(photo[y : y + ch, x : x + cw])
            views.append(np.asarray(crop.resize((w, h), Image.Resampling.BICUBIC)))
        for view in views:
            samples.append(Sample(finish(view, rng, LEVELS["easy"]), "untouched", "-"))
    for decoy in sorted(decoys):
        for _ in range(reps):
            photo = photos[int(rng.integers(len(photos)))][1]
            jpeg, _ = composite(photo, [(decoy, decoys[decoy])], "moderate", rng)
            samples.append(Sample(jpeg, "decoy", "look-alike"))  # moderate transformations
    return samples


@dataclass
class Outcome:
    """Counts of one configuration over the samples, and per-image detect times."""

    tp: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))  # (brand, level)
    fp: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    gt: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    images_with_fp: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # per group
    images: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    scores: list[tuple[float, int, bool]] = field(default_factory=list)  # (score, inliers, correct)
    seconds: list[float] = field(default_factory=list)

    def recall(self, brand: str | None = None, level: str | None = None) -> float:
        keys = [k for k in self.gt if (brand is None or k[0] == brand) and (level is None or k[1] == level)]
        return sum(self.tp[k] for k in keys) / max(1, sum(self.gt[k] for k in keys))

    def precision(self, brand: str | None = None, level: str | None = None) -> float:
        keys = {k for k in [*self.tp, *self.fp]}
        keys = {k for k in keys if (brand is None or k[0] == brand) and (level is None or k[1] == level)}
        tp, fp = sum(self.tp[k] for k in keys), sum(self.fp[k] for k in keys)
        return tp / (tp + fp) if tp + fp else 1.0

    def fp_rate(self, group: str) -> float:
        return self.images_with_fp[group] / max(1, self.images[group])

    def ms(self, q: float) -> float:
        return float(np.percentile(self.seconds, q) * 1000)


def evaluate(index: LogoIndex, samples: Sequence[Sample], max_side: int = 1000) -> Outcome:
    out = Outcome()
    for sample in samples:
        with Image.open(io.BytesIO(sample.jpeg)) as im:
            image = im.convert("RGB")
        start = time.perf_counter()
        found = index.detect(image, max_side=max_side)
        out.seconds.append(time.perf_counter() - start)
        score_sample(out, sample, found, image.size)
    return out


def score_sample(out: Outcome, sample: Sample, found: list[LogoDetection], size: tuple[int, int]) -> None:
    """Greedy matching by score: a detection is correct when it overlaps (IoU > MATCH_IOU) an unmatched
    instance of its brand."""
    scale = np.array(size, np.float64)
    unmatched = list(sample.truth)
    for brand, _ in sample.truth:
        out.gt[brand, sample.level] += 1
    wrong = 0
    for det in found:
        quad = np.array(det.quad) * scale
        hit = next(
            (i for i, t in enumerate(unmatched) if t[0] == det.brand and quad_iou(quad, t[1]) > MATCH_IOU),
            None,
        )
        if hit is not None:
            unmatched.pop(hit)
            out.tp[det.brand, sample.level] += 1
        else:
            out.fp[det.brand, sample.level] += 1
            wrong += 1
        out.scores.append((det.score, det.inliers, hit is not None))
    out.images[sample.group] += 1
    out.images_with_fp[sample.group] += wrong > 0


def build_index(refs: dict[str, Image.Image], kind: FeatureKind) -> tuple[LogoIndex, float]:
    """The index and the mean ms to extract one reference's features."""
    start = time.perf_counter()
    features = [(brand, brand, ReferenceLogo.from_image(logo, kind)) for brand, logo in refs.items()]
    per_ref = (time.perf_counter() - start) / len(refs) * 1000
    return LogoIndex(features), per_ref


RELAXED = MatchParams(min_inliers=6, min_inlier_ratio=0.1)  # to see the false detections the score must rank


def fit_score(
    samples: Sequence[Sample], ref_sets: Sequence[dict[str, Image.Image]], kind: FeatureKind
) -> str:
    """Logistic regression of correct / wrong on (log inliers, inlier ratio) over the detections of each
    reference set's index with relaxed thresholds, pooled: where logo_matcher.score's coefficients come
    from."""
    from sklearn.linear_model import LogisticRegression

    rows: list[tuple[float, float, bool]] = []
    for refs in ref_sets:
        index = LogoIndex([(b, b, ReferenceLogo.from_image(logo, kind)) for b, logo in refs.items()], RELAXED)
        for sample in samples:
            with Image.open(io.BytesIO(sample.jpeg)) as im:
                image = im.convert("RGB")
            out = Outcome()
            found = index.detect(image)
            score_sample(out, sample, found, image.size)
            rows += [
                (math.log(d.inliers), d.inlier_ratio, s[2]) for d, s in zip(found, out.scores, strict=True)
            ]
    x, y = np.array([r[:2] for r in rows]), np.array([r[2] for r in rows])
    model = LogisticRegression(C=10.0).fit(x, y)
    (a, b), c = model.coef_[0], model.intercept_[0]
    return (
        f"{len(y)} detections at min_inliers {RELAXED.min_inliers}, "
        f"min_inlier_ratio {RELAXED.min_inlier_ratio} "
        f"({y.sum()} correct): z = {a:.2f} log(inliers) {b:+.2f} inlier_ratio {c:+.2f}"
    )


@dataclass
class Run:
    """One configuration's outcome."""

    kind: FeatureKind
    max_side: int
    brands: int
    descriptors: int
    ref_ms: float
    outcome: Outcome


def run(
    kind: FeatureKind, refs: dict[str, Image.Image], samples: Sequence[Sample], max_side: int = 1000
) -> Run:
    index, ref_ms = build_index(refs, kind)
    outcome = evaluate(index, samples, max_side)
    print(
        f"{kind} {max_side}px {len(refs)} brands: recall {outcome.recall():.2f} precision "
        f"{outcome.precision():.2f} p50 {outcome.ms(50):.1f} ms",
        file=sys.stderr,
    )
    return Run(kind, max_side, len(refs), index.size, ref_ms, outcome)


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _recall(o: Outcome, brands: set[str], level: str | None = None) -> float:
    keys = [k for k in o.gt if k[0] in brands and (level is None or k[1] == level)]
    return sum(o.tp[k] for k in keys) / max(1, sum(o.gt[k] for k in keys))


def render(runs: dict[str, Run], samples: Sequence[Sample], transparent: set[str], fit: str) -> str:
    main, big, ten = runs["orb"], runs["orb-100"], runs["orb-10"]
    opaque = {k[0] for k in main.outcome.gt} - transparent
    groups: dict[str, int] = defaultdict(int)
    for s in samples:
        groups[s.group if s.group != "positive" else s.level] += 1
    instances = sum(len(s.truth) for s in samples)
    lines = [
        START,
        "## Logo detection (`brands`)",
        "",
        "`benchmarks/brands_quality.py`: composites of real photos (scikit-image, scikit-learn, matplotlib "
        f"samples, longer side {SIDE} px, matched at 1000 px) with reference logos pasted at random scale, "
        "rotation, perspective, occlusion, lighting, blur, noise and JPEG quality per difficulty (seeded). "
        f"{len(samples)} images: "
        + ", ".join(f"{n} {g}" for g, n in groups.items())
        + f"; {instances} pasted instances. A detection is correct when its quadrilateral overlaps an "
        f"instance of its brand with IoU > {MATCH_IOU}. Precision counts the detections in every image (the "
        "look-alike composites' included); per difficulty, in that difficulty's composites only.",
        "",
        f"Logos: {len(REGISTERED)} drawn here (PIL, matplotlib's DejaVu / STIX fonts; Solaris and Polaris "
        "are a "
        "registered look-alike pair) and the two real logos pinned packages ship (matplotlib's "
        "`sample_data/logo2.png`, scikit-image's `data/logo.png`) are registered; "
        f"{len(DECOYS)} unregistered decoys share a registered brand's icon, font and colours with another "
        f"word; {100 - len(REGISTERED) - len(REAL)} more random drawn "
        "logos fill the 100-brand index. Transparent logos are pasted as they are, straight onto the photo.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; OpenCV "
        f"{cv2.__version__} ({cv2.getNumThreads()} threads), faiss {faiss.__version__} "
        f"({faiss.omp_get_max_threads()} OpenMP threads). Times are `LogoIndex.detect` on a decoded RGB "
        "image (gray, resize, features, search, verification), p50 / p90 over every image.",
        "",
        "### SIFT or ORB",
        "",
        "| features | brands | matched at | recall easy | moderate | hard | precision | false-positive "
        "images: untouched | look-alikes | ms p50 | p90 | descriptors | ms per reference |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in ("orb", "sift", "sift-700", "orb-100", "sift-100"):
        r, o = runs[key], runs[key].outcome
        lines.append(
            f"| {r.kind.upper()} | {r.brands} | {r.max_side} px | {pct(o.recall(level='easy'))} | "
            f"{pct(o.recall(level='moderate'))} | {pct(o.recall(level='hard'))} | {pct(o.precision())} | "
            f"{pct(o.fp_rate('untouched'))} | {pct(o.fp_rate('decoy'))} | {o.ms(50):.0f} | {o.ms(90):.0f} | "
            f"{r.descriptors} | {r.ref_ms:.0f} |"
        )
    lines += [
        "",
        "### Per difficulty (ORB, 12 brands)",
        "",
        "| difficulty | instances | recall | opaque logos | transparent logos | precision |",
        "|---|---|---|---|---|---|",
        *[
            f"| {level} | {sum(n for k, n in main.outcome.gt.items() if k[1] == level)} | "
            f"{pct(main.outcome.recall(level=level))} | {pct(_recall(main.outcome, opaque, level))} | "
            f"{pct(_recall(main.outcome, transparent, level))} | {pct(main.outcome.precision(level=level))} |"
            for level in LEVELS
        ],
        "",
        "### Speed (ORB)",
        "",
        "| brands | descriptors | search | ms p50 | p90 | target | recall | precision |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r, target in ((ten, 50), (main, None), (big, 150)):
        o = r.outcome
        met = "" if target is None else f"<= {target} ms: {'met' if o.ms(50) <= target else 'not met'} (p50)"
        search = "exact (flat)" if r.descriptors <= FLAT_MAX else "HNSW"
        lines.append(
            f"| {r.brands} | {r.descriptors} | {search} | {o.ms(50):.0f} | {o.ms(90):.0f} | {met} | "
            f"{pct(o.recall())} | {pct(o.precision())} |"
        )
    lines += [
        "",
        "### Per brand (ORB; 12 registered / 100 registered)",
        "",
        "| brand | kind | recall | precision | recall, 100 brands | precision, 100 brands |",
        "|---|---|---|---|---|---|",
    ]
    for brand in sorted({k[0] for k in main.outcome.gt}):
        o, b = main.outcome, big.outcome
        what = "transparent" if brand in transparent else "opaque"
        lines.append(
            f"| {brand} | {what} | {pct(o.recall(brand))} | {pct(o.precision(brand))} | "
            f"{pct(b.recall(brand))} | {pct(b.precision(brand))} |"
        )
    lines += [
        "",
        f"Recall by reference kind (ORB, 12 brands): opaque logos {pct(_recall(main.outcome, opaque))}, "
        "logos "
        f"with transparent backgrounds {pct(_recall(main.outcome, transparent))}.",
        "",
        "### Score reliability (ORB, 12 and 100 brands)",
        "",
        "| score | detections | correct |",
        "|---|---|---|",
    ]
    scores = main.outcome.scores + big.outcome.scores
    for lo, hi in ((0.0, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.01)):
        inside = [ok for s, _, ok in scores if lo <= s < hi]
        lines.append(
            f"| {lo:.1f}-{min(hi, 1):.1f} | {len(inside)} | {pct(sum(inside) / max(1, len(inside)))} |"
        )
    if fit:
        lines += ["", f"Score fit (relaxed thresholds, another seed): {fit}."]
    lines.append(END)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="logo detection quality and speed")
    parser.add_argument("--out", type=Path, help="markdown file whose brands section is (re)written")
    parser.add_argument("--doc", type=Path, help="a second markdown file to write the section into")
    parser.add_argument("--reps", type=int, default=6, help="composites per brand and difficulty")
    parser.add_argument("--quick", action="store_true", help="2 composites per brand and difficulty")
    parser.add_argument("--fit", action="store_true", help="also fit the score's logistic coefficients")
    args = parser.parse_args(argv)
    reps = 2 if args.quick else args.reps
    registered = {s.name: make_logo(s) for s in REGISTERED} | {k: real_logo(*v) for k, v in REAL.items()}
    transparent = {b for b, logo in registered.items() if (np.asarray(logo)[..., 3] < 128).mean() > 0.02}
    decoys = {s.name: make_logo(s) for s in DECOYS}
    extra = {s.name: make_logo(s) for s in random_specs(100 - len(registered))}
    photos = load_photos()
    samples = make_samples(photos, registered, decoys, reps)
    ten = dict(list(registered.items())[:8] + list(registered.items())[-2:])
    runs = {
        "orb": run("orb", registered, samples),
        "orb-10": run("orb", ten, samples),
        "orb-100": run("orb", registered | extra, samples),
        "sift": run("sift", registered, samples),
        "sift-700": run("sift", registered, samples, 700),
        "sift-100": run("sift", registered | extra, samples),
    }
    fit = ""
    if args.fit:
        fit_samples = make_samples(photos, registered, decoys, reps, seed=1)
        fit = fit_score(fit_samples, [registered, registered | extra], "orb")
    section = render(runs, samples, transparent, fit)
    print(section)
    for path in (args.out, args.doc):
        if path:
            write_section(path, section, START, END)


if __name__ == "__main__":
    main()
