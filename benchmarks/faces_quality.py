"""`faces` readings measured: landmarks, head angles, attributes against hand labels, quality, cost.

Run by benchmarks/face_detectors.py (or alone: `PYTHONPATH=. .venv/bin/python benchmarks/faces_quality.py
--out docs/benchmarks.md`, ~5 minutes). Faces: every face the analyzer reports on the corpus photos with
faces, the sample portraits and the group photo of benchmarks/faces_labels.py.

- Angles have no ground truth offline, so what is measurable is measured: the mirror image must give
  (-roll, -yaw, pitch), and turning the photo by a known angle must change roll by that angle and leave
  yaw and pitch alone.
- Attributes: agreement with the hand labels of faces_labels.ATTRIBUTES (37 faces, one labeller).
- Quality: how sharpness falls under Gaussian blur and brightness under darkening, on the same faces.
- Cost: each model's time per call, and the analyzer's time per image at its defaults.
"""

from __future__ import annotations

import io
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.faces_labels import ATTRIBUTES, GROUP_PHOTO_ID, group_photo

from feedlens.analyzers.body_regions import BodyRegionsAnalyzer
from feedlens.analyzers.face_attributes import Measures, head_angles, measures
from feedlens.analyzers.faces import FacesAnalyzer, FoundFace
from feedlens.config import load_settings
from feedlens.core.results.faces import Face
from feedlens.services.factory import Services, build_services

DECODE = 640
TURNS = (-20, -10, 10, 20)  # degrees the photo is turned (counter-clockwise as PIL turns it)
BLURS = (0, 1, 2, 4)
DARKEN = (1.0, 0.5, 0.25)


def photos(services: Services) -> dict[str, Image.Image]:
    """Decoded real photos with faces, by corpus id (plus the group photo when it can be fetched)."""
    from tests.support.corpus import load_corpus

    found = {
        item.id: services.decoder.decode(item.path, min_side=DECODE).image
        for item in load_corpus()
        if item.faces > 0 and item.kind == "photo"
    }
    group = group_photo()
    if group is not None:
        found[GROUP_PHOTO_ID] = services.decoder.decode(group, min_side=DECODE).image
    return found


class Runner:
    def __init__(self, services: Services) -> None:
        self.regions = BodyRegionsAnalyzer(services.store, services.settings)
        self.faces = FacesAnalyzer(services.store, services.settings)
        self.faces.load()

    def results(self, image: Image.Image) -> list[Face]:
        return list(self.faces([image], {"body_regions": self.regions([image])})[0].faces)

    def found(self, image: Image.Image) -> list[FoundFace]:
        """The analyzer's faces before they become results (meshes, eyes, emotions)."""
        upstream = {"body_regions": self.regions([image])}
        return self.faces._forward(self.faces.preprocess([image], upstream))[0]


def median_p90(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} / {float(np.percentile(values, 90)):.1f}"


def angles_section(runner: Runner, images: dict[str, Image.Image]) -> None:
    mirror: dict[str, list[float]] = {"roll": [], "yaw": [], "pitch": []}
    turned: dict[str, list[float]] = {"roll": [], "yaw": [], "pitch": []}
    faces = 0
    for image in images.values():
        plain = runner.results(image)
        flipped = runner.results(ImageOps.mirror(image))
        for face in plain:
            if face.head_pose is None:
                continue
            faces += 1
            twin = _match(face, flipped, mirrored=True)
            if twin is not None and twin.head_pose is not None:
                mirror["roll"].append(abs(face.head_pose.roll + twin.head_pose.roll))
                mirror["yaw"].append(abs(face.head_pose.yaw + twin.head_pose.yaw))
                mirror["pitch"].append(abs(face.head_pose.pitch - twin.head_pose.pitch))
        for turn in TURNS:
            rotated = runner.results(image.rotate(turn, resample=Image.Resampling.BICUBIC, expand=True))
            for face in plain:
                twin = _turned_twin(face, rotated, image.size, turn)
                if face.head_pose is None or twin is None or twin.head_pose is None:
                    continue
                turned["roll"].append(abs((twin.head_pose.roll - face.head_pose.roll) + turn))
                turned["yaw"].append(abs(twin.head_pose.yaw - face.head_pose.yaw))
                turned["pitch"].append(abs(twin.head_pose.pitch - face.head_pose.pitch))
    print(f"\n### Head angles ({faces} real faces; degrees, median / 90th percentile)\n")
    print("| check | roll | yaw | pitch |")
    print("|---|---|---|---|")
    print(
        "| mirror image: \\|a + a'\\| for roll and yaw, \\|a - a'\\| for pitch | "
        + " | ".join(median_p90(mirror[k]) for k in ("roll", "yaw", "pitch"))
        + " |"
    )
    print(
        f"| photo turned by {', '.join(map(str, TURNS))} degrees: roll error, yaw and pitch change | "
        + " | ".join(median_p90(turned[k]) for k in ("roll", "yaw", "pitch"))
        + " |"
    )


