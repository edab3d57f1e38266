"""`properties`: dominant colours, brightness, contrast, sharpness, colourfulness, shape, perceptual hashes.

No model: everything is measured on one fixed-scale rendition of the image (shorter side `WORK_SIDE`), so
the numbers do not depend on how large the decoded image happened to be.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import imagehash
import numpy as np
from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.core.results.properties import DominantColour, Orientation, PropertiesResult

# Everything is measured at 128 px on the shorter side: pHash needs only 32x32 and dHash 9x8, 4k colour
# samples need ~64x64, and blur is judged at this one scale so it is comparable across image sizes (a smaller
# rendition hides moderate blur; a larger one costs more and changes nothing else).
WORK_SIDE = 128
# The decoder is asked for twice that: it box-reduces by an integer factor, and a box-reduced image that lands
# exactly on 128 px keeps aliasing that doubles the Laplacian variance (measured: 1.7-2.0x on the sample
# photos). Our own antialiased >= 2x resize from >= 256 px keeps sharpness within ~15% of a full-size decode;
# brightness, colours and hashes are already stable at 128. Other analyzers ask for 256 anyway.
DECODE_SIDE = 2 * WORK_SIDE
MAX_ASPECT = 4  # longer side <= 4 * WORK_SIDE: thinner images are scaled down further, undistorted
COLOUR_SAMPLES = 4096  # pixels clustered, taken on a regular grid (no averaging, which would invent colours)
MAX_COLOURS = 5
KMEANS_ITERATIONS = 12
KMEANS_TOLERANCE = 0.25  # stop once no centre moves this far (Delta E)
KMEANS_SEED = 0
# CIE76 Delta E below which two clusters are one colour: ~2.3 is a just-noticeable difference, 10 is "the
# same colour at a glance", which is what a dominant-colour summary should report.
MERGE_DELTA_E = 10.0
# Sharpness below this is `blurry`. Calibrated on the sample photos: in focus they score 250..1900; with a
# Gaussian blur of sigma 1.5 px at the 128 px scale (1.2% of the shorter side) 8..62. Flat images (no detail
# at all) score ~0 and so count as blurry. The threshold is FEEDLENS_PROPERTIES_BLUR_THRESHOLD (100).
SQUARE_TOLERANCE = 0.05  # |aspect - 1| up to this is `square` (1:1 crops that were re-encoded at 1001x1000)
ACHROMATIC_CHROMA = 10.0  # C*ab below this has no perceptible hue: black, gray or white
MUTED_CHROMA = 30.0  # warm colours below this C*ab are beige or brown rather than red, orange or yellow


@dataclass(frozen=True, slots=True)
class _Measured:
    """Raw measurements of one image, before names, orientation and rounding."""

    centres: np.ndarray  # (K, 3) float64 Lab, K <= MAX_COLOURS, by descending fraction
    fractions: np.ndarray  # (K,) float64, sums to 1
    rgb: np.ndarray  # (K, 3) uint8 sRGB of the centres
    brightness: float
    contrast: float
    sharpness: float
    colourfulness: float
    phash: str
    dhash: str


def work_rendition(image: Image.Image) -> np.ndarray:
    """Scale an image so its shorter side is `WORK_SIDE` (longer side at most `MAX_ASPECT` times that),
    without distortion; tiny images are scaled up. Returns uint8 RGB, shape (H, W, 3)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    w, h = rgb.size
    scale = min(WORK_SIDE / min(w, h), MAX_ASPECT * WORK_SIDE / max(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size != rgb.size:
        # Pillow's bilinear resize is antialiased when shrinking; reducing_gap box-reduces first (faster).
        rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(rgb, dtype=np.uint8)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 sRGB (..., 3) -> float32 CIELAB (..., 3): L* 0..100, a* and b* roughly -128..127 (D65)."""
    flat = rgb.reshape(-1, 1, 3).astype(np.float32) / np.float32(255.0)
    lab: np.ndarray = cv2.cvtColor(flat, cv2.COLOR_RGB2Lab).reshape(rgb.shape)
    return lab


def lightness(rgb: np.ndarray) -> np.ndarray:
    """uint8 sRGB (H, W, 3) -> CIE L* / 100, float64 (H, W) in 0..1.

    OpenCV's 8-bit conversion (table-driven, ~10x faster than float) quantises L* to 100/255, far finer than
    the mean and standard deviation taken from it need.
    """
    lab8 = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2Lab)
    out: np.ndarray = lab8[..., 0] / 255.0
    return out


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float CIELAB (K, 3) -> uint8 sRGB (K, 3), clipped into the gamut."""
    rgb = cv2.cvtColor(lab.astype(np.float32).reshape(-1, 1, 3), cv2.COLOR_Lab2RGB).reshape(-1, 3)
    out: np.ndarray = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    return out


def colour_name(lab: Sequence[float]) -> str:
    """A basic colour name for one CIELAB colour, by lightness L*, chroma C* and hue angle h (degrees).

    Hue bands follow where the sRGB named colours fall in CIELAB: red h~40, orange ~73, yellow ~103,
    green ~136, teal/cyan ~196, blue ~306 and purple ~328. Muted warm colours (reddish to yellowish hue, low
    chroma: tan, taupe, fur, wood, skin in shade) are beige when light and brown when dark; dark oranges and
    yellows are brown; light reds and magentas pink.
    """
    lightness, a, b = float(lab[0]), float(lab[1]), float(lab[2])
    chroma = math.hypot(a, b)
    hue = math.degrees(math.atan2(b, a)) % 360.0
    if lightness < 10.0 or (lightness < 20.0 and chroma < 15.0):
        return "black"
    if chroma < ACHROMATIC_CHROMA:
        return "white" if lightness > 90.0 else "gray"
    if 20.0 <= hue < 115.0 and chroma < MUTED_CHROMA:
        return "beige" if lightness >= 60.0 else "brown"
    if lightness > 92.0 and chroma < 15.0:
        return "white"  # a faint tint on near-white (lavender, mint) still reads as white
    if hue < 45.0 or hue >= 345.0:
        if lightness > 62.0:
            return "pink"
        return "brown" if lightness < 45.0 and chroma < 40.0 else "red"
    if hue < 85.0:
        return "brown" if lightness < 55.0 else "orange"
    if hue < 115.0:
        return "brown" if lightness < 45.0 else "yellow"
    if hue < 170.0:
        return "green"
    if hue < 230.0:
        return "teal"
    if hue < 310.0:
        return "blue"
    return "purple" if lightness < 55.0 else "pink"


def _kmeans(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-means of float32 (N, 3) points -> centres (k, 3) float64, labels (N,).

    OpenCV's k-means++ seeding draws from the calling thread's RNG, so seeding it first makes every call
    (in any thread) give the same clusters for the same pixels.
    """
    cv2.setRNGSeed(KMEANS_SEED)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, KMEANS_ITERATIONS, KMEANS_TOLERANCE)
    no_initial_labels = np.zeros(
        (len(points), 1), dtype=np.int32
    )  # ignored without KMEANS_USE_INITIAL_LABELS
    _, labels, centres = cv2.kmeans(points, k, no_initial_labels, criteria, 1, cv2.KMEANS_PP_CENTERS)
    return centres.astype(np.float64), labels.ravel().astype(np.intp)


def dominant_colours(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the pixels of uint8 sRGB (H, W, 3) in CIELAB into at most `MAX_COLOURS` perceptually distinct
    colours. Returns Lab centres (K, 3) and pixel fractions (K,) by descending fraction; fractions sum to 1.
    """
    h, w = rgb.shape[:2]
    step = max(1, math.ceil(math.sqrt(h * w / COLOUR_SAMPLES)))
    points = to_lab(rgb[::step, ::step]).reshape(-1, 3)  # float32 (N, 3), N <= COLOUR_SAMPLES
    centres, labels = _kmeans(points, min(MAX_COLOURS, len(points)))
    counts = np.bincount(labels, minlength=len(centres)).astype(np.float64)
    keep = counts > 0
    centres, counts = centres[keep], counts[keep]
    # Merge the closest pair while it is perceptually one colour (count-weighted mean of the centres).
    while len(centres) > 1:
        d = np.sqrt(((centres[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1))  # (K, K) CIE76
        np.fill_diagonal(d, np.inf)
        i, j = np.unravel_index(int(d.argmin()), d.shape)
        if d[i, j] >= MERGE_DELTA_E:
            break
        total = counts[i] + counts[j]
        centres[i] = (centres[i] * counts[i] + centres[j] * counts[j]) / total
        counts[i] = total
        centres, counts = np.delete(centres, j, axis=0), np.delete(counts, j)
    # Ties broken by lightness so equal splits come out in a fixed order.
    order = np.lexsort((centres[:, 0], -counts))
    return centres[order], counts[order] / counts.sum()


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness M of uint8 sRGB (H, W, 3): from the opponent channels
    rg = R - G and yb = (R + G) / 2 - B, M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 * sqrt(mean_rg^2 + mean_yb^2)."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    spread = math.hypot(float(rg.std()), float(yb.std()))
    return spread + 0.3 * math.hypot(float(rg.mean()), float(yb.mean()))


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian of the grayscale (0..255) rendition, uint8 (H, W, 3) input."""
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def measure(rgb: np.ndarray) -> _Measured:
    """All pixel measurements of one work rendition, uint8 RGB (H, W, 3)."""
    lum = lightness(rgb)
    centres, fractions = dominant_colours(rgb)
    thumb = Image.fromarray(rgb)
    return _Measured(
        centres=centres,
        fractions=fractions,
        rgb=lab_to_rgb(centres),
        brightness=float(lum.mean()),
        contrast=float(lum.std()),  # RMS contrast (Peli 1990) of the perceptual lightness
        sharpness=sharpness(rgb),
        colourfulness=colourfulness(rgb),
        phash=str(imagehash.phash(thumb)),
        dhash=str(imagehash.dhash(thumb)),
    )


def orientation(aspect: float) -> Orientation:
    if abs(aspect - 1.0) <= SQUARE_TOLERANCE:
        return Orientation.SQUARE
    return Orientation.LANDSCAPE if aspect > 1.0 else Orientation.PORTRAIT


def _clip(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


class PropertiesAnalyzer(Analyzer[list[np.ndarray], PropertiesResult]):
    name = "properties"
    code_version = "properties-1"
    artifacts = ()
    input_size = DECODE_SIDE
    result_type = PropertiesResult

    def _load(self) -> None:
        """Nothing to load: the measurements need no model."""

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> list[np.ndarray]:
        """RGB images -> work renditions, uint8 (H, W, 3) each, shorter side `WORK_SIDE` (sizes differ)."""
        return [work_rendition(im) for im in images]

    def _forward(self, batch: list[np.ndarray]) -> list[_Measured]:
        """Work renditions -> raw measurements (there is no runtime model; this is the computation)."""
        return [measure(rgb) for rgb in batch]

    def postprocess(
        self, outputs: list[_Measured], images: Sequence[Image.Image], upstream: Upstream
    ) -> list[PropertiesResult]:
        results = []
        for m, image in zip(outputs, images, strict=True):
            fractions = [round(float(f), 4) for f in m.fractions]  # sum stays within 3e-4 of 1
            colours = tuple(
                DominantColour(
                    hex="#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb)),
                    lab=(
                        round(_clip(float(c[0]), 0.0, 100.0), 2),
                        round(_clip(float(c[1]), -128.0, 128.0), 2),
                        round(_clip(float(c[2]), -128.0, 128.0), 2),
                    ),
                    fraction=f,
                    name=colour_name(c),
                )
                for c, rgb, f in zip(m.centres, m.rgb, fractions, strict=True)
            )
            # The decoded image may be draft-reduced; its aspect ratio is the original's.
            aspect = image.width / image.height
            results.append(
                PropertiesResult(
                    colours=colours,
                    brightness=round(_clip(m.brightness, 0.0, 1.0), 4),
                    contrast=round(_clip(m.contrast, 0.0, 0.5), 4),
                    sharpness=round(m.sharpness, 2),
                    blurry=m.sharpness < self.settings.properties_blur_threshold,
                    colourfulness=round(m.colourfulness, 2),
                    orientation=orientation(aspect),
                    aspect_ratio=round(aspect, 4),
                    phash=m.phash,
                    dhash=m.dhash,
                )
            )
        return results
