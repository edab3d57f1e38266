"""OCR speed and words read (issue 25): the text analyzer beside the way it worked before (commit
`OLD_COMMIT`: a detector pass at the gate size, then RapidOCR detecting again at 736 px and reading one
image at a time), on photos without text, clip-art graphics with a word, promo photos and rendered text.

`.venv/bin/python benchmarks/ocr_speed.py --out docs/benchmarks.md` writes the `ocr-speed` section.

Sets (made here, nothing downloaded):
- photos without text: the foundation section's 8 photos as 12 MP JPEGs, smooth and with camera-like grain
  (`run.make_jpegs`), decoded at the text analyzer's size (16);
- graphics: 48 clip-art PNGs (flat colours, outlined shapes, one or two words in one of 8 fonts);
- promos: the same 16 photos with three caption lines (`analyzers_bench.add_caption`);
- rendered: 32 images of one or two phrases in 8 fonts, 18-56 px, four styles, rotated up to 15 and 90
  degrees (`ocr_accuracy.render_case`).

The old and the new analyzer run interleaved, image by image, their order alternating by round, so that
other load on the shared machine falls on both alike. Per image: wall and CPU ms (this process). Words:
recall of the truth's words (a multiset, exact spelling) and images read exactly. Then the default
pipeline with and without `text` (images/s over whole batches, files to results), and the naive call
`RapidOCR()(path)` per file. The load average is printed; throughput is the best of its rounds.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).parent))
from analyzers_bench import PROMO, add_caption
from ocr_accuracy import FONTS, char_accuracy, render_case
from run import machine, make_jpegs, write_section

from feedlens.analyzers.text import TextAnalyzer, TextRead
from feedlens.config import Settings, load_settings
from feedlens.core.results.text import TextResult
from feedlens.services.factory import Services, build_services

START, END = "<!-- bench:ocr-speed:start -->", "<!-- bench:ocr-speed:end -->"
OLD_COMMIT = "ca123a5f30bfce41d890afefa8fe2bc2df07b9f9"  # text.py before "OCR where there is text, once"
WORDS = ("SALE", "Hello", "Cafe", "OPEN", "Pizza", "Welcome", "Party", "Love", "NEW", "Sport", "Music",
         "Garden", "Happy Day", "Best Price", "Summer", "Coffee Time", "GO!", "Winner", "Bakery",
         "Yoga")  # fmt: skip
PALETTE = ((255, 204, 0), (0, 153, 219), (232, 72, 85), (46, 196, 182), (255, 255, 255), (250, 240, 220),
           (120, 80, 200), (30, 30, 30), (140, 200, 80), (255, 140, 0))  # fmt: skip
Analyze = Callable[[Sequence[Image.Image]], list[TextResult]]


def clip_art(rng: random.Random, index: int) -> tuple[Image.Image, str]:
    """A flat-colour graphic: 2-5 filled, outlined shapes and one word (or two) -> (image, the word)."""
    w, h = rng.choice([(800, 800), (1024, 768), (640, 640), (900, 600), (768, 1024)])
    image = Image.new("RGB", (w, h), rng.choice(PALETTE[:6]))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(2, 5)):
        x0, y0 = rng.randint(0, w - 100), rng.randint(0, h - 100)
        box = (x0, y0, x0 + rng.randint(60, w // 2), y0 + rng.randint(60, h // 2))
        fill, width = rng.choice(PALETTE), rng.choice([0, 3, 6])
        shape = rng.choice(["ellipse", "rect", "poly"])
        if shape == "ellipse":
            draw.ellipse(box, fill=fill, outline=(20, 20, 20), width=width)
        elif shape == "rect":
            draw.rounded_rectangle(box, radius=20, fill=fill, outline=(20, 20, 20), width=width)
        else:
            corners = rng.randint(3, 6)
            points = [(rng.randint(box[0], box[2]), rng.randint(box[1], box[3])) for _ in range(corners)]
            draw.polygon(points, fill=fill, outline=(20, 20, 20), width=max(1, width))
    word = WORDS[index % len(WORDS)]
    font = ImageFont.truetype(str(FONTS[index % len(FONTS)]), rng.randint(h // 12, h // 6))
    x = rng.randint(10, max(11, int(w - font.getlength(word) - 10)))
    y = rng.randint(10, int(h * 0.75))
    fill = rng.choice(PALETTE)
    outline = (20, 20, 20) if sum(fill) > 300 else (255, 255, 255)
    draw.text((x, y), word, font=font, fill=fill, stroke_width=rng.choice([0, 2, 4]), stroke_fill=outline)
    return image, word


def old_analyzer(services: Services) -> Any:
    """The text analyzer of `OLD_COMMIT`, its modules read out of git into private module names."""

    def module(name: str, path: str, replace: tuple[str, str] | None = None) -> types.ModuleType:
        source = subprocess.run(
            ["git", "show", f"{OLD_COMMIT}:{path}"], check=True, capture_output=True, text=True
        ).stdout
        if replace:
            source = source.replace(*replace)
        mod = types.ModuleType(name)
        mod.__dict__["__file__"] = f"{OLD_COMMIT[:7]}:{path}"
        sys.modules[name] = mod  # dataclasses look their module up while the class is built
        exec(compile(source, mod.__file__ or name, "exec"), mod.__dict__)
        return mod

    module("old_text_engines", "src/feedlens/analyzers/text_engines.py")
    text = module(
        "old_text",
        "src/feedlens/analyzers/text.py",
        ("from feedlens.analyzers.text_engines import", "from old_text_engines import"),
    )
    analyzer = text.TextAnalyzer(services.store, services.settings)
    analyzer.load()
    return analyzer


class Recording(TextAnalyzer):
    """The new analyzer, keeping what the last call went through (`TextRead.stage`) for the tables."""

    last: list[TextRead]

    def _forward(self, batch: Any) -> list[TextRead]:
        self.last = super()._forward(batch)
        return self.last


@dataclass
class Runs:
    """Per image of one set, for one analyzer: wall and CPU ms of every round, the texts of round one."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    stages: collections.Counter[str] = field(default_factory=collections.Counter)