def _turned_twin(face: Face, others: list[Face], size: tuple[int, int], turn: float) -> Face | None:
    """The face of the turned photo (PIL's rotate by `turn` degrees, counter-clockwise, expanded) whose box
    holds where this face's centre went."""
    width, height = size
    theta = math.radians(turn)
    cos, sin = math.cos(theta), math.sin(theta)
    new_w = abs(width * cos) + abs(height * sin)
    new_h = abs(width * sin) + abs(height * cos)
    dx = (face.box.x0 + face.box.x1) / 2 * width - width / 2
    dy = (face.box.y0 + face.box.y1) / 2 * height - height / 2
    x, y = (dx * cos + dy * sin + new_w / 2) / new_w, (-dx * sin + dy * cos + new_h / 2) / new_h
    inside = [f for f in others if f.box.x0 <= x <= f.box.x1 and f.box.y0 <= y <= f.box.y1]
    return inside[0] if inside else None


def _match(face: Face, others: list[Face], mirrored: bool) -> Face | None:
    box = face.box
    cx = 1 - (box.x0 + box.x1) / 2 if mirrored else (box.x0 + box.x1) / 2
    cy = (box.y0 + box.y1) / 2
    inside = [f for f in others if f.box.x0 <= cx <= f.box.x1 and f.box.y0 <= cy <= f.box.y1]
    return inside[0] if inside else None


def labelled_faces(
    runner: Runner, images: dict[str, Image.Image]
) -> list[tuple[tuple[int | None, ...], FoundFace, Image.Image]]:
    out = []
    for image_id, x, y, *labels in ATTRIBUTES:
        image = images.get(image_id)
        if image is None:
            continue
        for found in runner.found(image):
            box = found.detection.box
            if box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1:
                out.append((tuple(labels), found, image))
                break
    return out


