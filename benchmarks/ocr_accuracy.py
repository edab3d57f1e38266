"""OCR engines and the text-presence gate measured; prints markdown sections (not run by tests).

1. Character accuracy (1 - CER, Levenshtein over the whole text, whitespace runs collapsed to one space) on
   rendered English: DejaVu/STIX/Computer Modern fonts, 18-56 px, dark-on-light, light-on-dark, colour on
   colour and text on photos, rotations 0, +-5..15 and 90 degrees. Engines: RapidOCR as shipped
   (arg-max CTC), Tesseract alone (whole image, `eng`, psm 3), RapidOCR lines + Tesseract psm 7 on each
   line crop with Tesseract's spaces re-inserted into RapidOCR's letters, and RapidOCR with the
   space-aware CTC decoder at several thresholds.
2. The gate: det model alone at a small size, time per image, skip rate on the sample photos without text,
   miss rate on captions of a given height pasted on 1600x1200 photos (decoded to 736 px as the pipeline
   would), for several gate sizes and pixel thresholds.
3. Throughput of the whole analyzer on text images.

Timings: CPU seconds of this process (`time.process_time`) per image with 1 thread, which stays close to the
wall time on an idle core even when the machine is shared, plus wall time with the configured threads.
"""

from __future__ import annotations

import difflib
import random
import re
import statistics
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import pytesseract
import skimage
import sklearn.datasets
from PIL import Image, ImageDraw, ImageFont
from rapidocr_onnxruntime import RapidOCR

from feedlens.analyzers.text import OCR_SIDE, TextAnalyzer
from feedlens.analyzers.text_engines import gate_input, gate_score
from feedlens.config import load_settings
from feedlens.core.imageops import resize_shorter_side
from feedlens.core.results.text import TextLine, TextResult
from feedlens.runtime.sessions import open_session
from feedlens.services.factory import build_services

SKIMAGE = Path(skimage.__file__).parent / "data"
SKLEARN = Path(sklearn.datasets.__file__).parent / "images"
MPL = Path(matplotlib.get_data_path())
PHOTOS = {
    "chelsea": SKIMAGE / "chelsea.png",
    "coffee": SKIMAGE / "coffee.png",
    "astronaut": SKIMAGE / "astronaut.png",
    "motorcycle": SKIMAGE / "motorcycle_left.png",
    "hubble": SKIMAGE / "hubble_deep_field.jpg",
    "rocket": SKIMAGE / "rocket.jpg",
    "camera": SKIMAGE / "camera.png",
    "china": SKLEARN / "china.jpg",
    "flower": SKLEARN / "flower.jpg",
    "grace_hopper": MPL / "sample_data" / "grace_hopper.jpg",
}
FONTS = [
    MPL / "fonts" / "ttf" / name
    for name in (
        "DejaVuSans.ttf",
        "DejaVuSans-Bold.ttf",
        "DejaVuSerif.ttf",
        "DejaVuSerif-Italic.ttf",
        "DejaVuSansMono.ttf",
        "STIXGeneral.ttf",
        "cmss10.ttf",
    )
] + [Path("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf")]
PHRASES = [
    "Summer sale: 50% off everything",
    "Follow us for more daily tips",
    "The quick brown fox jumps over the lazy dog",
    "New collection out now",
    "Limited edition sneakers drop Friday",
    "Best coffee in town since 1998",
    "Tag a friend who needs this",
    "Free shipping on orders over 30",
    "Link in bio for tickets",
    "Happy birthday to my best friend",
    "Open every day from 9 to 5",
    "Save the date for our wedding",
]
SIZES = (18, 26, 40, 56)
ROTATIONS = (0, 0, 0, 5, -8, 12, -15, 90)
STYLES = ("dark_on_light", "light_on_dark", "colour", "photo")


def levenshtein(a: str, b: str) -> int:
    """Edit distance, O(len(a) * len(b)) with one row of memory."""
    if len(a) < len(b):
        a, b = b, a
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def char_accuracy(predicted: str, truth: str) -> float:
    """1 - CER on whitespace-normalised text, floored at 0."""
    p, t = norm(predicted), norm(truth)
    return max(0.0, 1.0 - levenshtein(p, t) / max(1, len(t)))


