"""Moderation false positives on safe images, with and without person evidence (analyzers/safety_evidence.py).

Prints a markdown section; `--out docs/benchmarks.md` rewrites its marked section. Nothing is downloaded.

Safe sets:
- the labelled corpus (tests/support/corpus.py): 645 images from 16 packages, every one labelled safe, of
  eight kinds (photos, clip art, screenshots, renders, art, charts, documents, microscopy);
- the photos scikit-image, scikit-learn and matplotlib ship (incl. the colour wheel and the CT-like scans
  an outside probe saw flagged), each as is, mirrored and as four 60% corner crops.

One pipeline run per image (body_regions, faces, objects, pose, safety); the "detector alone" verdict is
`SafetyAnalyzer.judge` on the same regions with no evidence, so both columns see identical detections.

Recall: there are no unsafe images here, and none are fetched. What can be measured honestly is what the
evidence rule costs on real people: of the moderation-taxonomy regions NudeNet reports (above the region
floor, any score) on corpus images that show people, the share a source confirms. A region the rule drops
there would be a missed flag if it were unsafe.

Run: `benchmarks/safety_fp.py [--out docs/benchmarks.md]` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import skimage
import sklearn.datasets
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from run import write_section
from tests.support.corpus import load_corpus

from feedlens.analyzers.safety import SafetyAnalyzer
from feedlens.config import load_settings
from feedlens.core.results.safety import SafetyResult
from feedlens.services.factory import build_services

START, END = "<!-- bench:safety-fp:start -->", "<!-- bench:safety-fp:end -->"
BATCH = 8


def package_photos() -> dict[str, Image.Image]:
    """Every photo-like image the three packages ship (all safe for work), as RGB."""
    folders = [
        Path(skimage.__file__).parent / "data",
        Path(sklearn.datasets.__file__).parent / "images",
        Path(matplotlib.get_data_path()) / "sample_data",
    ]
    photos = {}
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in {".png", ".jpg", ".jpeg", ".tif"}:
                try:
                    with Image.open(path) as im:
                        if min(im.size) >= 64:
                            photos[path.name] = im.convert("RGB")
                except OSError:
                    continue
    return photos


def variants(image: Image.Image) -> list[Image.Image]:
    """The photo, mirrored, and its four corner crops at 60%: more chances for a false alarm."""
    w, h = image.size
    cw, ch = int(w * 0.6), int(h * 0.6)
    crops = [image.crop((x, y, x + cw, y + ch)) for x in (0, w - cw) for y in (0, h - ch)]
    return [image, ImageOps.mirror(image), *crops]


class Tally:
    """Verdicts of one safe set, detector alone and with evidence, by kind."""

    def __init__(self) -> None:
        self.images: Counter[str] = Counter()
        self.alone: Counter[str] = Counter()
        self.checked: Counter[str] = Counter()
        self.flagged_alone: list[str] = []
        self.flagged_checked: list[str] = []

    def add(self, name: str, kind: str, alone: SafetyResult, checked: SafetyResult) -> None:
        self.images[kind] += 1
        if alone.verdict.value != "safe":
            self.alone[kind] += 1
            self.flagged_alone.append(f"{name} ({alone.verdict.value})")
        if checked.verdict.value != "safe":
            self.checked[kind] += 1
            sources = sorted({s for r in checked.regions for s in r.person})
            self.flagged_checked.append(f"{name} ({checked.verdict.value}, person from {', '.join(sources)})")

    def rows(self, title: str) -> list[str]:
        total = sum(self.images.values())
        alone, checked = sum(self.alone.values()), sum(self.checked.values())
        out = [f"| **{title}** | **{total}** | **{alone} ({100 * alone / total:.1f}%)** | "
               f"**{checked} ({100 * checked / total:.1f}%)** |"]  # fmt: skip
        for kind, n in self.images.most_common():
            out.append(f"| {kind} | {n} | {self.alone[kind]} | {self.checked[kind]} |")
        return out


def run(
    pipeline_images: Sequence[tuple[str, str, Image.Image, int]], analyze: object, judge: SafetyAnalyzer
) -> tuple[Tally, Counter[str], int, int]:
    """(name, kind, image, people) per image -> tally, confirmed sources on people images, regions there."""
    tally = Tally()
    sources: Counter[str] = Counter()
    on_people = confirmed = 0
    for start in range(0, len(pipeline_images), BATCH):
        chunk = pipeline_images[start : start + BATCH]
        outcomes = analyze([im for _, _, im, _ in chunk])  # type: ignore[operator]
        for (name, kind, _, people), outcome in zip(chunk, outcomes, strict=True):
            if not isinstance(outcome, dict):
                continue
            checked: SafetyResult = outcome["safety"]
            tally.add(name, kind, judge.judge(outcome["body_regions"]), checked)
            if people:
                regions = [*checked.regions, *checked.set_aside]
                on_people += len(regions)
                confirmed += sum(1 for r in regions if r.person)
                sources.update(s for r in regions for s in r.person)
    return tally, sources, on_people, confirmed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = load_settings()
    services = build_services(settings)
    pipeline = services.pipeline(["safety"])  # pulls in body_regions, faces, objects and pose
    pipeline.load()
    judge = next(a for a in pipeline.analyzers if isinstance(a, SafetyAnalyzer))
    corpus = [
        (image.id, image.kind, Image.open(image.path).convert("RGB"), image.people)
        for image in load_corpus()
        if image.safe
    ]
    photos = [
        (name, "package photo variants", v, 0) for name, im in package_photos().items() for v in variants(im)
    ]
    corpus_tally, sources, on_people, confirmed = run(corpus, pipeline.analyze_images, judge)
    photo_tally, _, _, _ = run(photos, pipeline.analyze_images, judge)
    s = settings
    still = "; ".join(corpus_tally.flagged_checked + photo_tally.flagged_checked)
    before = "; ".join(corpus_tally.flagged_alone + photo_tally.flagged_alone)
    lines = [
        START,
        "## Moderation evidence: false positives on safe images",
        "",
        f"Thresholds: explicit >= {s.safety_explicit_threshold}, suggestive >= "
        f"{s.safety_suggestive_threshold}, regions from {s.safety_region_min_score}. Detector alone: "
        "NudeNet's regions as before; with evidence: a region counts only where objects (a Person box), "
        "pose (a body) or faces (a head above it) put a person (analyzers/safety_evidence.py). Same "
        "detections in both columns.",
        "",
        "| safe set / kind | images | flagged, detector alone | flagged, with person evidence |",
        "|---|---|---|---|",
        *corpus_tally.rows("labelled corpus, all kinds"),
        *photo_tally.rows("package photos x6 variants"),
        "",
        f"Still flagged with evidence: {still or 'none'}.",
        "",
        f"Flagged by the detector alone: {before or 'none'}.",
        "",
        "Recall cost (no unsafe images offline; none fetched): on corpus images showing people, "
        f"{confirmed} of {on_people} moderation-taxonomy regions NudeNet reported were confirmed by a person "
        f"source ({100 * confirmed / max(on_people, 1):.0f}%; by source: {dict(sources) or 'none'}). "
        "An unconfirmed region there would be a missed flag if the image were unsafe. Recall on real "
        "explicit images could not be measured here.",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if args.out:
        write_section(args.out, section, START, END)


if __name__ == "__main__":
    main()