def attributes_section(runner: Runner, images: dict[str, Image.Image]) -> None:
    from feedlens.analyzers.face_attributes import EYES_OPEN, MOUTH_OPEN, SMILE_MAX_YAW, Rule, read

    faces = labelled_faces(runner, images)
    lift = Rule(centre=0.09, scale=0.025, max_yaw=SMILE_MAX_YAW)  # the landmark-only smile tried first

    def smile(m: Measures, yaw: float, happy: float, iris: bool) -> float | None:
        return happy if abs(yaw) <= SMILE_MAX_YAW else None

    def corner_lift(m: Measures, yaw: float, happy: float, iris: bool) -> float | None:
        return read(lift, m.corner_lift, yaw)

    def mean(m: Measures, yaw: float, happy: float, iris: bool) -> float | None:
        p = read(lift, m.corner_lift, yaw)
        return None if p is None else (p + happy) / 2

    def eyes(m: Measures, yaw: float, happy: float, iris: bool) -> float | None:
        return read(EYES_OPEN, m.eye_opening, yaw) if iris else None

    def mouth(m: Measures, yaw: float, happy: float, iris: bool) -> float | None:
        return read(MOUTH_OPEN, m.mouth_opening, yaw)

    readers: list[tuple[str, int, str, Callable[[Measures, float, float, bool], float | None]]] = [
        ("smile", 0, "shipped: FER's P(happy)", smile),
        ("smile", 0, "mouth-corner lift / mouth width (centre 0.09)", corner_lift),
        ("smile", 0, "mean of the two", mean),
        ("eyes open", 1, f"shipped: iris eyelid gap / eye width (centre {EYES_OPEN.centre})", eyes),
        ("mouth open", 2, f"shipped: inner-lip gap / mouth width (centre {MOUTH_OPEN.centre})", mouth),
    ]
    print(f"\n### Attributes against hand labels ({len(faces)} of {len(ATTRIBUTES)} labelled faces found)\n")
    print(
        "Right on the faces a reading was made for (absent: turned too far, or eyes too small for the iris "
        "model). One labeller, from the crops; the thresholds were set on these same faces, so these "
        "numbers are in-sample and n is small.\n"
    )
    print("| attribute | reading | labelled | read | right | absent |")
    print("|---|---|---|---|---|---|")
    for attribute, column, name, reader in readers:
        labelled = read_n = right = absent = 0
        for labels, found, _ in faces:
            if labels[column] is None:
                continue
            labelled += 1
            happy = float(found.emotions[3] / found.emotions.sum())
            _, yaw, _ = head_angles(found.mesh)
            p = reader(measures(found.mesh, found.eyes), yaw, happy, found.eyes is not None)
            if p is None:
                absent += 1
                continue
            read_n += 1
            right += (p >= 0.5) == bool(labels[column])
        print(f"| {attribute} | {name} | {labelled} | {read_n} | {right}/{read_n} | {absent} |")
    with_iris = [
        (measures(f.mesh, f.eyes).eye_opening, lab[1]) for lab, f, _ in faces if lab[1] is not None and f.eyes
    ]
    mesh_only = [(measures(f.mesh, None).eye_opening, lab[1]) for lab, f, _ in faces if lab[1] is not None]
    print(
        f"\nEye opening, iris model: open {_values(with_iris, 1)}; closed {_values(with_iris, 0)}. From "
        f"the mesh's own eyelids: open {_values(mesh_only, 1)}; closed {_values(mesh_only, 0)}."
    )


def _values(pairs: Sequence[tuple[float, int | None]], label: int) -> str:
    return ", ".join(f"{v:.2f}" for v, lab in sorted(pairs) if lab == label) or "-"


def quality_section(runner: Runner, images: dict[str, Image.Image]) -> None:
    sharp: dict[int, list[float]] = {b: [] for b in BLURS}
    bright: dict[float, list[float]] = {d: [] for d in DARKEN}
    for image in images.values():
        for blur in BLURS:
            for face in runner.results(image.filter(ImageFilter.GaussianBlur(blur)) if blur else image):
                if face.quality is not None:
                    sharp[blur].append(face.quality.sharpness)
        for factor in DARKEN:
            dark = image.point(lambda v, f=factor: int(v * f)) if factor < 1 else image
            for face in runner.results(dark):
                if face.quality is not None:
                    bright[factor].append(face.quality.brightness)
    print("\n### Quality (median over the faces still found)\n")
    print("| Gaussian blur radius (decoded px) | " + " | ".join(map(str, BLURS)) + " |")
    print("|---|" + "---|" * len(BLURS))
    print(
        "| sharpness | "
        + " | ".join(f"{statistics.median(sharp[b]):.2f} ({len(sharp[b])})" for b in BLURS)
        + " |"
    )
    print("\n| pixel values times | " + " | ".join(map(str, DARKEN)) + " |")
    print("|---|" + "---|" * len(DARKEN))
    print(
        "| brightness | "
        + " | ".join(f"{statistics.median(bright[d]):.2f} ({len(bright[d])})" for d in DARKEN)
        + " |"
    )