def interleaved(
    engines: dict[str, Analyze], images: list[Image.Image], rounds: int, new: Recording
) -> dict[str, Runs]:
    """Each image through each engine, one image per call, engine order alternating by round."""
    runs = {name: Runs() for name in engines}
    order = list(engines)
    for r in range(rounds):
        for image in images:
            for name in order if r % 2 == 0 else order[::-1]:
                t, c = time.perf_counter(), time.process_time()
                result = engines[name]([image])[0]
                runs[name].wall.append(1000 * (time.perf_counter() - t))
                runs[name].cpu.append(1000 * (time.process_time() - c))
                if r == 0:
                    runs[name].texts.append(result.full_text)
                    if name == "new":
                        runs[name].stages[str(new.last[0].stage)] += 1
                    elif result.gated:
                        runs[name].stages["gated"] += 1
    return runs


def batch_rate(engine: Analyze, images: list[Image.Image], rounds: int) -> float:
    """Images/s of one call over the whole set (the analyzer's own batches), best of `rounds`."""
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        engine(images)
        best = max(best, len(images) / (time.perf_counter() - start))
    return best


def recall(texts: Sequence[str], truths: Sequence[str]) -> tuple[float, int]:
    """Share of the truths' words found among the read words (multisets), and images read exactly."""
    found = total = exact = 0
    for text, truth in zip(texts, truths, strict=True):
        read, want = collections.Counter(text.split()), collections.Counter(truth.split())
        found += sum((read & want).values())
        total += sum(want.values())
        exact += text.split() == truth.split()
    return found / max(1, total), exact


def throughput(services: Services, names: Sequence[str], files: list[Path], rounds: int) -> float:
    """Images/s of a pipeline over `files` (batches of `batch_size`), best of `rounds` after a warm-up."""
    pipeline = services.pipeline(list(names))
    pipeline.load()
    n = services.settings.batch_size
    list(pipeline.analyze_paths(files[:n], n))
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        reports = list(pipeline.analyze_paths(files, n))
        best = max(best, len(reports) / (time.perf_counter() - start))
        if not all(r.ok for r in reports):
            raise RuntimeError(next(r.error for r in reports if not r.ok))
    return best


