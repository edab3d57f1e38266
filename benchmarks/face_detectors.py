"""Face detectors compared: NudeNet's face classes, OpenCV's Haar cascade, and combinations.

Prints a markdown section (not run by tests). Measured on the sample photos (astronaut and grace_hopper: one
frontal face each, camera: one profile face, seven photos without faces) and on synthetic scenes: face
crops of astronaut / grace_hopper scaled to face heights 20..160 px, feathered into 1280x960 copies of the
face-free photos (4 faces per scene, 6 scenes per size), JPEG-encoded and decoded as the pipeline would.
A detection counts as a face found when its IoU with the pasted face box is >= 0.25 (Haar boxes are
tighter than NudeNet's); every other detection is a false positive.
"""

from __future__ import annotations

import io
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import skimage
import sklearn.datasets
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from feedlens.analyzers.body_regions import MODEL_SIZE, BodyRegionsAnalyzer, letterbox
from feedlens.analyzers.faces import Detection, FacesAnalyzer, merge, tile_faces, tile_grid
from feedlens.config import load_settings
from feedlens.core.results import Box
from feedlens.services.factory import Services, build_services

SKIMAGE = Path(skimage.__file__).parent / "data"
PHOTOS = {
    "astronaut": (SKIMAGE / "astronaut.png", 1),
    "grace_hopper": (Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg", 1),
    "camera": (SKIMAGE / "camera.png", 1),
    "chelsea": (SKIMAGE / "chelsea.png", 0),
    "coffee": (SKIMAGE / "coffee.png", 0),
    "rocket": (SKIMAGE / "rocket.jpg", 0),
    "motorcycle": (SKIMAGE / "motorcycle_left.png", 0),
    "hubble": (SKIMAGE / "hubble_deep_field.jpg", 0),
    "china": (Path(sklearn.datasets.__file__).parent / "images" / "china.jpg", 0),
    "flower": (Path(sklearn.datasets.__file__).parent / "images" / "flower.jpg", 0),
}
# Hand-checked face boxes (hairline to chin, px) in the two frontal portraits.
FACE_BOXES = {"astronaut": (173, 82, 274, 180), "grace_hopper": (169, 142, 359, 341)}
BACKGROUNDS = ("china", "coffee", "motorcycle", "flower", "rocket", "chelsea")
SCENE = (1280, 960)
FACE_HEIGHTS = (20, 32, 48, 64, 96, 160)
DECODE_SIDES = (320, 640)
MATCH_IOU = 0.25
FLOOR = 0.2  # NudeNet's own floor: the sweep below starts here
THRESHOLDS = (0.2, 0.25, 0.3, 0.4, 0.5)
# Haar: levelWeights (outputRejectLevels=True) is the last stage's summed weak-classifier votes, a margin
# with no fixed range (about -1..8 here). A logistic centred on HAAR_MID maps it to 0..1.
HAAR_MID, HAAR_SCALE = 3.0, 1.0

Detector = Callable[[Image.Image, list[Detection]], list[Detection]]


def rgb(name: str) -> Image.Image:
    with Image.open(PHOTOS[name][0]) as im:
        return im.convert("RGB")


def scenes(seed: int = 0) -> list[tuple[int, bytes, list[Box]]]:
    """(face height, JPEG bytes, ground-truth boxes) per synthetic scene."""
    rng = np.random.default_rng(seed)
    out = []
    for height in FACE_HEIGHTS:
        for b, background in enumerate(BACKGROUNDS):
            canvas = rgb(background).resize(SCENE, Image.Resampling.BICUBIC)
            truth = []
            for k, (col, row) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
                name = ("astronaut", "grace_hopper")[k % 2]
                x0, y0, x1, y1 = FACE_BOXES[name]
                fw, fh = x1 - x0, y1 - y0
                crop = rgb(name).crop((x0 - fw // 2, y0 - fh // 2, x1 + fw // 2, y1 + fh // 2))
                crop = ImageOps.mirror(crop) if (k + b) % 2 else crop
                scale = height / fh
                crop = crop.resize(
                    (round(crop.width * scale), round(crop.height * scale)), Image.Resampling.LANCZOS
                )
                mask = Image.new("L", crop.size, 0)
                ImageDraw.Draw(mask).ellipse((0, 0, crop.width - 1, crop.height - 1), fill=255)
                mask = mask.filter(ImageFilter.GaussianBlur(max(1.0, crop.width / 12)))
                cw, ch = SCENE[0] // 2, SCENE[1] // 2
                px = int(col * cw + rng.uniform(30, cw - 30 - crop.width))
                py = int(row * ch + rng.uniform(30, ch - 30 - crop.height))
                canvas.paste(crop, (px, py), mask)
                fx, fy = px + (fw // 2) * scale, py + (fh // 2) * scale
                truth.append(Box.from_pixels(fx, fy, fx + fw * scale, fy + fh * scale, *SCENE))
            buffer = io.BytesIO()
            canvas.save(buffer, "JPEG", quality=90)
            out.append((height, buffer.getvalue(), truth))
    return out


class Detectors:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.regions = BodyRegionsAnalyzer(services.store, services.settings)
        tiled = services.settings.model_copy(update={"faces_tiling": True})
        self.faces = FacesAnalyzer(services.store, tiled)
        self.faces.load()
        self.cascade = cv2.CascadeClassifier(str(services.store.path("haar-frontalface")))

    def nudenet(self, image: Image.Image, first: list[Detection]) -> list[Detection]:
        return first

    def haar(self, image: Image.Image, first: list[Detection]) -> list[Detection]:
        gray = cv2.equalizeHist(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY))
        rects, _, weights = self.cascade.detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24), outputRejectLevels=True
        )
        w, h = image.size
        return [
            Detection(
                Box.from_pixels(x, y, x + bw, y + bh, w, h),
                1 / (1 + math.exp(-(float(weight) - HAAR_MID) / HAAR_SCALE)),
                "haar",
            )
            for (x, y, bw, bh), weight in zip(rects, np.ravel(weights), strict=True)
        ]

    def nudenet_haar(self, image: Image.Image, first: list[Detection]) -> list[Detection]:
        """NudeNet first; Haar (confidence >= 0.5) only adds faces that overlap no NudeNet face."""
        extra = [h for h in self.haar(image, first) if h.score >= 0.5]
        return [*first, *merge([h for h in extra if not any(h.box.iou(d.box) > 0 for d in first)])]

    def nudenet_tiles(self, image: Image.Image, first: list[Detection]) -> list[Detection]:
        """The shared pass plus NudeNet on overlapping TILE px tiles (the `faces` analyzer's detector)."""
        grid = tile_grid(*image.size)
        if not grid:
            return first
        boxed = [letterbox(image.crop(t), MODEL_SIZE) for t in grid]
        batch = np.ascontiguousarray(np.stack([b[0] for b in boxed]).transpose(0, 3, 1, 2))
        raw = self.faces._detector.run({"images": batch})[0]
        found = list(first)
        for k, tile in enumerate(grid):
            x0, y0, x1, y1 = tile
            found += tile_faces(raw[k], boxed[k][1], (x0, y0, x1, y1), *image.size, FLOOR)
        return merge(found)

    def first_pass(self, image: Image.Image) -> tuple[list[Detection], float]:
        start = time.perf_counter()
        [found] = self.regions([image])
        return [Detection(r.box, r.score, "nudenet") for r in found.faces(FLOOR)], time.perf_counter() - start


def main() -> None:
    services = build_services(load_settings())
    det = Detectors(services)
    methods: dict[str, Detector] = {
        "NudeNet (shared pass)": det.nudenet,
        "Haar cascade": det.haar,
        "NudeNet + Haar for misses": det.nudenet_haar,
        "NudeNet + tiles (FEEDLENS_FACES_TILING; redaction)": det.nudenet_tiles,
    }
    data = scenes()
    samples = {n: services.decoder.decode(p, min_side=640).image for n, (p, _) in PHOTOS.items()}
    print("## `faces`: face detectors compared\n")
    print("Sample photos (decoded at 640), faces found at score >= 0.3 (Haar: confidence >= 0.5):\n")
    print("| detector | " + " | ".join(f"{n} ({PHOTOS[n][1]})" for n in PHOTOS) + " |")
    print("|---|" + "---|" * len(PHOTOS))
    firsts = {n: det.first_pass(im)[0] for n, im in samples.items()}
    for label, fn in methods.items():
        cells = []
        for n, im in samples.items():
            limit = 0.5 if fn == det.haar else 0.3
            cells.append(str(sum(d.score >= limit for d in fn(im, firsts[n]))))
        print(f"| {label} | " + " | ".join(cells) + " |")
    for side in DECODE_SIDES:
        decoded = [(h, services.decoder.decode(jpg, min_side=side).image, truth) for h, jpg, truth in data]
        size = decoded[0][1].size
        print(
            f"\n### Synthetic scenes decoded at input_size {side} ({size[0]}x{size[1]}), 24 faces per size\n"
        )
        print(
            "| detector | threshold | "
            + " | ".join(f"{h} px" for h in FACE_HEIGHTS)
            + " | FP (36 scenes) | ms/image |"
        )
        print("|---|---|" + "---|" * (len(FACE_HEIGHTS) + 2))
        shared = []
        found_by: dict[str, list[list[Detection]]] = {}
        times: dict[str, float] = {}
        for _, image, _ in decoded:
            first, seconds = det.first_pass(image)
            shared.append((first, seconds))
        for label, fn in methods.items():
            spent = []
            found_by[label] = []
            for (_, image, _), (first, seconds) in zip(decoded, shared, strict=True):
                start = time.perf_counter()
                found_by[label].append(fn(image, first))
                spent.append(time.perf_counter() - start + seconds)
            times[label] = 1000 * statistics.mean(spent)
        for label in methods:
            limits = (0.0, 0.5) if label.startswith("Haar") else THRESHOLDS
            for limit in limits:
                hits = dict.fromkeys(FACE_HEIGHTS, 0)
                false = 0
                for (height, _, truth), found in zip(decoded, found_by[label], strict=True):
                    kept = [d for d in found if d.score >= limit]
                    hits[height] += sum(any(d.box.iou(t) >= MATCH_IOU for d in kept) for t in truth)
                    false += sum(not any(d.box.iou(t) >= MATCH_IOU for t in truth) for d in kept)
                recall = " | ".join(f"{hits[h]}/24" for h in FACE_HEIGHTS)
                print(f"| {label} | {limit} | {recall} | {false} | {times[label]:.0f} |")
    print(
        "\nms/image includes the shared NudeNet pass; the chosen row's time is detection only "
        "(the `faces` analyzer adds ~2 ms per face for emotions)."
    )


def cli() -> None:
    """Print the comparison; with --out, also write it as a section of docs/benchmarks.md."""
    import argparse
    import contextlib
    import io
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from run import write_section

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        main()
    print(buffer.getvalue())
    if args.out:
        start, end = "<!-- bench:faces:start -->", "<!-- bench:faces:end -->"
        write_section(args.out, f"{start}\n{buffer.getvalue().strip()}\n{end}", start, end)


if __name__ == "__main__":
    cli()