def cost_section(services: Services, runner: Runner, images: dict[str, Image.Image]) -> None:
    from feedlens.analyzers.labels import BACKBONE

    def timed(fn: Callable[[], object], n: int = 10) -> float:
        fn()
        spent = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
        return 1000 * statistics.median(spent)

    a = runner.faces
    zeros = np.zeros
    models = {
        "BlazeFace, one 256x256 input": lambda: a._blaze.run(
            {"input:0": zeros((1, 256, 256, 3), np.float32)}
        ),
        "Face Mesh, one face": lambda: a._mesh.run({"input_1": zeros((1, 192, 192, 3), np.float32)}),
        "Iris, one face (two eyes)": lambda: a._iris.run({"input_1:0": zeros((2, 64, 64, 3), np.float32)}),
        f"{BACKBONE} animal check, one face": lambda: a._classifier.run(
            {"input": zeros((1, 3, 224, 224), np.float32)}
        ),
        "FER, one face": lambda: a._emotions.run({"x": zeros((1, 64, 64, 1), np.float32)}),
    }
    print("\n### Cost\n")
    print("Model time per call (median of 10, ONNX Runtime / LiteRT, 2 threads):\n")
    print("| model | ms |")
    print("|---|---|")
    for name, fn in models.items():
        print(f"| {name} | {timed(fn):.1f} |")
    print("\nThe analyzer per image at its defaults (the shared NudeNet pass not included; median of 5):\n")
    print("| image | decoded | faces | BlazeFace runs | ms |")
    print("|---|---|---|---|---|")
    samples = Path(__file__).resolve().parents[1] / "samples"
    chosen = {
        "astronaut (sample)": services.decoder.decode(samples / "astronaut.png", min_side=DECODE).image,
        "coffee (sample, no face)": services.decoder.decode(samples / "coffee.png", min_side=DECODE).image,
    }
    if GROUP_PHOTO_ID in images:
        chosen["group photo t1"] = images[GROUP_PHOTO_ID]
    big = io.BytesIO()
    Image.open(samples / "china.jpg").convert("RGB").resize((4000, 3000)).save(big, "JPEG", quality=90)
    chosen["4000x3000 JPEG (china, upscaled)"] = services.decoder.decode(
        big.getvalue(), min_side=DECODE
    ).image
    for name, image in chosen.items():
        upstream = {"body_regions": runner.regions([image])}
        count = a([image], upstream)[0].count
        runs = blaze_runs(a, [image], upstream)
        ms = timed(partial(a, [image], upstream), n=5)
        print(f"| {name} | {image.width}x{image.height} | {count} | {runs} | {ms:.0f} |")


def blaze_runs(analyzer: FacesAnalyzer, images: list[Image.Image], upstream: dict[str, Any]) -> int:
    """How many BlazeFace runs (whole image and tiles) the analyzer makes on `images`."""
    calls: list[object] = []
    original = analyzer._blaze_on

    def counted(*args: Any) -> list[Any]:
        calls.append(args[1])
        return original(*args)

    analyzer._blaze_on = counted  # type: ignore[method-assign,assignment]
    try:
        analyzer(images, upstream)
    finally:
        del analyzer._blaze_on
    return len(calls)


NOT_MEASURED = """
### Not measured, so not reported

- **Age** (Rekognition `AgeRange`): `faceres` has an age output, but no age-labelled faces are available
  offline, so neither its error nor its error per group (age, skin tone, sex, where age models are known
  to differ) can be measured; faces carry no age. Two sample portraits (read 29 and 69) measure nothing.
- **Eyeglasses, sunglasses, beard, headwear**: no offline model detects them; they are absent.
- **Yaw and pitch, absolute**: no head-pose ground truth offline; only mirror consistency and roll under
  known rotations are measured (above)."""


def main() -> None:
    services = build_services(load_settings())
    runner = Runner(services)
    images = photos(services)
    print("## `faces`: landmarks, angles, attributes, quality, cost\n")
    print(
        f"Measured {time.strftime('%Y-%m-%d')} by `benchmarks/faces_quality.py` on {len(images)} real photos "
        "with faces (the corpus's and the group photo), decoded at 640; 2 shared cores, load average "
        f"{os.getloadavg()[0]:.0f} at the start (times rough)."
    )
    angles_section(runner, images)
    attributes_section(runner, images)
    quality_section(runner, images)
    cost_section(services, runner, images)
    print(NOT_MEASURED)


def cli(out: Path | None = None) -> None:
    import contextlib

    from benchmarks.run import write_section

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        main()
    print(buffer.getvalue())
    if out:
        start, end = "<!-- bench:faces-quality:start -->", "<!-- bench:faces-quality:end -->"
        write_section(out, f"{start}\n{buffer.getvalue().strip()}\n{end}", start, end)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    cli(parser.parse_args().out)