def render_case(rng: random.Random, index: int) -> tuple[Image.Image, str, str]:
    """One synthetic image with 1-2 lines -> (image, truth with lines joined by newlines, description)."""
    font_path = FONTS[index % len(FONTS)]
    size = SIZES[(index // len(FONTS)) % len(SIZES)]
    style = rng.choice(STYLES)
    angle = rng.choice(ROTATIONS)
    lines = rng.sample(PHRASES, rng.choice((1, 2)))
    font = ImageFont.truetype(str(font_path), size)
    widths = [int(font.getlength(t)) for t in lines]
    pad = size
    w, h = max(widths) + 2 * pad, len(lines) * int(size * 1.6) + 2 * pad
    if style == "photo":
        bg_photo = Image.open(rng.choice(list(PHOTOS.values()))).convert("RGB")
        layer = bg_photo.resize((w, h))
        fill: tuple[int, int, int] = (255, 255, 255)
    else:
        colours = {
            "dark_on_light": ((245, 245, 240), (20, 20, 20)),
            "light_on_dark": ((25, 30, 45), (240, 240, 240)),
            "colour": ((250, 210, 60), (180, 20, 60)),
        }
        background, fill = colours[style]
        layer = Image.new("RGB", (w, h), background)
    draw = ImageDraw.Draw(layer)
    for k, text in enumerate(lines):
        xy = (pad, pad + k * int(size * 1.6))
        if style == "photo":  # outlined white text, as captions on photos usually are
            draw.text(xy, text, font=font, fill=fill, stroke_width=max(1, size // 14), stroke_fill=(0, 0, 0))
        else:
            draw.text(xy, text, font=font, fill=fill)
    if angle:
        edge = layer.getpixel((0, 0))
        layer = layer.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC, fillcolor=edge)
    desc = f"{font_path.stem} {size}px {style} {angle}deg"
    return layer, "\n".join(lines), desc


def reinsert_spaces(letters: str, spaced: str) -> str:
    """RapidOCR's `letters` with the word spaces of Tesseract's `spaced` reading of the same line: the two
    are aligned ignoring spaces and case; a space between two aligned letters is copied over."""
    a = letters.replace(" ", "")
    b_chars = [(i, c) for i, c in enumerate(spaced) if c != " "]
    b = "".join(c for _, c in b_chars)
    if not a or not b:
        return letters
    matcher = difflib.SequenceMatcher(None, a.lower(), b.lower(), autojunk=False)
    if matcher.ratio() < 0.6:
        return letters
    b_to_a: dict[int, int] = {}
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            b_to_a[block.b + k] = block.a + k
    space_before: set[int] = set()
    for j in range(1, len(b_chars)):
        gap = b_chars[j][0] - b_chars[j - 1][0] > 1  # Tesseract put a space between letters j-1 and j
        if gap and j - 1 in b_to_a and j in b_to_a and b_to_a[j] == b_to_a[j - 1] + 1:
            space_before.add(b_to_a[j])
    return "".join((" " if i in space_before else "") + c for i, c in enumerate(a))


def hybrid(result: TextResult, image: Image.Image) -> str:
    """RapidOCR lines, spaces from Tesseract psm 7 on each line crop (rotated upright when tall)."""
    rgb = image.convert("RGB")
    if min(rgb.size) > OCR_SIDE:
        rgb = resize_shorter_side(rgb, OCR_SIDE, Image.Resampling.BILINEAR)
    return " ".join(_hybrid_line(line, rgb) for line in result.lines)  # lines are in reading order


def _hybrid_line(line: TextLine, rgb: Image.Image) -> str:
    """One line: Tesseract psm 7 on its crop (upright, at least 40 px high), spaces copied into RapidOCR's."""
    if not line.text.isascii():
        return line.text  # CJK and other scripts stay as RapidOCR read them
    x0, y0, x1, y1 = line.box.to_pixels(*rgb.size)
    crop = rgb.crop((max(0, x0 - 4), max(0, y0 - 4), x1 + 4, y1 + 4))
    if crop.height > 1.5 * crop.width:
        crop = crop.rotate(-90, expand=True)
    if crop.height < 40:  # Tesseract reads best at ~30 px x-height
        crop = crop.resize((crop.width * 40 // crop.height, 40), Image.Resampling.BICUBIC)
    tess = pytesseract.image_to_string(crop, lang="eng", config="--psm 7").strip()
    return reinsert_spaces(line.text, tess)


def accuracy_section(analyzer: TextAnalyzer, cases: list[tuple[Image.Image, str, str]]) -> None:
    decoder = analyzer._reader.decoder
    base = decoder.space_threshold
    raw: dict[float, list[TextResult]] = {}
    thresholds = (1.01, 0.05, 0.1, 0.2)
    for t in thresholds:
        decoder.space_threshold = t
        raw[t] = [analyzer([im])[0] for im, _, _ in cases]
    decoder.space_threshold = base
    scores: dict[str, list[float]] = {}
    nospace: dict[str, list[float]] = {}

    def record(name: str, texts: list[str]) -> None:
        scores[name] = [char_accuracy(p, t) for p, (_, t, _) in zip(texts, cases, strict=True)]
        nospace[name] = [
            char_accuracy(p.replace(" ", ""), t.replace(" ", ""))
            for p, (_, t, _) in zip(texts, cases, strict=True)
        ]

    vanilla = RapidOCR(
        det_model_path=str(analyzer.store.path("ppocr-v4-det-onnx")),
        rec_model_path=str(analyzer.store.path("ppocr-v4-rec-onnx")),
        cls_model_path=str(analyzer.store.path("ppocr-mobile-cls-onnx")),
        intra_op_num_threads=analyzer.settings.threads_per_worker,
    )  # the library's own configuration: shorter side enlarged to 736 for detection, arg-max decoding
    record(
        "RapidOCR, library defaults",
        [
            " ".join(str(x[1]) for x in vanilla(np.asarray(im)[:, :, ::-1].copy())[0] or ())
            for im, _, _ in cases
        ],
    )
    record("RapidOCR, our sizing, arg-max CTC", [r.full_text for r in raw[1.01]])
    record("Tesseract alone (psm 3)", [pytesseract.image_to_string(im, lang="eng") for im, _, _ in cases])
    record(
        "RapidOCR + Tesseract psm 7 spaces",
        [hybrid(r, im) for r, (im, _, _) in zip(raw[1.01], cases, strict=True)],
    )
    for t in thresholds[1:]:
        record(f"RapidOCR, our sizing, space-aware CTC {t}", [r.full_text for r in raw[t]])
    print(f"### Character accuracy on {len(cases)} rendered images\n")
    print("| engine | char accuracy mean | median | min | letters only (spaces removed) |")
    print("|---|---|---|---|---|")
    for name, s in scores.items():
        print(
            f"| {name} | {statistics.mean(s):.3f} | {statistics.median(s):.3f} | {min(s):.3f} "
            f"| {statistics.mean(nospace[name]):.3f} |"
        )
    best = f"RapidOCR, our sizing, space-aware CTC {base}"
    print(f"\nBy condition ({best} vs Tesseract alone):\n")
    groups: dict[str, list[int]] = {}
    for i, (_, _, desc) in enumerate(cases):
        font, size, style, angle = desc.split(" ")
        for key in (f"size {size}", f"style {style}", f"rotation {angle}", f"font {font}"):
            groups.setdefault(key, []).append(i)
    print("| condition | n | ours | Tesseract |")
    print("|---|---|---|---|")
    for key in sorted(groups):
        idx = groups[key]
        ours = statistics.mean(scores[best][i] for i in idx)
        tess = statistics.mean(scores["Tesseract alone (psm 3)"][i] for i in idx)
        print(f"| {key} | {len(idx)} | {ours:.3f} | {tess:.3f} |")
    worst = sorted(range(len(cases)), key=lambda i: scores[best][i])[:5]
    print("\nWorst cases (ours):\n")
    for i in worst:
        print(
            f"- {cases[i][2]}: {scores[best][i]:.2f} `{norm(raw[base][i].full_text)}` "
            f"vs `{norm(cases[i][1])}`"
        )
    print()


def caption_scene(photo: Path, text: str, height: int) -> Image.Image:
    """A 1600x1200 copy of a photo with a white, outlined caption whose cap height is about `height` px."""
    scene = Image.open(photo).convert("RGB").resize((1600, 1200), Image.Resampling.BICUBIC)
    font = ImageFont.truetype(str(FONTS[1]), int(height / 0.73))  # DejaVu cap height ~0.73 em
    draw = ImageDraw.Draw(scene)
    draw.text(
        (80, 1000),
        text,
        font=font,
        fill=(255, 255, 255),
        stroke_width=max(1, height // 10),
        stroke_fill=(0, 0, 0),
    )
    return scene


def gate_section(analyzer: TextAnalyzer) -> None:
    settings = analyzer.settings
    store = analyzer.store
    gate1 = open_session(store.path("ppocr-v4-det-onnx"), 1)
    elongation = analyzer.GATE_MIN_ELONGATION
    photos = {n: Image.open(p).convert("RGB") for n, p in PHOTOS.items()}
    heights = (10, 12, 16, 20, 24, 28, 40)
    scenes = {
        (n, h): resize_shorter_side(
            caption_scene(PHOTOS[n], "Link in bio", h), OCR_SIDE, Image.Resampling.BILINEAR
        )
        for n in ("chelsea", "coffee", "china", "astronaut", "flower", "motorcycle")
        for h in heights
    }
    print("### Gate: det model alone on a small copy\n")
    print(
        "| gate side | ms/image CPU, 1 thread (photos) | max pixels on no-text photos | "
        + " | ".join(f"caption {h}px: min pixels" for h in heights)
        + " |"
    )
    print("|---|---|---|" + "---|" * len(heights))
    for side in (320, 384, 480, 640):
        cpu = []
        photo_scores = {}
        for n, im in photos.items():
            page = (
                im
                if min(im.size) <= OCR_SIDE
                else resize_shorter_side(im, OCR_SIDE, Image.Resampling.BILINEAR)
            )
            x = gate_input(page, side)
            gate1.run({"x": x})
            t = time.process_time()
            for _ in range(3):
                y = gate1.run({"x": gate_input(page, side)})[0]
            cpu.append((time.process_time() - t) / 3)
            photo_scores[n] = gate_score(y, elongation)
        cap = {
            k: gate_score(gate1.run({"x": gate_input(im, side)})[0], elongation) for k, im in scenes.items()
        }
        by_h = [min(v for (n, h), v in cap.items() if h == hh) for hh in heights]
        print(
            f"| {side} | {1000 * statistics.mean(cpu):.1f} | {max(photo_scores.values()):.0f} "
            f"({max(photo_scores, key=lambda k: photo_scores[k])}) | "
            + " | ".join(f"{v:.0f}" for v in by_h)
            + " |"
        )
    thr = analyzer.settings.text_gate_min_pixels
    sides = (320, 384, 480, 640)
    print(
        f"\nScenes missed (of {len(scenes) // len(heights)}) per caption height, gate >= {thr:.0f} pixels:\n"
    )
    print(
        "| caption cap height at 1600x1200 | at 736 px decode | "
        + " | ".join(f"side {s}" for s in sides)
        + " |"
    )
    print("|---|---|" + "---|" * len(sides))
    for hh in heights:
        missed = []
        for side in sides:
            scores = [
                gate_score(gate1.run({"x": gate_input(im, side)})[0], elongation)
                for (n, h), im in scenes.items()
                if h == hh
            ]
            missed.append(f"{sum(s < thr for s in scores)}")
        print(f"| {hh} px | {hh * OCR_SIDE / 1200:.1f} px | " + " | ".join(missed) + " |")
    skipped = [n for n, im in photos.items() if analyzer([im])[0].gated]
    print(
        f"\nNo-text photos skipped by the gate at side {analyzer.settings.text_gate_side}: "
        f"{len(skipped)}/{len(photos)} "
        f"({', '.join(skipped)})"
    )
    wall = []
    for im in photos.values():
        t = time.perf_counter()
        analyzer([im])
        wall.append(time.perf_counter() - t)
    print(
        f"Whole analyzer on those photos, wall, {settings.threads_per_worker} threads: "
        f"{1000 * statistics.median(wall):.1f} ms median\n"
    )


def post(photo: Path, lines: list[str]) -> Image.Image:
    """A 1080x1350 feed post: a photo with three outlined caption lines, at the 736 px decode size."""
    scene = Image.open(photo).convert("RGB").resize((1080, 1350), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(scene)
    for k, text in enumerate(lines):
        font = ImageFont.truetype(str(FONTS[k % len(FONTS)]), (64, 40, 32)[k % 3])
        draw.text((60, 900 + 110 * k), text, font=font, fill="white", stroke_width=3, stroke_fill="black")
    return resize_shorter_side(scene, OCR_SIDE, Image.Resampling.BILINEAR)


def throughput_section(analyzer: TextAnalyzer) -> None:
    rng = random.Random(3)
    images = [post(p, rng.sample(PHRASES, 3)) for p in PHOTOS.values()]
    analyzer(images[:2])
    t, c = time.perf_counter(), time.process_time()
    results = analyzer(images)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    lines = statistics.mean(len(r.lines) for r in results)
    print("### Throughput with text\n")
    print(
        f"{len(images)} feed posts (1080x1350 photos with 3 caption lines, decoded to "
        f"{images[0].width}x{images[0].height}, {lines:.1f} lines found on average), "
        f"{analyzer.settings.threads_per_worker} threads: {len(images) / wall:.2f} images/s wall, "
        f"{cpu / len(images) * 1000:.0f} ms CPU per image\n"
    )


def main() -> None:
    services = build_services(load_settings())
    analyzer = TextAnalyzer(services.store, services.settings)
    analyzer.load()
    rng = random.Random(7)
    cases = [render_case(rng, i) for i in range(int(sys.argv[1]) if sys.argv[1:] else 64)]
    print("## OCR (`text` analyzer)\n")
    accuracy_section(analyzer, cases)
    gate_section(analyzer)
    throughput_section(analyzer)


def gate_only() -> None:
    """`python benchmarks/ocr_accuracy.py gate`: the gate and throughput sections alone."""
    services = build_services(load_settings())
    analyzer = TextAnalyzer(services.store, services.settings)
    analyzer.load()
    gate_section(analyzer)
    throughput_section(analyzer)


if __name__ == "__main__":
    gate_only() if sys.argv[1:] == ["gate"] else main()
