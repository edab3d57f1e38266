"""Why the OCR gate on photos costs what it does (issue 25): could a smaller first detector pass settle the
photos, running the default 480 px pass only where the small one sees anything text-like?

`.venv/bin/python benchmarks/ocr_gate_sides.py --out docs/benchmarks.md` writes the `ocr-gate` section.

Sets (nothing downloaded): photos = the foundation section's 16 12 MP JPEGs (smooth and grainy), the 10
sample photos and every `photo` of the labelled corpus (tests/support/corpus.py; some show signs or
labels, so "passes the gate" there is not always a false pass); captions = a "Link in bio" caption 10-40 px
high pasted on 6 sample photos (`ocr_accuracy.caption_scene`), decoded at the OCR size as ingest does.

For each image the DB detector runs once at the gate copy's longer side 320 and once at 480 (one thread,
CPU ms). The gate's score (`text_engines.gate_score`: elongated map pixels above the DB threshold) and the
map's largest probability are recorded. An escalation rule "480 only when the 320 pass shows at least t" is
judged by what it costs on photos and which captions the 480 gate reads that it would lose.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from ocr_accuracy import PHOTOS, caption_scene
from run import machine, make_jpegs, publish

from feedlens.analyzers.text import TextAnalyzer
from feedlens.analyzers.text_detect import OCR_SIDE
from feedlens.analyzers.text_engines import gate_copy, gate_score, gate_tensor
from feedlens.config import load_settings
from feedlens.core.imageops import resize_shorter_side
from feedlens.runtime.sessions import InferenceSession, open_session
from feedlens.services.factory import build_services

START, END = "<!-- bench:ocr-gate:start -->", "<!-- bench:ocr-gate:end -->"
SIDES = (320, 480)
HEIGHTS = (10, 12, 16, 20, 24, 28, 40)
CAPTIONED = ("chelsea", "coffee", "china", "astronaut", "flower", "motorcycle")


def measure(det: InferenceSession, image: Image.Image, side: int) -> tuple[float, float, float]:
    """(CPU ms of the detector run, gate score, largest map probability) for one gate copy."""
    x = gate_tensor(gate_copy(image, side))
    started = time.process_time()
    prob = det.run({"x": x})[0]  # (1, 1, H, W)
    ms = 1000 * (time.process_time() - started)
    return ms, gate_score(prob, TextAnalyzer.GATE_MIN_ELONGATION), float(prob.max())


def photo_set(services: object, folder: Path, decode_side: int) -> list[Image.Image]:
    from tests.support.corpus import load_corpus

    decoder = services.decoder  # type: ignore[attr-defined]
    smooth, grainy = make_jpegs(folder)
    paths = [*smooth, *grainy, *PHOTOS.values(), *(c.path for c in load_corpus() if c.kind == "photo")]
    return [decoder.decode(p, min_side=decode_side).image for p in paths]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = load_settings()
    services = build_services(settings)
    det = open_session(services.store.path("ppocr-v4-det-onnx"), 1)
    threshold = settings.text_gate_min_pixels
    decode_side = services.pipeline(["text"]).decode_size
    with tempfile.TemporaryDirectory(prefix="feedlens-gate-") as tmp:
        photos = [
            {s: measure(det, im, s) for s in SIDES} for im in photo_set(services, Path(tmp), decode_side)
        ]
    captions = {
        (name, h): {
            s: measure(det, resize_shorter_side(scene, OCR_SIDE, Image.Resampling.BILINEAR), s) for s in SIDES
        }
        for name in CAPTIONED
        for h in HEIGHTS
        for scene in [caption_scene(PHOTOS[name], "Link in bio", h)]
    }
    read = {k: v for k, v in captions.items() if v[480][1] >= threshold}  # what the default gate passes
    ms = {s: statistics.median(p[s][0] for p in photos) for s in SIDES}
    lines = [
        START,
        "## `text`: could a smaller first pass settle the OCR gate on photos?",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} by `benchmarks/ocr_gate_sides.py`: {len(photos)} photos "
        "(16 12 MP JPEGs, 10 sample photos, the labelled corpus's photos; some carry signs or labels) and "
        f"{len(captions)} captioned scenes ({len(CAPTIONED)} photos x caption heights {HEIGHTS} px at "
        "1600x1200), decoded as ingest decodes for `text`. The DB detector, one thread, CPU ms per run "
        f"(p50 over the photos): side 320 **{ms[320]:.1f}**, side 480 (default) **{ms[480]:.1f}**.",
        "",
        f"The default gate (480, >= {threshold:.0f} text pixels) passes {len(read)} of {len(captions)} "
        f"captions and {sum(p[480][1] >= threshold for p in photos)} of {len(photos)} photos. Rule: run 480 "
        "only when the 320 pass shows at least *t* (gate score, or the map's largest probability):",
        "",
        "| first-pass evidence | t | photos sent on to 480 | captions the 480 gate reads that are lost | "
        "photo gate ms (p50, CPU) |",
        "|---|--:|--:|--:|--:|",
    ]
    for name, k, ts in (("gate score at 320", 1, (1.0, 10.0, 40.0)), ("largest probability", 2, (0.05, 0.3))):
        for t in ts:
            sent = [p for p in photos if p[320][k] >= t]
            lost = sum(v[320][k] < t for v in read.values())
            cost = [p[320][0] + (p[480][0] if p[320][k] >= t else 0.0) for p in photos]
            lines.append(
                f"| {name} | {t:g} | {len(sent)} ({len(sent) / len(photos):.0%}) | {lost} of {len(read)} | "
                f"{statistics.median(cost):.1f} |"
            )
    zero = sum(v[320][2] < 0.05 for v in read.values())
    by_height = {h: sum(1 for (n, hh) in read if hh == h) for h in HEIGHTS}
    lines += [
        "",
        f"Read by the 480 gate, by caption height: {by_height}. Of those, {zero} leave the 320 map below "
        "probability 0.05 everywhere: on the 320 copy a caption 16-28 px high at 1600x1200 is 3-6 px high, "
        "below what the DB network responds to, so nothing in the small pass says where to look. A cheaper "
        "first pass loses captions the default gate reads (the issue asks for no loss), so the 480 pass "
        "stays on every photo that has character-sized strokes, and the gate costs "
        f"~{ms[480]:.0f} ms CPU there "
        "(the issue's <= 20 ms is not met; 320 alone would be near it and miss those captions).",
        "",
        "Machine: " + "; ".join(machine(settings)),
        END,
    ]
    publish(lines, args.out, START, END)


if __name__ == "__main__":
    main()