def naive(files: list[Path]) -> float:
    """`RapidOCR()(path)` per file (the library's defaults): images/s."""
    from rapidocr_onnxruntime import RapidOCR

    ocr = RapidOCR()
    ocr(str(files[0]))  # warm-up (~1.6 s first call)
    start = time.perf_counter()
    for f in files:
        ocr(str(f))
    return len(files) / (time.perf_counter() - start)


@dataclass
class Sets:
    """The four sets: name -> (decoded images, truth texts; "" for photos), and the files behind two."""

    images: dict[str, tuple[list[Image.Image], list[str]]]
    art_files: list[Path]
    promo_files: list[Path]


def make_sets(services: Services, folder: Path) -> Sets:
    photos, grainy = make_jpegs(folder)
    size = services.pipeline(["text"]).decode_size

    def decode(files: list[Path]) -> list[Image.Image]:
        return [services.decoder.decode(f, min_side=size).image for f in files]

    rng = random.Random(5)
    arts = [clip_art(rng, i) for i in range(48)]
    art_files = [folder / f"art-{i:02d}.png" for i in range(len(arts))]
    for (image, _), path in zip(arts, art_files, strict=True):
        image.save(path)
    promo_files = [add_caption(p, folder / f"promo-{p.name}") for p in photos + grainy]
    cases = [render_case(random.Random(100 + i), i) for i in range(32)]
    return Sets(
        {
            "16 photos without text (8 smooth + 8 grainy 12 MP JPEGs)": (decode(photos + grainy), [""] * 16),
            "48 clip-art PNGs with a word": (decode(art_files), [w for _, w in arts]),
            "16 promo photos, three caption lines": (decode(promo_files), ["\n".join(PROMO)] * 16),
            "32 rendered phrases (18-56 px, 4 styles, rotated)": (
                [c[0] for c in cases],
                [c[1] for c in cases],
            ),
        },
        art_files,
        promo_files,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-pipeline", action="store_true", help="only the analyzers, old and new")
    args = parser.parse_args()
    settings = load_settings()
    services = build_services(settings)
    new = Recording(services.store, settings)
    new.load()
    engines: dict[str, Analyze] = {"old": old_analyzer(services), "new": new}
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="feedlens-ocr-") as tmp:
        sets = make_sets(services, Path(tmp))
        for engine in engines.values():
            engine([next(iter(sets.images.values()))[0][0]])  # warm
        measured = {}
        for name, (images, truths) in sets.images.items():
            runs = interleaved(engines, images, args.rounds, new)
            rates = {k: batch_rate(e, images, 1) for k, e in engines.items()}
            measured[name] = (runs, rates, truths)
            print(name, {k: f"{statistics.median(r.wall):.0f} ms" for k, r in runs.items()}, flush=True)
        pipe: dict[str, float] = {}
        if not args.no_pipeline:
            everything = services.analyzers
            no_text = [a for a in everything if a != "text"]
            for key, names, files in (
                ("art", everything, sets.art_files),
                ("art-bare", no_text, sets.art_files),
                ("promo", everything, sets.promo_files),
                ("promo-bare", no_text, sets.promo_files),
            ):
                pipe[key] = throughput(services, names, files, args.rounds)
            pipe["art-naive"] = naive(sets.art_files[:16])
            pipe["promo-naive"] = naive(sets.promo_files[:8])
    load = (load_before, os.getloadavg(), time.perf_counter() - started)
    section = render(settings, measured, pipe, load)
    print(section)
    if args.out:
        write_section(args.out, section, START, END)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def set_rows(name: str, runs: dict[str, Runs], rates: dict[str, float], truths: list[str]) -> list[str]:
    """Table rows (old, new) for one set."""
    rows = []
    for key, run in runs.items():
        stages = ", ".join(f"{k} {v}" for k, v in sorted(run.stages.items())) or "-"
        if any(truths):
            words, exact = recall(run.texts, truths)
            accuracy = statistics.mean(
                char_accuracy(t, truth) for t, truth in zip(run.texts, truths, strict=True)
            )
            read = f"{100 * words:.1f}% | {exact}/{len(truths)} | {accuracy:.3f}"
        else:
            read = f"- | {sum(not t for t in run.texts)}/{len(truths)} empty | -"
        rows.append(
            f"| {name} | {key} | {pct(run.wall, 50):.1f} | {pct(run.wall, 95):.1f} | "
            f"{statistics.mean(run.wall):.1f} | {pct(run.cpu, 50):.1f} | {rates[key]:.2f} | {read} | "
            f"{stages} |"
        )
    return rows


