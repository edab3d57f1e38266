"""`faces` detection measured: recall by face size, false faces on real photos, face counts, cost.

Run from the repository root: `PYTHONPATH=. .venv/bin/python benchmarks/face_detectors.py --out
docs/benchmarks.md` (about 20-30 minutes on 2 shared cores: the corpus is 645 images, three times). It
writes the `faces` section, then runs benchmarks/faces_quality.py for the `faces-quality` section.

Configurations: the NudeNet faces of the shared `body_regions` pass as faces-1 reported them by default
(score >= 0.3, nothing verified), and the faces-2 analyzer without tiles, at its defaults (BlazeFace tiles
where they pay, verification on) and with verification off (`faces_verify_min_score=0`).

Data, all real photographs, none made up:
- Small faces: the AWS demo group photo is not available offline, so small faces are made honestly from
  real ones: (a) the astronaut's and Grace Hopper's faces scaled to 20..160 px and feathered into
  1280x960 copies of six face-free photos (4 faces a scene, 6 scenes a size, JPEG q90, mirrored every
  other time); (b) a real group photo (insightface's t1.jpg, six faces ~110 px, benchmarks/faces_labels.py)
  shrunk by 1..0.2 into the middle of a 1280x886 copy of a face-free photo. A face counts as found when a
  reported box has IoU >= 0.25 with it; every other box is a false face.
- Real photos: the labelled corpus (tests/support/corpus.py): false faces on its 619 images with no face,
  and whether the count is right (1, 2, 3+) on the 26 with faces; and, of those without a face, the
  animal photos (`--animals` prints only that table).
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.faces_labels import GROUP_FACES, group_photo

from feedlens.analyzers.body_regions import BodyRegionsAnalyzer
from feedlens.analyzers.faces import FacesAnalyzer
from feedlens.analyzers.objects import ObjectsAnalyzer
from feedlens.analyzers.pose import PoseAnalyzer
from feedlens.config import Settings, load_settings
from feedlens.core.results import Box
from feedlens.services.factory import Services, build_services

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
FACE_BOXES = {"astronaut.png": (173, 82, 274, 180), "grace_hopper.jpg": (169, 142, 359, 341)}
BACKGROUNDS = ("china.jpg", "coffee.png", "motorcycle.png", "flower.jpg", "rocket.jpg", "chelsea.png")
SCENE = (1280, 960)
FACE_HEIGHTS = (20, 32, 48, 64, 96, 160)
GROUP_SCALES = (1.0, 0.6, 0.4, 0.3, 0.2)
MATCH_IOU = 0.25
DECODE = 640  # the faces analyzer's decode side with tiles on
Detector = Callable[[list[Image.Image]], list[list[Box]]]


def rgb(name: str) -> Image.Image:
    with Image.open(SAMPLES / name) as im:
        return im.convert("RGB")


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def paste_face(canvas: Image.Image, name: str, height: int, at: tuple[int, int], mirror: bool) -> Box:
    """Feather a sample's face (with half a face of context) `height` px tall into `canvas` at `at`."""
    x0, y0, x1, y1 = FACE_BOXES[name]
    fw, fh = x1 - x0, y1 - y0
    crop = rgb(name).crop((x0 - fw // 2, y0 - fh // 2, x1 + fw // 2, y1 + fh // 2))
    crop = ImageOps.mirror(crop) if mirror else crop
    scale = height / fh
    crop = crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.Resampling.LANCZOS)
    mask = Image.new("L", crop.size, 0)
    ImageDraw.Draw(mask).ellipse((0, 0, crop.width - 1, crop.height - 1), fill=255)
    canvas.paste(crop, at, mask.filter(ImageFilter.GaussianBlur(max(1.0, crop.width / 12))))
    fx, fy = at[0] + (fw // 2) * scale, at[1] + (fh // 2) * scale
    return Box.from_pixels(fx, fy, fx + fw * scale, fy + fh * scale, *canvas.size)


def scenes(seed: int = 0) -> list[tuple[int, bytes, list[Box]]]:
    """(face height, JPEG bytes, true boxes) per synthetic scene: 4 faces in the 4 quarters."""
    rng = np.random.default_rng(seed)
    out = []
    for height in FACE_HEIGHTS:
        for b, background in enumerate(BACKGROUNDS):
            canvas = rgb(background).resize(SCENE, Image.Resampling.BICUBIC)
            truth = []
            for k, (col, row) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
                name = ("astronaut.png", "grace_hopper.jpg")[k % 2]
                w, h = SCENE[0] // 2, SCENE[1] // 2
                size = 2 * height  # the pasted crop is about twice the face
                at = (
                    int(col * w + rng.uniform(30, w - 30 - size)),
                    int(row * h + rng.uniform(30, h - 30 - size)),
                )
                truth.append(paste_face(canvas, name, height, at, mirror=bool((k + b) % 2)))
            out.append((height, jpeg(canvas), truth))
    return out


def group_scenes(photo: bytes) -> list[tuple[float, bytes, list[Box]]]:
    """(scale, JPEG bytes, true boxes): the group photo shrunk into a face-free photo of its size."""
    group = Image.open(io.BytesIO(photo)).convert("RGB")
    out = []
    for scale in GROUP_SCALES:
        canvas = rgb("china.jpg").resize(group.size, Image.Resampling.BICUBIC)
        small = group.resize(
            (round(group.width * scale), round(group.height * scale)), Image.Resampling.LANCZOS
        )
        left, top = (group.width - small.width) // 2, (group.height - small.height) // 2
        canvas.paste(small, (left, top))
        truth = [
            Box.from_pixels(
                left + x0 * scale, top + y0 * scale, left + x1 * scale, top + y1 * scale, *group.size
            )
            for x0, y0, x1, y1 in GROUP_FACES
        ]
        out.append((scale, jpeg(canvas), truth))
    return out


class Configurations:
    """The detectors compared, each a function of decoded images -> face boxes per image. `objects` and
    `pose` run once per image as in the default pipeline (their cost is theirs, not counted here)."""

    def __init__(self, services: Services, full: bool = True) -> None:
        self.services = services
        settings = services.settings
        self.regions = BodyRegionsAnalyzer(services.store, settings)
        self.people = (ObjectsAnalyzer(services.store, settings), PoseAnalyzer(services.store, settings))
        before = self._faces(settings, faces_tile_everywhere=True)
        before.max_iris_faces = 10
        self.analyzers = {
            "faces-2 default (tiles on every large image, 10 faces' eyes)": (before, False),
            "faces-3, no tiles": (self._faces(settings, faces_tiling=False), False),
            "faces-3 default (tiles near people, 5 faces' eyes)": (self._faces(settings), True),
            "faces-3 default without objects and pose": (self._faces(settings), False),
        }
        if full:
            self.analyzers["faces-3, verification off"] = (
                self._faces(settings, faces_verify_min_score=0.0, faces_tile_everywhere=True),
                False,
            )

    def _faces(self, settings: Settings, **changes: object) -> FacesAnalyzer:
        analyzer = FacesAnalyzer(self.services.store, settings.model_copy(update=changes))
        analyzer.load()
        return analyzer

    def run(self, images: list[Image.Image]) -> dict[str, tuple[list[list[Box]], float]]:
        """Per configuration: boxes per image and ms per image (the shared NudeNet pass included)."""
        start = time.perf_counter()
        regions = self.regions(images)
        shared = (time.perf_counter() - start) / len(images)
        seen: dict[str, list[Any]] = {"objects": self.people[0](images), "pose": self.people[1](images)}
        out = {
            "faces-1 default (NudeNet >= 0.3, unverified)": (
                [[r.box for r in found.faces(0.3)] for found in regions],
                shared,
            )
        }
        for name, (analyzer, with_people) in self.analyzers.items():
            upstream: dict[str, list[Any]] = {"body_regions": regions, **(seen if with_people else {})}
            start = time.perf_counter()
            results = analyzer(images, upstream)
            spent = (time.perf_counter() - start) / len(images) + shared
            out[name] = ([[f.box for f in r.faces] for r in results], spent)
        return out


def score(found: list[list[Box]], truths: list[list[Box]]) -> tuple[int, int]:
    """(faces found, false boxes) over a set of images."""
    hits = sum(
        any(b.iou(t) >= MATCH_IOU for b in boxes)
        for boxes, truth in zip(found, truths, strict=True)
        for t in truth
    )
    false = sum(
        not any(b.iou(t) >= MATCH_IOU for t in truth)
        for boxes, truth in zip(found, truths, strict=True)
        for b in boxes
    )
    return hits, false


def recall_table(
    title: str, groups: dict[str, list[tuple[bytes, list[Box]]]], configs: Configurations
) -> None:
    services = configs.services
    rows: dict[str, list[str]] = {}
    times: dict[str, list[float]] = {}
    false: dict[str, int] = {}
    for items in groups.values():
        images = [services.decoder.decode(data, min_side=DECODE).image for data, _ in items]
        truths = [truth for _, truth in items]
        for name, (found, ms) in configs.run(images).items():
            hits, wrong = score(found, truths)
            rows.setdefault(name, []).append(f"{hits}/{sum(len(t) for t in truths)}")
            times.setdefault(name, []).append(ms)
            false[name] = false.get(name, 0) + wrong
    print(f"\n### {title}\n")
    print("| configuration | " + " | ".join(groups) + " | false faces | ms/image |")
    print("|---|" + "---|" * (len(groups) + 2))
    for name, cells in rows.items():
        print(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {false[name]} | {1000 * statistics.mean(times[name]):.0f} |"
        )


def corpus_table(configs: Configurations, every: int = 1) -> None:
    from tests.support.corpus import MANY, load_corpus

    corpus = load_corpus()[::every]
    services = configs.services
    false: dict[str, list[int]] = {}
    right: dict[str, int] = {}
    times: dict[str, list[float]] = {}
    for item in corpus:
        image = services.decoder.decode(item.path, min_side=DECODE).image
        for name, (found, ms) in configs.run([image]).items():
            count = len(found[0])
            times.setdefault(name, []).append(ms)
            if item.faces == 0:
                false.setdefault(name, []).append(count)
            else:
                right[name] = right.get(name, 0) + (min(count, MANY) == item.faces)
    zero = sum(1 for item in corpus if item.faces == 0)
    with_faces = len(corpus) - zero
    part = "" if every == 1 else f", every {every}th"
    print(f"\n### The labelled corpus ({len(corpus)} real images{part}, decoded at {DECODE})\n")
    print(
        f"| configuration | false faces on the {zero} images without one (images) | right count on the "
        f"{with_faces} with faces (1, 2, 3+) | ms/image, median |"
    )
    print("|---|---|---|---|")
    for name, counts in false.items():
        print(
            f"| {name} | {sum(counts)} ({sum(c > 0 for c in counts)}) | {right.get(name, 0)}/{with_faces} | "
            f"{1000 * statistics.median(times[name]):.0f} |"
        )


def animals_table(configs: Configurations) -> None:
    """Animal photos of the corpus with no human face: how many get a face reported (cats' faces...)."""
    from tests.support.corpus import load_corpus

    animals = [item for item in load_corpus() if item.subject == "animals" and item.faces == 0]
    services = configs.services
    hit: dict[str, list[int]] = {}
    for item in animals:
        image = services.decoder.decode(item.path, min_side=DECODE).image
        for name, (found, _) in configs.run([image]).items():
            hit.setdefault(name, []).append(len(found[0]))
    chelsea = next((k for k, item in enumerate(animals) if item.id == "skimage/chelsea"), None)
    print(f"\n### Animal photos of the corpus without a human face ({len(animals)}, decoded at {DECODE})\n")
    print("| configuration | photos with a face reported | faces reported | the cat (skimage chelsea) |")
    print("|---|---|---|---|")
    for name, counts in hit.items():
        cat = "-" if chelsea is None else ("face reported" if counts[chelsea] else "no face")
        print(f"| {name} | {sum(c > 0 for c in counts)}/{len(counts)} | {sum(counts)} | {cat} |")


def main(corpus: bool = True, every: int = 1, full: bool = True) -> None:
    services = build_services(load_settings())
    configs = Configurations(services, full)
    print("## `faces`: detection\n")
    print(
        f"Measured {time.strftime('%Y-%m-%d')} by `benchmarks/face_detectors.py` on this 2-core machine, "
        f"shared with other jobs (load average {os.getloadavg()[0]:.0f} at the start: times are rough, "
        "compare rows, not machines). Decoded at 640 (the pipeline's size when `faces` runs with tiles; "
        "`text` already asks 736)."
    )
    synthetic = scenes()
    groups = {
        f"{h} px": [(data, truth) for height, data, truth in synthetic if height == h] for h in FACE_HEIGHTS
    }
    recall_table(
        "Real faces scaled into 1280x960 real photos (24 faces per size, 36 scenes)", groups, configs
    )
    photo = group_photo()
    if photo is None:
        print("\nThe group photo (insightface t1.jpg) could not be fetched: no group-photo table.")
    else:
        scaled = {f"x{s} (~{round(110 * s)} px)": [(data, truth)] for s, data, truth in group_scenes(photo)}
        recall_table("A real group photo (6 faces) shrunk into a 1280x886 photo", scaled, configs)
    if corpus:
        corpus_table(configs, every)
        animals_table(configs)


def cli() -> None:
    """Print the sections; with --out, also write them into docs/benchmarks.md."""
    import argparse
    import contextlib

    from benchmarks import faces_quality
    from benchmarks.run import write_section

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-corpus", action="store_true", help="skip the 645-image corpus (~20 min)")
    parser.add_argument("--animals", action="store_true", help="only the corpus's animal photos; no --out")
    parser.add_argument("--every", type=int, default=1, help="only every Nth corpus image (shorter runs)")
    parser.add_argument("--quick", action="store_true", help="no verification-off row, no faces-quality")
    args = parser.parse_args()
    if args.animals:
        animals_table(Configurations(build_services(load_settings()), not args.quick))
        return
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        main(corpus=not args.no_corpus, every=args.every, full=not args.quick)
    print(buffer.getvalue())
    if args.out:
        start, end = "<!-- bench:faces:start -->", "<!-- bench:faces:end -->"
        write_section(args.out, f"{start}\n{buffer.getvalue().strip()}\n{end}", start, end)
    if not args.quick:
        faces_quality.cli(args.out)


if __name__ == "__main__":
    cli()
