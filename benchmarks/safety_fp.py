"""False-positive rate of the `safety` defaults on safe real photos (and crops/flips of them).

Prints a markdown section; `make bench` writes it into docs/benchmarks.md. Nothing is downloaded: the
photos are the ones scikit-image, scikit-learn and matplotlib ship.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import matplotlib
import skimage
import sklearn.datasets
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).parent))
from run import write_section

from feedlens.config import load_settings
from feedlens.services.factory import build_services

START, END = "<!-- bench:safety-fp:start -->", "<!-- bench:safety-fp:end -->"


def safe_photos() -> dict[str, Image.Image]:
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    services = build_services(load_settings())
    pipeline = services.pipeline(["safety"])
    photos = safe_photos()
    named = [(name, v) for name, im in photos.items() for v in variants(im)]
    images = [v for _, v in named]
    outcomes = pipeline.analyze_images(images)
    verdicts: Counter[str] = Counter()
    regions: Counter[str] = Counter()
    flagged_by: Counter[str] = Counter()
    for (name, _), outcome in zip(named, outcomes, strict=True):
        assert isinstance(outcome, dict)
        result = outcome["safety"]
        verdicts[result.verdict.value] += 1
        if result.verdict.value != "safe":
            flagged_by[name] += 1
        regions.update(r.type for r in result.regions)
    s = services.settings
    flagged = len(images) - verdicts["safe"]
    rate = 100 * flagged / len(images)
    lines = [
        START,
        "## `safety`: false positives of the defaults on safe photos",
        "",
        f"{len(photos)} safe photos shipped with scikit-image, scikit-learn and matplotlib (people, animals, "
        f"objects, scenes, microscopy, text), each as is, mirrored and as four 60% corner crops: "
        f"{len(images)} images. Thresholds: explicit >= {s.safety_explicit_threshold}, suggestive >= "
        f"{s.safety_suggestive_threshold}, regions reported from {s.safety_region_min_score}.",
        "",
        f"- Flagged (verdict not `safe`): **{flagged}/{len(images)} = {rate:.1f}%** ({dict(verdicts)})",
        f"- Flagged, by source photo (variants out of 6): {dict(flagged_by) or 'none'}",
        f"- Regions reported above the region floor (informational, not verdicts): {dict(regions) or 'none'}",
        "",
        "There are no unsafe images here to measure recall on; the detector's published behaviour and the "
        "unit tests of the verdict rules cover that side. Lowering the thresholds trades these false "
        "positives for recall; see docs/analyzers.md.",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if args.out:
        write_section(args.out, section, START, END)


if __name__ == "__main__":
    main()