def render(
    settings: Settings,
    measured: dict[str, tuple[dict[str, Runs], dict[str, float], list[str]]],
    pipe: dict[str, float],
    load: tuple[tuple[float, ...], tuple[float, ...], float],
) -> str:
    met = {True: "met", False: "**not met**"}
    gate_p50 = pct(measured[next(iter(measured))][0]["new"].wall, 50)
    lines = [
        START,
        "## `text`: OCR where there is text, once",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} by `benchmarks/ocr_speed.py` in {load[2] / 60:.1f} min. "
        f"Load average (1 min) before / after: {load[0][0]:.1f} / {load[1][0]:.1f} on {os.cpu_count()} "
        + (
            "cores: other jobs shared the machine, so wall times carry their load; "
            if load[0][0] >= 1.5
            else "cores: nothing else ran (the load after is this run's own); "
        )
        + "old and new ran interleaved image by image, so any outside load hits both alike. CPU ms are this "
        "process's.",
        "",
        f"`old`: commit {OLD_COMMIT[:7]} (a detector pass over the gate copy, then RapidOCR detecting again "
        "at 736 px and reading one image at a time). `new`: stroke evidence first (no detector on flat "
        "images), the detector over the gate copy, then the detector on the 736 px copy only around the "
        "lines found (whole when they are small), lines of all images read in one batch.",
        "",
        "Text analyzer alone, one image per call (batch: one call over the whole set); words: recall of the "
        "truth's words, images read exactly, mean character accuracy (1 - CER):",
        "",
        "| Set | | wall p50 ms | wall p95 ms | wall mean ms | CPU p50 ms | batch images/s | words | exact | "
        "chars | decided by (images) |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
        *(row for name, (r, rates, truths) in measured.items() for row in set_rows(name, r, rates, truths)),
        "",
        "Stages: `blank` no character-sized strokes, no detector; `quick` / `full` the half-size or "
        "whole-copy detector found no text; `gate lines` detected at 736 around the gate's lines; "
        "`ocr lines` small text, the whole 736 copy detected; `direct` the classifier saw a text-bearing "
        "thing; `gated` (old) skipped.",
    ]
    if pipe:
        lines += [
            "",
            "Whole default pipeline (every analyzer switched on), files to results, batch "
            f"{settings.batch_size}:",
            "",
            "| Set | with `text`, images/s | without `text`, images/s | naive `RapidOCR()(path)`, images/s |",
            "|---|--:|--:|--:|",
            f"| 48 clip-art PNGs | {pipe['art']:.2f} | {pipe['art-bare']:.2f} | {pipe['art-naive']:.2f} |",
            f"| 16 promo photos | {pipe['promo']:.2f} | {pipe['promo-bare']:.2f} | "
            f"{pipe['promo-naive']:.2f} |",
        ]
    art_rate, promo_rate = pipe.get("art", float("nan")), pipe.get("promo", float("nan"))
    # the text analyzer alone, one call over the set, and the rest of the pipeline: where the time goes
    alone = {k.split()[1]: rates["new"] for k, (_, rates, _) in measured.items()}

    def why(key: str, bare: str) -> str:
        nan = float("nan")
        return f"(`text` alone: {alone.get(key, nan):.2f}; pipeline without it: {pipe.get(bare, nan):.2f})"

    lines += [
        "",
        "| Goal | Measured | Status |",
        "|---|---|---|",
        f"| OCR gate on photos without text <= 20 ms | {gate_p50:.1f} ms p50 | {met[gate_p50 <= 20]} |",
        f"| graphics with a few words >= 8 images/s (pipeline) | {art_rate:.2f} images/s "
        f"{why('clip-art', 'art-bare')} | "
        f"{met[art_rate >= 8]} |",
        f"| promo images with text >= 4 images/s (pipeline) | {promo_rate:.2f} images/s "
        f"{why('promo', 'promo-bare')} | "
        f"{met[promo_rate >= 4]} |",
        "",
        "Machine: " + "; ".join(machine(settings)),
        END,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
